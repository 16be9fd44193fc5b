//! Writes the seed corpora into `fuzz/corpus/<target>/`: valid messages of every
//! type from the deterministic pair harness, session states, text fields, and
//! hand-written `server_state_machine` programs. Run it once after a wire change
//! and commit what it writes (`cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use scram_dh::auth::client::AuthClient;
use scram_dh::auth::server::AuthRequest;
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::nonce::{CombinedNonce, Nonce};
use scram_dh::pair::{Direction, Pair, block_on};
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::register::server::RegistrationRequest;
use scram_dh::{ClientSecret, CredentialStore, Error, Group, Labels, Password};
use scram_dh_fuzz::targets::op;

fn write(root: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), data).expect("write seed");
}

/// The client lines and server replies of one pair's transcript, by message type.
fn dump_transcript(root: &Path, pair: &Pair, tag: &str) {
    for (i, (dir, json)) in pair.transcript.iter().enumerate() {
        let (target, ty) = match dir {
            Direction::ClientToServer => {
                ("client_message", ClientMessage::from_json(json).expect("own message").type_name())
            }
            Direction::ServerToClient => {
                ("server_message", ServerMessage::from_json(json).expect("own message").type_name())
            }
        };
        write(root, target, &format!("{tag}-{i:02}-{ty}.json"), json.as_bytes());
    }
}

fn client_lines(pair: &Pair) -> String {
    let lines: Vec<&str> = pair
        .transcript
        .iter()
        .filter(|(d, _)| *d == Direction::ClientToServer)
        .map(|(_, j)| j.as_str())
        .collect();
    lines.join("\n")
}

fn messages(root: &Path) {
    // Every message type, both label kinds, each channel kind, an unknown user.
    let mut pair = Pair::new(1);
    let alice = pair.register("alice", "correct horse", Group::X25519, Labels::Random).unwrap();
    pair.login("alice", alice.secret(), None).unwrap();
    pair.login("alice", alice.secret(), Some(Group::X25519)).unwrap();
    // The server_engine target replays client lines against a fresh `Pair::new(1)`,
    // so these lines meet the very replies they were computed from.
    write(root, "server_engine", "register-login.txt", client_lines(&pair).as_bytes());
    dump_transcript(root, &pair, "alice");

    let mut pair = Pair::new(1);
    let bob = pair.register("b,o=b", "pencil", Group::Modp2048, Labels::Rfc).unwrap();
    pair.login("b,o=b", ClientSecret::Password(Password::new("pencil")), Some(Group::Modp2048)).unwrap();
    let _ = pair.login("nobody", bob.secret(), None);
    write(root, "server_engine", "rfc-modp2048-unknown.txt", client_lines(&pair).as_bytes());
    dump_transcript(root, &pair, "bob");

    // Replays and reordering in one engine run.
    let mut pair = Pair::new(1);
    pair.register("carol", "pw", Group::X25519, Labels::Random).unwrap();
    let lines: Vec<String> = pair
        .transcript
        .iter()
        .filter(|(d, _)| *d == Direction::ClientToServer)
        .map(|(_, j)| j.clone())
        .collect();
    let replayed = [lines[0].as_str(), lines[1].as_str(), lines[1].as_str(), lines[0].as_str()].join("\n");
    write(root, "server_engine", "replays.txt", replayed.as_bytes());

    for (i, e) in [
        Error::InvalidMessage("bad".into()),
        Error::Unsupported("group".into()),
        Error::NonceMismatch,
        Error::UnknownSession,
        Error::NonceReused,
        Error::UsernameTaken,
        Error::AuthenticationFailed,
        Error::Busy,
        Error::ServerError("x".into()),
    ]
    .iter()
    .enumerate()
    {
        let m = ServerMessage::error(e);
        let ServerMessage::Error(body) = &m else { unreachable!() };
        write(root, "server_message", &format!("error-{i}-{}.json", body.code), m.to_json().as_bytes());
    }

    // Text fields from the same runs.
    let record = block_on(pair.engine.credentials().read("carol")).unwrap().unwrap();
    write(root, "text_fields", "verifier.txt", record.to_postgres_verifier().as_bytes());
    write(root, "text_fields", "credential.json", alice.to_json().as_bytes());
    write(root, "text_fields", "credential-rfc.json", bob.to_json().as_bytes());
    write(
        root,
        "text_fields",
        "fingerprint.txt",
        pair.engine.config().host_key.fingerprint().to_string().as_bytes(),
    );
    let combined =
        CombinedNonce { client: Nonce::from_bytes([0x5a; 32]), server: Nonce::from_bytes([0xa5; 32]) };
    write(root, "text_fields", "nonce.txt", combined.client.to_hex().as_bytes());
    write(root, "text_fields", "combined-nonce.txt", combined.to_wire().as_bytes());
    write(root, "text_fields", "saslname.txt", b"a=2Cb=3Dc");
    write(root, "text_fields", "username-saslprep.txt", "I\u{ad}X \u{ff43}arol \u{2168}".as_bytes());
}

