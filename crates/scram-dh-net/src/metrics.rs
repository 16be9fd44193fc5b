//! Prometheus metrics (issue 10): one process-global registry of atomics that
//! every front counts into without wiring (the TCP front, the standard SCRAM
//! listeners, the HTTP front and its RFC 7804 layer), rendered in the
//! Prometheus text exposition format 0.0.4 by [`render`] and served unsigned
//! on `GET /metrics` of the HTTP listener ([`crate::http::HttpOptions::metrics`]).
//!
//! The hot path is a few relaxed atomic additions: no lock, no allocation, no
//! map lookup; histogram buckets are fixed arrays of `AtomicU64`. Labels take
//! only the closed sets below (never a username, a peer address or a session
//! id), so the exposition has a fixed number of series.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `scram_dh_handshakes_total` | counter | `front` (`tcp`, `http`, `sasl`, `rfc7804`), `kind` (`registration`, `authentication`), `outcome` (`ok`, `failed`, `refused`, `error`) |
//! | `scram_dh_handshake_duration_seconds` | histogram | `front`, `kind`: first message received to final reply sent |
//! | `scram_dh_admission_refusals_total` | counter | `reason`: one per [`Refusal`], plus `http_sessions` (the HTTP session cap at A4) |
//! | `scram_dh_dh_operations_total` | counter | `group`: key exchanges the server did (R1, A1 with a channel, answered) |
//! | `scram_dh_signed_requests_total` | counter | `result`: signed HTTP requests as the signed layer judged them |
//! | `scram_dh_connections` | gauge | `front` (`tcp`, `sasl`, `http`): open connections |
//! | `scram_dh_channels` | gauge | none: open encrypted TCP channels |
//! | `scram_dh_handshake_sessions` | gauge | none: in-flight handshakes held by the engines' session stores (when they can count them: [`watch_sessions`]) |
//! | `scram_dh_handshake_sessions_expired_total` | counter | none: handshake sessions dropped when their TTL passed before the next step: abandoned handshakes (or a next step too late), on every front; for stores that count them (the memory store; Redis, per node) |
//! | `scram_dh_handshake_sessions_shared` | gauge | none: in-flight handshakes in the session store the HTTP front's engine shares with other nodes (Redis), every node's together: the same figure on each node, so take the max across nodes, not the sum ([`SessionStore::shared_live`]) |
//! | `scram_dh_http_sessions` | gauge | none: live HTTP sessions of the front answering the scrape; with a store nodes share (Redis), the store's, every node's together (take the max across nodes) |
//!
//! Outcomes: `ok` registered or authenticated; `failed` a wrong proof or an
//! unknown user (`authentication_failed`); `refused` by the admission layer
//! (caps, rate limits, penalties, a penalty store that cannot be read), a
//! channel or HTTP session cap, or an engine at its session cap (`busy`);
//! `error` everything else (malformed or out-of-order steps, an expired
//! session, a taken name, a store failure, a client that went away or timed
//! out mid-handshake, over TCP and standard SCRAM). A request or line that is
//! not a handshake message at all is not a handshake and is not counted here.
//! Over HTTP and RFC 7804 a handshake abandoned after its first request is not
//! counted here either: no request ends it, its engine session just expires.
//! While it lives, `scram_dh_handshake_sessions` shows it; once its TTL passes,
//! `scram_dh_handshake_sessions_expired_total` counts it (on any front), for the
//! stores that can tell: the memory store, and Redis, where each node counts the
//! expired sessions its own calls dropped from the shared index (so the nodes'
//! totals add up to the cluster's; a session is counted at the first handshake
//! after its deadline, on any node). Redis cannot tell which live sessions are a
//! node's own (the next step may reach any node), so it reports no
//! `scram_dh_handshake_sessions`; `scram_dh_handshake_sessions_shared` gives the
//! whole store's count instead, read at each scrape.
//!
//! Durations: over TCP and standard SCRAM the time from the first line of a
//! handshake to its final reply. Over HTTP a handshake spans two requests; the
//! front remembers when its first request came in a fixed table of 4096 atomic
//! slots keyed by a keyed hash of the client nonce (RFC 7804: the sid), so a
//! handshake whose slot was taken by another in between is counted but not
//! timed. A handshake that ends at its first request is timed by that request.
//!
//! ```
//! use std::time::Duration;
//! use scram_dh_net::metrics::{self, Front, HandshakeOutcome, Kind};
//!
//! metrics::record_handshake(Front::Tcp, Kind::Authentication, HandshakeOutcome::Ok, Some(Duration::from_micros(800)));
//! let text = metrics::render();
//! let line = text
//!     .lines()
//!     .find(|l| l.starts_with(r#"scram_dh_handshakes_total{front="tcp",kind="authentication",outcome="ok"} "#))
//!     .unwrap();
//! let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
//! assert!(count >= 1);
//! assert!(text.contains(r#"scram_dh_handshake_duration_seconds_bucket{front="tcp",kind="authentication",le="0.001"}"#));
//! ```

