//! The bodies of the fuzz targets, as plain functions of the input bytes.
//!
//! This file is compiled twice: as a module of the cargo-fuzz crate, whose
//! libFuzzer binaries (`fuzz/fuzz_targets/*.rs`, nightly) are one-line calls into
//! it, and by `crates/scram-dh/tests/fuzz_replay.rs` through `#[path]`, so that
//! every corpus and a bounded random stream replay on stable in `cargo test`. It
//! therefore uses nothing but `scram_dh`'s public API and std.
//!
//! A target reports a broken invariant the only way a fuzzer hears of one: it panics.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use scram_dh::auth::client::{AuthClient, AwaitingServerSignature};
use scram_dh::message::{
    AuthClientProof, AuthPairing, Base64, ClientMessage, RegistrationPairing, RegistrationSendPassword,
    ServerMessage,
};
use scram_dh::nonce::{CombinedNonce, Nonce};
use scram_dh::pair::{Pair, block_on};
use scram_dh::register::client::{AwaitingKeys, HostKeyCheck, RegistrationClient};
use scram_dh::secret::{ClientKey, ServerKey};
use scram_dh::session::Phase;
use scram_dh::{
    ClientCredential, ClientKeys, ClientSecret, CredentialStore, ErrorCode, Group, Labels,
    MemoryCredentialStore, MemorySessionStore, Outcome, Password, ServerEngine,
};

/// Arbitrary bytes into the client-message parser (what a server reads): never a
/// panic; what parses re-encodes to something that parses to the same message.
pub fn client_message(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = ClientMessage::from_json(text)
    {
        let again = ClientMessage::from_json(&m.to_json()).expect("re-encoded message parses");
        assert_eq!(again, m);
    }
}

/// Arbitrary bytes into the server-message parser (what a client reads).
pub fn server_message(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = ServerMessage::from_json(text)
    {
        let again = ServerMessage::from_json(&m.to_json()).expect("re-encoded message parses");
        assert_eq!(again, m);
    }
}

/// Arbitrary lines into a live server engine (memory stores), as a hostile client
/// would send them: every line is answered, without a panic, by a well-formed
/// server message that agrees with the outcome.
pub fn server_engine(data: &[u8]) {
    let mut pair = Pair::new(1);
    for line in data.split(|&b| b == b'\n').take(8) {
        let text = String::from_utf8_lossy(line);
        let out = block_on(pair.engine.handle_json(&text, "fuzz", pair.now_ms, &mut pair.server_rng));
        check_reply(&out);
    }
}

/// Arbitrary bytes as stored session state (a corrupted or hostile session store).
pub fn session_state(data: &[u8]) {
    let _ = scram_dh::fuzzing::session_state(data);
}

/// The small text parsers: nonces, fingerprints, saslnames, usernames, verifiers,
/// credential files. A normalised username passes the server's check; a saslname
/// unescapes back from its own escape.
pub fn text_fields(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = Nonce::parse(s);
    let _ = CombinedNonce::parse(s);
    let _ = s.parse::<scram_dh::Fingerprint>();
    if let Ok(name) = scram_dh::username::normalize(s) {
        // What a client sends, the server must take as normalised (and SASLprep is idempotent).
        assert!(
            scram_dh::username::require_normalized(&name).is_ok(),
            "the server refuses a name the client normalised: {name:?}"
        );
    }
    if let Some(u) = scram_dh::username::unescape(s) {
        assert_eq!(
            scram_dh::username::unescape(&scram_dh::username::escape(&u)).as_deref(),
            Some(u.as_str())
        );
    }
    let _ = scram_dh::Record::from_postgres_verifier("u", s, 0);
    let _ = scram_dh::ClientCredential::from_json(s);
}

/// RFC 7677 section 3: the exchange `sasl_text` checks its state machines against.
pub mod rfc7677 {
    /// The client's nonce.
    pub const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    /// The server's part of the nonce.
    pub const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    /// client-first-message.
    pub const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    /// server-first-message.
    pub const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    /// client-final-message.
    pub const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    /// server-final-message.
    pub const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    /// The record of user "user", password "pencil", as a PostgreSQL verifier.
    pub const VERIFIER: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
                                WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
                                wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
}

