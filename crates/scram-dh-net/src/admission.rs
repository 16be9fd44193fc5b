//! The admission layer (SPEC 5, issue 6): every decision about whether a peer may
//! take a server resource, in one place that every front calls (the TCP front
//! today, the HTTP front next).
//!
//! - **Peers** are IPv4 addresses or IPv6 /64 prefixes ([`PeerKey`]), so one host
//!   cannot multiply its quota by cycling through the addresses of its subnet.
//! - **Connections**: a global and a per-peer cap, with a *reserve*: the last
//!   [`Limits::connection_reserve`] slots go only to peers that hold almost none,
//!   so a flood from a few peers cannot take the last slots from everyone else.
//!   Handshake-phase connections have their own caps, with the same reserve.
//! - **DH work**: every step that costs the server a key generation and a DH
//!   operation (R1, and A1 with a channel) draws from a per-peer token bucket, and
//!   R1 from a second, slower one; both are checked before any work is done.
//! - **Failed proofs** are penalised per peer and per account with exponential
//!   backoff (in the spirit of OpenSSH's `PerSourcePenalties` and OWASP ASVS 5.0
//!   V6): a few free failures, then a wait that doubles with each failure up to a
//!   ceiling, forgotten after a quiet period. An account penalty refuses new
//!   logins for the account only from peers that have not logged in to it
//!   successfully before, so an attacker elsewhere cannot lock its owner out.
//!   Failures are logged in aggregate, not one line each.
//! - **Shared penalties** (issue 9): an admission layer made with
//!   [`Admission::with_penalty_store`] keeps the failed-proof penalties and the
//!   trusted (peer, account) pairs only in a [`PenaltyStore`] that every node
//!   shares (keys `peer:<peer>`, `account:<name>`, `trust:<peer>\u{1f}<name>`, rules
//!   from [`Penalties::peer_rule`] and [`Penalties::account_rule`]), so an account
//!   locked by guessing on one node is throttled on all of them. Fronts call the
//!   async entry points ([`Admission::admit_message`], [`Admission::admit_login`],
//!   [`Admission::learn_outcome`], [`Admission::learn_login`]), which read the
//!   store when there is one and the in-process tables otherwise. A store that
//!   cannot be read refuses the login ([`Refusal::Unavailable`], fail closed);
//!   one that cannot be written is logged and the login's outcome stands.
//!   Connections, channels and the DH buckets always stay in-process.
//! - **Channels**: global, per-peer and per-user caps, checked before the server
//!   answers A4 (a refused client gets `busy`, not a silent close), and an idle
//!   timeout enforced by the front.
//!
//! Every refusal is an `error` message with code `busy` (`server_error` for
//! [`Refusal::Unavailable`]) and a reason a person can act on, and is counted
//! by reason in `scram_dh_admission_refusals_total` ([`crate::metrics`]); every
//! limit is a field of [`Limits`].

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use scram_dh::cluster::{PenaltyRule, PenaltyStore};
use scram_dh::message::{ClientMessage, ErrorMessage, ServerMessage};
use scram_dh::record::StoreError;
use scram_dh::{Error, ErrorCode, Outcome};
use tracing::{debug, info, warn};

use crate::log::Escaped;
use crate::metrics::{self, RefusalReason};
use crate::server::now_ms;

/// A peer as the limits see it: an IPv4 address, or an IPv6 address cut to its
/// prefix (a /64 by default, SPEC 5). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PeerKey {
    addr: IpAddr,
    prefix: u8,
}

impl PeerKey {
    /// The key of `ip`, with IPv6 addresses aggregated to `/v6_prefix` (1..=128).
    #[must_use]
    pub fn new(ip: IpAddr, v6_prefix: u8) -> Self {
        match ip {
            IpAddr::V4(v4) => Self { addr: IpAddr::V4(v4), prefix: 32 },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self { addr: IpAddr::V4(v4), prefix: 32 },
                None => {
                    let prefix = v6_prefix.clamp(1, 128);
                    let mask = u128::MAX << (128 - u32::from(prefix));
                    let masked = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                    Self { addr: IpAddr::V6(masked), prefix }
                }
            },
        }
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/{}", self.prefix),
        }
    }
}

/// Failed-proof penalties (finding M5).
#[derive(Debug, Clone)]
pub struct Penalties {
    /// Failed proofs a peer may make before it has to wait.
    pub peer_free_failures: u32,
    /// Failed proofs against one account (from peers not trusted for it) before
    /// new logins to it from such peers have to wait.
    pub account_free_failures: u32,
    /// The first wait; each further failure doubles it.
    pub base: Duration,
    /// The longest wait for a peer.
    pub max_peer: Duration,
    /// The longest wait for an account.
    pub max_account: Duration,
    /// Failure counts are forgotten after this long without a failure.
    pub forget_after: Duration,
    /// How long a successful login makes its peer trusted for that account.
    pub trust_for: Duration,
    /// Peers, accounts and trusted (peer, account) pairs remembered at most; past
    /// it, expired entries are dropped and then the oldest.
    pub max_tracked: usize,
}

