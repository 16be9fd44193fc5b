#![no_main]
//! The small text parsers: nonces, fingerprints, saslnames, usernames, verifiers,
//! credential files.
use libfuzzer_sys::fuzz_target;
use scram_dh::nonce::{CombinedNonce, Nonce};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = Nonce::parse(s);
    let _ = CombinedNonce::parse(s);
    let _ = s.parse::<scram_dh::Fingerprint>();
    let _ = scram_dh::username::normalize(s);
    if let Some(u) = scram_dh::username::unescape(s) {
        assert_eq!(scram_dh::username::unescape(&scram_dh::username::escape(&u)).as_deref(), Some(u.as_str()));
    }
    let _ = scram_dh::Record::from_postgres_verifier("u", s, 0);
    let _ = scram_dh::ClientCredential::from_json(s);
});