/// Standard SCRAM's text (RFC 5802): the four message parsers, the gs2 header and
/// the PostgreSQL verifier parser, then the server's and the client's steps.
/// - What parses re-encodes byte for byte (so an `AuthMessage` built from the
///   received bytes is the one the parse describes) and parses back to itself; a
///   verifier prints back as it came.
/// - The server accepts a client-first-message only if the codec does.
/// - Against the RFC 7677 exchange, no client-final-message but the RFC's own is
///   accepted, and a client accepts only a well-formed server-first that extends
///   its nonce with an iteration count in range.
pub fn sasl_text(data: &[u8]) {
    use scram_dh::sasl::server::ClientFirstRequest;
    use scram_dh::sasl::text::{ClientFinal, ClientFirst, Gs2Header, ServerFinal, ServerFirst};
    use scram_dh::sasl::{ClientChannel, MECHANISM, MECHANISM_PLUS, ServerChannel};

    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(m) = ClientFirst::parse(s) {
            assert_eq!(m.encode(), s, "client-first does not re-encode byte for byte");
            assert_eq!(ClientFirst::parse(&m.encode()).expect("re-encoded client-first parses"), m);
        }
        if let Ok(m) = Gs2Header::parse(s) {
            assert_eq!(m.encode(), s, "gs2 header does not re-encode byte for byte");
        }
        if let Ok(m) = ServerFirst::parse(s) {
            assert_eq!(m.encode(), s, "server-first does not re-encode byte for byte");
            assert_eq!(ServerFirst::parse(&m.encode()).expect("re-encoded server-first parses"), m);
        }
        if let Ok(m) = ClientFinal::parse(s) {
            assert_eq!(m.encode(), s, "client-final does not re-encode byte for byte");
            assert_eq!(ClientFinal::parse(&m.encode()).expect("re-encoded client-final parses"), m);
        }
        if let Ok(m) = ServerFinal::parse(s) {
            assert_eq!(ServerFinal::parse(&m.encode()).expect("re-encoded server-final parses"), m);
            assert!(s.starts_with(&m.encode()), "server-final {s:?} is not its encoding plus extensions");
        }
        if let Ok(r) = scram_dh::Record::from_postgres_verifier("u", s, 0) {
            assert_eq!(r.to_postgres_verifier(), s, "a verifier does not print back as it came");
        }
    }

    let exporter = [7u8; 32];
    for (mechanism, channel) in [
        (MECHANISM, ServerChannel::None),
        (MECHANISM_PLUS, ServerChannel::TlsExporter(&exporter)),
        (MECHANISM, ServerChannel::TlsExporter(&exporter)),
    ] {
        if ClientFirstRequest::parse(mechanism, data, channel).is_ok() {
            let s = std::str::from_utf8(data).expect("the server accepted a client-first that is not UTF-8");
            ClientFirst::parse(s).expect("the server accepted a client-first the codec refuses");
        }
    }

    let config = scram_dh::ServerConfig::new(scram_dh::HostKey::from_seed(&[1; 32]), [2; 32]);
    let record =
        scram_dh::Record::from_postgres_verifier("user", rfc7677::VERIFIER, 0).expect("RFC verifier");
    let (_, pending) =
        ClientFirstRequest::parse(MECHANISM, rfc7677::CLIENT_FIRST.as_bytes(), ServerChannel::None)
            .expect("RFC client-first")
            .continue_with_nonce(
                Some(record),
                rfc7677::SERVER_NONCE,
                &config,
                &scram_dh::mock::MockProfile::new(),
            )
            .expect("RFC server-first");
    if let Ok((server_final, auth)) = pending.receive_final(data) {
        assert_eq!(data, rfc7677::CLIENT_FINAL.as_bytes(), "the server accepted a forged client-final");
        assert_eq!((server_final.as_str(), auth.username()), (rfc7677::SERVER_FINAL, "user"));
    }

    let client = scram_dh::sasl::client::SaslClient::with_nonce(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &scram_dh::ClientConfig { max_iterations: 4096 },
        rfc7677::CLIENT_NONCE,
    )
    .expect("RFC client");
    if client.receive_server_first(data).is_ok() {
        let m =
            ServerFirst::parse(std::str::from_utf8(data).expect("UTF-8")).expect("accepted, so it parses");
        assert!(m.nonce.starts_with(rfc7677::CLIENT_NONCE) && m.nonce.len() > rfc7677::CLIENT_NONCE.len());
        assert_eq!(m.iterations, 4096);
        assert!((1..=1024).contains(&m.salt.len()));
    }
}

/// Checks one engine outcome: its reply survives the wire (it re-parses as the same
/// server message, so an error's code is one of the closed set), and the reply's
/// kind matches the outcome's. Returns the error code of a failure.
fn check_reply(out: &Outcome) -> Option<ErrorCode> {
    let reply = out.reply();
    let back = ServerMessage::from_json(&reply.to_json()).expect("every reply is a valid server message");
    assert_eq!(&back, reply, "a reply does not survive its own wire form");
    match (out, reply) {
        (Outcome::Continue(_), ServerMessage::RegistrationPairing(_) | ServerMessage::AuthPairing(_))
        | (Outcome::Registered { .. }, ServerMessage::RegistrationKeysGeneration(_))
        | (Outcome::Authenticated { .. }, ServerMessage::AuthProof(_)) => None,
        (Outcome::Failed { error, .. }, ServerMessage::Error(e)) => {
            assert_eq!(error.code(), e.code, "the error sent is not the error logged");
            Some(e.code)
        }
        _ => panic!("outcome and reply disagree: reply {}", reply.type_name()),
    }
}

// ---------------------------------------------------------------------------
// server_state_machine
// ---------------------------------------------------------------------------

/// What one `server_state_machine` run did, for the replay test to check that the
/// corpus reaches the interesting paths (a harness that never completes a
/// handshake proves nothing).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Operations interpreted.
    pub ops: usize,
    /// Registrations that reached R4.
    pub registered: usize,
    /// Logins that reached A4 (during the program; the final audit not counted).
    pub authenticated: usize,
    /// Refusals by error code.
    pub refused: BTreeMap<&'static str, usize>,
}

