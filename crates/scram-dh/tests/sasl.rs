//! Standard SCRAM-SHA-256 (issue 8): the RFC 7677 exchange byte for byte on both
//! sides, every refusal the server and the client can make, SASLprep of names
//! and passwords, channel binding with tls-exporter (RFC 9266) and its downgrade
//! check, the engine's park/resume for HTTP, and codec properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::mock::MockProfile;
use scram_dh::nonce::Nonce;
use scram_dh::pair::{Pair, block_on};
use scram_dh::sasl::client::{SaslClient, SaslClientFinal};
use scram_dh::sasl::server::{ClientFirstRequest, PendingSasl, SaslAuthenticated};
use scram_dh::sasl::text::{ClientFinal, ClientFirst, Extension, Gs2Cb, Gs2Header, ServerFinal, ServerFirst};
use scram_dh::sasl::{
    ClientChannel, MECHANISM, MECHANISM_PLUS, SaslFailure, ServerChannel, ServerErrorValue as V,
};
use scram_dh::session::{Phase, SessionKey};
use scram_dh::{
    ClientConfig, ClientKeys, CredentialStore, Error, ErrorCode, Group, HostKey, Labels,
    MemoryCredentialStore, MemorySessionStore, Password, Record, ServerConfig, ServerEngine, SessionStore,
};

const NOW: u64 = 1_700_000_000_000;

// RFC 7677 section 3.
const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn config() -> ServerConfig {
    ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32])
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn record(user: &str, password: &str, salt: &[u8], ic: u32) -> Record {
    let salted = scram_dh::keys::salted_password(&Password::new(password), salt, ic).unwrap();
    ClientKeys::rfc(&salted).record(user, salt, ic, 0, Labels::Rfc)
}

fn rfc_record() -> Record {
    record("user", "pencil", &STANDARD.decode(RFC_SALT).unwrap(), 4096)
}

fn client(user: &str, password: &str, channel: ClientChannel) -> SaslClient {
    SaslClient::new(user, &Password::new(password), channel, &ClientConfig::default(), &mut rng(7)).unwrap()
}

fn start(client: &SaslClient, channel: ServerChannel<'_>) -> Result<ClientFirstRequest, SaslFailure> {
    ClientFirstRequest::parse(client.mechanism(), client.client_first().as_bytes(), channel)
}

fn pending(client: &SaslClient, record: Option<Record>, channel: ServerChannel<'_>) -> (String, PendingSasl) {
    start(client, channel)
        .unwrap()
        .continue_with(record, &mut rng(9), &config(), &MockProfile::new())
        .unwrap()
}

/// A whole exchange; the server's failure, or both sides' success.
fn exchange(
    client: SaslClient,
    record: Option<Record>,
    channel: ServerChannel<'_>,
) -> Result<SaslAuthenticated, SaslFailure> {
    let request = start(&client, channel)?;
    let (server_first, pending) =
        request.continue_with(record, &mut rng(9), &config(), &MockProfile::new())?;
    let client = client.receive_server_first(server_first.as_bytes()).expect("client accepts server-first");
    let (server_final, auth) = pending.receive_final(client.client_final().as_bytes())?;
    client.receive_server_final(server_final.as_bytes()).expect("client verifies the server");
    Ok(auth)
}

fn refused(r: Result<SaslAuthenticated, SaslFailure>, value: V) -> SaslFailure {
    let f = r.expect_err("the exchange must fail");
    assert_eq!(f.value, value, "{f:?}");
    assert_eq!(f.server_final(), format!("e={}", value.as_str()));
    f
}