use std::any::Any;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use scram_dh::message::ClientMessage;
use scram_dh::{CredentialStore, Error, ErrorCode, Group, MemorySessionStore, ServerEngine, SessionStore};

use crate::admission::Refusal;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const RELAXED: Ordering = Ordering::Relaxed;

/// Which front a handshake came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// The native protocol over TCP ([`crate::Server`]).
    Tcp,
    /// The native protocol as JSON over HTTP ([`crate::http::HttpFront`]).
    Http,
    /// Standard SCRAM-SHA-256 in GNU SASL's line framing, plain or over TLS ([`crate::sasl::SaslServer`]).
    Sasl,
    /// Standard SCRAM-SHA-256 over HTTP (RFC 7804).
    Rfc7804,
}

impl Front {
    const ALL: [Self; 4] = [Self::Tcp, Self::Http, Self::Sasl, Self::Rfc7804];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Sasl => "sasl",
            Self::Rfc7804 => "rfc7804",
        }
    }
}

/// Which handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// In-band registration (R1..R4).
    Registration,
    /// Authentication (A1..A4, or a standard SCRAM exchange).
    Authentication,
}

impl Kind {
    const ALL: [Self; 2] = [Self::Registration, Self::Authentication];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Authentication => "authentication",
        }
    }

    /// The handshake a client message belongs to.
    #[must_use]
    pub fn of(msg: &ClientMessage) -> Self {
        match msg {
            ClientMessage::RegistrationPairing(_) | ClientMessage::RegistrationSendPassword(_) => {
                Self::Registration
            }
            _ => Self::Authentication,
        }
    }
}

/// How a handshake ended (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeOutcome {
    /// Registered or authenticated.
    Ok,
    /// A wrong proof or an unknown user.
    Failed,
    /// Refused for load or penalties.
    Refused,
    /// Anything else.
    Error,
}

impl HandshakeOutcome {
    const ALL: [Self; 4] = [Self::Ok, Self::Failed, Self::Refused, Self::Error];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }

    /// The outcome of a handshake that failed with `error`.
    #[must_use]
    pub fn of_error(error: &Error) -> Self {
        Self::of_code(error.code())
    }

    /// The outcome of a handshake that failed with `code`.
    #[must_use]
    pub fn of_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::AuthenticationFailed => Self::Failed,
            ErrorCode::Busy => Self::Refused,
            _ => Self::Error,
        }
    }
}

/// Why a resource was refused: the `reason` label of `scram_dh_admission_refusals_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// [`Refusal::ServerFull`].
    ServerFull,
    /// [`Refusal::PeerConnections`].
    PeerConnections,
    /// [`Refusal::Handshakes`].
    Handshakes,
    /// [`Refusal::RateLimited`].
    RateLimited,
    /// [`Refusal::PeerPenalty`].
    PeerPenalty,
    /// [`Refusal::AccountPenalty`].
    AccountPenalty,
    /// [`Refusal::Channels`].
    Channels,
    /// [`Refusal::Unavailable`].
    Unavailable,
    /// The HTTP session cap, at A4 over HTTP.
    HttpSessions,
}