/// The operations of a `server_state_machine` program: one byte selects one (modulo
/// [`op::COUNT`]); the bytes after it are its parameters (0 once the input ends).
pub mod op {
    /// A real client's R1 (name, password, group, labels and peer from the input).
    pub const REGISTER: u8 = 0;
    /// A real client's A1 (a user, a right or wrong secret, with or without a channel).
    pub const LOGIN: u8 = 1;
    /// The next step (R3 or A3) of an in-flight handshake, as its client computed it.
    pub const CONTINUE: u8 = 2;
    /// An earlier message again, verbatim.
    pub const REPLAY: u8 = 3;
    /// An earlier message with one field changed.
    pub const MUTATE: u8 = 4;
    /// An earlier step carrying another handshake's nonce.
    pub const SWAP_NONCE: u8 = 5;
    /// An earlier message turned into the other phase's message of the same step.
    pub const SWAP_STEP: u8 = 6;
    /// An earlier message's JSON with bytes cut, dropped or inserted.
    pub const EDIT_BYTES: u8 = 7;
    /// Time passes: a little, or beyond the session TTL.
    pub const ADVANCE: u8 = 8;
    /// Raw input bytes as one line.
    pub const RAW: u8 = 9;
    /// Several A1s for unknown users from one peer (fills the session store).
    pub const FLOOD: u8 = 10;
    /// How many operations there are.
    pub const COUNT: u8 = 11;
}

/// Operations per input: keeps one run in the milliseconds.
pub const MAX_OPS: usize = 32;
/// The session store's global cap in the state machine.
pub const SESSION_CAP: usize = 6;
/// The session store's per-peer cap in the state machine.
pub const PEER_CAP: usize = 4;
const PEERS: [&str; 3] = ["198.51.100.1", "198.51.100.2", "2001:db8::/64"];
const TTL_MS: u64 = 10_000;
// Every clock step is a multiple of 3 ms and the TTL is not, so no session is ever
// looked up exactly at its expiry instant (where "expired" is only a convention).
const TICK_MS: u64 = 3;
const PAST_TTL_MS: u64 = TICK_MS * (TTL_MS / TICK_MS + 1);
// Small on purpose so that names collide, including through SASLprep.
const NAMES: [&str; 8] = [
    "alice",
    "bob",
    "carol",
    "\u{ff43}arol", // fullwidth c: SASLprep makes it "carol"
    "a,b=c",        // escaped in AuthMessage
    "\u{2168}",     // Roman numeral nine: SASLprep makes it "IX"
    "IX",
    "j\u{fc}rgen",
];
const GROUP_NAMES: [&str; 6] = ["x25519", "modp2048", "modp8192", "X25519", "modp1024", ""];
const MAX_SENT: usize = 64;

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn index(&mut self, len: usize) -> usize {
        if len == 0 { 0 } else { usize::from(self.byte()) % len }
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = self.pos.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

enum Client {
    Registering(RegistrationClient),
    AwaitingKeys(AwaitingKeys),
    Authenticating(AuthClient),
    AwaitingSignature(AwaitingServerSignature),
    Over,
}

struct Handshake {
    username: String,
    peer: usize,
    client: Client,
    /// The genuine final step, until it is sent.
    next: Option<ClientMessage>,
    /// Registration: the password and labels. Login: unused.
    password: String,
    labels: Labels,
    /// Login: whether the secret is right for a record that existed at A1.
    should_authenticate: bool,
}

/// The model of one live server session.
struct Session {
    phase: Phase,
    client_nonce: String,
    peer: usize,
    expires_ms: u64,
    /// The handshake whose client holds this session's reply (none for sessions
    /// opened by replayed or forged pairings: nothing can complete those).
    owner: Option<usize>,
}

struct User {
    credential: ClientCredential,
    password: String,
    labels: Labels,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Genuine(usize),
    Forged,
}

struct Machine {
    pair: Pair,
    handshakes: Vec<Handshake>,
    sessions: Vec<Session>,
    users: BTreeMap<String, User>,
    /// Messages sent (the first [`MAX_SENT`]), for replays and mutations.
    sent: Vec<ClientMessage>,
    /// Pairings the server accepted (a verbatim replay of one while live is `nonce_reused`).
    accepted_pairings: Vec<ClientMessage>,
    /// Every combined nonce the server handed out.
    nonces: Vec<String>,
    /// The salt first sent to each unregistered name.
    mock_salts: BTreeMap<String, Vec<u8>>,
    stats: Stats,
}

/// Interprets `data` as a program of operations ([`op`]) against one
/// `ServerEngine` with memory stores, checking after each one that nothing
/// panicked; every reply is a valid server message or a closed-set error; no
/// replayed, swapped or mutated step completes a handshake; a final step without a
/// live session is `unknown_session` (so each R3 and A3 is single use); genuine
/// handshakes succeed exactly when they should; R2 carries the server's ic and host
/// key, and A2 a 32-byte salt and the server's ic for known and unknown users alike
/// (an unknown user's mock salt the same every time); the credential store holds
/// exactly the users that got R4, each usable by a real client (checked at the end);
/// the session store never exceeds its caps. Returns what the run did.
pub fn server_state_machine(data: &[u8]) -> Stats {
    let mut input = Input { data, pos: 0 };
    let seed = u64::from(input.byte());
    let mut m = Machine::new(seed);
    while !input.done() && m.stats.ops < MAX_OPS {
        m.stats.ops += 1;
        m.step(&mut input);
        m.check_stores();
    }
    m.audit();
    m.stats
}

fn error_code(out: &Outcome) -> Option<ErrorCode> {
    match out.reply() {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    }
}

fn is_final(msg: &ClientMessage) -> bool {
    matches!(msg, ClientMessage::RegistrationSendPassword(_) | ClientMessage::AuthClientProofGeneration(_))
}

fn pick_name(input: &mut Input<'_>) -> String {
    let b = input.byte();
    match b % 10 {
        8 => {
            let n = usize::from(input.byte() % 5);
            String::from_utf8_lossy(input.bytes(n)).into_owned()
        }
        9 => format!("user{}", input.byte()),
        i => NAMES[usize::from(i)].to_owned(),
    }
}

fn mutate_string(s: &str, input: &mut Input<'_>, pool: &[&str]) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    match input.byte() % 8 {
        0 => return pool[input.index(pool.len())].to_owned(),
        1 if !chars.is_empty() => {
            let i = input.index(chars.len());
            chars[i] = char::from(b'0' + input.byte() % 75);
        }
        2 => chars.truncate(input.index(chars.len() + 1)),
        3 => chars.push(char::from(input.byte() % 128)),
        4 => return s.to_uppercase(),
        5 => {
            if let Some((a, b)) = s.split_once('-') {
                return format!("{b}-{a}");
            }
            return format!("{s}-{s}");
        }
        6 => return String::new(),
        _ => chars.insert(input.index(chars.len() + 1), ['\u{0}', '\u{ad}', '\u{1b}', 'é'][input.index(4)]),
    }
    chars.into_iter().collect()
}