fn final_of(client: SaslClient, server_first: &str) -> SaslClientFinal {
    client.receive_server_first(server_first.as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------
// RFC 7677 section 3, byte for byte
// ---------------------------------------------------------------------------

#[test]
fn rfc7677_client_byte_for_byte() {
    let c = SaslClient::with_nonce(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        RFC_CLIENT_NONCE,
    )
    .unwrap();
    assert_eq!(c.mechanism(), MECHANISM);
    assert_eq!(c.client_first(), RFC_CLIENT_FIRST);
    let c = c.receive_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(c.client_final(), RFC_CLIENT_FINAL);
    c.receive_server_final(RFC_SERVER_FINAL.as_bytes()).unwrap();
}

#[test]
fn rfc7677_server_byte_for_byte() {
    let request =
        ClientFirstRequest::parse(MECHANISM, RFC_CLIENT_FIRST.as_bytes(), ServerChannel::None).unwrap();
    assert_eq!(request.username(), "user");
    let (server_first, pending) = request
        .continue_with_nonce(Some(rfc_record()), RFC_SERVER_NONCE, &config(), &MockProfile::new())
        .unwrap();
    assert_eq!(server_first, RFC_SERVER_FIRST);
    assert_eq!(pending.username(), "user");
    let (server_final, auth) = pending.receive_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(server_final, RFC_SERVER_FINAL);
    assert_eq!(auth.username(), "user");
    assert!(!auth.channel_bound());
}

#[test]
fn rfc7677_record_matches_notes_keys() {
    // NOTES.md: StoredKey and ServerKey of the vector, as scramp and gsasl derive them.
    let v = rfc_record().to_postgres_verifier();
    assert_eq!(
        v,
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
         wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    );
    assert_eq!(Record::from_postgres_verifier("user", &v, 0).unwrap(), rfc_record());
}

#[test]
fn random_nonces_are_24_bytes_base64() {
    let c = client("user", "pencil", ClientChannel::Unsupported);
    let first = ClientFirst::parse(&c.client_first()).unwrap();
    assert_eq!(first.nonce.len(), 32);
    assert_eq!(STANDARD.decode(&first.nonce).unwrap().len(), 24);
    let (server_first, _) = pending(&c, Some(rfc_record()), ServerChannel::None);
    let sf = ServerFirst::parse(&server_first).unwrap();
    assert_eq!(sf.nonce.len(), 64);
    assert!(sf.nonce.starts_with(&first.nonce));
    assert_eq!(STANDARD.decode(&sf.nonce[32..]).unwrap().len(), 24);
}

// ---------------------------------------------------------------------------
// Names and passwords
// ---------------------------------------------------------------------------

#[test]
fn usernames_with_comma_and_equals_round_trip() {
    for name in ["a,b", "x=y", "=,=2C,", "a=3Db"] {
        let c = client(name, "pw", ClientChannel::Unsupported);
        let first = c.client_first();
        let escaped = scram_dh::username::escape(name);
        assert_eq!(first.split(",r=").next().unwrap(), format!("n,,n={escaped}"));
        assert!(!first[5..].split(",r=").next().unwrap().contains(','), "{first}");
        let auth =
            exchange(c, Some(record(name, "pw", b"0123456789abcdef", 4096)), ServerChannel::None).unwrap();
        assert_eq!(auth.username(), name);
    }
}

#[test]
fn usernames_are_saslprep_normalised() {
    let c = client("I\u{00AD}X", "pw", ClientChannel::Unsupported);
    assert_eq!(ClientFirst::parse(&c.client_first()).unwrap().username, "IX");
    // A client that sends the unprepared name: the server normalises it.
    let r =
        ClientFirstRequest::parse(MECHANISM, "n,,n=I\u{00AD}X,r=abcdefgh".as_bytes(), ServerChannel::None)
            .unwrap();
    assert_eq!(r.username(), "IX");
    let r = ClientFirstRequest::parse(MECHANISM, "n,,n=\u{2168},r=abcdefgh".as_bytes(), ServerChannel::None)
        .unwrap();
    assert_eq!(r.username(), "IX");
    for bad in ["n,,n=bell\u{7},r=abcdefgh", "n,,n=\u{00AD},r=abcdefgh", "n,,n=\u{0627}1,r=abcdefgh"] {
        let f = ClientFirstRequest::parse(MECHANISM, bad.as_bytes(), ServerChannel::None).unwrap_err();
        assert_eq!(f.value, V::InvalidUsernameEncoding, "{bad:?}");
        assert!(matches!(f.error, Error::InvalidUsernameEncoding(_)));
        assert_eq!(f.username, None);
    }
    let long = format!("n,,n={},r=abcdefgh", "a".repeat(256));
    assert_eq!(
        ClientFirstRequest::parse(MECHANISM, long.as_bytes(), ServerChannel::None).unwrap_err().value,
        V::InvalidUsernameEncoding
    );
    for bad in ["n,,n=a=2c,r=abcdefgh", "n,,n=a=b,r=abcdefgh", "n,,n=,r=abcdefgh", "n,,n=a\0,r=abcdefgh"] {
        let f = ClientFirstRequest::parse(MECHANISM, bad.as_bytes(), ServerChannel::None).unwrap_err();
        assert_eq!(f.value, V::InvalidUsernameEncoding, "{bad:?}");
    }
    assert!(
        SaslClient::new(
            "bell\u{7}",
            &Password::new("x"),
            ClientChannel::Unsupported,
            &ClientConfig::default(),
            &mut rng(1)
        )
        .is_err()
    );
}

#[test]
fn passwords_are_saslprep_prepared() {
    let salt = b"0123456789abcdef";
    // (what the client types, what the record was made from)
    for (typed, stored) in [
        ("I\u{00AD}X", "IX"),  // RFC 4013 section 3: the soft hyphen maps to nothing
        ("a\u{00A0}b", "a b"), // U+00A0 NO-BREAK SPACE maps to a space
        ("\u{2168}", "IX"),    // U+2168 ROMAN NUMERAL NINE normalises (NFKC) to "IX"
        ("IX", "I\u{00AD}X"),  // and the plain password against the prepared one
    ] {
        let auth = exchange(
            client("u", typed, ClientChannel::Unsupported),
            Some(record("u", stored, salt, 4096)),
            ServerChannel::None,
        );
        assert!(auth.is_ok(), "{typed:?} against a record from {stored:?}");
    }
}

#[test]
fn passwords_that_fail_saslprep_use_raw_bytes_on_both_sides() {
    let salt = b"0123456789abcdef";
    for pw in ["bell\u{0007}", "\u{0627}1", "x\u{e000}y", "tab\there"] {
        assert!(stringprep::saslprep(pw).is_err(), "{pw:?}");
        let rec = record("u", pw, salt, 4096);
        // The record is exactly PBKDF2 over the raw bytes (PostgreSQL's rule).
        let raw = ClientKeys::rfc(&scram_dh::crypto::hi(pw.as_bytes(), salt, 4096)).record(
            "u",
            salt,
            4096,
            0,
            Labels::Rfc,
        );
        assert_eq!(rec, raw, "{pw:?}");
        assert!(
            exchange(client("u", pw, ClientChannel::Unsupported), Some(rec.clone()), ServerChannel::None)
                .is_ok()
        );
        refused(
            exchange(client("u", "bell", ClientChannel::Unsupported), Some(rec), ServerChannel::None),
            V::InvalidProof,
        );
    }
}

#[test]
fn in_band_rfc_record_with_unpreparable_password_logs_in_with_standard_scram() {
    // A registration over the native protocol, RFC labels, a password SASLprep refuses.
    let mut pair = Pair::new(3);
    let password = "caf\u{e9}\u{0007}";
    pair.register("alice", password, Group::X25519, Labels::Rfc).unwrap();
    let c = client("alice", password, ClientChannel::Unsupported);
    let (server_first, pending) = block_on(pair.engine.sasl_start(
        MECHANISM,
        c.client_first().as_bytes(),
        ServerChannel::None,
        &mut pair.server_rng,
    ))
    .unwrap();
    let c = c.receive_server_first(server_first.as_bytes()).unwrap();
    let (server_final, auth) = pending.receive_final(c.client_final().as_bytes()).unwrap();
    c.receive_server_final(server_final.as_bytes()).unwrap();
    assert_eq!(auth.username(), "alice");
    // The native login with the password still works too.
    pair.login("alice", scram_dh::ClientSecret::Password(Password::new(password)), None).unwrap();
}

// ---------------------------------------------------------------------------
// Failures that must all look like a wrong password
// ---------------------------------------------------------------------------

#[test]
fn wrong_password_is_invalid_proof() {
    let f = refused(
        exchange(
            client("user", "pencil2", ClientChannel::Unsupported),
            Some(rfc_record()),
            ServerChannel::None,
        ),
        V::InvalidProof,
    );
    assert!(matches!(f.error, Error::AuthenticationFailed));
    assert!(f.is_failed_proof());
    assert_eq!(f.username.as_deref(), Some("user"));
}

#[test]
fn unknown_user_is_invalid_proof_with_a_real_looking_server_first() {
    let engine =
        ServerEngine::new(config(), MemoryCredentialStore::default(), MemorySessionStore::default()).unwrap();
    let real = record("alice", "pw", &[5u8; 32], 8192);
    block_on(engine.credentials().insert(&real)).unwrap();
    block_on(engine.refresh_mock_profile()).unwrap();
    let mut srng = rng(11);
    let mut shape = |user: &str, password: &str| {
        let c = client(user, password, ClientChannel::Unsupported);
        let (sf, pending) = block_on(engine.sasl_start(
            MECHANISM,
            c.client_first().as_bytes(),
            ServerChannel::None,
            &mut srng,
        ))
        .unwrap();
        let parsed = ServerFirst::parse(&sf).unwrap();
        let c = c.receive_server_first(sf.as_bytes()).unwrap();
        let result = pending.receive_final(c.client_final().as_bytes());
        (
            parsed.nonce.len(),
            parsed.salt.len(),
            parsed.iterations,
            parsed.extensions.len(),
            parsed.salt,
            result,
        )
    };
    let (n1, s1, i1, e1, _, ok) = shape("alice", "pw");
    assert!(ok.is_ok());
    let (n2, s2, i2, e2, salt_a, bad) = shape("mallory", "pw");
    assert_eq!((n1, s1, i1, e1), (n2, s2, i2, e2), "same server-first shape");
    let f = bad.unwrap_err();
    assert_eq!(f.value, V::InvalidProof);
    assert!(matches!(f.error, Error::AuthenticationFailed));
    assert_eq!(f.username.as_deref(), Some("mallory"));
    // The mock salt is stable for a name (no enumeration by asking twice).
    let (.., salt_b, _) = shape("mallory", "other");
    assert_eq!(salt_a, salt_b);
}

#[test]
fn random_labels_record_is_invalid_proof() {
    let salt = [3u8; 32];
    let salted = scram_dh::keys::salted_password(&Password::new("pw"), &salt, 4096).unwrap();
    let random = ClientKeys::generate(&mut rng(5), &salted, Labels::Random).record(
        "bob",
        &salt,
        4096,
        0,
        Labels::Random,
    );
    let c = client("bob", "pw", ClientChannel::Unsupported);
    let (sf, _) = pending(&c, Some(random.clone()), ServerChannel::None);
    // Its own salt and ic are shown, as for any real record.
    let parsed = ServerFirst::parse(&sf).unwrap();
    assert_eq!((parsed.salt.as_slice(), parsed.iterations), (&salt[..], 4096));
    let f = refused(exchange(c, Some(random), ServerChannel::None), V::InvalidProof);
    assert!(matches!(f.error, Error::RandomLabelsRecord));
    assert!(f.error.to_string().contains("random labels"));
    assert!(f.is_failed_proof());
}

#[test]
fn tampered_or_malformed_client_final_is_refused() {
    let c = client("user", "pencil", ClientChannel::Unsupported);
    let (sf, p) = pending(&c, Some(rfc_record()), ServerChannel::None);
    let good = final_of(c, &sf).client_final();
    let parsed = ClientFinal::parse(&good).unwrap();
    let mut other_nonce = parsed.clone();
    other_nonce.nonce.push('x');
    let mut cut_nonce = parsed.clone();
    cut_nonce.nonce.pop();
    let short_proof = good.replace(&STANDARD.encode(parsed.proof), &STANDARD.encode(&parsed.proof[..31]));
    let long_proof = good
        .replace(&STANDARD.encode(parsed.proof), &STANDARD.encode([parsed.proof.as_slice(), &[0]].concat()));
    let mut flipped = parsed.clone();
    flipped.proof[0] ^= 1;
    let with_ext = {
        let mut m = parsed.clone();
        m.extensions.push(Extension { name: 'x', value: "1".into() });
        m.encode()
    };
    let cases: Vec<(String, V)> = vec![
        (other_nonce.encode(), V::OtherError),
        (cut_nonce.encode(), V::OtherError),
        (short_proof, V::InvalidEncoding),
        (long_proof, V::InvalidEncoding),
        (flipped.encode(), V::InvalidProof),
        // An extension changes AuthMessage: the proof no longer matches.
        (with_ext, V::InvalidProof),
        (good.replace(",p=", ",m=x,p="), V::ExtensionsNotSupported),
        (good.replace("c=biws", "c=eSws"), V::ChannelBindingsDontMatch),
        (good.replace("c=biws", "c=cD10bHMtZXhwb3J0ZXIsLA=="), V::ChannelBindingsDontMatch),
        (good.replace("c=biws", "c="), V::ChannelBindingsDontMatch),
        (good.replace("c=biws,", ""), V::InvalidEncoding),
        (format!("{good} "), V::InvalidEncoding),
        (good.clone() + ",x=1", V::InvalidEncoding),
        (String::new(), V::InvalidEncoding),
    ];
    drop(p);
    for (msg, want) in cases {
        // The same seeds give the same server-first, so `good` stays valid for each.
        let (_, p) = pending(
            &client("user", "pencil", ClientChannel::Unsupported),
            Some(rfc_record()),
            ServerChannel::None,
        );
        let f = p.receive_final(msg.as_bytes()).unwrap_err();
        assert_eq!(f.value, want, "{msg:?}: {f:?}");
        assert_eq!(f.username.as_deref(), Some("user"));
    }
    let (_, p) = pending(
        &client("user", "pencil", ClientChannel::Unsupported),
        Some(rfc_record()),
        ServerChannel::None,
    );
    let f = p.receive_final(b"c=biws,r=\xff,p=x").unwrap_err();
    assert_eq!(f.value, V::InvalidEncoding);
}

#[test]
fn genuine_client_final_after_tamper_cases_still_works() {
    let c = client("user", "pencil", ClientChannel::Unsupported);
    let (sf, p) = pending(&c, Some(rfc_record()), ServerChannel::None);
    let c = final_of(c, &sf);
    let (v, _) = p.receive_final(c.client_final().as_bytes()).unwrap();
    c.receive_server_final(v.as_bytes()).unwrap();
}

// ---------------------------------------------------------------------------
// Mandatory extensions (m=) in each message
// ---------------------------------------------------------------------------

#[test]
fn mandatory_extensions_are_refused_in_every_message() {
    // client-first, read by the server
    for first in ["n,,m=ext,n=user,r=abcdefgh", "n,,n=user,r=abcdefgh,m=ext"] {
        let f = ClientFirstRequest::parse(MECHANISM, first.as_bytes(), ServerChannel::None).unwrap_err();
        assert_eq!(f.value, V::ExtensionsNotSupported, "{first}");
        assert!(matches!(f.error, Error::ExtensionsNotSupported));
    }
    // server-first, read by the client
    let c = SaslClient::with_nonce(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        RFC_CLIENT_NONCE,
    )
    .unwrap();
    let err = c.receive_server_first(format!("m=ext,{RFC_SERVER_FIRST}").as_bytes()).unwrap_err();
    assert!(matches!(err, Error::ExtensionsNotSupported), "{err:?}");
    let c = SaslClient::with_nonce(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        RFC_CLIENT_NONCE,
    )
    .unwrap();
    let err = c.receive_server_first(format!("{RFC_SERVER_FIRST},m=ext").as_bytes()).unwrap_err();
    assert!(matches!(err, Error::ExtensionsNotSupported), "{err:?}");
    // client-final, read by the server
    let (_, p) = ClientFirstRequest::parse(MECHANISM, RFC_CLIENT_FIRST.as_bytes(), ServerChannel::None)
        .unwrap()
        .continue_with_nonce(Some(rfc_record()), RFC_SERVER_NONCE, &config(), &MockProfile::new())
        .unwrap();
    let tampered = RFC_CLIENT_FINAL.replace(",p=", ",m=ext,p=");
    assert_eq!(p.receive_final(tampered.as_bytes()).unwrap_err().value, V::ExtensionsNotSupported);
    // server-final, read by the client
    for last in [format!("{RFC_SERVER_FINAL},m=ext"), "m=ext".to_owned()] {
        let c = SaslClient::with_nonce(
            "user",
            &Password::new("pencil"),
            ClientChannel::Unsupported,
            &ClientConfig::default(),
            RFC_CLIENT_NONCE,
        )
        .unwrap();
        let c = c.receive_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert!(matches!(c.receive_server_final(last.as_bytes()), Err(Error::ExtensionsNotSupported)));
    }
}

#[test]
fn optional_extensions_are_kept_in_auth_message() {
    // A client-first with an unknown extension: the server accepts it and signs
    // over the bytes as received, so a client that computed the same AuthMessage
    // verifies the server.
    let c = client("user", "pencil", ClientChannel::Unsupported);
    let first = format!("{},x=future", c.client_first());
    let r = ClientFirstRequest::parse(MECHANISM, first.as_bytes(), ServerChannel::None).unwrap();
    let (sf, p) = r.continue_with(Some(rfc_record()), &mut rng(9), &config(), &MockProfile::new()).unwrap();
    let c_final = final_of(c, &sf).client_final();
    // Our client did not send the extension: its AuthMessage differs, the proof fails.
    assert_eq!(p.receive_final(c_final.as_bytes()).unwrap_err().value, V::InvalidProof);
}

// ---------------------------------------------------------------------------
// Channel binding (RFC 5802 section 6, RFC 9266)
// ---------------------------------------------------------------------------

const EXPORTER: [u8; 32] = [0x42; 32];

#[test]
fn plus_with_matching_binding_succeeds() {
    let c = client("user", "pencil", ClientChannel::TlsExporter(EXPORTER));
    assert_eq!(c.mechanism(), MECHANISM_PLUS);
    assert!(c.client_first().starts_with("p=tls-exporter,,n=user,r="));
    let auth = exchange(c, Some(rfc_record()), ServerChannel::TlsExporter(&EXPORTER)).unwrap();
    assert!(auth.channel_bound());
    // c= is base64 of the gs2 header followed by the exporter value.
    let c = client("user", "pencil", ClientChannel::TlsExporter(EXPORTER));
    let (sf, _) = pending(&c, Some(rfc_record()), ServerChannel::TlsExporter(&EXPORTER));
    let cf = ClientFinal::parse(&final_of(c, &sf).client_final()).unwrap();
    assert_eq!(cf.channel_binding, [b"p=tls-exporter,,".as_slice(), &EXPORTER].concat());
}

#[test]
fn wrong_binding_is_channel_bindings_dont_match() {
    let c = client("user", "pencil", ClientChannel::TlsExporter([0x43; 32]));
    let f = refused(
        exchange(c, Some(rfc_record()), ServerChannel::TlsExporter(&EXPORTER)),
        V::ChannelBindingsDontMatch,
    );
    assert!(matches!(f.error, Error::ChannelBindingsDontMatch));
    assert!(f.is_failed_proof());
}

#[test]
fn flag_n_and_y_without_plus() {
    // n: fine on either connection.
    assert!(
        exchange(
            client("user", "pencil", ClientChannel::Unsupported),
            Some(rfc_record()),
            ServerChannel::None
        )
        .is_ok()
    );
    let auth = exchange(
        client("user", "pencil", ClientChannel::Unsupported),
        Some(rfc_record()),
        ServerChannel::TlsExporter(&EXPORTER),
    )
    .unwrap();
    assert!(!auth.channel_bound());
    // y: fine where the server offers no -PLUS (c= is "eSws", base64 of "y,,").
    let c = client("user", "pencil", ClientChannel::ServerLacksIt);
    assert!(c.client_first().starts_with("y,,"));
    assert_eq!(c.mechanism(), MECHANISM);
    assert!(exchange(c, Some(rfc_record()), ServerChannel::None).is_ok());
    // y where the server offers -PLUS: a downgrade.
    let c = client("user", "pencil", ClientChannel::ServerLacksIt);
    let f = start(&c, ServerChannel::TlsExporter(&EXPORTER)).unwrap_err();
    assert_eq!(f.value, V::ServerDoesSupportChannelBinding);
    assert!(matches!(f.error, Error::ChannelBindingDowngrade));
    assert_eq!(f.username.as_deref(), Some("user"));
}

#[test]
fn p_flag_refusals() {
    // p= on a connection without TLS.
    let c = client("user", "pencil", ClientChannel::TlsExporter(EXPORTER));
    let f = start(&c, ServerChannel::None).unwrap_err();
    assert_eq!(f.value, V::ChannelBindingNotSupported);
    assert!(matches!(f.error, Error::ChannelBindingNotSupported));
    // Another binding type.
    for first in ["p=tls-unique,,n=user,r=abcdefgh", "p=tls-server-end-point,,n=user,r=abcdefgh"] {
        let f = ClientFirstRequest::parse(
            MECHANISM_PLUS,
            first.as_bytes(),
            ServerChannel::TlsExporter(&EXPORTER),
        )
        .unwrap_err();
        assert_eq!(f.value, V::UnsupportedChannelBindingType, "{first}");
        assert!(matches!(f.error, Error::UnsupportedChannelBindingType(_)));
    }
    let f =
        ClientFirstRequest::parse(MECHANISM_PLUS, b"p=tls-unique,,n=user,r=abcdefgh", ServerChannel::None)
            .unwrap_err();
    assert_eq!(f.value, V::ChannelBindingNotSupported);
}

#[test]
fn mechanism_and_flag_must_agree() {
    let tls = ServerChannel::TlsExporter(&EXPORTER);
    for (mechanism, first, channel) in [
        (MECHANISM_PLUS, "n,,n=user,r=abcdefgh", tls),
        (MECHANISM_PLUS, "n,,n=user,r=abcdefgh", ServerChannel::None),
        (MECHANISM_PLUS, "y,,n=user,r=abcdefgh", ServerChannel::None),
        (MECHANISM, "p=tls-exporter,,n=user,r=abcdefgh", tls),
        ("SCRAM-SHA-1", "n,,n=user,r=abcdefgh", ServerChannel::None),
        ("scram-sha-256", "n,,n=user,r=abcdefgh", ServerChannel::None),
        ("", "n,,n=user,r=abcdefgh", ServerChannel::None),
    ] {
        let f = ClientFirstRequest::parse(mechanism, first.as_bytes(), channel).unwrap_err();
        assert_eq!(f.value, V::OtherError, "{mechanism} {first}");
    }
}

#[test]
fn authzid_must_be_the_username() {
    let ok =
        ClientFirstRequest::parse(MECHANISM, b"n,a=user,n=user,r=abcdefgh", ServerChannel::None).unwrap();
    assert_eq!(ok.username(), "user");
    // Equal after SASLprep.
    assert!(
        ClientFirstRequest::parse(MECHANISM, "n,a=I\u{AD}X,n=IX,r=abcdefgh".as_bytes(), ServerChannel::None)
            .is_ok()
    );
    let f = ClientFirstRequest::parse(MECHANISM, b"n,a=admin,n=user,r=abcdefgh", ServerChannel::None)
        .unwrap_err();
    assert_eq!(f.value, V::OtherError);
    assert_eq!(f.username.as_deref(), Some("user"));
    let f =
        ClientFirstRequest::parse(MECHANISM, b"n,a=x=41,n=user,r=abcdefgh", ServerChannel::None).unwrap_err();
    assert_eq!(f.value, V::InvalidUsernameEncoding);
    // The authzid is part of the gs2 header, so of c=: a full exchange still works.
    let request =
        ClientFirstRequest::parse(MECHANISM, b"n,a=user,n=user,r=abcdefgh", ServerChannel::None).unwrap();
    let (sf, p) =
        request.continue_with(Some(rfc_record()), &mut rng(1), &config(), &MockProfile::new()).unwrap();
    let sf = ServerFirst::parse(&sf).unwrap();
    let without = format!("c={},r={}", STANDARD.encode("n,a=user,"), sf.nonce);
    // A proof over the wrong c= is refused before the proof matters.
    let bogus = format!("c=biws,r={},p={}", sf.nonce, STANDARD.encode([0u8; 32]));
    assert_eq!(p.receive_final(bogus.as_bytes()).unwrap_err().value, V::ChannelBindingsDontMatch);
    assert!(without.starts_with("c=bixhPXVzZXIs"));
}

#[test]
fn client_first_shape_refusals() {
    let cases: &[(&[u8], V)] = &[
        (b"n,,n=user,r=abcdefg", V::InvalidEncoding),
        (b"n,,n=user,r=a b c d e f", V::InvalidEncoding),
        (b"n,,n=user", V::InvalidEncoding),
        (b"n,,r=abcdefgh,n=user", V::InvalidEncoding),
        (b"x,,n=user,r=abcdefgh", V::InvalidEncoding),
        (b"n,n=user,r=abcdefgh", V::InvalidEncoding),
        (b"n,,n=user,r=abcdefgh,", V::InvalidEncoding),
        (b"n,,n=us\xffer,r=abcdefgh", V::InvalidEncoding),
        (b"", V::InvalidEncoding),
    ];
    for (msg, want) in cases {
        let f = ClientFirstRequest::parse(MECHANISM, msg, ServerChannel::None).unwrap_err();
        assert_eq!(f.value, *want, "{:?}", String::from_utf8_lossy(msg));
    }
    let long_nonce = format!("n,,n=user,r={}", "a".repeat(513));
    assert_eq!(
        ClientFirstRequest::parse(MECHANISM, long_nonce.as_bytes(), ServerChannel::None).unwrap_err().value,
        V::InvalidEncoding
    );
    let max_nonce = format!("n,,n=user,r={}", "a".repeat(512));
    assert!(ClientFirstRequest::parse(MECHANISM, max_nonce.as_bytes(), ServerChannel::None).is_ok());
    let huge = format!("n,,n=user,r=abcdefgh,x={}", "a".repeat(16 * 1024));
    assert_eq!(
        ClientFirstRequest::parse(MECHANISM, huge.as_bytes(), ServerChannel::None).unwrap_err().value,
        V::InvalidEncoding
    );
}

// ---------------------------------------------------------------------------
// The client's checks
// ---------------------------------------------------------------------------

fn rfc_client(config: ClientConfig) -> SaslClient {
    SaslClient::with_nonce(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &config,
        RFC_CLIENT_NONCE,
    )
    .unwrap()
}

#[test]
fn client_refuses_bad_server_first() {
    let sf = |nonce: &str, salt: &str, ic: &str| format!("r={nonce},s={salt},i={ic}");
    let combined = format!("{RFC_CLIENT_NONCE}{RFC_SERVER_NONCE}");
    let cases = [
        (sf(&combined, RFC_SALT, "4095"), "ic"),
        (sf(&combined, RFC_SALT, "1"), "ic"),
        (sf(&combined, RFC_SALT, "10001"), "ic"),
        (sf(RFC_CLIENT_NONCE, RFC_SALT, "4096"), "nonce"),
        (sf(&format!("X{combined}"), RFC_SALT, "4096"), "nonce"),
        (sf(&combined[1..], RFC_SALT, "4096"), "nonce"),
        (sf(&combined, "", "4096"), "invalid"),
        (sf(&combined, &STANDARD.encode([0u8; 1025]), "4096"), "invalid"),
        (sf(&combined, "W22ZaJ0SNY7soEsUEjb6gQ=", "4096"), "invalid"),
        (sf(&combined, RFC_SALT, "04096"), "invalid"),
        (sf(&combined, RFC_SALT, "99999999999"), "invalid"),
        (format!("{}\n", sf(&combined, RFC_SALT, "4096")), "invalid"),
        ("e=".to_owned(), "invalid"),
        ("e=a,b".to_owned(), "invalid"),
    ];
    for (msg, kind) in cases {
        let err = rfc_client(ClientConfig { max_iterations: 10_000 })
            .receive_server_first(msg.as_bytes())
            .unwrap_err();
        let ok = match kind {
            "ic" => matches!(err, Error::IterationCount { min: 4096, max: 10_000, .. }),
            "nonce" => matches!(err, Error::NonceMismatch),
            _ => matches!(err, Error::InvalidMessage(_)),
        };
        assert!(ok, "{msg:?}: {err:?}");
    }
    // An error in place of server-first: the server refused the client-first.
    for value in ["channel-binding-not-supported", "invalid-encoding", "other-error"] {
        let err = rfc_client(ClientConfig::default())
            .receive_server_first(format!("e={value}").as_bytes())
            .unwrap_err();
        assert!(matches!(&err, Error::ScramRefused { value: v } if v == value), "{err:?}");
    }
    // The bounds themselves are accepted.
    assert!(
        rfc_client(ClientConfig { max_iterations: 4096 })
            .receive_server_first(RFC_SERVER_FIRST.as_bytes())
            .is_ok()
    );
    let one_byte_salt = sf(&combined, "AA==", "4096");
    assert!(rfc_client(ClientConfig::default()).receive_server_first(one_byte_salt.as_bytes()).is_ok());
    let big_salt = sf(&combined, &STANDARD.encode([0u8; 1024]), "4096");
    assert!(rfc_client(ClientConfig::default()).receive_server_first(big_salt.as_bytes()).is_ok());
    assert!(rfc_client(ClientConfig::default()).receive_server_first(b"\xff").is_err());
}

#[test]
fn client_refuses_bad_server_final() {
    let ready =
        || rfc_client(ClientConfig::default()).receive_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
    // A wrong signature: the server does not know the credential.
    let wrong = format!("v={}", STANDARD.encode([0u8; 32]));
    let err = ready().receive_server_final(wrong.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::ServerSignature));
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
    // e= values: kept, mapped to the closest code.
    for (value, code) in [
        ("invalid-proof", ErrorCode::AuthenticationFailed),
        ("unknown-user", ErrorCode::AuthenticationFailed),
        ("channel-bindings-dont-match", ErrorCode::AuthenticationFailed),
        ("invalid-encoding", ErrorCode::InvalidMessage),
        ("extensions-not-supported", ErrorCode::Unsupported),
        ("no-resources", ErrorCode::Busy),
        ("other-error", ErrorCode::ServerError),
        ("some-future-error", ErrorCode::ServerError),
    ] {
        let err = ready().receive_server_final(format!("e={value}").as_bytes()).unwrap_err();
        match &err {
            Error::ScramRefused { value: v } => assert_eq!(v, value),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.code(), code, "{value}");
    }
    // A long value is kept bounded.
    let long = format!("e={}", "x".repeat(10_000));
    match ready().receive_server_final(long.as_bytes()).unwrap_err() {
        Error::ScramRefused { value } => assert_eq!(value.len(), 256),
        other => panic!("{other:?}"),
    }
    for bad in ["", "e=", "v=", "v=AAAA", "x=1", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=\n"] {
        assert!(
            matches!(ready().receive_server_final(bad.as_bytes()), Err(Error::InvalidMessage(_))),
            "{bad:?}"
        );
    }
    // Extensions after v= are ignored.
    ready().receive_server_final(format!("{RFC_SERVER_FINAL},x=1").as_bytes()).unwrap();
}

#[test]
fn client_nonce_rules() {
    for bad in ["short", "has,comma", "has space!", &"a".repeat(513), "caf\u{e9}12345"] {
        assert!(
            SaslClient::with_nonce(
                "u",
                &Password::new("p"),
                ClientChannel::Unsupported,
                &ClientConfig::default(),
                bad
            )
            .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_output_has_no_secrets() {
    let c = client("user", "pencil", ClientChannel::TlsExporter(EXPORTER));
    let (sf, p) = pending(&c, Some(rfc_record()), ServerChannel::TlsExporter(&EXPORTER));
    let text = format!(
        "{c:?} {p:?} {:?} {:?}",
        ClientChannel::TlsExporter(EXPORTER),
        ServerChannel::TlsExporter(&EXPORTER)
    );
    let f = final_of(c, &sf);
    let text = format!("{text} {f:?}");
    assert!(!text.contains("pencil"), "{text}");
    assert!(!text.contains("66, 66"), "{text}");
    assert!(!text.contains("stored") && !text.contains("server_key"), "{text}");
}

// ---------------------------------------------------------------------------
// The engine: sasl_start, sasl_park, sasl_resume
// ---------------------------------------------------------------------------

type Engine = ServerEngine<MemoryCredentialStore, MemorySessionStore>;

fn engine() -> Engine {
    let e = ServerEngine::new(config(), MemoryCredentialStore::default(), MemorySessionStore::new(10, 3))
        .unwrap();
    block_on(e.credentials().insert(&rfc_record())).unwrap();
    e
}

#[test]
fn engine_http_style_exchange_with_park_and_resume() {
    let e = engine();
    let mut srng = rng(21);
    let c = client("user", "pencil", ClientChannel::Unsupported);
    let (sf, p) =
        block_on(e.sasl_start(MECHANISM, c.client_first().as_bytes(), ServerChannel::None, &mut srng))
            .unwrap();
    let sid = block_on(e.sasl_park(p, "198.51.100.1", NOW, &mut srng)).unwrap();
    assert_eq!(sid.len(), 64);
    assert!(sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{sid}");
    assert!(Nonce::parse(&sid).is_ok());
    assert_eq!(e.sessions().len(), 1);
    let c = final_of(c, &sf);
    let p = block_on(e.sasl_resume(&sid, NOW + 1)).unwrap();
    assert_eq!(p.username(), "user");
    let (v, auth) = p.receive_final(c.client_final().as_bytes()).unwrap();
    c.receive_server_final(v.as_bytes()).unwrap();
    assert_eq!(auth.username(), "user");
    // Single use.
    let f = block_on(e.sasl_resume(&sid, NOW + 2)).unwrap_err();
    assert_eq!(f.value, V::OtherError);
    assert!(matches!(f.error, Error::UnknownSession));
    assert!(e.sessions().is_empty());
}

#[test]
fn engine_sasl_start_failures() {
    let e = engine();
    let mut srng = rng(22);
    let f = block_on(e.sasl_start(MECHANISM, b"n,,m=x,n=user,r=abcdefgh", ServerChannel::None, &mut srng))
        .unwrap_err();
    assert_eq!(f.value, V::ExtensionsNotSupported);
    // Unknown users go through, and fail at the end.
    let c = client("nobody", "pencil", ClientChannel::Unsupported);
    let (sf, p) =
        block_on(e.sasl_start(MECHANISM, c.client_first().as_bytes(), ServerChannel::None, &mut srng))
            .unwrap();
    let c = final_of(c, &sf);
    assert_eq!(p.receive_final(c.client_final().as_bytes()).unwrap_err().value, V::InvalidProof);
}

#[test]
fn engine_resume_refuses_unknown_expired_and_moved_blobs() {
    let e = engine();
    let mut srng = rng(23);
    let park = |e: &Engine, srng: &mut ChaCha20Rng, now: u64| {
        let c = client("user", "pencil", ClientChannel::Unsupported);
        let (_, p) =
            block_on(e.sasl_start(MECHANISM, c.client_first().as_bytes(), ServerChannel::None, srng))
                .unwrap();
        block_on(e.sasl_park(p, "peer", now, srng)).unwrap()
    };
    let unknown = |r: Result<PendingSasl, SaslFailure>| {
        let f = r.unwrap_err();
        assert_eq!(f.value, V::OtherError);
        assert!(matches!(f.error, Error::UnknownSession), "{f:?}");
    };
    // Malformed and never-issued sids.
    for sid in ["", "xyz", &"A".repeat(64), &"0".repeat(64), &"0".repeat(65)] {
        unknown(block_on(e.sasl_resume(sid, NOW)));
    }
    // Expired (TTL 10 s).
    let sid = park(&e, &mut srng, NOW);
    unknown(block_on(e.sasl_resume(&sid, NOW + 10_000)));
    // A blob moved from another sid does not open (the session key is the AAD).
    let a = park(&e, &mut srng, NOW);
    let b = park(&e, &mut srng, NOW);
    let key = |sid: &str| SessionKey::new(Phase::Sasl, &Nonce::parse(sid).unwrap());
    let blob_a = block_on(e.sessions().take(&key(&a), NOW)).unwrap().unwrap();
    block_on(e.sessions().take(&key(&b), NOW)).unwrap().unwrap();
    block_on(e.sessions().insert(&key(&b), "peer", blob_a.clone(), NOW, 10_000)).unwrap();
    unknown(block_on(e.sasl_resume(&b, NOW)));
    // A flipped bit does not open either.
    let mut flipped = blob_a.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    block_on(e.sessions().insert(&key(&a), "peer", flipped, NOW, 10_000)).unwrap();
    unknown(block_on(e.sasl_resume(&a, NOW)));
    // The genuine blob put back opens once.
    block_on(e.sessions().insert(&key(&a), "peer", blob_a, NOW, 10_000)).unwrap();
    assert!(block_on(e.sasl_resume(&a, NOW)).is_ok());
    unknown(block_on(e.sasl_resume(&a, NOW)));
    // A parked exchange is not an authentication session of the native protocol.
    let c = park(&e, &mut srng, NOW);
    assert!(
        block_on(e.sessions().take(&SessionKey::new(Phase::Authentication, &Nonce::parse(&c).unwrap()), NOW))
            .unwrap()
            .is_none()
    );
}

#[test]
fn engine_park_is_bounded() {
    let e = engine();
    let mut srng = rng(24);
    for i in 0..4 {
        let c = client("user", "pencil", ClientChannel::Unsupported);
        let (_, p) =
            block_on(e.sasl_start(MECHANISM, c.client_first().as_bytes(), ServerChannel::None, &mut srng))
                .unwrap();
        let r = block_on(e.sasl_park(p, "one-peer", NOW, &mut srng));
        if i < 3 {
            assert!(r.is_ok());
        } else {
            let f = r.unwrap_err();
            assert_eq!(f.value, V::NoResources, "per-peer cap");
            assert_eq!(f.username.as_deref(), Some("user"));
        }
    }
}

// ---------------------------------------------------------------------------
// ServerErrorValue and SaslFailure
// ---------------------------------------------------------------------------

#[test]
fn server_error_values_round_trip() {
    for v in V::ALL {
        assert_eq!(V::parse(v.as_str()), Some(v));
        assert_eq!(ServerFinal::parse(&format!("e={v}")).unwrap(), ServerFinal::Error(v.as_str().to_owned()));
    }
    assert_eq!(V::parse("invalid-proof "), None);
    let f = SaslFailure::new(Error::ChannelBindingsDontMatch, None);
    assert!(f.is_failed_proof());
    assert!(!SaslFailure::new(Error::NonceMismatch, None).is_failed_proof());
    assert_eq!(SaslFailure::new(Error::Busy, None).server_final(), "e=no-resources");
}

// ---------------------------------------------------------------------------
// Codec properties
// ---------------------------------------------------------------------------

fn nonce() -> impl Strategy<Value = String> {
    "[!-+\\--~]{1,40}"
}

fn name() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,20}"
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    proptest::collection::vec(
        ("[bdfghjklotuwxyzA-Z]", "[^\u{0},]{1,20}")
            .prop_map(|(n, value)| Extension { name: n.chars().next().unwrap(), value }),
        0..3,
    )
}

fn gs2() -> impl Strategy<Value = Gs2Header> {
    let cb = prop_oneof![Just(Gs2Cb::No), Just(Gs2Cb::Yes), "[A-Za-z0-9.-]{1,20}".prop_map(Gs2Cb::Bound)];
    (cb, proptest::option::of(name())).prop_map(|(cb, authzid)| Gs2Header { cb, authzid })
}

proptest! {
    #[test]
    fn client_first_round_trips(gs2 in gs2(), username in name(), nonce in nonce(), extensions in extensions()) {
        let m = ClientFirst { gs2, username, nonce, extensions };
        let text = m.encode();
        let back = ClientFirst::parse(&text).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(), text);
    }

    #[test]
    fn server_first_round_trips(nonce in nonce(), salt in proptest::collection::vec(any::<u8>(), 0..80), iterations in 1u32.., extensions in extensions()) {
        let m = ServerFirst { nonce, salt, iterations, extensions };
        let text = m.encode();
        let back = ServerFirst::parse(&text).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(), text);
    }

    #[test]
    fn client_final_round_trips(channel_binding in proptest::collection::vec(any::<u8>(), 0..80), nonce in nonce(), extensions in extensions(), proof in any::<[u8; 32]>()) {
        let m = ClientFinal { channel_binding, nonce, extensions, proof };
        let text = m.encode();
        let back = ClientFinal::parse(&text).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(), text);
    }

    #[test]
    fn server_final_round_trips(m in prop_oneof![any::<[u8; 32]>().prop_map(ServerFinal::Verifier), "[^\u{0},]{1,40}".prop_map(ServerFinal::Error)]) {
        let text = m.encode();
        prop_assert_eq!(ServerFinal::parse(&text).unwrap(), m);
    }

    #[test]
    fn what_parses_re_encodes_byte_for_byte(s in "[a-z=,0-9A-Z+/!~-]{0,80}") {
        for prefix in ["", "n,,", "c=biws,", "r=abc,"] {
            let s = format!("{prefix}{s}");
            if let Ok(m) = ClientFirst::parse(&s) { prop_assert_eq!(m.encode(), s.clone()); }
            if let Ok(m) = ServerFirst::parse(&s) { prop_assert_eq!(m.encode(), s.clone()); }
            if let Ok(m) = ClientFinal::parse(&s) { prop_assert_eq!(m.encode(), s.clone()); }
            if let Ok(m) = Gs2Header::parse(&s) { prop_assert_eq!(m.encode(), s.clone()); }
        }
    }

    #[test]
    fn no_panic_on_arbitrary_input(s in ".{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = ClientFirst::parse(&s);
        let _ = ServerFirst::parse(&s);
        let _ = ClientFinal::parse(&s);
        let _ = ServerFinal::parse(&s);
        let _ = Gs2Header::parse(&s);
        for input in [s.as_bytes(), &bytes] {
            let _ = ClientFirstRequest::parse(MECHANISM, input, ServerChannel::None);
            let _ = ClientFirstRequest::parse(MECHANISM_PLUS, input, ServerChannel::TlsExporter(&EXPORTER));
            let _ = rfc_client(ClientConfig::default()).receive_server_first(input);
            let (_, p) = ClientFirstRequest::parse(MECHANISM, RFC_CLIENT_FIRST.as_bytes(), ServerChannel::None)
                .unwrap()
                .continue_with_nonce(None, RFC_SERVER_NONCE, &config(), &MockProfile::new())
                .unwrap();
            prop_assert!(p.receive_final(input).is_err());
        }
    }
}

