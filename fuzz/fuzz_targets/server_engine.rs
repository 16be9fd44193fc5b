#![no_main]
//! Arbitrary lines into a live server engine (memory stores), as a hostile client
//! would send them: the engine must answer every line without panicking.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::server_engine(data));