impl RefusalReason {
    const ALL: [Self; 9] = [
        Self::ServerFull,
        Self::PeerConnections,
        Self::Handshakes,
        Self::RateLimited,
        Self::PeerPenalty,
        Self::AccountPenalty,
        Self::Channels,
        Self::Unavailable,
        Self::HttpSessions,
    ];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ServerFull => "server_full",
            Self::PeerConnections => "peer_connections",
            Self::Handshakes => "handshakes",
            Self::RateLimited => "rate_limited",
            Self::PeerPenalty => "peer_penalty",
            Self::AccountPenalty => "account_penalty",
            Self::Channels => "channels",
            Self::Unavailable => "unavailable",
            Self::HttpSessions => "http_sessions",
        }
    }
}

impl From<&Refusal> for RefusalReason {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::ServerFull => Self::ServerFull,
            Refusal::PeerConnections => Self::PeerConnections,
            Refusal::Handshakes => Self::Handshakes,
            Refusal::RateLimited { .. } => Self::RateLimited,
            Refusal::PeerPenalty { .. } => Self::PeerPenalty,
            Refusal::AccountPenalty { .. } => Self::AccountPenalty,
            Refusal::Channels => Self::Channels,
            Refusal::Unavailable => Self::Unavailable,
        }
    }
}

/// How the signed layer judged a request: the `result` label of
/// `scram_dh_signed_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedResult {
    /// Verified and served.
    Ok,
    /// No `Authorization` header (401).
    Missing,
    /// An `Authorization` header that does not parse (401).
    Malformed,
    /// No such session: never was, expired, logged out (401).
    UnknownSession,
    /// The request MAC is wrong (401).
    BadMac,
    /// A seq seen before or below the window (401).
    Replay,
    /// A body over the limit (413).
    TooLarge,
    /// The session store failed (503).
    Unavailable,
}

impl SignedResult {
    const ALL: [Self; 8] = [
        Self::Ok,
        Self::Missing,
        Self::Malformed,
        Self::UnknownSession,
        Self::BadMac,
        Self::Replay,
        Self::TooLarge,
        Self::Unavailable,
    ];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownSession => "unknown_session",
            Self::BadMac => "bad_mac",
            Self::Replay => "replay",
            Self::TooLarge => "too_large",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Upper bounds of the duration buckets, in nanoseconds, and as the `le` label.
const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
const BOUNDS_LE: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10",
];

