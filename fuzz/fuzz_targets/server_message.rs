#![no_main]
//! Arbitrary bytes into the server-message parser (what a client reads).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::server_message(data));