fn mutate_bytes(v: &Base64, input: &mut Input<'_>) -> Base64 {
    let mut b = v.0.clone();
    match input.byte() % 7 {
        0 if !b.is_empty() => {
            let i = input.index(b.len());
            b[i] ^= 1 << (input.byte() % 8);
        }
        1 => b.truncate(input.index(b.len() + 1)),
        2 => b.push(input.byte()),
        3 => b.iter_mut().for_each(|x| *x = 0),
        4 => b.iter_mut().for_each(|x| *x = 0xff),
        5 => {
            // 1, a low-order or out-of-range key in either group's encoding.
            b.iter_mut().for_each(|x| *x = 0);
            if let Some(last) = b.last_mut() {
                *last = 1;
            }
        }
        _ => b.reverse(),
    }
    Base64(b)
}

fn mutate(msg: &ClientMessage, input: &mut Input<'_>) -> ClientMessage {
    let mut msg = msg.clone();
    let field = input.byte();
    match &mut msg {
        ClientMessage::RegistrationPairing(m) => match field % 5 {
            0 => m.username = mutate_string(&m.username, input, &NAMES),
            1 => m.group = mutate_string(&m.group, input, &GROUP_NAMES),
            2 => m.public_key = mutate_bytes(&m.public_key, input),
            3 => m.client_nonce = mutate_string(&m.client_nonce, input, &["", "0"]),
            _ => m.labels = mutate_string(&m.labels, input, &["random", "rfc", "RFC", "none"]),
        },
        ClientMessage::RegistrationSendPassword(m) => match field % 2 {
            0 => m.secret_key = mutate_bytes(&m.secret_key, input),
            _ => m.nonce = mutate_string(&m.nonce, input, &[""]),
        },
        ClientMessage::AuthPairing(m) => match field % 5 {
            0 => m.username = mutate_string(&m.username, input, &NAMES),
            1 => m.client_nonce = mutate_string(&m.client_nonce, input, &["", "0"]),
            2 => {
                m.group = m
                    .group
                    .as_ref()
                    .map_or(Some("x25519".to_owned()), |g| Some(mutate_string(g, input, &GROUP_NAMES)))
            }
            3 => {
                m.public_key =
                    m.public_key.as_ref().map_or(Some(Base64(vec![9; 32])), |k| Some(mutate_bytes(k, input)))
            }
            _ => {
                m.group = None;
                m.public_key = None;
            }
        },
        ClientMessage::AuthClientProofGeneration(m) => match field % 2 {
            0 => m.client_proof = mutate_bytes(&m.client_proof, input),
            _ => m.nonce = mutate_string(&m.nonce, input, &[""]),
        },
    }
    msg
}

/// The same step of the other phase, carrying the same bytes and nonce.
fn swap_step(msg: &ClientMessage) -> ClientMessage {
    match msg.clone() {
        ClientMessage::RegistrationPairing(m) => ClientMessage::AuthPairing(AuthPairing {
            username: m.username,
            client_nonce: m.client_nonce,
            group: Some(m.group),
            public_key: Some(m.public_key),
        }),
        ClientMessage::AuthPairing(m) => ClientMessage::RegistrationPairing(RegistrationPairing {
            username: m.username,
            group: m.group.unwrap_or_else(|| "x25519".to_owned()),
            public_key: m.public_key.unwrap_or_else(|| Base64(vec![9; 32])),
            client_nonce: m.client_nonce,
            labels: "random".to_owned(),
        }),
        ClientMessage::RegistrationSendPassword(m) => {
            ClientMessage::AuthClientProofGeneration(AuthClientProof {
                client_proof: m.secret_key,
                nonce: m.nonce,
            })
        }
        ClientMessage::AuthClientProofGeneration(m) => {
            ClientMessage::RegistrationSendPassword(RegistrationSendPassword {
                secret_key: m.client_proof,
                nonce: m.nonce,
            })
        }
    }
}