/// A histogram: one count per bucket (not cumulative; the last is `+Inf`
/// only) and the sum in nanoseconds. `_count` and the cumulative buckets are
/// computed from the same loads when rendering, so they always agree.
struct Histogram {
    buckets: [AtomicU64; BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self { buckets: [const { AtomicU64::new(0) }; BOUNDS_NS.len() + 1], sum_ns: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(BOUNDS_NS.len());
        self.buckets[i].fetch_add(1, RELAXED);
        self.sum_ns.fetch_add(ns, RELAXED);
    }
}

const FRONTS: usize = Front::ALL.len();
const KINDS: usize = Kind::ALL.len();
const OUTCOMES: usize = HandshakeOutcome::ALL.len();

struct Registry {
    handshakes: [[[AtomicU64; OUTCOMES]; KINDS]; FRONTS],
    durations: [[Histogram; KINDS]; FRONTS],
    refusals: [AtomicU64; RefusalReason::ALL.len()],
    dh: [AtomicU64; Group::ALL.len()],
    signed: [AtomicU64; SignedResult::ALL.len()],
    connections: [AtomicI64; FRONTS],
    channels: AtomicI64,
}

static REGISTRY: Registry = Registry {
    handshakes: [const { [const { [const { AtomicU64::new(0) }; OUTCOMES] }; KINDS] }; FRONTS],
    durations: [const { [const { Histogram::new() }; KINDS] }; FRONTS],
    refusals: [const { AtomicU64::new(0) }; RefusalReason::ALL.len()],
    dh: [const { AtomicU64::new(0) }; Group::ALL.len()],
    signed: [const { AtomicU64::new(0) }; SignedResult::ALL.len()],
    connections: [const { AtomicI64::new(0) }; FRONTS],
    channels: AtomicI64::new(0),
};

/// Counts one finished handshake, and its duration when it is known.
pub fn record_handshake(front: Front, kind: Kind, outcome: HandshakeOutcome, duration: Option<Duration>) {
    REGISTRY.handshakes[front as usize][kind as usize][outcome as usize].fetch_add(1, RELAXED);
    if let Some(d) = duration {
        REGISTRY.durations[front as usize][kind as usize].observe(d);
    }
}

/// Counts one refusal.
pub fn record_refusal(reason: RefusalReason) {
    REGISTRY.refusals[reason as usize].fetch_add(1, RELAXED);
}

/// Counts one key exchange the server did in `group`.
pub fn record_dh(group: Group) {
    if let Some(i) = Group::ALL.iter().position(|g| *g == group) {
        REGISTRY.dh[i].fetch_add(1, RELAXED);
    }
}

/// Counts one request the signed layer judged.
pub fn record_signed(result: SignedResult) {
    REGISTRY.signed[result as usize].fetch_add(1, RELAXED);
}

/// The key exchange a client message asks the server for, if it costs one
/// (R1, A1 with a channel) and names a known group.
pub(crate) fn dh_group(msg: &ClientMessage) -> Option<Group> {
    match msg {
        ClientMessage::RegistrationPairing(r) => Group::from_name(&r.group),
        ClientMessage::AuthPairing(a) if a.public_key.is_some() => {
            a.group.as_deref().and_then(Group::from_name)
        }
        _ => None,
    }
}

/// One unit of a gauge, given back when dropped.
#[must_use = "the gauge goes down when this drops"]
pub(crate) struct Live(&'static AtomicI64);

impl Live {
    /// An open connection on `front` (`Rfc7804` counts as `Http`).
    pub(crate) fn connection(front: Front) -> Self {
        let front = if front == Front::Rfc7804 { Front::Http } else { front };
        Self::up(&REGISTRY.connections[front as usize])
    }

    /// An open encrypted channel.
    pub(crate) fn channel() -> Self {
        Self::up(&REGISTRY.channels)
    }

    fn up(gauge: &'static AtomicI64) -> Self {
        gauge.fetch_add(1, RELAXED);
        Self(gauge)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, RELAXED);
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// A handshake being timed on one connection (TCP, standard SCRAM): ends with
/// [`finish`](Self::finish), or as `error` when dropped unfinished (the client
/// went away, timed out, or broke the protocol mid-handshake).
pub(crate) struct Timer {
    front: Front,
    kind: Kind,
    start: Instant,
    armed: bool,
}

impl Timer {
    pub(crate) fn start(front: Front, kind: Kind, start: Instant) -> Self {
        Self { front, kind, start, armed: true }
    }

    pub(crate) fn finish(mut self, outcome: HandshakeOutcome) {
        self.armed = false;
        record_handshake(self.front, self.kind, outcome, Some(self.start.elapsed()));
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if self.armed {
            record_handshake(self.front, self.kind, HandshakeOutcome::Error, Some(self.start.elapsed()));
        }
    }
}

// ---------------------------------------------------------------------------
// Handshakes that span requests (HTTP, RFC 7804): when their first request came.

const PENDING_SLOTS: usize = 4096;
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
/// A remembered start older than this is a stale slot, not a handshake.
const PENDING_MAX: Duration = Duration::from_secs(3600);

/// Slot = tag (24 bits, never 0) << 40 | start in µs since [`epoch`] mod 2^40 (12.7 days).
static PENDING: [AtomicU64; PENDING_SLOTS] = [const { AtomicU64::new(0) }; PENDING_SLOTS];

/// The zero of the slots' clock: an hour before its first use, so that a
/// request received just before that use is still after it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(PENDING_MAX).unwrap_or(now)
    })
}

fn micros_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX) & TIME_MASK
}