#[test]
fn verifier_from_an_independent_implementation_logs_in() {
    // Computed with Python's hashlib/hmac (PBKDF2-HMAC-SHA-256, "Client Key" /
    // "Server Key"), salt bytes 0..32, ic 8192, password "correct horse"; also a
    // seed of the sasl_text fuzz corpus.
    let v = "SCRAM-SHA-256$8192:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=$\
             XPUgVyg+42yh9AIS9pjw7xm8vdnEBsO+D+wKJnUKzbA=:a06c8SwK93IFAQ7/IrLgNcYlOQ4iXINCv9iZAqHmqAY=";
    let rec = Record::from_postgres_verifier("carol", v, 0).unwrap();
    assert_eq!(rec, record("carol", "correct horse", &(0u8..32).collect::<Vec<_>>(), 8192));
    assert!(
        exchange(
            client("carol", "correct horse", ClientChannel::Unsupported),
            Some(rec.clone()),
            ServerChannel::None
        )
        .is_ok()
    );
    refused(
        exchange(
            client("carol", "correct horse!", ClientChannel::Unsupported),
            Some(rec),
            ServerChannel::None,
        ),
        V::InvalidProof,
    );
}

// ---------------------------------------------------------------------------
// Interoperability with GNU SASL (an independent implementation), when installed
// ---------------------------------------------------------------------------

