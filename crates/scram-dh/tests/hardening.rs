//! Issue 6 hardening, end to end on the sans-IO engine: derived labels and the
//! provisional credential (L10), sealed session state (SPEC 5), capacity checked
//! before DH work (M2), the account in failures, and enumeration (M6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::{Infallible, SeedableRng, TryCryptoRng, TryRng};
use scram_dh::auth::client::AuthClient;
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::nonce::Nonce;
use scram_dh::pair::{Pair, block_on};
use scram_dh::record::{RecordShape, StoreError};
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::secret::SecretBytes;
use scram_dh::session::{Phase, SessionInsert, SessionKey};
use scram_dh::{
    ClientConfig, ClientCredential, ClientKeys, ClientSecret, CredentialStore, Error, ErrorCode, Group,
    HostKey, Labels, MemoryCredentialStore, MemorySessionStore, Outcome, Password, ServerConfig,
    ServerEngine, SessionStore,
};

const NOW: u64 = 1_700_000_000_000;

fn code(out: &Outcome) -> Option<ErrorCode> {
    match out.reply() {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    }
}

fn config(seed: u8) -> ServerConfig {
    ServerConfig::new(HostKey::from_seed(&[seed; 32]), [seed.wrapping_add(100); 32])
}

fn engine<S: SessionStore>(config: ServerConfig, sessions: S) -> ServerEngine<MemoryCredentialStore, S> {
    ServerEngine::new(config, MemoryCredentialStore::default(), sessions).unwrap()
}

/// Sends a message through its JSON form, as the wire would.
fn send<S: SessionStore>(
    engine: &ServerEngine<MemoryCredentialStore, S>,
    rng: &mut ChaCha20Rng,
    msg: &ClientMessage,
) -> Outcome {
    block_on(engine.handle_json(&msg.to_json(), "peer", NOW, rng))
}

fn reply(out: Outcome) -> ServerMessage {
    ServerMessage::from_json(&out.reply().to_json()).unwrap()
}

fn register<S: SessionStore>(
    engine: &ServerEngine<MemoryCredentialStore, S>,
    crng: &mut ChaCha20Rng,
    srng: &mut ChaCha20Rng,
    user: &str,
) -> ClientCredential {
    let step = RegistrationClient::start(
        crng,
        user,
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        HostKeyCheck::TrustOnFirstUse,
        ClientConfig::default(),
    )
    .unwrap();
    let r2 = reply(send(engine, srng, &step.message)).into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let r4 = reply(send(engine, srng, &step.message)).into_registration_keys().unwrap();
    step.state.finish(r4).unwrap()
}

/// A1 → A2 → A3 built; returns A3, the client nonce and the client state.
fn until_a3<S: SessionStore>(
    engine: &ServerEngine<MemoryCredentialStore, S>,
    crng: &mut ChaCha20Rng,
    srng: &mut ChaCha20Rng,
    user: &str,
    secret: ClientSecret,
) -> (ClientMessage, Nonce, scram_dh::auth::client::AwaitingServerSignature) {
    let step = AuthClient::start(crng, user, secret, None, ClientConfig::default()).unwrap();
    let ClientMessage::AuthPairing(a1) = &step.message else { panic!() };
    let client_nonce = Nonce::parse(&a1.client_nonce).unwrap();
    let a2 = reply(send(engine, srng, &step.message)).into_auth_pairing().unwrap();
    let step = step.state.receive_pairing(a2).unwrap();
    (step.message, client_nonce, step.state)
}

// ---------------------------------------------------------------- L10, SPEC 7

