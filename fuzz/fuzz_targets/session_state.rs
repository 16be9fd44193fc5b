#![no_main]
//! Arbitrary bytes as stored session state (a corrupted or hostile session store).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::session_state(data));