fn session_states(root: &Path) {
    let mut pair = Pair::new(2);
    let config = pair.engine.config().clone();
    for (group, labels) in [(Group::X25519, Labels::Random), (Group::Modp2048, Labels::Rfc)] {
        let step = RegistrationClient::start(
            &mut pair.client_rng,
            "dave",
            Password::new("pw"),
            group,
            labels,
            HostKeyCheck::TrustOnFirstUse,
            pair.client_config,
        )
        .unwrap();
        let ClientMessage::RegistrationPairing(r1) = &step.message else { unreachable!() };
        let (_, pending) =
            RegistrationRequest::parse(r1, &config).unwrap().respond(&mut pair.server_rng, &config).unwrap();
        write(root, "session_state", &format!("registration-{group}.bin"), &pending.to_bytes());
    }
    let cred = pair.register("erin", "pw", Group::X25519, Labels::Random).unwrap();
    for (user, channel) in [("erin", None), ("erin", Some(Group::X25519)), ("nobody", Some(Group::Modp2048))]
    {
        let step = AuthClient::start(&mut pair.client_rng, user, cred.secret(), channel, pair.client_config)
            .unwrap();
        let ClientMessage::AuthPairing(a1) = &step.message else { unreachable!() };
        let record = block_on(pair.engine.credentials().read(user)).unwrap();
        let (_, pending) = AuthRequest::parse(a1, &config)
            .unwrap()
            .continue_with(record, &mut pair.server_rng, &config, &pair.engine.mock_profile())
            .unwrap();
        let kind = channel.map_or("plain".to_owned(), |g| g.to_string());
        write(root, "session_state", &format!("auth-{user}-{kind}.bin"), &pending.to_bytes());
    }
}

/// `server_state_machine` programs, one scenario each (the byte layout is the
/// interpreter's in `targets.rs`: seed, then each op and its parameters).
fn programs(root: &Path) {
    const ALICE: u8 = 0;
    const CAROL: u8 = 2;
    const CAROL_FULLWIDTH: u8 = 3;
    const X25519_RANDOM: u8 = 0x01;
    const MODP2048_RFC: u8 = 0x10;
    const PEER0: u8 = 0;
    // LOGIN's name byte: b % 3 != 0 picks a registered user by the next byte.
    const REGISTERED: u8 = 1;
    const CORRECT_KEYS: u8 = 0;
    const PASSWORD_PW0: u8 = 2;
    const WRONG_KEYS: u8 = 3;
    const NO_CHANNEL: u8 = 0;
    const X25519_CHANNEL: u8 = 5;
    const MODP2048_CHANNEL: u8 = 7;
    let reg = |name: u8, flags: u8| vec![op::REGISTER, name, flags, PEER0];
    let login = |kind: u8, channel: u8| vec![op::LOGIN, REGISTERED, 0, kind, channel, PEER0];
    let cont = vec![op::CONTINUE, 0];
    let scenarios: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "register-login",
            vec![reg(ALICE, X25519_RANDOM), cont.clone(), login(CORRECT_KEYS, NO_CHANNEL), cont.clone()],
        ),
        (
            "rfc-password-channel",
            vec![reg(CAROL, MODP2048_RFC), cont.clone(), login(PASSWORD_PW0, X25519_CHANNEL), cont.clone()],
        ),
        (
            "wrong-key",
            vec![reg(ALICE, X25519_RANDOM), cont.clone(), login(WRONG_KEYS, MODP2048_CHANNEL), cont.clone()],
        ),
        // Replays: R1 while live (nonce_reused), R3 after use (unknown_session), R1 of a taken name.
        (
            "replays",
            vec![
                reg(ALICE, X25519_RANDOM),
                vec![op::REPLAY, 0, PEER0],
                cont.clone(),
                vec![op::REPLAY, 1, PEER0],
                vec![op::REPLAY, 0, PEER0],
            ],
        ),
        // A1 replayed after its session was used, then the old A3: nonce_mismatch.
        (
            "replayed-pairing",
            vec![
                reg(ALICE, X25519_RANDOM),
                cont.clone(),
                login(CORRECT_KEYS, NO_CHANNEL),
                cont.clone(),
                vec![op::REPLAY, 2, PEER0],
                vec![op::REPLAY, 3, PEER0],
            ],
        ),
        ("unknown-user", vec![vec![op::LOGIN, 0, 1, CORRECT_KEYS, NO_CHANNEL, PEER0], cont.clone()]),
        ("expiry", vec![reg(ALICE, X25519_RANDOM), vec![op::ADVANCE, 0x80], cont.clone()]),
        ("flood", vec![vec![op::FLOOD, PEER0, 7], vec![op::FLOOD, 1, 3], reg(ALICE, X25519_RANDOM)]),
        (
            "same-name-twice",
            vec![reg(CAROL, X25519_RANDOM), reg(CAROL_FULLWIDTH, MODP2048_RFC), cont.clone(), cont.clone()],
        ),
        // A mutated R3 first (consumes the session), then the genuine one.
        (
            "mutated-step",
            vec![reg(ALICE, X25519_RANDOM), vec![op::MUTATE, 1, 0, 0, 3, 1, PEER0], cont.clone()],
        ),
        // Handshake 0's A3 on handshake 1's nonce.
        (
            "swapped-nonce",
            vec![
                vec![op::LOGIN, 0, 0, CORRECT_KEYS, NO_CHANNEL, PEER0],
                vec![op::LOGIN, 0, 1, CORRECT_KEYS, NO_CHANNEL, PEER0],
                vec![op::SWAP_NONCE, 2, 1, PEER0],
                cont.clone(),
                cont.clone(),
            ],
        ),
        (
            "swapped-step",
            vec![reg(ALICE, X25519_RANDOM), vec![op::SWAP_STEP, 1, PEER0], vec![op::SWAP_STEP, 0, PEER0]],
        ),
        (
            "edited-bytes",
            vec![reg(ALICE, X25519_RANDOM), vec![op::EDIT_BYTES, 1, 40, 1, PEER0], cont.clone()],
        ),
        (
            "raw-line",
            vec![{
                let line = br#"{"type":"auth_pairing","username":"x"}"#;
                let mut v = vec![op::RAW, u8::try_from(line.len()).unwrap()];
                v.extend_from_slice(line);
                v.push(PEER0);
                v
            }],
        ),
    ];
    for (name, ops) in scenarios {
        let mut program = vec![7u8]; // seed
        program.extend(ops.into_iter().flatten());
        write(root, "server_state_machine", &format!("{name}.bin"), &program);
    }
}

