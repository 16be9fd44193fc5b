#![no_main]
//! Arbitrary bytes into the client-message parser: never a panic; what parses
//! re-encodes to something that parses to the same message.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::client_message(data));