impl Default for Penalties {
    fn default() -> Self {
        Self {
            peer_free_failures: 3,
            account_free_failures: 10,
            base: Duration::from_secs(1),
            max_peer: Duration::from_secs(600),
            max_account: Duration::from_secs(900),
            forget_after: Duration::from_secs(3600),
            trust_for: Duration::from_secs(30 * 24 * 3600),
            max_tracked: 100_000,
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Penalties {
    /// The rule for failed proofs per peer, in a [`PenaltyStore`]'s terms.
    #[must_use]
    pub fn peer_rule(&self) -> PenaltyRule {
        PenaltyRule {
            free: self.peer_free_failures,
            base_ms: millis(self.base),
            max_ms: millis(self.max_peer),
            forget_ms: millis(self.forget_after),
        }
    }

    /// The rule for failed proofs per account (from peers not trusted for it).
    #[must_use]
    pub fn account_rule(&self) -> PenaltyRule {
        PenaltyRule {
            free: self.account_free_failures,
            base_ms: millis(self.base),
            max_ms: millis(self.max_account),
            forget_ms: millis(self.forget_after),
        }
    }
}

/// Resource limits of a front; every one is configurable (`serve`'s config file).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections, server-wide (handshakes and channels); checked against
    /// the file-descriptor limit by [`Limits::check`].
    pub max_connections: usize,
    /// Open connections from one peer.
    pub max_connections_per_peer: usize,
    /// The last this-many connection (and handshake) slots are kept for peers
    /// holding fewer than [`reserve_peer_max`](Self::reserve_peer_max).
    pub connection_reserve: usize,
    /// See [`connection_reserve`](Self::connection_reserve).
    pub reserve_peer_max: usize,
    /// Connections in the handshake phase at once, server-wide.
    pub max_handshakes: usize,
    /// Connections in the handshake phase at once from one peer.
    pub max_handshakes_per_peer: usize,
    /// Handshakes one connection may run in turn (e.g. register, then log in).
    pub max_handshakes_per_connection: u32,
    /// Time a new connection has to send its first line.
    pub first_line_timeout: Duration,
    /// Time a client has to finish one handshake.
    pub handshake_timeout: Duration,
    /// DH-costing steps (R1, A1 with a channel) per second per peer.
    pub dh_per_sec: f64,
    /// Burst of DH-costing steps per peer.
    pub dh_burst: f64,
    /// Registration pairings per second per peer (on top of the DH bucket).
    pub registrations_per_sec: f64,
    /// Registration pairing burst per peer.
    pub registration_burst: f64,
    /// Encrypted channels open at once, server-wide.
    pub max_channels: usize,
    /// Channels open at once from one peer.
    pub max_channels_per_peer: usize,
    /// Channels open at once for one user.
    pub max_channels_per_user: usize,
    /// A channel with no record in either direction for this long is closed.
    pub channel_idle_timeout: Duration,
    /// IPv6 peers are aggregated to this prefix length.
    pub ipv6_prefix: u8,
    /// Failed-proof penalties.
    pub penalties: Penalties,
    /// How long shutdown waits for connections before aborting them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_peer: 64,
            connection_reserve: 64,
            reserve_peer_max: 2,
            max_handshakes: 1024,
            max_handshakes_per_peer: 32,
            max_handshakes_per_connection: 4,
            first_line_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(10),
            dh_per_sec: 20.0,
            dh_burst: 40.0,
            registrations_per_sec: 2.0,
            registration_burst: 10.0,
            max_channels: 4096,
            max_channels_per_peer: 32,
            max_channels_per_user: 16,
            channel_idle_timeout: Duration::from_secs(300),
            ipv6_prefix: 64,
            penalties: Penalties::default(),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// File descriptors kept for everything that is not a client connection
/// (listener, database, logs, the runtime).
pub const FD_HEADROOM: u64 = 128;

impl Limits {
    /// Checks the limits for consistency and against `fd_limit`, the process's
    /// soft limit on open files (after [`raise_fd_limit`]).
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn check(&self, fd_limit: u64) -> Result<(), String> {
        let nonzero = [
            ("max-connections", self.max_connections),
            ("max-connections-per-peer", self.max_connections_per_peer),
            ("max-handshakes", self.max_handshakes),
            ("max-handshakes-per-peer", self.max_handshakes_per_peer),
            ("max-channels", self.max_channels),
            ("max-channels-per-peer", self.max_channels_per_peer),
            ("max-channels-per-user", self.max_channels_per_user),
            ("max-tracked", self.penalties.max_tracked),
        ];
        for (name, v) in nonzero {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        let le = [
            (
                "max-connections-per-peer",
                self.max_connections_per_peer,
                "max-connections",
                self.max_connections,
            ),
            ("max-handshakes", self.max_handshakes, "max-connections", self.max_connections),
            ("max-channels", self.max_channels, "max-connections", self.max_connections),
            ("max-handshakes-per-peer", self.max_handshakes_per_peer, "max-handshakes", self.max_handshakes),
            ("max-channels-per-peer", self.max_channels_per_peer, "max-channels", self.max_channels),
            ("max-channels-per-user", self.max_channels_per_user, "max-channels", self.max_channels),
            ("connection-reserve", self.connection_reserve, "max-handshakes", self.max_handshakes),
        ];
        for (a, x, b, y) in le {
            if x > y {
                return Err(format!("{a} ({x}) must not exceed {b} ({y})"));
            }
        }
        let usable = fd_limit.saturating_sub(FD_HEADROOM);
        if self.max_connections as u64 > usable {
            return Err(format!(
                "max-connections ({}) exceeds the open-file limit ({fd_limit}) less {FD_HEADROOM} kept for \
                 the server itself; raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower max-connections",
                self.max_connections
            ));
        }
        if self.max_handshakes_per_connection == 0 {
            return Err("max-handshakes-per-connection must be positive".into());
        }
        for (name, rate, burst) in [
            ("dh", self.dh_per_sec, self.dh_burst),
            ("registrations", self.registrations_per_sec, self.registration_burst),
        ] {
            if !(rate.is_finite() && rate >= 0.0 && burst.is_finite() && burst >= 1.0) {
                return Err(format!("{name} rate must be >= 0 and its burst >= 1"));
            }
        }
        if self.first_line_timeout.is_zero() || self.handshake_timeout.is_zero() {
            return Err("timeouts must be positive".into());
        }
        if self.channel_idle_timeout.is_zero() {
            return Err("channel-idle-timeout must be positive".into());
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return Err("ipv6-prefix must be 1..=128".into());
        }
        Ok(())
    }
}

/// Raises the soft limit on open files to the hard limit (finding H1) and returns
/// the soft limit now in force.
///
/// # Errors
/// When the limit cannot be read.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            warn!(error = %e, "could not raise the open-file limit");
        }
        let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        Ok(soft)
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

/// Whether a client message costs the server a key generation and a DH
/// operation (R1, and A1 with a channel): those draw on the DH buckets.
#[must_use]
pub fn costs_dh(msg: &ClientMessage) -> bool {
    match msg {
        ClientMessage::RegistrationPairing(_) => true,
        ClientMessage::AuthPairing(a) => a.public_key.is_some(),
        _ => false,
    }
}

/// Why a peer was refused; becomes an `error` message with code `busy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its connection cap (or only the reserve is left).
    ServerFull,
    /// This peer holds its connection cap.
    PeerConnections,
    /// The server or this peer holds its handshake cap.
    Handshakes,
    /// The per-peer key-exchange (or registration) bucket is empty.
    RateLimited {
        /// When a token will be back.
        retry_after: Duration,
    },
    /// This peer failed too many proofs.
    PeerPenalty {
        /// When the penalty ends.
        retry_after: Duration,
    },
    /// This account failed too many proofs from peers not trusted for it.
    AccountPenalty {
        /// When the penalty ends.
        retry_after: Duration,
    },
    /// A channel cap (server, peer or user) is reached.
    Channels,
    /// The shared penalty store could not be read: the login is refused rather
    /// than let through unchecked (fail closed). Answered as `server_error`.
    Unavailable,
}

impl Refusal {
    /// The text sent to the client with code `busy`.
    #[must_use]
    pub fn message(&self) -> String {
        let secs = |d: &Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        match self {
            Self::ServerFull => "server busy: at its connection capacity; try again later".into(),
            Self::PeerConnections => "server busy: too many connections from your address".into(),
            Self::Handshakes => "server busy: too many handshakes in progress; try again later".into(),
            Self::RateLimited { retry_after } => {
                format!(
                    "server busy: key exchange rate limit for your address; retry in {} s",
                    secs(retry_after)
                )
            }
            Self::PeerPenalty { retry_after } => format!(
                "server busy: too many failed logins from your address; retry in {} s",
                secs(retry_after)
            ),
            Self::AccountPenalty { retry_after } => format!(
                "server busy: too many failed logins for this account; retry in {} s",
                secs(retry_after)
            ),
            Self::Channels => "server busy: encrypted channel limit reached; try again later".into(),
            Self::Unavailable => {
                "server error: the shared login-penalty store is unavailable; try again later".into()
            }
        }
    }

    /// The error code the client is sent: `busy`, or `server_error` for
    /// [`Refusal::Unavailable`].
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable => ErrorCode::ServerError,
            _ => ErrorCode::Busy,
        }
    }

    /// The `error` message for the client.
    #[must_use]
    pub fn reply(&self) -> ServerMessage {
        ServerMessage::Error(ErrorMessage { code: self.code(), message: self.message() })
    }

    /// The refusal as the core's error: [`Error::Busy`], or
    /// [`Error::ServerError`] for [`Refusal::Unavailable`].
    #[must_use]
    pub fn error(&self) -> Error {
        match self {
            Self::Unavailable => Error::ServerError(self.message()),
            _ => Error::Busy,
        }
    }

    /// A failed [`Outcome`] carrying this refusal (for fronts that reply with outcomes).
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        Outcome::Failed { reply: self.reply(), error: self.error(), username: None }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self { tokens: burst, at: now }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    /// Time until one token is available (zero if one is).
    fn wait(&self, rate: f64) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else if rate <= 0.0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / rate)
        }
    }
}