/// Standard SCRAM text: the RFC 7677 section 3 exchange and verifier, and one
/// message of each shape the parsers and state machines tell apart.
fn sasl_seeds(root: &Path) {
    use scram_dh_fuzz::targets::rfc7677;
    let t = "sasl_text";
    let (cn, sn) = (rfc7677::CLIENT_NONCE, rfc7677::SERVER_NONCE);
    let proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    write(root, t, "rfc7677-client-first", rfc7677::CLIENT_FIRST.as_bytes());
    write(root, t, "rfc7677-server-first", rfc7677::SERVER_FIRST.as_bytes());
    write(root, t, "rfc7677-client-final", rfc7677::CLIENT_FINAL.as_bytes());
    write(root, t, "rfc7677-server-final", rfc7677::SERVER_FINAL.as_bytes());
    write(root, t, "rfc7677-verifier", rfc7677::VERIFIER.as_bytes());
    let salt: Vec<u8> = (0u8..32).collect();
    let salted = scram_dh::keys::salted_password(&Password::new("correct horse"), &salt, 8192).unwrap();
    let record = scram_dh::ClientKeys::rfc(&salted).record("u", &salt, 8192, 0, Labels::Rfc);
    write(root, t, "verifier-salt32-ic8192", record.to_postgres_verifier().as_bytes());
    write(root, t, "verifier-leading-zero", rfc7677::VERIFIER.replace("$4096:", "$04096:").as_bytes());
    write(root, t, "client-first-plus-authzid", b"p=tls-exporter,a=user,n=user,r=abcdefghijklmnopqrstuvwx");
    write(root, t, "client-first-escaped-ext", b"n,,n=a=2Cb=3Dc,r=abcdefgh,x=future=value");
    write(root, t, "client-first-y", b"y,,n=user,r=abcdefgh");
    write(root, t, "client-first-tls-unique", b"p=tls-unique,,n=user,r=abcdefgh");
    write(root, t, "client-first-mext", b"n,,m=ext,n=user,r=abcdefgh");
    write(root, t, "client-first-nonascii", "n,,n=j\u{fc}rgen\u{ad},r=!\"#$%&'()*+-./~".as_bytes());
    write(root, t, "server-first-ext", format!("r={cn}XYZ,s=c2FsdA==,i=8192,x=1").as_bytes());
    write(root, t, "server-first-mext", format!("m=ext,r={cn}XYZ,s=c2FsdA==,i=4096").as_bytes());
    write(root, t, "server-first-rfc-ic-1", rfc7677::SERVER_FIRST.replace("i=4096", "i=1").as_bytes());
    let mut plus = scram_dh::sasl::text::ClientFinal::parse(rfc7677::CLIENT_FINAL).unwrap();
    plus.channel_binding = b"p=tls-exporter,,".to_vec();
    plus.channel_binding.extend_from_slice(&[7; 32]);
    plus.extensions.push(scram_dh::sasl::text::Extension { name: 'x', value: "1".into() });
    write(root, t, "client-final-plus", plus.encode().as_bytes());
    write(root, t, "client-final-mext", format!("c=biws,r={cn}{sn},m=1,{proof}").as_bytes());
    write(root, t, "server-final-error", b"e=invalid-proof");
    write(root, t, "server-final-error-ext", b"e=channel-bindings-dont-match,x=1");
    write(root, t, "server-final-future-error", b"e=some-future-error");
}

fn main() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    messages(&root);
    session_states(&root);
    programs(&root);
    sasl_seeds(&root);
    println!("seeds written under {}", root.display());
}