/// Where a handshake that spans requests keeps its start: a slot and a tag,
/// from a keyed hash (a client cannot aim at another's slot).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    slot: usize,
    tag: u64,
}

impl Pending {
    /// The slot of handshake `id` (the client nonce, or an RFC 7804 sid) of `kind`.
    pub(crate) fn of(kind: Kind, id: &str) -> Self {
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        let mut h = KEY.get_or_init(Default::default).build_hasher();
        kind.hash(&mut h);
        id.hash(&mut h);
        let x = h.finish();
        #[allow(clippy::cast_possible_truncation)] // below PENDING_SLOTS
        let slot = (x % PENDING_SLOTS as u64) as usize;
        Self { slot, tag: (x >> TIME_BITS) | 1 }
    }

    /// Remembers that the handshake got its first request at `at`.
    pub(crate) fn start(self, at: Instant) {
        PENDING[self.slot].store(self.tag << TIME_BITS | micros_since_epoch(at), RELAXED);
    }

    /// How long since the handshake's first request, if its slot still holds
    /// it (then the slot is freed).
    pub(crate) fn take(self) -> Option<Duration> {
        let v = PENDING[self.slot].load(RELAXED);
        if v >> TIME_BITS != self.tag || PENDING[self.slot].compare_exchange(v, 0, RELAXED, RELAXED).is_err()
        {
            return None;
        }
        let now = micros_since_epoch(Instant::now());
        let elapsed = Duration::from_micros(now.wrapping_sub(v) & TIME_MASK);
        (elapsed <= PENDING_MAX).then_some(elapsed)
    }
}

/// The client nonce a handshake message carries (a final step's combined
/// nonce starts with it).
pub(crate) fn client_nonce(msg: &ClientMessage) -> &str {
    let nonce = match msg {
        ClientMessage::RegistrationPairing(r) => &r.client_nonce,
        ClientMessage::AuthPairing(a) => &a.client_nonce,
        ClientMessage::RegistrationSendPassword(r) => &r.nonce,
        ClientMessage::AuthClientProofGeneration(a) => &a.nonce,
    };
    nonce.split('-').next().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Gauges read when scraped.

/// What a session source answers.
enum Sample {
    /// What the store could tell.
    Count(SessionCounts),
    /// The store cannot count (e.g. Redis); nothing is added.
    Unknown,
    /// The engine is gone: the source is dropped.
    Gone,
}

struct Source {
    key: usize,
    sample: Box<dyn Fn() -> Sample + Send + Sync>,
    /// The store's expired total at the last scrape, already added to
    /// [`EXPIRED`] (so the counter never goes down when an engine goes away).
    expired_seen: u64,
}

/// Handshake sessions that expired unconsumed, over every engine ever watched
/// whose store counts them; `None` until one has reported.
static EXPIRED: Mutex<Option<u64>> = Mutex::new(None);

fn sources() -> &'static Mutex<Vec<Source>> {
    static SOURCES: OnceLock<Mutex<Vec<Source>>> = OnceLock::new();
    SOURCES.get_or_init(|| Mutex::new(Vec::new()))
}

/// What an engine's session store reports at a scrape (see [`watch_session_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCounts {
    /// In-flight handshake sessions (`scram_dh_handshake_sessions`), if the store
    /// can tell (a store several nodes share cannot say which are this node's).
    pub live: Option<usize>,
    /// The store's running total of sessions whose TTL passed before their next
    /// step (`scram_dh_handshake_sessions_expired_total`), if it keeps one. It must
    /// never go down for one store.
    pub expired_total: Option<u64>,
}

impl SessionCounts {
    /// The counts of a [`MemorySessionStore`]: it drops its expired sessions first
    /// (inserts and takes drop them too, but a quiet store's would wait), so both
    /// figures are current.
    #[must_use]
    pub fn of_memory(store: &MemorySessionStore) -> Self {
        store.purge(crate::server::now_ms());
        SessionCounts { live: Some(store.len()), expired_total: Some(store.expired_total()) }
    }
}