/// L10: the client saves the provisional credential before R3; the server commits,
/// R4 is lost; the provisional credential logs in.
#[test]
fn l10_provisional_credential_logs_in_after_lost_r4() {
    for labels in [Labels::Random, Labels::Rfc] {
        let mut pair = Pair::new(61);
        let step = RegistrationClient::start(
            &mut pair.client_rng,
            "lost-r4",
            Password::new("pw"),
            Group::X25519,
            labels,
            HostKeyCheck::TrustOnFirstUse,
            pair.client_config,
        )
        .unwrap();
        let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
        let step = step.state.receive_pairing(r2).unwrap();
        let saved = step.state.provisional_credential();
        assert!(saved.unconfirmed);
        // Written to disk and read back, as the CLI would.
        let saved = ClientCredential::from_json(&saved.to_json()).unwrap();
        assert!(saved.unconfirmed);
        let out = pair.send(&step.message);
        assert!(matches!(out, Outcome::Registered { .. }), "server committed");
        drop(out); // R4 lost with the connection
        drop(step.state);
        let (c, s) = pair.login("lost-r4", saved.secret(), Some(Group::X25519)).unwrap();
        assert_eq!(c.username(), "lost-r4");
        assert_eq!(c.session_keys(), s.session_keys());
    }
}

// ---------------------------------------------------------------- SPEC 5, sealing

/// A session store wrapper that records every value it is given and can flip a
/// bit of each before storing it.
#[derive(Default)]
struct Tamper {
    inner: MemorySessionStore,
    seen: Mutex<Vec<Vec<u8>>>,
    flip: bool,
}