fn edit_bytes(text: &str, input: &mut Input<'_>) -> String {
    let mut b = text.as_bytes().to_vec();
    let i = input.index(b.len() + 1);
    match input.byte() % 4 {
        0 => b.truncate(i),
        1 if i < b.len() => {
            b.remove(i);
        }
        2 => b.insert(i, [b' ', b'"', b',', b'}', b'\\', b'\n', 0xff, b'0'][input.index(8)]),
        _ => b.extend_from_slice(b" {}"),
    }
    String::from_utf8_lossy(&b).into_owned()
}

impl Machine {
    fn new(seed: u64) -> Self {
        let mut pair = Pair::with_config(seed, |c| {
            // The cheap groups only: every DH a run does stays well under a millisecond.
            c.groups = vec![Group::X25519, Group::Modp2048];
            c.session_ttl_ms = TTL_MS;
        });
        pair.engine = ServerEngine::new(
            pair.engine.config().clone(),
            MemoryCredentialStore::default(),
            MemorySessionStore::new(SESSION_CAP, PEER_CAP),
        )
        .expect("valid engine");
        Self {
            pair,
            handshakes: Vec::new(),
            sessions: Vec::new(),
            users: BTreeMap::new(),
            sent: Vec::new(),
            accepted_pairings: Vec::new(),
            nonces: Vec::new(),
            mock_salts: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.byte() % op::COUNT {
            op::REGISTER => self.register(input),
            op::LOGIN => {
                let name = self.pick_login_name(input);
                self.login(&name, input);
            }
            op::CONTINUE => {
                let pending: Vec<usize> =
                    (0..self.handshakes.len()).filter(|&h| self.handshakes[h].next.is_some()).collect();
                if pending.is_empty() {
                    return;
                }
                let h = pending[input.index(pending.len())];
                let msg = self.handshakes[h].next.clone().expect("pending");
                let peer = self.handshakes[h].peer;
                self.deliver(&msg.to_json(), peer, Origin::Genuine(h));
            }
            op::REPLAY => {
                if let Some(msg) = self.pick_sent(input) {
                    let peer = input.index(PEERS.len());
                    self.deliver(&msg.to_json(), peer, Origin::Forged);
                }
            }
            op::MUTATE => {
                if let Some(msg) = self.pick_sent(input) {
                    let forged = mutate(&msg, input);
                    let peer = input.index(PEERS.len());
                    self.deliver(&forged.to_json(), peer, Origin::Forged);
                }
            }
            op::SWAP_NONCE => self.swap_nonce(input),
            op::SWAP_STEP => {
                if let Some(msg) = self.pick_sent(input) {
                    let peer = input.index(PEERS.len());
                    self.deliver(&swap_step(&msg).to_json(), peer, Origin::Forged);
                }
            }
            op::EDIT_BYTES => {
                if let Some(msg) = self.pick_sent(input) {
                    let text = edit_bytes(&msg.to_json(), input);
                    let peer = input.index(PEERS.len());
                    self.deliver(&text, peer, Origin::Forged);
                }
            }
            op::ADVANCE => {
                let b = input.byte();
                let ms = if b & 0x80 != 0 { PAST_TTL_MS } else { TICK_MS * 11 * u64::from(b) };
                self.pair.advance(ms);
            }
            op::RAW => {
                let n = usize::from(input.byte() % 96);
                let text = String::from_utf8_lossy(input.bytes(n)).into_owned();
                let peer = input.index(PEERS.len());
                self.deliver(&text, peer, Origin::Forged);
            }
            op::FLOOD => {
                let peer = input.index(PEERS.len());
                let n = 1 + input.byte() % 8;
                for _ in 0..n {
                    let name = format!("flood{}", self.handshakes.len());
                    self.start_login(&name, ClientSecret::Keys(wrong_keys(0)), false, None, peer);
                }
            }
            _ => unreachable!("operations are taken modulo op::COUNT"),
        }
    }

    /// A message to replay or tamper with: one sent earlier, or a handshake's final
    /// step not sent yet (so the forgery can arrive before the genuine step).
    fn pick_sent(&self, input: &mut Input<'_>) -> Option<ClientMessage> {
        let pending = self.handshakes.iter().filter_map(|h| h.next.as_ref());
        let candidates: Vec<&ClientMessage> = self.sent.iter().chain(pending).collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[input.index(candidates.len())].clone())
    }

    fn pick_login_name(&self, input: &mut Input<'_>) -> String {
        if !input.byte().is_multiple_of(3) && !self.users.is_empty() {
            let i = input.index(self.users.len());
            return self.users.keys().nth(i).cloned().unwrap_or_default();
        }
        pick_name(input)
    }

    fn register(&mut self, input: &mut Input<'_>) {
        let name = pick_name(input);
        let flags = input.byte();
        let group = if flags.is_multiple_of(8) { Group::Modp2048 } else { Group::X25519 };
        let labels = if flags & 0x10 != 0 { Labels::Rfc } else { Labels::Random };
        let password = format!("pw-{}", (flags >> 5) % 4);
        let peer = input.index(PEERS.len());
        let Ok(step) = RegistrationClient::start(
            &mut self.pair.client_rng,
            &name,
            Password::new(password.clone()),
            group,
            labels,
            HostKeyCheck::TrustOnFirstUse,
            self.pair.client_config,
        ) else {
            return; // the client itself refuses a name SASLprep rejects
        };
        let ClientMessage::RegistrationPairing(r1) = &step.message else {
            panic!("R1 is a registration_pairing")
        };
        let h = self.handshakes.len();
        self.handshakes.push(Handshake {
            username: r1.username.clone(),
            peer,
            client: Client::Registering(step.state),
            next: None,
            password,
            labels,
            should_authenticate: false,
        });
        self.deliver(&step.message.to_json(), peer, Origin::Genuine(h));
    }