/// Counts of what one peer holds right now, and its buckets.
struct Peer {
    connections: usize,
    handshakes: usize,
    channels: usize,
    dh: Bucket,
    registrations: Bucket,
}

/// A failure counter with exponential backoff.
#[derive(Clone, Copy)]
struct Penalty {
    failures: u32,
    last_failure: Instant,
    until: Option<Instant>,
}

/// Keys with penalties, bounded in size.
struct PenaltyTable<K> {
    map: HashMap<K, Penalty>,
}

impl<K: Eq + Hash + Clone> PenaltyTable<K> {
    fn new() -> Self {
        Self { map: HashMap::new() }
    }

    fn active(&mut self, key: &K, forget: Duration, now: Instant) -> Option<Duration> {
        let p = self.map.get(key)?;
        if now.saturating_duration_since(p.last_failure) >= forget {
            self.map.remove(key);
            return None;
        }
        p.until.and_then(|u| u.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Counts a failure; returns the new wait when this failure starts a penalty
    /// (the wait is [`PenaltyRule::wait_after`], as in a shared store).
    fn fail(&mut self, key: &K, rule: &PenaltyRule, c: &Penalties, now: Instant) -> Option<Duration> {
        if self.map.len() >= c.max_tracked && !self.map.contains_key(key) {
            self.map.retain(|_, p| now.saturating_duration_since(p.last_failure) < c.forget_after);
            if self.map.len() >= c.max_tracked {
                // Still full: forget the entry whose last failure is oldest.
                if let Some(k) = self.map.iter().min_by_key(|(_, p)| p.last_failure).map(|(k, _)| k.clone()) {
                    self.map.remove(&k);
                }
            }
        }
        let p =
            self.map.entry(key.clone()).or_insert(Penalty { failures: 0, last_failure: now, until: None });
        if now.saturating_duration_since(p.last_failure) >= c.forget_after {
            *p = Penalty { failures: 0, last_failure: now, until: None };
        }
        p.failures = p.failures.saturating_add(1);
        p.last_failure = now;
        let wait = Duration::from_millis(rule.wait_after(p.failures)?);
        p.until = Some(now + wait);
        Some(wait)
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// Aggregated failure logging: one line per interval, not one per failure.
struct FailureLog {
    since: Instant,
    failures: u64,
    refused: u64,
}

const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counts {
    connections: usize,
    handshakes: usize,
    channels: usize,
}

struct State {
    total: Counts,
    peers: HashMap<PeerKey, Peer>,
    user_channels: HashMap<String, usize>,
    peer_penalties: PenaltyTable<PeerKey>,
    account_penalties: PenaltyTable<String>,
    trusted: HashMap<(PeerKey, String), Instant>,
    log: FailureLog,
}

/// How a login ended, for the failed-proof penalties ([`Admission::record_login`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome<'a> {
    /// The client proved the password (or keys) for this account: the peer's
    /// failures are cleared and the peer is trusted for the account.
    Authenticated(&'a str),
    /// A failed guess (a wrong proof, an unknown user, a channel binding that did
    /// not match), for this account when the exchange named one.
    FailedProof(Option<&'a str>),
    /// Anything else (malformed input, an expired session, a store failure): no penalty.
    Other,
}

/// The admission layer; share it behind an `Arc` between a front's tasks.
pub struct Admission {
    limits: Limits,
    state: Mutex<State>,
    /// Where the penalties and trusted pairs live when several nodes share them.
    penalty_store: Option<Arc<dyn PenaltyStore>>,
}

/// The store key of a peer's failed proofs.
fn peer_key(peer: PeerKey) -> String {
    format!("peer:{peer}")
}

/// The store key of an account's failed proofs.
fn account_key(account: &str) -> String {
    format!("account:{account}")
}

/// The store key of a trusted (peer, account) pair; a peer key never holds `\u{1f}`.
fn trust_key(peer: PeerKey, account: &str) -> String {
    format!("trust:{peer}\u{1f}{account}")
}

/// What a handshake outcome means for the penalties.
fn login_of(outcome: &Outcome) -> LoginOutcome<'_> {
    match outcome {
        Outcome::Authenticated { auth, .. } => LoginOutcome::Authenticated(auth.username()),
        Outcome::Failed { error: Error::AuthenticationFailed, username, .. } => {
            LoginOutcome::FailedProof(username.as_deref())
        }
        _ => LoginOutcome::Other,
    }
}

/// What a client message asks the admission layer to check: `None` for steps
/// that continue an admitted handshake, else (account, registration, channel).
fn pairing(msg: &ClientMessage) -> Option<(Option<&str>, bool, bool)> {
    match msg {
        ClientMessage::RegistrationPairing(_) => Some((None, true, false)),
        ClientMessage::AuthPairing(a) => Some((Some(a.username.as_str()), false, a.public_key.is_some())),
        // Later steps continue a handshake that was admitted at its pairing.
        _ => None,
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Admission")
            .field("connections", &s.total.connections)
            .field("handshakes", &s.total.handshakes)
            .field("channels", &s.total.channels)
            .field("peers", &s.peers.len())
            .field("shared_penalties", &self.penalty_store.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether one more slot may be taken: under the global and per-peer caps, and
/// into the reserve only for a peer holding almost nothing.
fn slot_free(
    global: usize,
    cap: usize,
    peer: usize,
    peer_cap: usize,
    reserve: usize,
    reserve_peer_max: usize,
) -> bool {
    global < cap && peer < peer_cap && (global < cap.saturating_sub(reserve) || peer < reserve_peer_max)
}

/// A snapshot of what the admission layer holds (for tests and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Open connections.
    pub connections: usize,
    /// Connections in the handshake phase.
    pub handshakes: usize,
    /// Open channels.
    pub channels: usize,
    /// Peers with anything open or a bucket not yet refilled.
    pub peers: usize,
}

impl Admission {
    /// A layer enforcing `limits` (call [`Limits::check`] first), with the
    /// failed-proof penalties in this process.
    #[must_use]
    pub fn new(limits: Limits) -> Arc<Self> {
        Self::build(limits, None)
    }

    /// A layer enforcing `limits` whose failed-proof penalties and trusted pairs
    /// live only in `store`, shared with the other nodes (module docs); the
    /// `max_tracked` bound is then the store's own.
    #[must_use]
    pub fn with_penalty_store(limits: Limits, store: Arc<dyn PenaltyStore>) -> Arc<Self> {
        Self::build(limits, Some(store))
    }

    fn build(limits: Limits, penalty_store: Option<Arc<dyn PenaltyStore>>) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            penalty_store,
            limits,
            state: Mutex::new(State {
                total: Counts::default(),
                peers: HashMap::new(),
                user_channels: HashMap::new(),
                peer_penalties: PenaltyTable::new(),
                account_penalties: PenaltyTable::new(),
                trusted: HashMap::new(),
                log: FailureLog { since: now, failures: 0, refused: 0 },
            }),
        })
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The peer key of an address under these limits.
    #[must_use]
    pub fn peer(&self, ip: IpAddr) -> PeerKey {
        PeerKey::new(ip, self.limits.ipv6_prefix)
    }

    /// What is held right now.
    #[must_use]
    pub fn usage(&self) -> Usage {
        let s = self.lock();
        Usage {
            connections: s.total.connections,
            handshakes: s.total.handshakes,
            channels: s.total.channels,
            peers: s.peers.len(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counts half-updated in a
        // way that matters more than refusing service would; keep serving.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn new_peer(&self, now: Instant) -> Peer {
        Peer {
            connections: 0,
            handshakes: 0,
            channels: 0,
            dh: Bucket::full(self.limits.dh_burst, now),
            registrations: Bucket::full(self.limits.registration_burst, now),
        }
    }

    /// Admits a new connection in the handshake phase: a connection slot and a
    /// handshake slot, released when the guard drops.
    ///
    /// # Errors
    /// [`Refusal::ServerFull`], [`Refusal::PeerConnections`], [`Refusal::Handshakes`].
    pub fn connect(self: &Arc<Self>, peer: PeerKey) -> Result<ConnectionGuard, Refusal> {
        let now = Instant::now();
        let l = &self.limits;
        let mut s = self.lock();
        let (conns, hs) = s.peers.get(&peer).map_or((0, 0), |p| (p.connections, p.handshakes));
        let refusal = if conns >= l.max_connections_per_peer {
            Some(Refusal::PeerConnections)
        } else if !slot_free(
            s.total.connections,
            l.max_connections,
            conns,
            usize::MAX,
            l.connection_reserve,
            l.reserve_peer_max,
        ) {
            Some(Refusal::ServerFull)
        } else if !slot_free(
            s.total.handshakes,
            l.max_handshakes,
            hs,
            l.max_handshakes_per_peer,
            l.connection_reserve,
            l.reserve_peer_max,
        ) {
            Some(Refusal::Handshakes)
        } else {
            None
        };
        if let Some(r) = refusal {
            s.log.refused += 1;
            metrics::record_refusal((&r).into());
            return Err(r);
        }
        s.total.connections += 1;
        s.total.handshakes += 1;
        let fresh = self.new_peer(now);
        let p = s.peers.entry(peer).or_insert(fresh);
        p.connections += 1;
        p.handshakes += 1;
        Ok(ConnectionGuard { admission: Arc::clone(self), peer, handshake: true })
    }

    /// Checks a client message before the engine sees it: penalties for pairings,
    /// and the DH buckets for steps that cost a DH operation (consumed only when
    /// everything else allows the step). A front calls this, or
    /// [`admit_message`](Self::admit_message), for every message.
    ///
    /// This is the synchronous, in-process form: with a penalty store
    /// ([`with_penalty_store`](Self::with_penalty_store)) it cannot read the
    /// penalties and refuses every pairing with [`Refusal::Unavailable`] (fail
    /// closed); fronts on a shared store call [`admit_message`](Self::admit_message).
    ///
    /// # Errors
    /// [`Refusal::PeerPenalty`], [`Refusal::AccountPenalty`], [`Refusal::RateLimited`],
    /// [`Refusal::Channels`] (A1 with a channel while the server or peer is at its
    /// channel cap), [`Refusal::Unavailable`].
    pub fn check_message(&self, peer: PeerKey, msg: &ClientMessage) -> Result<(), Refusal> {
        self.check_message_at(peer, msg, Instant::now())
    }

    fn check_message_at(&self, peer: PeerKey, msg: &ClientMessage, now: Instant) -> Result<(), Refusal> {
        let Some((account, registration, channel)) = pairing(msg) else { return Ok(()) };
        self.sync_guard()?;
        self.check_at(peer, account, registration, channel, costs_dh(msg), now)
    }

    /// Checks the start of a login that is not a scram-dh message: a standard
    /// SCRAM-SHA-256 client-first-message (SPEC 7, RFC 5802 over TCP or RFC 7804
    /// over HTTP), for `account` (the SASLprep-normalised name it asks for; `None`
    /// when it named none). The same checks as an A1 without a channel: the peer's
    /// and the account's failed-proof penalties; no DH bucket (no DH work).
    /// Later messages of the exchange continue an admitted login and need no check.
    ///
    /// The synchronous, in-process form, as [`check_message`](Self::check_message);
    /// fronts on a shared store call [`admit_login`](Self::admit_login).
    ///
    /// # Errors
    /// [`Refusal::PeerPenalty`], [`Refusal::AccountPenalty`], [`Refusal::Unavailable`].
    pub fn check_login(&self, peer: PeerKey, account: Option<&str>) -> Result<(), Refusal> {
        self.sync_guard()?;
        self.check_at(peer, account, false, false, false, Instant::now())
    }

    /// The synchronous checks cannot read a shared store: refuse rather than skip.
    fn sync_guard(&self) -> Result<(), Refusal> {
        if self.penalty_store.is_some() {
            warn!("a synchronous admission check on a shared penalty store: refused (use admit_*)");
            self.lock().log.refused += 1;
            metrics::record_refusal(RefusalReason::Unavailable);
            return Err(Refusal::Unavailable);
        }
        Ok(())
    }

    /// Checks a client message before the engine sees it, as
    /// [`check_message`](Self::check_message) does, with the penalties read from
    /// the shared store when there is one (then the connection, channel and DH
    /// checks run in-process as always). Every front calls this for every message.
    ///
    /// # Errors
    /// As [`check_message`](Self::check_message); [`Refusal::Unavailable`] when the
    /// penalty store cannot be read.
    pub async fn admit_message(&self, peer: PeerKey, msg: &ClientMessage) -> Result<(), Refusal> {
        let Some((account, registration, channel)) = pairing(msg) else { return Ok(()) };
        self.admit_at(peer, account, registration, channel, costs_dh(msg), now_ms(), Instant::now()).await
    }

    /// Checks the start of a standard SCRAM login, as
    /// [`check_login`](Self::check_login) does, with the penalties read from the
    /// shared store when there is one.
    ///
    /// # Errors
    /// [`Refusal::PeerPenalty`], [`Refusal::AccountPenalty`]; [`Refusal::Unavailable`]
    /// when the penalty store cannot be read.
    pub async fn admit_login(&self, peer: PeerKey, account: Option<&str>) -> Result<(), Refusal> {
        self.admit_at(peer, account, false, false, false, now_ms(), Instant::now()).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn admit_at(
        &self,
        peer: PeerKey,
        account: Option<&str>,
        registration: bool,
        channel: bool,
        dh: bool,
        now_ms: u64,
        now: Instant,
    ) -> Result<(), Refusal> {
        if let Some(store) = &self.penalty_store
            && let Err(r) = Self::check_shared(store.as_ref(), peer, account, now_ms).await
        {
            self.lock().log.refused += 1;
            metrics::record_refusal((&r).into());
            return Err(r);
        }
        self.check_at(peer, account, registration, channel, dh, now)
    }

    /// The penalty checks of [`check_penalties`](Self::check_penalties) against a
    /// shared store.
    async fn check_shared(
        store: &dyn PenaltyStore,
        peer: PeerKey,
        account: Option<&str>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let unavailable = |e: StoreError| {
            warn!(%peer, error = %e, "penalty store unavailable: login refused");
            Refusal::Unavailable
        };
        if let Some(ms) = store.wait(&peer_key(peer), now_ms).await.map_err(unavailable)? {
            debug!(%peer, "refused: peer penalty (shared)");
            return Err(Refusal::PeerPenalty { retry_after: Duration::from_millis(ms) });
        }
        if let Some(account) = account
            && let Some(ms) = store.wait(&account_key(account), now_ms).await.map_err(unavailable)?
            && !store.trusted(&trust_key(peer, account), now_ms).await.map_err(unavailable)?
        {
            debug!(%peer, account = %Escaped(account), "refused: account penalty (shared)");
            return Err(Refusal::AccountPenalty { retry_after: Duration::from_millis(ms) });
        }
        Ok(())
    }

    fn check_at(
        &self,
        peer: PeerKey,
        account: Option<&str>,
        registration: bool,
        channel: bool,
        dh: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        let l = &self.limits;
        let c = &l.penalties;
        let mut s = self.lock();
        let refused = |s: &mut State, r: Refusal| {
            s.log.refused += 1;
            metrics::record_refusal((&r).into());
            Err(r)
        };
        // With a shared store, its penalties were checked before (admit_at).
        if self.penalty_store.is_none()
            && let Err(r) = Self::check_penalties(&mut s, peer, account, c, now)
        {
            return refused(&mut s, r);
        }
        if channel {
            let peer_channels = s.peers.get(&peer).map_or(0, |p| p.channels);
            if s.total.channels >= l.max_channels || peer_channels >= l.max_channels_per_peer {
                return refused(&mut s, Refusal::Channels);
            }
        }
        if !dh {
            return Ok(());
        }
        if !s.peers.contains_key(&peer) && s.peers.len() >= c.max_tracked {
            // Callers without connections (HTTP) leave idle entries behind: drop
            // those whose buckets are full again before tracking one more.
            let (rate, burst) = (l.dh_per_sec, l.dh_burst);
            s.peers.retain(|_, p| {
                let mut b = p.dh;
                b.refill(rate, burst, now);
                p.connections > 0 || b.tokens < burst
            });
            if s.peers.len() >= c.max_tracked {
                // A spray of addresses: forget every peer without a connection
                // (each address would start with a full bucket anyway).
                s.peers.retain(|_, p| p.connections > 0);
            }
        }
        let fresh = self.new_peer(now);
        let p = s.peers.entry(peer).or_insert(fresh);
        p.dh.refill(l.dh_per_sec, l.dh_burst, now);
        p.registrations.refill(l.registrations_per_sec, l.registration_burst, now);
        let mut wait = p.dh.wait(l.dh_per_sec);
        if registration {
            wait = wait.max(p.registrations.wait(l.registrations_per_sec));
        }
        if !wait.is_zero() {
            debug!(%peer, "refused: DH rate limit");
            return refused(&mut s, Refusal::RateLimited { retry_after: wait });
        }
        p.dh.tokens -= 1.0;
        if registration {
            p.registrations.tokens -= 1.0;
        }
        Ok(())
    }

    fn check_penalties(
        s: &mut State,
        peer: PeerKey,
        account: Option<&str>,
        c: &Penalties,
        now: Instant,
    ) -> Result<(), Refusal> {
        if let Some(retry_after) = s.peer_penalties.active(&peer, c.forget_after, now) {
            debug!(%peer, "refused: peer penalty");
            return Err(Refusal::PeerPenalty { retry_after });
        }
        if let Some(account) = account
            && let Some(retry_after) = s.account_penalties.active(&account.to_owned(), c.forget_after, now)
            && !Self::is_trusted(s, peer, account, now)
        {
            debug!(%peer, account = %Escaped(account), "refused: account penalty");
            return Err(Refusal::AccountPenalty { retry_after });
        }
        Ok(())
    }

    fn is_trusted(s: &mut State, peer: PeerKey, account: &str, now: Instant) -> bool {
        let key = (peer, account.to_owned());
        match s.trusted.get(&key) {
            Some(&until) if until > now => true,
            Some(_) => {
                s.trusted.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Learns from a handshake's outcome: a failed proof counts against the peer
    /// and the account; a success makes the peer trusted for the account and
    /// clears the peer's failures. Logs penalties and an aggregate of failures.
    ///
    /// The synchronous, in-process form: with a penalty store it records nothing
    /// (logged at warn); fronts on a shared store call
    /// [`learn_outcome`](Self::learn_outcome).
    pub fn record_outcome(&self, peer: PeerKey, outcome: &Outcome) {
        self.record_outcome_at(peer, outcome, Instant::now());
    }

    fn record_outcome_at(&self, peer: PeerKey, outcome: &Outcome, now: Instant) {
        self.record_login_at(peer, login_of(outcome), now);
    }

    /// Learns from the end of a login that is not a scram-dh handshake (standard
    /// SCRAM, see [`check_login`](Self::check_login)), exactly as
    /// [`record_outcome`](Self::record_outcome) does from an [`Outcome`] (and, as
    /// it, in-process only: fronts on a shared store call
    /// [`learn_login`](Self::learn_login)).
    ///
    /// ```
    /// use scram_dh_net::admission::{Admission, Limits, LoginOutcome};
    ///
    /// let adm = Admission::new(Limits::default());
    /// let peer = adm.peer([10, 0, 0, 1].into());
    /// adm.check_login(peer, Some("alice")).unwrap();
    /// // A wrong password (RFC 5802 e=invalid-proof) counts against peer and account.
    /// adm.record_login(peer, LoginOutcome::FailedProof(Some("alice")));
    /// ```
    pub fn record_login(&self, peer: PeerKey, outcome: LoginOutcome<'_>) {
        if self.penalty_store.is_some() {
            if outcome != LoginOutcome::Other {
                warn!(%peer, "a synchronous login record on a shared penalty store: not recorded (use learn_*)");
            }
            return;
        }
        self.record_login_at(peer, outcome, Instant::now());
    }

    /// Learns from a handshake's outcome, as [`record_outcome`](Self::record_outcome)
    /// does, in the shared store when there is one. Every front calls this after
    /// every engine step.
    pub async fn learn_outcome(&self, peer: PeerKey, outcome: &Outcome) {
        self.learn_login(peer, login_of(outcome)).await;
    }

    /// Learns from the end of a standard SCRAM login, as
    /// [`record_login`](Self::record_login) does, in the shared store when there
    /// is one. A store that cannot be written is logged at warn; the login's
    /// outcome stands (a failed one stays failed).
    pub async fn learn_login(&self, peer: PeerKey, outcome: LoginOutcome<'_>) {
        match &self.penalty_store {
            None => self.record_login_at(peer, outcome, Instant::now()),
            Some(store) => {
                Self::learn_shared(store.as_ref(), &self.limits.penalties, peer, outcome, now_ms()).await;
                let mut s = self.lock();
                if matches!(outcome, LoginOutcome::FailedProof(_)) {
                    s.log.failures += 1;
                }
                Self::summarise(&mut s, Instant::now());
            }
        }
    }

    /// What [`record_login_at`](Self::record_login_at) does to the tables, in a
    /// shared store.
    async fn learn_shared(
        store: &dyn PenaltyStore,
        c: &Penalties,
        peer: PeerKey,
        outcome: LoginOutcome<'_>,
        now_ms: u64,
    ) {
        let lost = |what: &str, e: &StoreError| {
            warn!(%peer, error = %e, "penalty store unavailable: {what} not recorded");
        };
        match outcome {
            LoginOutcome::Authenticated(account) => {
                if let Err(e) = store.clear(&peer_key(peer)).await {
                    lost("the peer's success", &e);
                }
                if let Err(e) = store.trust(&trust_key(peer, account), millis(c.trust_for), now_ms).await {
                    lost("the trusted pair", &e);
                }
            }
            LoginOutcome::FailedProof(username) => {
                debug!(%peer, account = ?username.map(Escaped), "failed proof");
                match store.fail(&peer_key(peer), &c.peer_rule(), now_ms).await {
                    Ok(Some(wait)) => {
                        warn!(%peer, wait_secs = Duration::from_millis(wait).as_secs_f64(), "failed proofs: penalising peer")
                    }
                    Ok(None) => {}
                    Err(e) => lost("a failed proof (peer)", &e),
                }
                let Some(account) = username else { return };
                // A trust that cannot be read counts as none: penalise rather than let through.
                let trusted = store.trusted(&trust_key(peer, account), now_ms).await.unwrap_or_else(|e| {
                    lost("a failed proof's trust check", &e);
                    false
                });
                if trusted {
                    return;
                }
                match store.fail(&account_key(account), &c.account_rule(), now_ms).await {
                    Ok(Some(wait)) => {
                        warn!(account = %Escaped(account), wait_secs = Duration::from_millis(wait).as_secs_f64(), "failed proofs: penalising account")
                    }
                    Ok(None) => {}
                    Err(e) => lost("a failed proof (account)", &e),
                }
            }
            LoginOutcome::Other => {}
        }
    }

    fn record_login_at(&self, peer: PeerKey, outcome: LoginOutcome<'_>, now: Instant) {
        let c = &self.limits.penalties;
        let mut s = self.lock();
        match outcome {
            LoginOutcome::Authenticated(account) => {
                let account = account.to_owned();
                s.peer_penalties.clear(&peer);
                if s.trusted.len() >= c.max_tracked && !s.trusted.contains_key(&(peer, account.clone())) {
                    s.trusted.retain(|_, until| *until > now);
                    if s.trusted.len() >= c.max_tracked
                        && let Some(k) = s.trusted.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone())
                    {
                        s.trusted.remove(&k);
                    }
                }
                s.trusted.insert((peer, account), now + c.trust_for);
            }
            LoginOutcome::FailedProof(username) => {
                s.log.failures += 1;
                debug!(%peer, account = ?username.map(Escaped), "failed proof");
                if let Some(wait) = s.peer_penalties.fail(&peer, &c.peer_rule(), c, now) {
                    warn!(%peer, wait_secs = wait.as_secs_f64(), "failed proofs: penalising peer");
                }
                if let Some(account) = username
                    && !Self::is_trusted(&mut s, peer, account, now)
                    && let Some(wait) =
                        s.account_penalties.fail(&account.to_owned(), &c.account_rule(), c, now)
                {
                    warn!(account = %Escaped(account), wait_secs = wait.as_secs_f64(), "failed proofs: penalising account");
                }
            }
            LoginOutcome::Other => {}
        }
        Self::summarise(&mut s, now);
    }

    /// One info line per interval with the failures and refusals counted since
    /// (the penalised counts are the in-process tables').
    fn summarise(s: &mut State, now: Instant) {
        if now.saturating_duration_since(s.log.since) >= FAILURE_LOG_INTERVAL {
            if s.log.failures > 0 || s.log.refused > 0 {
                info!(
                    failed_proofs = s.log.failures,
                    refused = s.log.refused,
                    penalised_peers = s.peer_penalties.map.len(),
                    penalised_accounts = s.account_penalties.map.len(),
                    "admission summary for the last interval"
                );
            }
            s.log = FailureLog { since: now, failures: 0, refused: 0 };
        }
    }

    /// Takes a channel slot for an authenticated user (before the front sends A4).
    /// The connection's handshake slot is released at the same time.
    ///
    /// # Errors
    /// [`Refusal::Channels`] when the server, the peer or the user is at its cap.
    pub fn open_channel(
        self: &Arc<Self>,
        conn: &mut ConnectionGuard,
        username: &str,
    ) -> Result<ChannelGuard, Refusal> {
        let l = &self.limits;
        let mut s = self.lock();
        let peer = conn.peer;
        let peer_channels = s.peers.get(&peer).map_or(0, |p| p.channels);
        let user_channels = s.user_channels.get(username).copied().unwrap_or(0);
        if s.total.channels >= l.max_channels
            || peer_channels >= l.max_channels_per_peer
            || user_channels >= l.max_channels_per_user
        {
            s.log.refused += 1;
            metrics::record_refusal(RefusalReason::Channels);
            return Err(Refusal::Channels);
        }
        s.total.channels += 1;
        *s.user_channels.entry(username.to_owned()).or_insert(0) += 1;
        if let Some(p) = s.peers.get_mut(&peer) {
            p.channels += 1;
        }
        if conn.handshake {
            conn.handshake = false;
            s.total.handshakes = s.total.handshakes.saturating_sub(1);
            if let Some(p) = s.peers.get_mut(&peer) {
                p.handshakes = p.handshakes.saturating_sub(1);
            }
        }
        Ok(ChannelGuard {
            admission: Arc::clone(self),
            peer,
            username: username.to_owned(),
            _live: metrics::Live::channel(),
        })
    }

    fn forget_if_idle(s: &mut State, peer: PeerKey, l: &Limits) {
        let Some(p) = s.peers.get(&peer) else { return };
        if p.connections == 0 && p.handshakes == 0 && p.channels == 0 {
            // Keep the entry while its buckets are not full again, so that closing
            // and reopening connections does not refill them; bounded by the caps
            // on connections (an entry with no connection is dropped once full).
            let refilled = |b: &Bucket, rate: f64, burst: f64| {
                let mut b = *b;
                b.refill(rate, burst, Instant::now());
                b.tokens >= burst
            };
            if (refilled(&p.dh, l.dh_per_sec, l.dh_burst)
                && refilled(&p.registrations, l.registrations_per_sec, l.registration_burst))
                || s.peers.len() > l.penalties.max_tracked
            {
                s.peers.remove(&peer);
            }
        }
    }
}

/// A connection slot (and, until a channel opens, a handshake slot).
#[must_use = "the slot is released when the guard drops"]
pub struct ConnectionGuard {
    admission: Arc<Admission>,
    peer: PeerKey,
    handshake: bool,
}

impl ConnectionGuard {
    /// The peer holding the slot.
    #[must_use]
    pub fn peer(&self) -> PeerKey {
        self.peer
    }
}

impl fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionGuard").field("peer", &self.peer).finish_non_exhaustive()
    }
}

// Decrements saturate: a table pruned under a spray of addresses (see
// `check_message_at`) may have forgotten a peer whose guard is still alive.
impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let a = &self.admission;
        let mut s = a.lock();
        s.total.connections = s.total.connections.saturating_sub(1);
        if self.handshake {
            s.total.handshakes = s.total.handshakes.saturating_sub(1);
        }
        if let Some(p) = s.peers.get_mut(&self.peer) {
            p.connections = p.connections.saturating_sub(1);
            if self.handshake {
                p.handshakes = p.handshakes.saturating_sub(1);
            }
        }
        Admission::forget_if_idle(&mut s, self.peer, &a.limits);
    }
}

/// A channel slot, released when the channel ends.
#[must_use = "the slot is released when the guard drops"]
pub struct ChannelGuard {
    admission: Arc<Admission>,
    peer: PeerKey,
    username: String,
    /// `scram_dh_channels`.
    _live: metrics::Live,
}

impl fmt::Debug for ChannelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelGuard").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        let a = &self.admission;
        let mut s = a.lock();
        s.total.channels = s.total.channels.saturating_sub(1);
        if let Some(n) = s.user_channels.get_mut(&self.username) {
            *n = (*n).saturating_sub(1);
            if *n == 0 {
                s.user_channels.remove(&self.username);
            }
        }
        if let Some(p) = s.peers.get_mut(&self.peer) {
            p.channels = p.channels.saturating_sub(1);
        }
        Admission::forget_if_idle(&mut s, self.peer, &a.limits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scram_dh::message::{AuthPairing, Base64};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // M3: IPv6 peers aggregate by /64; IPv4-mapped addresses are IPv4.
    #[test]
    fn m3_ipv6_peers_aggregate_by_prefix() {
        let a = PeerKey::new(ip("2001:db8:1:2:aaaa::1"), 64);
        let b = PeerKey::new(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64);
        let c = PeerKey::new(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(PeerKey::new(ip("::ffff:10.0.0.1"), 64), PeerKey::new(ip("10.0.0.1"), 64));
        assert_ne!(PeerKey::new(ip("10.0.0.1"), 64), PeerKey::new(ip("10.0.0.2"), 64));
    }

    // M3: a peer cannot hold more than its connections, and the reserve keeps the
    // last slots for peers holding almost nothing.
    #[test]
    fn m3_connection_caps_and_reserve() {
        let limits = Limits {
            max_connections: 10,
            max_connections_per_peer: 4,
            max_handshakes: 10,
            max_handshakes_per_peer: 4,
            connection_reserve: 3,
            reserve_peer_max: 1,
            ..Limits::default()
        };
        let adm = Admission::new(limits);
        let peer = |i: u8| adm.peer(IpAddr::from([10, 0, 0, i]));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(adm.connect(peer(1)).unwrap());
        }
        assert_eq!(adm.connect(peer(1)).unwrap_err(), Refusal::PeerConnections);
        held.push(adm.connect(peer(2)).unwrap());
        held.push(adm.connect(peer(2)).unwrap());
        held.push(adm.connect(peer(2)).unwrap());
        // 7 of 10 used: the remaining 3 are the reserve, for peers holding < 1.
        assert_eq!(adm.connect(peer(2)).unwrap_err(), Refusal::ServerFull);
        held.push(adm.connect(peer(3)).unwrap());
        assert_eq!(adm.connect(peer(3)).unwrap_err(), Refusal::ServerFull, "peer 3 holds one already");
        held.push(adm.connect(peer(4)).unwrap());
        held.push(adm.connect(peer(5)).unwrap());
        assert_eq!(adm.connect(peer(6)).unwrap_err(), Refusal::ServerFull, "all 10 taken");
        assert_eq!(adm.usage().connections, 10);
        held.clear();
        assert_eq!(adm.usage(), Usage { connections: 0, handshakes: 0, channels: 0, peers: 0 });
    }

    fn a1(user: &str, channel: bool) -> ClientMessage {
        ClientMessage::AuthPairing(AuthPairing {
            username: user.into(),
            client_nonce: "0".repeat(64),
            group: channel.then(|| "x25519".into()),
            public_key: channel.then(|| Base64(vec![9; 32])),
        })
    }

    fn failed(user: &str) -> Outcome {
        Outcome::Failed {
            reply: ServerMessage::error(&Error::AuthenticationFailed),
            error: Error::AuthenticationFailed,
            username: Some(user.into()),
        }
    }

    // M2: DH-costing steps draw on a per-peer bucket; cheap steps do not.
    #[test]
    fn m2_dh_steps_are_rate_limited_per_peer() {
        let adm = Admission::new(Limits { dh_per_sec: 1.0, dh_burst: 3.0, ..Limits::default() });
        let p = adm.peer(ip("10.0.0.1"));
        let t0 = Instant::now();
        for _ in 0..3 {
            adm.check_message_at(p, &a1("u", true), t0).unwrap();
        }
        assert!(matches!(adm.check_message_at(p, &a1("u", true), t0), Err(Refusal::RateLimited { .. })));
        // A1 without a channel costs no DH and is not limited by the bucket.
        for _ in 0..10 {
            adm.check_message_at(p, &a1("u", false), t0).unwrap();
        }
        // Another peer has its own bucket; and the bucket refills.
        adm.check_message_at(adm.peer(ip("10.0.0.2")), &a1("u", true), t0).unwrap();
        adm.check_message_at(p, &a1("u", true), t0 + Duration::from_millis(1001)).unwrap();
    }

    fn penalties() -> Penalties {
        Penalties {
            peer_free_failures: 2,
            account_free_failures: 4,
            base: Duration::from_secs(1),
            max_peer: Duration::from_secs(8),
            max_account: Duration::from_secs(16),
            forget_after: Duration::from_secs(100),
            trust_for: Duration::from_secs(1000),
            max_tracked: 1000,
        }
    }

    // M5: failed proofs back off exponentially per peer, up to a ceiling, and are
    // forgotten after a quiet period.
    #[test]
    fn m5_peer_penalty_backs_off_exponentially() {
        let adm = Admission::new(Limits { penalties: penalties(), ..Limits::default() });
        let p = adm.peer(ip("10.0.0.1"));
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        adm.record_outcome_at(p, &failed("a"), at(0.0));
        adm.record_outcome_at(p, &failed("b"), at(0.0));
        adm.check_message_at(p, &a1("c", false), at(0.0)).unwrap();
        let mut t = 0.0;
        for expected in [1.0, 2.0, 4.0, 8.0, 8.0] {
            adm.record_outcome_at(p, &failed("c"), at(t));
            match adm.check_message_at(p, &a1("c", false), at(t)) {
                Err(Refusal::PeerPenalty { retry_after }) => {
                    assert_eq!(retry_after, Duration::from_secs_f64(expected), "at {t}");
                }
                other => panic!("expected a penalty at {t}: {other:?}"),
            }
            t += expected;
            adm.check_message_at(p, &a1("c", false), at(t)).unwrap();
        }
        // After the quiet period the count starts over: two free failures again.
        let later = t + 101.0;
        adm.record_outcome_at(p, &failed("c"), at(later));
        adm.record_outcome_at(p, &failed("c"), at(later));
        adm.check_message_at(p, &a1("c", false), at(later)).unwrap();
    }

    // M5: an account under penalty refuses untrusted peers, but its owner, from a
    // peer that logged in to it before, still gets in.
    #[test]
    fn m5_account_penalty_does_not_lock_out_the_owner() {
        let adm = Admission::new(Limits { penalties: penalties(), ..Limits::default() });
        let t0 = Instant::now();
        let owner = adm.peer(ip("10.9.9.9"));
        // The owner logged in before (trust is what record_outcome learns from a success).
        adm.lock().trusted.insert((owner, "alice".into()), t0 + Duration::from_secs(1000));
        // Attackers from many addresses, one failure each: no per-peer penalty, but the account's.
        for i in 0..5u8 {
            adm.record_outcome_at(adm.peer(IpAddr::from([10, 1, 0, i])), &failed("alice"), t0);
        }
        let fresh = adm.peer(ip("10.2.0.1"));
        assert!(matches!(
            adm.check_message_at(fresh, &a1("alice", false), t0),
            Err(Refusal::AccountPenalty { .. })
        ));
        adm.check_message_at(owner, &a1("alice", false), t0).unwrap();
        // Other accounts are unaffected.
        adm.check_message_at(fresh, &a1("bob", false), t0).unwrap();
        // Unknown and known names are treated alike: penalties only see the name.
        for i in 0..5u8 {
            adm.record_outcome_at(adm.peer(IpAddr::from([10, 3, 0, i])), &failed("ghost"), t0);
        }
        assert!(matches!(
            adm.check_message_at(fresh, &a1("ghost", false), t0),
            Err(Refusal::AccountPenalty { .. })
        ));
    }

    // M5 for standard SCRAM (RFC 7804 / RFC 5802 fronts): check_login and
    // record_login apply the same penalties and trust as the scram-dh outcomes.
    #[test]
    fn m5_standard_scram_logins_share_the_penalties() {
        let adm = Admission::new(Limits { penalties: penalties(), ..Limits::default() });
        let p = adm.peer(ip("10.0.0.7"));
        adm.check_login(p, Some("alice")).unwrap();
        adm.record_login(p, LoginOutcome::FailedProof(Some("alice")));
        adm.record_login(p, LoginOutcome::Other);
        adm.record_login(p, LoginOutcome::FailedProof(None));
        adm.check_login(p, Some("alice")).unwrap();
        adm.record_login(p, LoginOutcome::FailedProof(Some("alice")));
        assert!(matches!(adm.check_login(p, None), Err(Refusal::PeerPenalty { .. })));
        // A scram-dh A1 from the same peer is refused alike: one table.
        assert!(matches!(adm.check_message(p, &a1("bob", false)), Err(Refusal::PeerPenalty { .. })));
        // A success clears the peer and trusts it for the account.
        adm.record_login(p, LoginOutcome::Authenticated("alice"));
        adm.check_login(p, Some("alice")).unwrap();
        for i in 0..5u8 {
            adm.record_login(adm.peer(IpAddr::from([10, 4, 0, i])), LoginOutcome::FailedProof(Some("alice")));
        }
        assert!(matches!(
            adm.check_login(adm.peer(ip("10.5.0.1")), Some("alice")),
            Err(Refusal::AccountPenalty { .. })
        ));
        adm.check_login(p, Some("alice")).unwrap();
    }

    /// A penalty store that is always down.
    #[derive(Debug)]
    struct Down;

    impl PenaltyStore for Down {
        fn wait<'a>(&'a self, _: &'a str, _: u64) -> scram_dh::cluster::StoreFuture<'a, Option<u64>> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
        fn fail<'a>(
            &'a self,
            _: &'a str,
            _: &'a PenaltyRule,
            _: u64,
        ) -> scram_dh::cluster::StoreFuture<'a, Option<u64>> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
        fn clear<'a>(&'a self, _: &'a str) -> scram_dh::cluster::StoreFuture<'a, ()> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
        fn trust<'a>(&'a self, _: &'a str, _: u64, _: u64) -> scram_dh::cluster::StoreFuture<'a, ()> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
        fn trusted<'a>(&'a self, _: &'a str, _: u64) -> scram_dh::cluster::StoreFuture<'a, bool> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
    }

    // Issue 9: two nodes sharing one penalty store are one admission layer for
    // the penalties: failures on A lock the account on B, a success on B trusts
    // the peer on A, and neither keeps penalties of its own.
    #[tokio::test]
    async fn shared_penalties_span_nodes() {
        let store: Arc<dyn PenaltyStore> = Arc::new(scram_dh::cluster::MemoryPenaltyStore::new(1000));
        let limits = || Limits { penalties: penalties(), ..Limits::default() };
        let a = Admission::with_penalty_store(limits(), Arc::clone(&store));
        let b = Admission::with_penalty_store(limits(), Arc::clone(&store));
        let owner = a.peer(ip("10.9.9.9"));
        b.learn_login(owner, LoginOutcome::Authenticated("alice")).await;
        for i in 0..5u8 {
            a.learn_login(a.peer(IpAddr::from([10, 1, 0, i])), LoginOutcome::FailedProof(Some("alice")))
                .await;
        }
        let fresh = b.peer(ip("10.2.0.1"));
        assert!(matches!(b.admit_login(fresh, Some("alice")).await, Err(Refusal::AccountPenalty { .. })));
        assert!(matches!(
            b.admit_message(fresh, &a1("alice", true)).await,
            Err(Refusal::AccountPenalty { .. })
        ));
        a.admit_login(owner, Some("alice")).await.unwrap();
        b.admit_message(owner, &a1("alice", false)).await.unwrap();
        b.admit_login(fresh, Some("bob")).await.unwrap();
        // Peer penalties too: three failures on A (two free), refused on B.
        let p = a.peer(ip("10.0.0.7"));
        for _ in 0..3 {
            a.learn_outcome(p, &failed("carol")).await;
        }
        match b.admit_login(p, None).await {
            Err(Refusal::PeerPenalty { retry_after }) => assert_eq!(retry_after, Duration::from_secs(1)),
            other => panic!("expected a peer penalty: {other:?}"),
        }
        // A success on B clears the peer on A.
        b.learn_login(p, LoginOutcome::Authenticated("carol")).await;
        a.admit_login(p, None).await.unwrap();
        // Nothing in-process; and the synchronous checks fail closed on a shared store.
        {
            let s = a.lock();
            assert!(s.peer_penalties.map.is_empty() && s.account_penalties.map.is_empty());
            assert!(s.trusted.is_empty());
        }
        assert_eq!(a.check_login(p, None), Err(Refusal::Unavailable));
        assert_eq!(a.check_message(p, &a1("carol", false)), Err(Refusal::Unavailable));
    }

    // Issue 9: a penalty store that cannot be read refuses logins (fail closed),
    // with server_error; one that cannot be written loses nothing else.
    #[tokio::test]
    async fn a_down_penalty_store_fails_closed() {
        let adm = Admission::with_penalty_store(Limits::default(), Arc::new(Down));
        let p = adm.peer(ip("10.0.0.1"));
        assert_eq!(adm.admit_login(p, Some("alice")).await, Err(Refusal::Unavailable));
        assert_eq!(adm.admit_message(p, &a1("alice", true)).await, Err(Refusal::Unavailable));
        let r1 = ClientMessage::RegistrationPairing(scram_dh::message::RegistrationPairing {
            username: "new".into(),
            client_nonce: "0".repeat(64),
            group: "x25519".into(),
            public_key: Base64(vec![9; 32]),
            labels: "random".into(),
        });
        assert_eq!(adm.admit_message(p, &r1).await, Err(Refusal::Unavailable));
        adm.learn_login(p, LoginOutcome::FailedProof(Some("alice"))).await;
        adm.learn_login(p, LoginOutcome::Authenticated("alice")).await;
        let ServerMessage::Error(e) = Refusal::Unavailable.reply() else { panic!("not an error") };
        assert_eq!(e.code, ErrorCode::ServerError);
        assert!(!e.message.contains("connection"), "no store detail to the peer: {}", e.message);
        // No DH token was taken for the refused steps.
        assert_eq!(adm.usage().peers, 0);
    }

    // H1/M5: tables stay bounded under a spray of addresses and names.
    #[test]
    fn penalty_tables_stay_bounded() {
        let mut p = penalties();
        p.max_tracked = 100;
        let adm = Admission::new(Limits { penalties: p, ..Limits::default() });
        let t0 = Instant::now();
        for i in 0..5000u32 {
            let peer = adm.peer(IpAddr::from(i.to_be_bytes()));
            adm.record_outcome_at(peer, &failed(&format!("user{i}")), t0);
            let _ = adm.check_message_at(peer, &a1("x", true), t0);
        }
        let s = adm.lock();
        assert!(s.peer_penalties.map.len() <= 100);
        assert!(s.account_penalties.map.len() <= 100);
        assert!(s.peers.len() <= 101);
    }

    // H1: every cap is checked against the open-file limit.
    #[test]
    fn h1_caps_are_checked_against_the_fd_limit() {
        let l = Limits::default();
        assert!(l.check(65536).is_ok());
        let err = l.check(1024).unwrap_err();
        assert!(err.contains("open-file limit"), "{err}");
        let l = Limits { max_channels: l.max_connections + 1, ..Limits::default() };
        assert!(l.check(1 << 20).unwrap_err().contains("max-channels"));
        assert!(raise_fd_limit().unwrap() >= 1024);
    }
}
