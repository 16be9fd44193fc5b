//! End-to-end protocol tests on the deterministic in-memory pair (no sockets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scram_dh::auth::client::AuthClient;
use scram_dh::message::{Base64, ClientMessage, RegistrationPairing, ServerMessage};
use scram_dh::pair::Pair;
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::{
    ClientConfig, ClientSecret, CredentialStore, Error, ErrorCode, Group, HostKey, Labels, Outcome, Password,
};

fn code(out: &Outcome) -> Option<ErrorCode> {
    match out.reply() {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    }
}

fn reg_start(
    pair: &mut Pair,
    user: &str,
    group: Group,
    labels: Labels,
    check: HostKeyCheck,
) -> scram_dh::Step<ClientMessage, RegistrationClient> {
    RegistrationClient::start(
        &mut pair.client_rng,
        user,
        Password::new("pw"),
        group,
        labels,
        check,
        pair.client_config,
    )
    .unwrap()
}

#[test]
fn every_group_both_labels_with_and_without_channel() {
    for (i, group) in Group::ALL.into_iter().enumerate() {
        for labels in [Labels::Random, Labels::Rfc] {
            let mut pair = Pair::new(100 + i as u64);
            let user = format!("user-{}-{}", group.name(), labels.as_str());
            let cred = pair.register(&user, "correct horse battery", group, labels).unwrap();
            assert_eq!(cred.labels, labels);
            let record = scram_dh::pair::block_on(pair.engine.credentials().read(&user)).unwrap().unwrap();
            assert_eq!(
                record.stored_key,
                scram_dh::ClientKeys {
                    client_key: cred.client_key.clone(),
                    server_key: cred.server_key.clone()
                }
                .stored_key()
            );

            let (c, s) = pair.login(&user, cred.secret(), None).unwrap();
            assert_eq!(c.username(), user);
            assert_eq!(s.username(), user);
            assert!(c.session_keys().is_none() && s.session_keys().is_none());

            let (c, s) = pair.login(&user, cred.secret(), Some(group)).unwrap();
            let (ck, sk) = (c.session_keys().unwrap(), s.session_keys().unwrap());
            assert_eq!(ck, sk, "{group} {labels}: session keys agree");
            assert_ne!(ck.c2s, ck.s2c);

            // RFC labels: a standard client that knows only the password logs in too.
            let by_password =
                pair.login(&user, ClientSecret::Password(Password::new("correct horse battery")), None);
            assert_eq!(by_password.is_ok(), labels == Labels::Rfc, "{group} {labels}");
        }
    }
}

#[test]
fn channel_keys_differ_per_login() {
    let mut pair = Pair::new(7);
    let cred = pair.register("k", "pw", Group::X25519, Labels::Random).unwrap();
    let (a, _) = pair.login("k", cred.secret(), Some(Group::X25519)).unwrap();
    let (b, _) = pair.login("k", cred.secret(), Some(Group::X25519)).unwrap();
    assert_ne!(a.session_keys(), b.session_keys());
}

#[test]
fn transcript_is_deterministic_and_password_free() {
    let run = |seed| {
        let mut pair = Pair::new(seed);
        let cred = pair.register("det", "canary-pw-9f3b", Group::Modp2048, Labels::Random).unwrap();
        pair.login("det", cred.secret(), Some(Group::Modp2048)).unwrap();
        pair.transcript
    };
    let t = run(5);
    assert_eq!(t, run(5), "same seed, same bytes");
    assert_ne!(t, run(6));
    let all: String = t.iter().map(|(_, m)| m.as_str()).collect();
    assert!(!all.contains("canary-pw-9f3b"));
}

#[test]
fn wrong_host_key_refused_when_pinned() {
    let mut pair = Pair::new(11);
    let other = HostKey::from_seed(&[1; 32]).fingerprint();
    let step = reg_start(&mut pair, "alice", Group::X25519, Labels::Random, HostKeyCheck::Pinned(other));
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    assert!(matches!(step.state.receive_pairing(r2), Err(Error::HostKeyMismatch { .. })));

    // The right pin passes.
    let right = pair.engine.config().host_key.fingerprint();
    let step = reg_start(&mut pair, "bob", Group::X25519, Labels::Random, HostKeyCheck::Pinned(right));
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    assert_eq!(step.state.host_key_fingerprint(), right);
}