    fn login(&mut self, name: &str, input: &mut Input<'_>) {
        let Ok(username) = scram_dh::username::normalize(name) else { return };
        let kind = input.byte();
        let channel = match input.byte() % 8 {
            5 | 6 => Some(Group::X25519),
            7 => Some(Group::Modp2048),
            _ => None,
        };
        let peer = input.index(PEERS.len());
        let user = self.users.get(&username);
        let (secret, should) = match (kind % 4, user) {
            (0 | 1, Some(u)) => (u.credential.secret(), true),
            (2, _) => {
                let password = format!("pw-{}", (kind >> 2) % 4);
                let should = user.is_some_and(|u| u.labels == Labels::Rfc && u.password == password);
                (ClientSecret::Password(Password::new(password)), should)
            }
            _ => (ClientSecret::Keys(wrong_keys(kind)), false),
        };
        self.start_login(&username, secret, should, channel, peer);
    }

    fn start_login(
        &mut self,
        username: &str,
        secret: ClientSecret,
        should_authenticate: bool,
        channel: Option<Group>,
        peer: usize,
    ) {
        let Ok(step) =
            AuthClient::start(&mut self.pair.client_rng, username, secret, channel, self.pair.client_config)
        else {
            return;
        };
        let h = self.handshakes.len();
        self.handshakes.push(Handshake {
            username: username.to_owned(),
            peer,
            client: Client::Authenticating(step.state),
            next: None,
            password: String::new(),
            labels: Labels::Random,
            should_authenticate,
        });
        self.deliver(&step.message.to_json(), peer, Origin::Genuine(h));
    }

    fn swap_nonce(&mut self, input: &mut Input<'_>) {
        let Some(msg) = self.pick_sent(input) else { return };
        if self.nonces.is_empty() {
            return;
        }
        let other = self.nonces[input.index(self.nonces.len())].clone();
        let other_client = other.split_once('-').map(|(c, _)| c.to_owned()).unwrap_or_default();
        let mut msg = msg;
        match &mut msg {
            ClientMessage::RegistrationPairing(m) => m.client_nonce = other_client,
            ClientMessage::AuthPairing(m) => m.client_nonce = other_client,
            ClientMessage::RegistrationSendPassword(m) => m.nonce = other,
            ClientMessage::AuthClientProofGeneration(m) => m.nonce = other,
        }
        let peer = input.index(PEERS.len());
        self.deliver(&msg.to_json(), peer, Origin::Forged);
    }

    fn expire(&mut self) {
        let now = self.pair.now_ms;
        self.sessions.retain(|s| now < s.expires_ms);
    }

