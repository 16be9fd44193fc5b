#![no_main]
//! Standard SCRAM's text: the four RFC 5802 message parsers, the gs2 header, the
//! PostgreSQL verifier parser, and the server's and client's steps on them.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scram_dh_fuzz::targets::sasl_text(data));