#[test]
fn man_in_the_middle_signature_rejected() {
    let mut pair = Pair::new(12);
    // A MITM swaps the server's DH key for its own but cannot re-sign with the host key.
    let step = reg_start(&mut pair, "alice", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let mut r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let mitm = Group::X25519.generate(&mut pair.client_rng);
    r2.public_key = Base64(mitm.public_key().as_bytes().to_vec());
    assert!(matches!(step.state.receive_pairing(r2), Err(Error::BadHostSignature)));

    // A MITM that signs with its own key is caught by the pin.
    let pin = pair.engine.config().host_key.fingerprint();
    let step = reg_start(&mut pair, "alice2", Group::X25519, Labels::Random, HostKeyCheck::Pinned(pin));
    let mut r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let evil = HostKey::from_seed(&[66; 32]);
    r2.host_key = Base64(evil.public_key().to_vec());
    assert!(matches!(step.state.receive_pairing(r2), Err(Error::HostKeyMismatch { .. })));
}

#[test]
fn tampered_secret_key_rejected_and_nothing_stored() {
    let mut pair = Pair::new(13);
    let step = reg_start(&mut pair, "tamper", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let ClientMessage::RegistrationSendPassword(mut r3) = step.message else { panic!() };
    r3.secret_key.0[5] ^= 0x40;
    let out = pair.send(&ClientMessage::RegistrationSendPassword(r3));
    assert_eq!(code(&out), Some(ErrorCode::InvalidMessage));
    assert!(scram_dh::pair::block_on(pair.engine.credentials().read("tamper")).unwrap().is_none());
}

#[test]
fn tampered_labels_rejected_by_client() {
    let mut pair = Pair::new(14);
    let step = reg_start(&mut pair, "tamper2", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let mut r4 = pair.exchange(&step.message).unwrap().into_registration_keys().unwrap();
    r4.secret_server_key.0[0] ^= 1;
    assert!(matches!(step.state.finish(r4), Err(Error::Decryption("secret_server_key"))));
}

#[test]
fn rfc_labels_must_be_rfc_strings() {
    let mut pair = Pair::new(15);
    let step = reg_start(&mut pair, "r", Group::X25519, Labels::Rfc, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let mut r4 = pair.exchange(&step.message).unwrap().into_registration_keys().unwrap();
    // Swap the two encrypted labels: each still decrypts? No: n(0)/n(1) bind position.
    std::mem::swap(&mut r4.secret_client_key, &mut r4.secret_server_key);
    assert!(matches!(step.state.finish(r4), Err(Error::Decryption(_))));
}

#[test]
fn registration_nonce_altered_swapped_and_out_of_order() {
    let mut pair = Pair::new(16);
    // Altered server half: the session is found, the nonce mismatches, the session is gone.
    let step = reg_start(&mut pair, "n1", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let ClientMessage::RegistrationSendPassword(r3) = step.message else { panic!() };
    let mut altered = r3.clone();
    let last = if altered.nonce.ends_with('0') { "1" } else { "0" };
    altered.nonce.replace_range(128.., last);
    let out = pair.send(&ClientMessage::RegistrationSendPassword(altered));
    assert_eq!(code(&out), Some(ErrorCode::NonceMismatch));
    let out = pair.send(&ClientMessage::RegistrationSendPassword(r3.clone()));
    assert_eq!(code(&out), Some(ErrorCode::UnknownSession), "single use even after a failure");

    // Swapped halves.
    let step = reg_start(&mut pair, "n2", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let ClientMessage::RegistrationSendPassword(mut r3) = step.message else { panic!() };
    let (c, s) = r3.nonce.split_once('-').unwrap();
    r3.nonce = format!("{s}-{c}");
    assert_eq!(
        code(&pair.send(&ClientMessage::RegistrationSendPassword(r3))),
        Some(ErrorCode::UnknownSession)
    );

    // Client side: R2 that does not extend our nonce.
    let step = reg_start(&mut pair, "n3", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let mut r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    r2.nonce.replace_range(0..1, if r2.nonce.starts_with('a') { "b" } else { "a" });
    assert!(matches!(step.state.receive_pairing(r2), Err(Error::NonceMismatch)));

    // R3 with no pairing at all.
    let fake = format!("{}-{}", "ab".repeat(32), "cd".repeat(32));
    let r3 = ClientMessage::RegistrationSendPassword(scram_dh::message::RegistrationSendPassword {
        secret_key: Base64(vec![0; 48]),
        nonce: fake,
    });
    assert_eq!(code(&pair.send(&r3)), Some(ErrorCode::UnknownSession));
}

#[test]
fn auth_steps_replay_expiry_and_phase_confusion() {
    let mut pair = Pair::new(17);
    let cred = pair.register("carol", "pw", Group::X25519, Labels::Random).unwrap();

    // Replay of A3 after success.
    let step = AuthClient::start(&mut pair.client_rng, "carol", cred.secret(), None, ClientConfig::default())
        .unwrap();
    let a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    let step = step.state.receive_pairing(a2).unwrap();
    assert!(matches!(pair.send(&step.message), Outcome::Authenticated { .. }));
    assert_eq!(code(&pair.send(&step.message)), Some(ErrorCode::UnknownSession), "replayed proof");

    // Expired session.
    let step = AuthClient::start(&mut pair.client_rng, "carol", cred.secret(), None, ClientConfig::default())
        .unwrap();
    let a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    let step = step.state.receive_pairing(a2).unwrap();
    pair.advance(10_001);
    assert_eq!(code(&pair.send(&step.message)), Some(ErrorCode::UnknownSession), "expired");

    // A pairing reusing a live client nonce.
    let step = AuthClient::start(&mut pair.client_rng, "carol", cred.secret(), None, ClientConfig::default())
        .unwrap();
    assert!(code(&pair.send(&step.message)).is_none());
    assert_eq!(code(&pair.send(&step.message)), Some(ErrorCode::NonceReused));

    // A registration's R3 shape cannot reach an auth session and vice versa: phase-keyed.
    let step = reg_start(&mut pair, "dave", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let a3 = ClientMessage::AuthClientProofGeneration(scram_dh::message::AuthClientProof {
        client_proof: Base64(vec![0; 32]),
        nonce: r2.nonce.clone(),
    });
    assert_eq!(code(&pair.send(&a3)), Some(ErrorCode::UnknownSession), "auth step on a registration session");

    // Altered / swapped nonces at A3.
    let step = AuthClient::start(&mut pair.client_rng, "carol", cred.secret(), None, ClientConfig::default())
        .unwrap();
    let a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    let step = step.state.receive_pairing(a2).unwrap();
    let ClientMessage::AuthClientProofGeneration(mut a3) = step.message else { panic!() };
    let (c, s) = a3.nonce.split_once('-').unwrap();
    let swapped = format!("{s}-{c}");
    let mut altered = format!("{c}-{s}");
    altered.replace_range(70..71, if &altered[70..71] == "0" { "1" } else { "0" });
    a3.nonce = swapped;
    assert_eq!(
        code(&pair.send(&ClientMessage::AuthClientProofGeneration(a3.clone()))),
        Some(ErrorCode::UnknownSession)
    );
    a3.nonce = altered;
    assert_eq!(
        code(&pair.send(&ClientMessage::AuthClientProofGeneration(a3))),
        Some(ErrorCode::NonceMismatch)
    );
}

#[test]
fn existing_username_never_overwritten() {
    let mut pair = Pair::new(18);
    let first = pair.register("erin", "one", Group::X25519, Labels::Random).unwrap();
    let err = pair.register("erin", "two", Group::X25519, Labels::Random).unwrap_err();
    assert!(matches!(err, Error::Peer { code: ErrorCode::UsernameTaken, .. }));

    // Two registrations racing past R1: the second commit loses.
    let a = reg_start(&mut pair, "frank", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let b = reg_start(&mut pair, "frank", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let ra = pair.exchange(&a.message).unwrap().into_registration_pairing().unwrap();
    let rb = pair.exchange(&b.message).unwrap().into_registration_pairing().unwrap();
    let a = a.state.receive_pairing(ra).unwrap();
    let b = b.state.receive_pairing(rb).unwrap();
    let ka = pair.exchange(&a.message).unwrap().into_registration_keys().unwrap();
    let cred_a = a.state.finish(ka).unwrap();
    assert_eq!(code(&pair.send(&b.message)), Some(ErrorCode::UsernameTaken));
    // The winner still logs in; the loser's keys do not.
    pair.login("frank", cred_a.secret(), None).unwrap();
    pair.login("erin", first.secret(), None).unwrap();
}

#[test]
fn unknown_user_and_wrong_proof_are_indistinguishable() {
    let mut pair = Pair::new(19);
    let cred = pair.register("grace", "right", Group::X25519, Labels::Rfc).unwrap();
    let _ = cred;
    let wrong = pair.login("grace", ClientSecret::Password(Password::new("wrong")), None).unwrap_err();
    let unknown = pair.login("nobody", ClientSecret::Password(Password::new("wrong")), None).unwrap_err();
    let (Error::AuthenticationFailed, Error::AuthenticationFailed) = (&wrong, &unknown) else {
        panic!("{wrong:?} / {unknown:?}")
    };
    // The wire replies are byte-identical.
    let n = pair.transcript.len();
    assert_eq!(pair.transcript[n - 1], pair.transcript[n - 5]);

    // Unknown users get a stable salt and the server's ic, like a real user.
    let salt_of = |pair: &mut Pair, user: &str| {
        let step = AuthClient::start(
            &mut pair.client_rng,
            user,
            ClientSecret::Password(Password::new("x")),
            None,
            ClientConfig::default(),
        )
        .unwrap();
        pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap()
    };
    let a = salt_of(&mut pair, "nobody");
    let b = salt_of(&mut pair, "nobody");
    let c = salt_of(&mut pair, "somebody-else");
    assert_eq!(a.salt, b.salt);
    assert_ne!(a.salt, c.salt);
    assert_eq!(a.salt.0.len(), 32);
    assert_eq!(a.ic, 4096);
}

#[test]
fn iteration_count_bounds_on_client() {
    // Above the client's ceiling: refused before any PBKDF2.
    let mut pair = Pair::with_config(20, |c| c.ic = 20_000);
    pair.client_config.max_iterations = 10_000;
    let err = pair.register("h", "pw", Group::X25519, Labels::Random).unwrap_err();
    assert!(matches!(err, Error::IterationCount { ic: 20_000, .. }));

    // Below 4096 (a hostile server): refused.
    let mut pair = Pair::new(21);
    let step = reg_start(&mut pair, "i", Group::X25519, Labels::Random, HostKeyCheck::TrustOnFirstUse);
    let mut r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    r2.ic = 4095;
    assert!(matches!(step.state.receive_pairing(r2), Err(Error::IterationCount { ic: 4095, .. })));

    let cred = pair.register("j", "pw", Group::X25519, Labels::Rfc).unwrap();
    let step = AuthClient::start(
        &mut pair.client_rng,
        "j",
        ClientSecret::Password(Password::new("pw")),
        None,
        ClientConfig::default(),
    )
    .unwrap();
    let mut a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    a2.ic = 1;
    assert!(matches!(step.state.receive_pairing(a2), Err(Error::IterationCount { ic: 1, .. })));
    let step =
        AuthClient::start(&mut pair.client_rng, "j", cred.secret(), None, ClientConfig::default()).unwrap();
    let mut a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    a2.ic = 4095;
    assert!(matches!(step.state.receive_pairing(a2), Err(Error::IterationCount { .. })));

    // The server refuses to be configured below 4096.
    let mut cfg = pair.engine.config().clone();
    cfg.ic = 4095;
    assert!(cfg.validate().is_err());
}

#[test]
fn server_signature_forgery_detected() {
    let mut pair = Pair::new(22);
    let cred = pair.register("k", "pw", Group::X25519, Labels::Random).unwrap();
    let step =
        AuthClient::start(&mut pair.client_rng, "k", cred.secret(), None, ClientConfig::default()).unwrap();
    let a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    let step = step.state.receive_pairing(a2).unwrap();
    let Outcome::Authenticated { reply, .. } = pair.send(&step.message) else { panic!() };
    let ServerMessage::AuthProof(mut a4) = reply else { panic!() };
    a4.server_signature.0[31] ^= 1;
    assert!(matches!(step.state.finish(a4), Err(Error::ServerSignature)));
}

#[test]
fn channel_key_mismatch_and_missing_fields() {
    let mut pair = Pair::new(23);
    let cred = pair.register("m", "pw", Group::X25519, Labels::Random).unwrap();
    // Server answers without the channel key the client asked for.
    let step = AuthClient::start(
        &mut pair.client_rng,
        "m",
        cred.secret(),
        Some(Group::X25519),
        ClientConfig::default(),
    )
    .unwrap();
    let mut a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
    a2.public_key = None;
    assert!(matches!(step.state.receive_pairing(a2), Err(Error::InvalidMessage(_))));
    // A1 with group but no key.
    let t = format!(
        r#"{{"type":"auth_pairing","username":"m","client_nonce":"{}","group":"x25519"}}"#,
        "0".repeat(64)
    );
    let out = scram_dh::pair::block_on(pair.engine.handle_json(&t, "p", pair.now_ms, &mut pair.server_rng));
    assert_eq!(code(&out), Some(ErrorCode::InvalidMessage));
    // Unknown group.
    let t = format!(
        r#"{{"type":"auth_pairing","username":"m","client_nonce":"{}","group":"modp1024","public_key":"AAAA"}}"#,
        "0".repeat(64)
    );
    let out = scram_dh::pair::block_on(pair.engine.handle_json(&t, "p", pair.now_ms, &mut pair.server_rng));
    assert_eq!(code(&out), Some(ErrorCode::Unsupported));
}

fn r1_with_key(pair: &mut Pair, group: Group, key: Vec<u8>) -> Option<ErrorCode> {
    let msg = ClientMessage::RegistrationPairing(RegistrationPairing {
        username: "pk".into(),
        group: group.name().into(),
        public_key: Base64(key),
        client_nonce: scram_dh::nonce::Nonce::random(&mut pair.client_rng).to_hex(),
        labels: "random".into(),
    });
    code(&pair.send(&msg))
}

#[test]
fn invalid_public_keys_rejected_at_the_wire() {
    let mut pair = Pair::new(24);
    for group in Group::ALL {
        let n = group.public_key_len();
        let bad = ErrorCode::InvalidPublicKey;
        assert_eq!(r1_with_key(&mut pair, group, vec![0; n - 1]), Some(bad), "{group} short");
        assert_eq!(r1_with_key(&mut pair, group, vec![0; n + 1]), Some(bad), "{group} long");
        if group == Group::X25519 {
            // All-zero point: the shared secret is zero and is rejected.
            assert_eq!(r1_with_key(&mut pair, group, vec![0; 32]), Some(bad), "x25519 zero point");
            continue;
        }
        let p = group.modulus_bytes().unwrap();
        let from_int = |x: u8| {
            let mut v = vec![0; n];
            v[n - 1] = x;
            v
        };
        let minus = |k: u8| {
            let mut v = p.clone();
            let last = v.len() - 1;
            v[last] -= k;
            v
        };
        for (what, key) in [
            ("0", from_int(0)),
            ("1", from_int(1)),
            ("p-1", minus(1)),
            ("p", p.clone()),
            (">p", vec![0xff; n]),
        ] {
            assert_eq!(r1_with_key(&mut pair, group, key), Some(bad), "{group} {what}");
        }
        // A quadratic non-residue: for these safe primes p ≡ 7 (mod 8), so (-1|p) = -1
        // and (2|p) = 1; p-2 ≡ -2 is therefore a non-residue.
        assert_eq!(r1_with_key(&mut pair, group, minus(2)), Some(bad), "{group} non-residue");
        // 4 = 2^2 is a residue and in range: accepted.
        assert_eq!(r1_with_key(&mut pair, group, from_int(4)), None, "{group} 4 accepted");
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let pw = "canary-debug-7c1d";
    let mut pair = Pair::new(25);
    let step = RegistrationClient::start(
        &mut pair.client_rng,
        "dbg",
        Password::new(pw),
        Group::X25519,
        Labels::Rfc,
        HostKeyCheck::TrustOnFirstUse,
        pair.client_config,
    )
    .unwrap();
    let s1 = format!("{:?}", step.state);
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let s2 = format!("{:?}", step.state);
    let r4 = pair.exchange(&step.message).unwrap().into_registration_keys().unwrap();
    let cred = step.state.finish(r4).unwrap();
    let s3 = format!("{cred:?} {:?}", cred.secret());
    let (c, s) = pair.login("dbg", cred.secret(), Some(Group::X25519)).unwrap();
    let s4 = format!("{c:?} {s:?}");
    let record = scram_dh::pair::block_on(pair.engine.credentials().read("dbg")).unwrap().unwrap();
    let s5 = format!("{record:?} {:?}", pair.engine.config());
    let keys = c.session_keys().unwrap();
    let mock = pair.engine.config().mock_secret;
    assert!(!s5.contains(&format!("{:?}", &mock[..8])), "mock secret printed: {s5}");
    let hexes = [
        cred.client_key.expose(),
        cred.server_key.expose(),
        keys.c2s.expose(),
        keys.s2c.expose(),
        record.stored_key.expose(),
    ]
    .map(|k| k.iter().map(|b| format!("{b:02x}")).collect::<String>());
    for text in [&s1, &s2, &s3, &s4, &s5] {
        assert!(!text.contains(pw), "{text}");
        for h in &hexes {
            assert!(!text.contains(&h[..16]), "{text}");
        }
        for decimal in [cred.client_key.expose(), keys.c2s.expose()] {
            assert!(!text.contains(&format!("{:?}", &decimal[..8])), "byte arrays printed: {text}");
        }
    }
}