    /// Sends one line to the engine and checks the outcome against the model.
    fn deliver(&mut self, line: &str, peer: usize, origin: Origin) {
        let parsed = ClientMessage::from_json(line).ok();
        // A forged message identical to a handshake's unsent final step *is* that step.
        let origin = match (&origin, &parsed) {
            (Origin::Forged, Some(m)) => self
                .handshakes
                .iter()
                .position(|h| h.next.as_ref() == Some(m))
                .map_or(Origin::Forged, Origin::Genuine),
            _ => origin,
        };
        let out = block_on(self.pair.engine.handle_json(
            line,
            PEERS[peer],
            self.pair.now_ms,
            &mut self.pair.server_rng,
        ));
        let code = check_reply(&out);
        if let Some(code) = code {
            *self.stats.refused.entry(code.as_str()).or_insert(0) += 1;
        }
        let Some(msg) = parsed else {
            assert_eq!(code, Some(ErrorCode::InvalidMessage), "a line that does not parse: {line:?}");
            return;
        };
        if let Origin::Genuine(h) = origin
            && is_final(&msg)
        {
            self.handshakes[h].next = None;
        }
        if self.sent.len() < MAX_SENT && !self.sent.contains(&msg) {
            self.sent.push(msg.clone());
        }
        self.expire();
        match &msg {
            ClientMessage::RegistrationPairing(m) => {
                self.on_pairing(
                    &msg,
                    Phase::Registration,
                    &m.client_nonce,
                    &m.username,
                    false,
                    peer,
                    origin,
                    out,
                );
            }
            ClientMessage::AuthPairing(m) => {
                let channel = m.public_key.is_some();
                self.on_pairing(
                    &msg,
                    Phase::Authentication,
                    &m.client_nonce,
                    &m.username,
                    channel,
                    peer,
                    origin,
                    out,
                );
            }
            ClientMessage::RegistrationSendPassword(m) => {
                self.on_final(Phase::Registration, &m.nonce, origin, out);
            }
            ClientMessage::AuthClientProofGeneration(m) => {
                self.on_final(Phase::Authentication, &m.nonce, origin, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_pairing(
        &mut self,
        msg: &ClientMessage,
        phase: Phase,
        client_nonce: &str,
        username: &str,
        channel: bool,
        peer: usize,
        origin: Origin,
        out: Outcome,
    ) {
        let live = self.sessions.iter().any(|s| s.phase == phase && s.client_nonce == client_nonce);
        let full = self.sessions.len() >= SESSION_CAP
            || self.sessions.iter().filter(|s| s.peer == peer).count() >= PEER_CAP;
        let taken = phase == Phase::Registration && self.users.contains_key(username);
        let genuine = match origin {
            Origin::Genuine(h) => Some(h),
            Origin::Forged => None,
        };
        let code = error_code(&out);
        match out {
            Outcome::Continue(reply) => {
                assert!(!live, "a pairing reusing a live client nonce was accepted");
                assert!(!full, "a pairing was accepted past the session store's cap");
                let config = self.pair.engine.config();
                let nonce = match (&reply, phase) {
                    (ServerMessage::RegistrationPairing(r), Phase::Registration) => {
                        assert_eq!(r.salt.as_bytes().len(), 32, "R2: a 32-byte salt");
                        assert_eq!(r.ic, config.ic, "R2: the server's iteration count");
                        assert_eq!(r.host_key.as_bytes(), config.host_key.public_key(), "R2: the host key");
                        r.nonce.clone()
                    }
                    (ServerMessage::AuthPairing(r), Phase::Authentication) => {
                        assert_eq!(r.public_key.is_some(), channel, "A2 has a public key iff A1 had one");
                        // SPEC 4: an unknown user's A2 looks like a known user's (same
                        // salt length and ic) and is the same every time it is asked for.
                        assert_eq!(r.ic, config.ic, "A2: every record here has the server's ic");
                        assert_eq!(r.salt.as_bytes().len(), 32, "A2: known and unknown salts alike");
                        match self.users.get(username) {
                            Some(u) => {
                                assert_eq!(r.salt.as_bytes(), u.credential.salt, "A2: the user's salt")
                            }
                            None => {
                                let first = self
                                    .mock_salts
                                    .entry(username.to_owned())
                                    .or_insert_with(|| r.salt.0.clone());
                                assert_eq!(
                                    r.salt.as_bytes(),
                                    first.as_slice(),
                                    "A2: a deterministic mock salt"
                                );
                            }
                        }
                        r.nonce.clone()
                    }
                    _ => panic!("a pairing was answered with {}", reply.type_name()),
                };
                assert!(
                    nonce.strip_prefix(client_nonce).is_some_and(|rest| rest.starts_with('-')),
                    "the combined nonce does not start with the client nonce"
                );
                self.nonces.push(nonce);
                self.accepted_pairings.push(msg.clone());
                self.sessions.push(Session {
                    phase,
                    client_nonce: client_nonce.to_owned(),
                    peer,
                    expires_ms: self.pair.now_ms + TTL_MS,
                    owner: genuine,
                });
                if let Some(h) = genuine {
                    self.client_receives_pairing(h, reply);
                }
            }
            Outcome::Failed { .. } => {
                let code = code.expect("a failure carries a code");
                if let Some(h) = genuine {
                    self.handshakes[h].client = Client::Over;
                    if taken {
                        assert!(
                            matches!(code, ErrorCode::UsernameTaken | ErrorCode::Busy),
                            "R1 for a registered name refused with {code}"
                        );
                    } else {
                        assert!(full && code == ErrorCode::Busy, "a genuine pairing was refused with {code}");
                    }
                } else if live && self.accepted_pairings.contains(msg) {
                    let allowed: &[ErrorCode] = if phase == Phase::Registration {
                        &[ErrorCode::NonceReused, ErrorCode::UsernameTaken]
                    } else {
                        &[ErrorCode::NonceReused]
                    };
                    assert!(allowed.contains(&code), "a replayed live pairing was refused with {code}");
                }
            }
            _ => panic!("a pairing completed a handshake"),
        }
    }

    fn client_receives_pairing(&mut self, h: usize, reply: ServerMessage) {
        let hs = &mut self.handshakes[h];
        let client = std::mem::replace(&mut hs.client, Client::Over);
        match (client, reply) {
            (Client::Registering(c), ServerMessage::RegistrationPairing(r2)) => {
                let step = c.receive_pairing(r2).expect("a real client accepts the server's genuine R2");
                hs.next = Some(step.message);
                hs.client = Client::AwaitingKeys(step.state);
            }
            (Client::Authenticating(c), ServerMessage::AuthPairing(a2)) => {
                let step = c.receive_pairing(a2).expect("a real client accepts the server's genuine A2");
                hs.next = Some(step.message);
                hs.client = Client::AwaitingSignature(step.state);
            }
            _ => panic!("handshake {h} got a reply of the wrong phase"),
        }
    }

    fn on_final(&mut self, phase: Phase, nonce: &str, origin: Origin, out: Outcome) {
        let code = error_code(&out);
        let Ok(combined) = CombinedNonce::parse(nonce) else {
            assert!(code.is_some(), "a step with a malformed nonce succeeded");
            return;
        };
        let client_nonce = combined.client.to_hex();
        let Some(i) = self.sessions.iter().position(|s| s.phase == phase && s.client_nonce == client_nonce)
        else {
            assert_eq!(
                code,
                Some(ErrorCode::UnknownSession),
                "a final step with no live session (consumed, expired or never opened)"
            );
            return;
        };
        // Single use: the step consumes the session whatever it leads to.
        let session = self.sessions.remove(i);
        let genuine = match origin {
            Origin::Genuine(h) if session.owner == Some(h) => Some(h),
            _ => None,
        };
        let should_succeed = genuine.is_some_and(|h| {
            let hs = &self.handshakes[h];
            match phase {
                Phase::Registration => !self.users.contains_key(&hs.username),
                Phase::Authentication => hs.should_authenticate,
                Phase::Sasl => unreachable!("the state machine parks no SASL exchange"),
            }
        });
        match out {
            Outcome::Registered { reply, username, .. } => {
                let h = genuine.expect("a replayed, swapped or forged R3 registered a user");
                assert!(should_succeed, "R3 registered a name that was taken");
                assert_eq!(phase, Phase::Registration);
                let hs = &mut self.handshakes[h];
                assert_eq!(username, hs.username);
                let Client::AwaitingKeys(c) = std::mem::replace(&mut hs.client, Client::Over) else {
                    panic!("registered a handshake that was not awaiting R4");
                };
                let ServerMessage::RegistrationKeysGeneration(r4) = reply else { panic!("R4 expected") };
                let credential = c.finish(r4).expect("a real client accepts the server's genuine R4");
                assert_eq!(credential.username, username);
                let user = User { credential, password: hs.password.clone(), labels: hs.labels };
                self.users.insert(username, user);
                self.stats.registered += 1;
            }
            Outcome::Authenticated { reply, auth, .. } => {
                let h = genuine.expect("a replayed, swapped or forged A3 authenticated");
                assert!(should_succeed, "A3 authenticated with a wrong secret or an unknown user");
                assert_eq!(phase, Phase::Authentication);
                let hs = &mut self.handshakes[h];
                assert_eq!(auth.username(), hs.username);
                let Client::AwaitingSignature(c) = std::mem::replace(&mut hs.client, Client::Over) else {
                    panic!("authenticated a handshake that was not awaiting A4");
                };
                let ServerMessage::AuthProof(a4) = reply else { panic!("A4 expected") };
                let client = c.finish(a4).expect("a real client accepts the server's genuine A4");
                assert_eq!(client.username(), auth.username());
                assert_eq!(
                    client.session_keys(),
                    auth.session_keys(),
                    "both ends derive the same channel keys"
                );
                self.stats.authenticated += 1;
            }
            Outcome::Failed { .. } => {
                let code = code.expect("a failure carries a code");
                assert!(!should_succeed, "a genuine final step was refused with {code}");
                if let Some(h) = genuine {
                    self.handshakes[h].client = Client::Over;
                    let expected = match phase {
                        Phase::Registration => ErrorCode::UsernameTaken,
                        Phase::Authentication => ErrorCode::AuthenticationFailed,
                        Phase::Sasl => unreachable!("the state machine parks no SASL exchange"),
                    };
                    assert_eq!(code, expected, "a genuine final step that must fail, failed oddly");
                }
            }
            Outcome::Continue(reply) => panic!("a final step was answered with {}", reply.type_name()),
        }
    }

    /// After every operation: the session store within its cap, and the credential
    /// store holding exactly the users that got R4, each with the keys its client holds.
    fn check_stores(&self) {
        let engine = &self.pair.engine;
        assert!(engine.sessions().len() <= SESSION_CAP, "the session store grew past its cap");
        let names = block_on(engine.credentials().list()).expect("memory store lists");
        let expected: Vec<&String> = self.users.keys().collect();
        assert_eq!(names.iter().collect::<Vec<_>>(), expected, "records are exactly the users that got R4");
        for (name, user) in &self.users {
            let record =
                block_on(engine.credentials().read(name)).expect("memory store reads").expect("exists");
            let keys = ClientKeys {
                client_key: user.credential.client_key.clone(),
                server_key: user.credential.server_key.clone(),
            };
            assert!(
                record.stored_key == keys.stored_key(),
                "{name}: the record is not the one its client holds"
            );
            assert!(
                record.server_key == keys.server_key,
                "{name}: the record is not the one its client holds"
            );
        }
    }

    /// At the end: every registered user (a few) logs in with what its client kept,
    /// by password too when the labels are RFC's, and a wrong key fails.
    fn audit(&mut self) {
        self.pair.advance(PAST_TTL_MS);
        let users: Vec<(String, ClientSecret, Option<String>)> = self
            .users
            .iter()
            .take(3)
            .map(|(n, u)| {
                (n.clone(), u.credential.secret(), (u.labels == Labels::Rfc).then(|| u.password.clone()))
            })
            .collect();
        for (i, (name, secret, password)) in users.into_iter().enumerate() {
            let channel = (i % 2 == 1).then_some(Group::X25519);
            let (client, server) =
                self.pair.login(&name, secret, channel).expect("a registered user logs in");
            assert_eq!(client.username(), server.username());
            assert_eq!(client.session_keys(), server.session_keys());
            if let Some(pw) = password {
                self.pair
                    .login(&name, ClientSecret::Password(Password::new(pw)), None)
                    .expect("an RFC-labels user logs in with the password");
            }
            let wrong = self.pair.login(&name, ClientSecret::Keys(wrong_keys(1)), None);
            assert!(
                matches!(wrong, Err(ref e) if e.code() == ErrorCode::AuthenticationFailed),
                "a wrong key must fail with authentication_failed"
            );
        }
    }
}

fn wrong_keys(b: u8) -> ClientKeys {
    ClientKeys { client_key: ClientKey::from_bytes([b; 32]), server_key: ServerKey::from_bytes([!b; 32]) }
}