impl SessionStore for Tamper {
    async fn probe(&self, key: &SessionKey, peer: &str, now_ms: u64) -> Result<SessionInsert, StoreError> {
        self.inner.probe(key, peer, now_ms).await
    }
    async fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        mut value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<SessionInsert, StoreError> {
        self.seen.lock().unwrap().push(value.to_vec());
        if self.flip {
            let mid = value.len() / 2;
            value[mid] ^= 0x01;
        }
        self.inner.insert(key, peer, value, now_ms, ttl_ms).await
    }
    async fn take(&self, key: &SessionKey, now_ms: u64) -> Result<Option<SecretBytes>, StoreError> {
        self.inner.take(key, now_ms).await
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// SPEC 5: the store sees only sealed state: no username, no StoredKey, ServerKey
/// or registration key material in any blob it was handed.
#[test]
fn sealed_state_is_all_a_store_sees() {
    let mut crng = ChaCha20Rng::seed_from_u64(1);
    let mut srng = ChaCha20Rng::seed_from_u64(2);
    let e = engine(config(1), Tamper::default());
    let user = "sealed-username-canary";
    let cred = register(&e, &mut crng, &mut srng, user);
    let (a3, _, state) = until_a3(&e, &mut crng, &mut srng, user, cred.secret());
    let Outcome::Authenticated { reply, .. } = send(&e, &mut srng, &a3) else { panic!() };
    state.finish(reply.into_auth_proof().unwrap()).unwrap();
    let record = block_on(e.credentials().read(user)).unwrap().unwrap();
    let seen = e.sessions().seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one registration and one authentication session");
    for blob in &seen {
        assert!(!contains(blob, user.as_bytes()), "username in a session blob");
        assert!(!contains(blob, &record.stored_key.expose()[..16]), "StoredKey in a session blob");
        assert!(!contains(blob, &record.server_key.expose()[..16]), "ServerKey in a session blob");
        assert!(!contains(blob, &record.salt[..16]), "salt in a session blob");
        // Neither plaintext state format byte ('r'/'A') followed by lp(username).
        assert!(blob.len() > 24 + 16, "nonce and tag around the state");
        // Expiry, nonce, the state zero-padded to whole 256-byte runs (four ChaCha20
        // blocks: the engine's SEAL_RUN), tag.
        let sealed = blob.len() - 8 - 24 - 16;
        assert!(sealed > 0 && sealed % 256 == 0, "state sealed in {sealed} bytes");
    }
}

/// A tampered blob is refused as unknown_session, for both phases, without a panic.
#[test]
fn tampered_session_blob_is_unknown_session() {
    let mut crng = ChaCha20Rng::seed_from_u64(3);
    let mut srng = ChaCha20Rng::seed_from_u64(4);
    // Registration: R3 against a tampered R1 session.
    let e = engine(config(2), Tamper { flip: true, ..Tamper::default() });
    let step = RegistrationClient::start(
        &mut crng,
        "t",
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        HostKeyCheck::TrustOnFirstUse,
        ClientConfig::default(),
    )
    .unwrap();
    let r2 = reply(send(&e, &mut srng, &step.message)).into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let out = send(&e, &mut srng, &step.message);
    assert_eq!(code(&out), Some(ErrorCode::UnknownSession), "{out:?}");
    assert!(block_on(e.credentials().read("t")).unwrap().is_none(), "nothing committed");

    // Authentication: a real user, A3 against a tampered A1 session.
    let clean = engine(config(2), Tamper::default());
    let cred = register(&clean, &mut crng, &mut srng, "t2");
    let record = block_on(clean.credentials().read("t2")).unwrap().unwrap();
    block_on(e.credentials().insert(&record)).unwrap();
    let (a3, _, _) = until_a3(&e, &mut crng, &mut srng, "t2", cred.secret());
    assert_eq!(code(&send(&e, &mut srng, &a3)), Some(ErrorCode::UnknownSession));
}

/// A blob sealed by another server (another key) does not open: unknown_session.
#[test]
fn session_blob_from_another_key_is_unknown_session() {
    let mut crng = ChaCha20Rng::seed_from_u64(5);
    let mut srng = ChaCha20Rng::seed_from_u64(6);
    let a = engine(config(3), MemorySessionStore::default());
    let b = engine(config(4), MemorySessionStore::default());
    let cred = register(&a, &mut crng, &mut srng, "k");
    let record = block_on(a.credentials().read("k")).unwrap().unwrap();
    block_on(b.credentials().insert(&record)).unwrap();
    let (a3, client_nonce, _) = until_a3(&a, &mut crng, &mut srng, "k", cred.secret());
    // Move the session from A's store to B's, under the same session key.
    let key = SessionKey::new(Phase::Authentication, &client_nonce);
    let blob = block_on(a.sessions().take(&key, NOW)).unwrap().unwrap();
    block_on(b.sessions().insert(&key, "peer", blob, NOW, 10_000)).unwrap();
    assert_eq!(code(&send(&b, &mut srng, &a3)), Some(ErrorCode::UnknownSession));
}

/// A blob moved to another session key (the associated data) does not open.
#[test]
fn session_blob_moved_to_another_session_key_is_unknown_session() {
    let mut crng = ChaCha20Rng::seed_from_u64(7);
    let mut srng = ChaCha20Rng::seed_from_u64(8);
    let e = engine(config(5), MemorySessionStore::default());
    let cred = register(&e, &mut crng, &mut srng, "m");
    let (a3_one, nonce_one, _) = until_a3(&e, &mut crng, &mut srng, "m", cred.secret());
    let (a3_two, nonce_two, state_two) = until_a3(&e, &mut crng, &mut srng, "m", cred.secret());
    let (k1, k2) = (
        SessionKey::new(Phase::Authentication, &nonce_one),
        SessionKey::new(Phase::Authentication, &nonce_two),
    );
    let blob_one = block_on(e.sessions().take(&k1, NOW)).unwrap().unwrap();
    let blob_two = block_on(e.sessions().take(&k2, NOW)).unwrap().unwrap();
    // Session one's state under session two's key: refused.
    block_on(e.sessions().insert(&k2, "peer", blob_one.clone(), NOW, 10_000)).unwrap();
    assert_eq!(code(&send(&e, &mut srng, &a3_two)), Some(ErrorCode::UnknownSession));
    // And under the other phase's key with the same nonce.
    let k1_reg = SessionKey::new(Phase::Registration, &nonce_one);
    block_on(e.sessions().insert(&k1_reg, "peer", blob_one, NOW, 10_000)).unwrap();
    let ClientMessage::AuthClientProofGeneration(p) = &a3_one else { panic!() };
    let as_r3 = ClientMessage::RegistrationSendPassword(scram_dh::message::RegistrationSendPassword {
        secret_key: scram_dh::message::Base64(vec![0; 48]),
        nonce: p.nonce.clone(),
    });
    assert_eq!(code(&send(&e, &mut srng, &as_r3)), Some(ErrorCode::UnknownSession));
    // The genuine blob back in its place still works: sealing is not the failure.
    let (a3_three, nonce_three, state_three) = until_a3(&e, &mut crng, &mut srng, "m", cred.secret());
    let _ = (blob_two, state_two, nonce_three);
    let Outcome::Authenticated { reply, .. } = send(&e, &mut srng, &a3_three) else { panic!() };
    state_three.finish(reply.into_auth_proof().unwrap()).unwrap();
}

/// Whoever can write the session store cannot revive a session past its TTL: the
/// expiry is bound into the seal, so re-inserting a taken blob with a longer TTL,
/// or with its expiry prefix rewritten, is refused.
#[test]
fn session_blob_revived_past_its_ttl_is_unknown_session() {
    let mut crng = ChaCha20Rng::seed_from_u64(17);
    let mut srng = ChaCha20Rng::seed_from_u64(18);
    let e = engine(config(5), MemorySessionStore::default());
    let cred = register(&e, &mut crng, &mut srng, "r");
    let (a3, nonce, _) = until_a3(&e, &mut crng, &mut srng, "r", cred.secret());
    let key = SessionKey::new(Phase::Authentication, &nonce);
    let blob = block_on(e.sessions().take(&key, NOW)).unwrap().unwrap();
    let late = NOW + 60_000;
    let at = |now: u64, msg: &ClientMessage, srng: &mut ChaCha20Rng| {
        block_on(e.handle_json(&msg.to_json(), "peer", now, srng))
    };
    // Put back as it was, with a long TTL in the store, and presented a minute later.
    block_on(e.sessions().insert(&key, "peer", blob.clone(), late - 1, 3_600_000)).unwrap();
    assert_eq!(code(&at(late, &a3, &mut srng)), Some(ErrorCode::UnknownSession));
    // With the clear expiry rewritten to later: the seal no longer opens.
    let mut moved = blob.clone();
    moved[..8].copy_from_slice(&(late + 10_000).to_be_bytes());
    block_on(e.sessions().insert(&key, "peer", moved, late - 1, 3_600_000)).unwrap();
    assert_eq!(code(&at(late, &a3, &mut srng)), Some(ErrorCode::UnknownSession));
    // Within its TTL the genuine blob still opens (so the refusals above are the expiry).
    block_on(e.sessions().insert(&key, "peer", blob, NOW, 10_000)).unwrap();
    assert!(matches!(at(NOW + 1, &a3, &mut srng), Outcome::Authenticated { .. }));
}

// ---------------------------------------------------------------- M2, capacity first

/// Counts the bytes drawn from it: DH keygen, nonces and filler keys all draw, so
/// zero draws proves no keygen or DH work was done.
struct CountingRng {
    inner: ChaCha20Rng,
    draws: AtomicUsize,
}

impl CountingRng {
    fn new(seed: u64) -> Self {
        Self { inner: ChaCha20Rng::seed_from_u64(seed), draws: AtomicUsize::new(0) }
    }
    fn draws(&self) -> usize {
        self.draws.load(Ordering::Relaxed)
    }
}

impl TryRng for CountingRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.draws.fetch_add(4, Ordering::Relaxed);
        self.inner.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.draws.fetch_add(8, Ordering::Relaxed);
        self.inner.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.draws.fetch_add(dst.len(), Ordering::Relaxed);
        self.inner.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for CountingRng {}

fn r1(crng: &mut ChaCha20Rng, user: &str, group: Group) -> ClientMessage {
    RegistrationClient::start(
        crng,
        user,
        Password::new("pw"),
        group,
        Labels::Random,
        HostKeyCheck::TrustOnFirstUse,
        ClientConfig::default(),
    )
    .unwrap()
    .message
}

fn a1(crng: &mut ChaCha20Rng, user: &str, channel: Option<Group>) -> ClientMessage {
    let secret = ClientSecret::Password(Password::new("pw"));
    AuthClient::start(crng, user, secret, channel, ClientConfig::default()).unwrap().message
}

/// M2: a full session store refuses R1 and A1 (with or without a channel) as
/// `busy` before any keygen or DH work: the server's RNG is never touched. Before
/// the fix the DH was done first and the insert refused afterwards.
#[test]
fn m2_full_store_refuses_before_dh() {
    let mut crng = ChaCha20Rng::seed_from_u64(9);
    let mut srng = CountingRng::new(10);
    // Global cap 1, filled by one pairing from another peer.
    let e = engine(config(6), MemorySessionStore::new(1, 1));
    let first = a1(&mut crng, "someone", None);
    let out = block_on(e.handle(first, "other-peer", NOW, &mut srng));
    assert!(code(&out).is_none(), "{out:?}");
    for group in [Group::X25519, Group::Modp8192] {
        for msg in [r1(&mut crng, "r", group), a1(&mut crng, "a", Some(group)), a1(&mut crng, "a", None)] {
            let before = srng.draws();
            let out = block_on(e.handle(msg, "peer", NOW, &mut srng));
            assert_eq!(code(&out), Some(ErrorCode::Busy), "{group}: {out:?}");
            assert_eq!(srng.draws(), before, "{group}: no keygen or DH before the refusal");
        }
    }
    // Per-peer cap: the same, on a store with room globally.
    let e = engine(config(6), MemorySessionStore::new(100, 1));
    block_on(e.handle(a1(&mut crng, "x", None), "peer", NOW, &mut srng));
    let before = srng.draws();
    let out = block_on(e.handle(r1(&mut crng, "y", Group::Modp2048), "peer", NOW, &mut srng));
    assert_eq!(code(&out), Some(ErrorCode::Busy));
    assert_eq!(srng.draws(), before);
}

/// M2: a pairing reusing a live client nonce is `nonce_reused` before any work.
#[test]
fn m2_reused_nonce_refused_before_dh() {
    let mut crng = ChaCha20Rng::seed_from_u64(11);
    let mut srng = CountingRng::new(12);
    let e = engine(config(7), MemorySessionStore::default());
    for msg in [r1(&mut crng, "r", Group::Modp3072), a1(&mut crng, "a", Some(Group::Modp3072))] {
        let out = block_on(e.handle(msg.clone(), "peer", NOW, &mut srng));
        assert!(code(&out).is_none(), "{out:?}");
        let before = srng.draws();
        let out = block_on(e.handle(msg, "peer", NOW, &mut srng));
        assert_eq!(code(&out), Some(ErrorCode::NonceReused));
        assert_eq!(srng.draws(), before, "no keygen or DH before the refusal");
    }
}

// ---------------------------------------------------------------- the account in failures

/// `Outcome::Failed` names the account for A1/A3/R1/R3 failures once the
/// username is known, and nothing for parse failures or unknown sessions.
#[test]
fn failed_outcome_carries_the_account() {
    let mut pair = Pair::new(62);
    let cred = pair.register("acct", "pw", Group::X25519, Labels::Rfc).unwrap();
    assert_eq!(pair.engine.mock_profile().total(), 1);
    // A3, wrong password (known user) and unknown user: both named.
    for user in ["acct", "ghost"] {
        let step = AuthClient::start(
            &mut pair.client_rng,
            user,
            ClientSecret::Password(Password::new("wrong")),
            None,
            ClientConfig::default(),
        )
        .unwrap();
        let a2 = pair.exchange(&step.message).unwrap().into_auth_pairing().unwrap();
        let step = step.state.receive_pairing(a2).unwrap();
        let out = pair.send(&step.message);
        assert_eq!(code(&out), Some(ErrorCode::AuthenticationFailed));
        assert_eq!(out.account(), Some(user));
        let Outcome::Failed { username, .. } = &out else { panic!() };
        assert_eq!(username.as_deref(), Some(user));
    }
    // R1 for a taken name.
    let out = pair.send(&r1(&mut pair.client_rng.clone(), "acct", Group::X25519));
    assert_eq!(code(&out), Some(ErrorCode::UsernameTaken));
    assert_eq!(out.account(), Some("acct"));
    // A1 with a live nonce.
    let msg = a1(&mut pair.client_rng, "acct", None);
    assert!(code(&pair.send(&msg)).is_none());
    let out = pair.send(&msg);
    assert_eq!((code(&out), out.account()), (Some(ErrorCode::NonceReused), Some("acct")));
    // R3 that fails after its state was opened (a tampered secret_key).
    let step = RegistrationClient::start(
        &mut pair.client_rng,
        "newbie",
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        HostKeyCheck::TrustOnFirstUse,
        ClientConfig::default(),
    )
    .unwrap();
    let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
    let step = step.state.receive_pairing(r2).unwrap();
    let ClientMessage::RegistrationSendPassword(mut r3) = step.message else { panic!() };
    r3.secret_key.0[0] ^= 1;
    let out = pair.send(&ClientMessage::RegistrationSendPassword(r3.clone()));
    assert_eq!((code(&out), out.account()), (Some(ErrorCode::InvalidMessage), Some("newbie")));
    // Unknown session (the same R3 again): no account.
    let out = pair.send(&ClientMessage::RegistrationSendPassword(r3));
    assert_eq!((code(&out), out.account()), (Some(ErrorCode::UnknownSession), None));
    // Parse failures: none.
    let out = block_on(pair.engine.handle_json("{}", "p", NOW, &mut pair.server_rng));
    assert_eq!(out.account(), None);
    let bad = r#"{"type":"auth_pairing","username":"acct","client_nonce":"xyz"}"#;
    let out = block_on(pair.engine.handle_json(bad, "p", NOW, &mut pair.server_rng));
    assert_eq!((code(&out), out.account()), (Some(ErrorCode::InvalidMessage), None));
    // Successes name the account too.
    let (_, s) = pair.login("acct", cred.secret(), None).unwrap();
    assert_eq!(s.username(), "acct");
}

// ---------------------------------------------------------------- M6, enumeration

/// M6 (a): with registration closed, R1 is `unsupported` before any store read or
/// DH work; logins still work.
#[test]
fn m6_registration_closed_refuses_r1_before_any_work() {
    let mut crng = ChaCha20Rng::seed_from_u64(13);
    let mut srng = CountingRng::new(14);
    let mut cfg = config(8);
    cfg.registration_open = false;
    let e = engine(cfg, MemorySessionStore::default());
    let out = block_on(e.handle(r1(&mut crng, "new", Group::Modp8192), "peer", NOW, &mut srng));
    let Outcome::Failed { error: Error::Unsupported(text), .. } = &out else { panic!("{out:?}") };
    assert_eq!(text, "registration is closed on this server");
    assert_eq!(code(&out), Some(ErrorCode::Unsupported));
    assert_eq!(srng.draws(), 0);
    assert!(e.sessions().is_empty());
    // A provisioned user still logs in.
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let p = scram_dh::provision::provision(&mut rng, "prov", 4096, Labels::Rfc, 0, None, None).unwrap();
    block_on(e.credentials().insert(&p.record)).unwrap();
    let pw = p.bundle.password.clone().unwrap();
    let step =
        AuthClient::start(&mut crng, "prov", ClientSecret::Password(pw), None, ClientConfig::default())
            .unwrap();
    let a2 = match block_on(e.handle(step.message, "peer", NOW, &mut srng)) {
        Outcome::Continue(m) => m.into_auth_pairing().unwrap(),
        other => panic!("{other:?}"),
    };
    let step = step.state.receive_pairing(a2).unwrap();
    assert!(matches!(
        block_on(e.handle(step.message, "peer", NOW, &mut srng)),
        Outcome::Authenticated { .. }
    ));
}

fn a2_shape<S: SessionStore>(
    e: &ServerEngine<MemoryCredentialStore, S>,
    crng: &mut ChaCha20Rng,
    srng: &mut ChaCha20Rng,
    user: &str,
) -> (u32, Vec<u8>) {
    let a2 = reply(send(e, srng, &a1(crng, user, None))).into_auth_pairing().unwrap();
    (a2.ic, a2.salt.0)
}

fn record_of(user: &str, ic: u32, salt_len: usize) -> scram_dh::Record {
    let keys = ClientKeys::rfc(&scram_dh::secret::SaltedPassword::from_bytes([1; 32]));
    keys.record(user, &vec![7; salt_len], ic, 0, Labels::Rfc)
}

/// M6 (b): after a restart with another ic, unknown users show the ic of the
/// existing records, not the new setting. Before the fix they showed the setting.
#[test]
fn m6_mock_ic_follows_records_after_ic_change() {
    let mut crng = ChaCha20Rng::seed_from_u64(16);
    let mut srng = ChaCha20Rng::seed_from_u64(17);
    let mut cfg = config(9);
    cfg.ic = 8192;
    let store = MemoryCredentialStore::default();
    for i in 0..20 {
        block_on(store.insert(&record_of(&format!("old{i}"), 4096, 32))).unwrap();
    }
    let e = block_on(ServerEngine::open(cfg, store, MemorySessionStore::default())).unwrap();
    for i in 0..30 {
        let (ic, salt) = a2_shape(&e, &mut crng, &mut srng, &format!("nobody{i}"));
        assert_eq!((ic, salt.len()), (4096, 32), "unknown user {i}");
    }
    let (ic, _) = a2_shape(&e, &mut crng, &mut srng, "old3");
    assert_eq!(ic, 4096);
    // Deterministic per name.
    assert_eq!(a2_shape(&e, &mut crng, &mut srng, "ghost"), a2_shape(&e, &mut crng, &mut srng, "ghost"));
}

/// M6 (b): after an import of records with 16-byte salts and ic 10000, unknown
/// users' replies are drawn from the same mix (both shapes appear, in proportion).
#[test]
fn m6_mock_shape_follows_imports() {
    let mut crng = ChaCha20Rng::seed_from_u64(18);
    let mut srng = ChaCha20Rng::seed_from_u64(19);
    let e = engine(config(10), MemorySessionStore::new(10_000, 10_000));
    // Empty store: the server's own ic and 32 bytes.
    assert_eq!(a2_shape(&e, &mut crng, &mut srng, "first").0, 4096);
    assert_eq!(a2_shape(&e, &mut crng, &mut srng, "first").1.len(), 32);
    for i in 0..10 {
        block_on(e.credentials().insert(&record_of(&format!("pg{i}"), 10_000, 16))).unwrap();
    }
    for i in 0..30 {
        block_on(e.credentials().insert(&record_of(&format!("native{i}"), 4096, 32))).unwrap();
    }
    block_on(e.refresh_mock_profile()).unwrap();
    assert_eq!(e.mock_profile().total(), 40);
    let mut imported = 0;
    for i in 0..400 {
        match a2_shape(&e, &mut crng, &mut srng, &format!("unknown{i}")) {
            (10_000, s) if s.len() == 16 => imported += 1,
            (4096, s) if s.len() == 32 => {}
            other => panic!("shape not among the records': {other:?}"),
        }
    }
    assert!((60..140).contains(&imported), "about a quarter imported-shaped: {imported}");
    // A registration updates the profile incrementally.
    let before = e.mock_profile();
    register(&e, &mut crng, &mut srng, "fresh");
    let after = e.mock_profile();
    assert_eq!(after.total(), before.total() + 1);
    let mut expected = before;
    expected.add(RecordShape { ic: 4096, salt_len: 32 });
    assert_eq!(after, expected);
}