mod gsasl {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

    /// A `gsasl` process speaking one base64 token per line (NOTES.md, peers), under
    /// coreutils `timeout` so a hang cannot stall the suite. `None` when either
    /// program is missing: the caller skips.
    pub struct Peer {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Peer {
        pub fn spawn(args: &[&str]) -> Option<Self> {
            let ok = Command::new("gsasl")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            // Never a silent skip: scripts/peers.sh installs gsasl for the test suite.
            assert!(ok, "gsasl is not installed: run scripts/peers.sh (the README test command does)");
            let mut child = Command::new("timeout")
                .arg("20")
                .arg("gsasl")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let stdin = Some(child.stdin.take()?);
            let stdout = BufReader::new(child.stdout.take()?);
            Some(Self { child, stdin, stdout })
        }

        pub fn line(&mut self) -> String {
            let mut s = String::new();
            self.stdout.read_line(&mut s).unwrap();
            s.trim_end_matches('\n').to_owned()
        }

        pub fn send(&mut self, line: &str) {
            let stdin = self.stdin.as_mut().unwrap();
            stdin.write_all(line.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
            stdin.flush().unwrap();
        }

        pub fn finish(mut self) -> bool {
            drop(self.stdin.take());
            self.child.wait().unwrap().success()
        }
    }
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn unb64(s: &str) -> String {
    String::from_utf8(STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn interop_gsasl_client_against_our_server() {
    for (password, name, succeeds) in
        [("pencil", "user", true), ("pencil2", "user", false), ("pencil", "a,b=c", true)]
    {
        let Some(mut peer) = gsasl::Peer::spawn(&[
            "--client", "--quiet", "--no-cb", "-m", MECHANISM, "-a", name, "-p", password,
        ]) else {
            return;
        };
        assert_eq!(peer.line(), MECHANISM);
        let client_first = unb64(&peer.line());
        let request =
            ClientFirstRequest::parse(MECHANISM, client_first.as_bytes(), ServerChannel::None).unwrap();
        assert_eq!(request.username(), name);
        let rec = record(name, "pencil", &[4u8; 32], 4096);
        let (server_first, pending) =
            request.continue_with(Some(rec), &mut rng(31), &config(), &MockProfile::new()).unwrap();
        peer.send(&b64(&server_first));
        let client_final = unb64(&peer.line());
        match pending.receive_final(client_final.as_bytes()) {
            Ok((server_final, auth)) => {
                assert!(succeeds, "{password}");
                assert_eq!(auth.username(), name);
                peer.send(&b64(&server_final));
                assert_eq!(peer.line(), "");
                peer.send("");
                assert!(peer.finish(), "gsasl verified our server signature");
            }
            Err(f) => {
                assert!(!succeeds, "{f:?}");
                assert_eq!(f.value, V::InvalidProof);
                peer.send(&b64(&f.server_final()));
                assert!(!peer.finish(), "gsasl must not accept e=invalid-proof");
            }
        }
    }
}

#[test]
fn interop_our_client_against_gsasl_server() {
    for (password, succeeds) in [("pencil", true), ("wrong", false)] {
        let Some(mut peer) = gsasl::Peer::spawn(&["--server", "--quiet", "-p", "pencil"]) else { return };
        peer.send(MECHANISM);
        assert_eq!(peer.line(), MECHANISM);
        assert_eq!(peer.line(), "", "empty initial challenge");
        let c = client("user", password, ClientChannel::Unsupported);
        peer.send(&b64(&c.client_first()));
        let server_first = unb64(&peer.line());
        let c = c.receive_server_first(server_first.as_bytes()).unwrap();
        peer.send(&b64(&c.client_final()));
        let reply = peer.line();
        if succeeds {
            c.receive_server_final(unb64(&reply).as_bytes()).unwrap();
        } else {
            // gsasl answers a wrong proof by ending the exchange without a v= we accept.
            let decoded =
                STANDARD.decode(&reply).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
            eprintln!("gsasl's answer to a wrong proof: {reply:?} ({decoded:?})");
            assert!(c.receive_server_final(decoded.as_bytes()).is_err(), "{reply:?}");
        }
        drop(peer);
    }
}