/// Counts `engine`'s in-flight handshake sessions in `scram_dh_handshake_sessions`
/// for as long as the engine lives: `count` is called on its session store at
/// every scrape (`None`: this store cannot count). One source per engine; a later
/// call for the same engine replaces the earlier one. The fronts call this for
/// engines on a [`MemorySessionStore`] (or an `Arc` of one) themselves; call it
/// for another store type, such as an enum over several. To report expired
/// sessions too, use [`watch_session_counts`].
///
/// ```
/// use std::sync::Arc;
/// use scram_dh::{HostKey, MemoryCredentialStore, MemorySessionStore, ServerConfig, ServerEngine};
///
/// let config = ServerConfig::new(HostKey::from_seed(&[7; 32]), [4; 32]);
/// let engine = Arc::new(ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::default()).unwrap());
/// scram_dh_net::metrics::watch_sessions(&engine, |s: &MemorySessionStore| Some(s.len()));
/// assert!(scram_dh_net::metrics::render().contains("\nscram_dh_handshake_sessions "));
/// ```
pub fn watch_sessions<C, S, F>(engine: &Arc<ServerEngine<C, S>>, count: F)
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
    F: Fn(&S) -> Option<usize> + Send + Sync + 'static,
{
    watch_session_counts(engine, move |s: &S| {
        count(s).map(|live| SessionCounts { live: Some(live), expired_total: None })
    });
}

/// [`watch_sessions`] with the store's expired total as well, for
/// `scram_dh_handshake_sessions_expired_total` (`None` from `counts`: this store
/// cannot count at all).
///
/// ```
/// use std::sync::Arc;
/// use scram_dh::{HostKey, MemoryCredentialStore, MemorySessionStore, ServerConfig, ServerEngine};
/// use scram_dh_net::metrics::{self, SessionCounts};
///
/// let config = ServerConfig::new(HostKey::from_seed(&[7; 32]), [4; 32]);
/// let engine = Arc::new(ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::default()).unwrap());
/// // `scram-dh serve` does this through its enum over the memory and Redis stores.
/// metrics::watch_session_counts(&engine, |s: &MemorySessionStore| Some(SessionCounts::of_memory(s)));
/// assert!(metrics::render().contains("\nscram_dh_handshake_sessions_expired_total "));
/// ```
pub fn watch_session_counts<C, S, F>(engine: &Arc<ServerEngine<C, S>>, counts: F)
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
    F: Fn(&S) -> Option<SessionCounts> + Send + Sync + 'static,
{
    let key = Arc::as_ptr(engine) as usize;
    let weak: Weak<ServerEngine<C, S>> = Arc::downgrade(engine);
    let sample = Box::new(move || match weak.upgrade() {
        None => Sample::Gone,
        Some(engine) => counts(engine.sessions()).map_or(Sample::Unknown, Sample::Count),
    });
    add_source(key, sample);
}

/// Replaces any source for the engine at `key` by `sample`.
fn add_source(key: usize, sample: Box<dyn Fn() -> Sample + Send + Sync>) {
    let mut list = sources().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    list.retain(|s| s.key != key);
    list.push(Source { key, sample, expired_seen: 0 });
}

/// [`watch_sessions`] for the session stores this crate can count by itself;
/// an engine already watched keeps its source.
pub(crate) fn watch_engine<C, S>(engine: &Arc<ServerEngine<C, S>>)
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    let key = Arc::as_ptr(engine) as usize;
    if sources().lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|s| s.key == key) {
        return;
    }
    let probe = engine.sessions() as &dyn Any;
    if probe.is::<MemorySessionStore>() || probe.is::<Arc<MemorySessionStore>>() {
        let weak: Weak<ServerEngine<C, S>> = Arc::downgrade(engine);
        add_source(
            key,
            Box::new(move || {
                let Some(engine) = weak.upgrade() else { return Sample::Gone };
                let any = engine.sessions() as &dyn Any;
                let store = any
                    .downcast_ref::<MemorySessionStore>()
                    .or_else(|| any.downcast_ref::<Arc<MemorySessionStore>>().map(AsRef::as_ref));
                store.map_or(Sample::Unknown, |store| Sample::Count(SessionCounts::of_memory(store)))
            }),
        );
    }
}

