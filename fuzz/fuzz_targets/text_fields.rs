#![no_main]
//! The small text parsers: nonces, fingerprints, saslnames, usernames, verifiers,
//! credential files.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::text_fields(data));