/// The live handshake sessions of every watched engine, if any can count, and the
/// running total of expired ones (see [`EXPIRED`]).
fn handshake_sessions() -> (Option<usize>, Option<u64>) {
    let mut list = sources().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut expired = EXPIRED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut total = None;
    list.retain_mut(|s| match (s.sample)() {
        Sample::Count(counts) => {
            if let Some(live) = counts.live {
                total = Some(total.unwrap_or(0) + live);
            }
            if let Some(now) = counts.expired_total {
                let sum = expired.get_or_insert(0);
                *sum = sum.saturating_add(now.saturating_sub(s.expired_seen));
                s.expired_seen = s.expired_seen.max(now);
            }
            true
        }
        Sample::Unknown => true,
        Sample::Gone => false,
    });
    (total, *expired)
}

// ---------------------------------------------------------------------------
// Exposition.

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family with one label: its header, then `name{label="value"} count` per
/// series.
fn counter_by(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'static str, u64)>,
) {
    header(out, name, "counter", help);
    for (value, count) in series {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
    }
}

/// The whole registry in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
#[must_use]
pub fn render() -> String {
    render_with(None, None)
}

/// [`render`], plus `scram_dh_http_sessions` when `http_sessions` is known and
/// `scram_dh_handshake_sessions_shared` when `shared_sessions` is.
pub(crate) fn render_with(http_sessions: Option<usize>, shared_sessions: Option<usize>) -> String {
    let r = &REGISTRY;
    let mut out = String::with_capacity(16 * 1024);
    header(
        &mut out,
        "scram_dh_handshakes_total",
        "counter",
        "Finished handshakes by front, kind and outcome.",
    );
    for front in Front::ALL {
        for kind in Kind::ALL {
            for outcome in HandshakeOutcome::ALL {
                let v = r.handshakes[front as usize][kind as usize][outcome as usize].load(RELAXED);
                let _ = writeln!(
                    out,
                    "scram_dh_handshakes_total{{front=\"{}\",kind=\"{}\",outcome=\"{}\"}} {v}",
                    front.name(),
                    kind.name(),
                    outcome.name()
                );
            }
        }
    }
    let name = "scram_dh_handshake_duration_seconds";
    header(&mut out, name, "histogram", "Handshake duration, first message received to final reply sent.");
    for front in Front::ALL {
        for kind in Kind::ALL {
            let h = &r.durations[front as usize][kind as usize];
            let labels = format!("front=\"{}\",kind=\"{}\"", front.name(), kind.name());
            let mut cumulative = 0u64;
            for (bucket, le) in h.buckets.iter().zip(BOUNDS_LE.iter().copied().chain(["+Inf"])) {
                cumulative += bucket.load(RELAXED);
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            #[allow(clippy::cast_precision_loss)] // a sum of durations in seconds
            let sum = h.sum_ns.load(RELAXED) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
        }
    }
    counter_by(
        &mut out,
        "scram_dh_admission_refusals_total",
        "Refusals of a connection, handshake, channel or HTTP session, by reason.",
        "reason",
        RefusalReason::ALL.iter().map(|&x| (x.name(), r.refusals[x as usize].load(RELAXED))),
    );
    counter_by(
        &mut out,
        "scram_dh_dh_operations_total",
        "Key exchanges (key generation and shared secret) the server did, by group.",
        "group",
        Group::ALL.iter().zip(&r.dh).map(|(g, v)| (g.name(), v.load(RELAXED))),
    );
    counter_by(
        &mut out,
        "scram_dh_signed_requests_total",
        "HTTP requests judged by the signed-request layer, by result.",
        "result",
        SignedResult::ALL.iter().map(|&x| (x.name(), r.signed[x as usize].load(RELAXED))),
    );
    header(&mut out, "scram_dh_connections", "gauge", "Open connections by front.");
    for front in [Front::Tcp, Front::Sasl, Front::Http] {
        let v = r.connections[front as usize].load(RELAXED);
        let _ = writeln!(out, "scram_dh_connections{{front=\"{}\"}} {v}", front.name());
    }
    header(&mut out, "scram_dh_channels", "gauge", "Open encrypted TCP channels.");
    let _ = writeln!(out, "scram_dh_channels {}", r.channels.load(RELAXED));
    let (live, expired) = handshake_sessions();
    if let Some(n) = live {
        header(
            &mut out,
            "scram_dh_handshake_sessions",
            "gauge",
            "In-flight handshake sessions held by the engines' session stores.",
        );
        let _ = writeln!(out, "scram_dh_handshake_sessions {n}");
    }
    if let Some(n) = expired {
        header(
            &mut out,
            "scram_dh_handshake_sessions_expired_total",
            "counter",
            "Handshake sessions that expired before their next step came: abandoned handshakes.",
        );
        let _ = writeln!(out, "scram_dh_handshake_sessions_expired_total {n}");
    }
    if let Some(n) = shared_sessions {
        header(
            &mut out,
            "scram_dh_handshake_sessions_shared",
            "gauge",
            "In-flight handshake sessions in the session store shared with other nodes, all nodes together.",
        );
        let _ = writeln!(out, "scram_dh_handshake_sessions_shared {n}");
    }
    if let Some(n) = http_sessions {
        header(&mut out, "scram_dh_http_sessions", "gauge", "Live HTTP sessions of this front.");
        let _ = writeln!(out, "scram_dh_http_sessions {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn value(text: &str, series: &str) -> u64 {
        let line =
            text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' ')).unwrap();
        line[series.len() + 1..].parse().unwrap()
    }

    #[test]
    fn buckets_are_cumulative_and_count_matches() {
        let series = "scram_dh_handshake_duration_seconds";
        let labels = "front=\"sasl\",kind=\"registration\"";
        let before = render();
        let n0 = value(&before, &format!("{series}_count{{{labels}}}"));
        for us in [50, 700, 20_000_000] {
            record_handshake(
                Front::Sasl,
                Kind::Registration,
                HandshakeOutcome::Ok,
                Some(Duration::from_micros(us)),
            );
        }
        let text = render();
        assert_eq!(value(&text, &format!("{series}_count{{{labels}}}")), n0 + 3);
        let le = |b: &str| value(&text, &format!("{series}_bucket{{{labels},le=\"{b}\"}}"));
        let le0 = |b: &str| value(&before, &format!("{series}_bucket{{{labels},le=\"{b}\"}}"));
        assert_eq!(le("0.0001") - le0("0.0001"), 1);
        assert_eq!(le("0.001") - le0("0.001"), 2);
        assert_eq!(le("10") - le0("10"), 2, "20 s is above the last bound");
        assert_eq!(le("+Inf") - le0("+Inf"), 3);
    }

    #[test]
    fn pending_slots_time_once_and_only_their_own() {
        let start = Instant::now().checked_sub(Duration::from_millis(5)).unwrap_or_else(Instant::now);
        Pending::of(Kind::Authentication, "abc").start(start);
        assert!(Pending::of(Kind::Registration, "abc").take().is_none(), "another kind");
        let d = Pending::of(Kind::Authentication, "abc").take().unwrap();
        assert!(d >= Duration::from_millis(5) && d <= PENDING_MAX, "{d:?}");
        assert!(Pending::of(Kind::Authentication, "abc").take().is_none(), "taken once");
    }

    #[test]
    fn outcomes_of_codes() {
        assert_eq!(HandshakeOutcome::of_code(ErrorCode::AuthenticationFailed), HandshakeOutcome::Failed);
        assert_eq!(HandshakeOutcome::of_code(ErrorCode::Busy), HandshakeOutcome::Refused);
        assert_eq!(HandshakeOutcome::of_code(ErrorCode::UnknownSession), HandshakeOutcome::Error);
        assert_eq!(
            RefusalReason::from(&Refusal::RateLimited { retry_after: Duration::ZERO }).name(),
            "rate_limited"
        );
    }
}
