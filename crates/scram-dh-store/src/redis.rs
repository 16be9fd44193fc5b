//! State that several server nodes share, in one Redis server: the engine's
//! in-flight handshakes ([`SessionStore`], SPEC 5), the HTTP sessions with their
//! anti-replay windows ([`HttpSessionStore`]) and the failed-proof penalties
//! ([`PenaltyStore`]). One [`RedisStore`] implements all three; clone it freely
//! (clones share one multiplexed connection).
//!
//! ## Why redis-rs
//! The client is redis-rs (the `redis` crate) with its [`ConnectionManager`]
//! rather than fred: it is the most widely used Redis client for Rust; the manager
//! multiplexes every call over one connection and reconnects by itself when the
//! server goes away and comes back; [`redis::Script`] runs scripts by `EVALSHA`
//! and reloads them by itself when the server answers `NOSCRIPT` (after a
//! restart); and with default features off its dependency tree is small.
//!
//! ## What is atomic, and how
//! Every check-then-write is one Lua script, which Redis runs without
//! interleaving any other command: an insert checks the global and the per-peer
//! caps and sets the value in one step; a take is `GETDEL` plus the removal of its
//! index entries; a window swap compares and sets; a failure is counted and its
//! wait set in one step. So two nodes (or fifty concurrent calls) never both win.
//!
//! ## Time
//! Correctness uses the caller's `now_ms` (milliseconds since the Unix epoch, the
//! clock all nodes share), exactly as the in-memory stores of `scram-dh` do:
//! each value carries its own deadline, and a value past it is treated as absent
//! even while Redis still holds it. Redis's native expiry (`PX`, `PEXPIRE`) only
//! cleans up, [`CLEANUP_SLACK_MS`] after the logical deadline, so a node whose
//! clock runs a little ahead of Redis's never loses a live value. Caps count
//! members of sorted sets scored by deadline, purged by score (`O(log n)` per
//! expired entry, never a scan). The engine sessions' purge also counts what it
//! dropped: [`RedisStore::sessions_expired_total`]. Times are clamped to
//! 2^53 - 1 ms (the year 287 396) so that Lua's numbers hold them exactly.
//!
//! ## Failure
//! Every call is bounded by [`RedisOptions::op_timeout`]: with Redis down, a call
//! returns a [`StoreError`] starting `redis unavailable:` within that time, never
//! hangs and never answers as if it had succeeded (fail closed). Once Redis is back
//! the same store works again, with no restart: the manager reconnects and the
//! scripts reload. (The manager retries only after I/O errors; when a
//! reconnection is refused, say the server's password changed and changed back,
//! the store replaces the manager so that the next call starts over.) Nothing is retried behind the caller's back, so a call whose
//! answer was lost is never applied twice. Error messages and `Debug` output show
//! the URL through [`redact_url`]; values are opaque and never logged.
//!
//! ## Keys
//! Everything lives under [`RedisOptions::prefix`] (default `scram-dh:`), so
//! several deployments, or tests, can share one Redis:
//! `sess:<phase>:<nonce hex>` (engine session: 8-byte big-endian deadline, 4-byte
//! peer length, peer, sealed blob), `sess-index` and `sess-peer:<peer>` (sorted
//! sets for the caps); `http:<id>` (hash), `http-index` and `http-user:<username>`;
//! `fail:<key>` (hash) and `trust:<key>`. Keys are binary-safe; usernames and
//! penalty keys go in as their UTF-8 bytes. Scripts touch keys derived from values
//! (a peer's or a user's index), so this is for a single Redis server (with
//! replicas if wanted), not Redis Cluster.
//!
//! ```no_run
//! use scram_dh_store::redis::{RedisOptions, RedisStore};
//!
//! # async fn demo() -> Result<(), scram_dh_store::StoreError> {
//! let mut options = RedisOptions::new("redis://:s3cret@127.0.0.1:6379/0");
//! options.prefix = "prod-eu:".into();
//! let store = RedisStore::connect(options).await?;
//! println!("{store:?}"); // the password is shown as ***
//! # Ok(())
//! # }
//! ```

use core::fmt;
use core::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncConnectionConfig, Client, RedisError, RedisResult, Script};
use scram_dh::cluster::{
    HttpSessionLimits, HttpSessionRecord, HttpSessionStore, PenaltyRule, PenaltyStore, StoreFuture,
    WindowSwap,
};
use scram_dh::record::StoreError;
use scram_dh::secret::SecretBytes;
use scram_dh::session::{SessionInsert, SessionKey, SessionStore};

/// Redis's native expiry is set this long after a value's logical deadline: it
/// only cleans up, and must never remove a value a node still considers live.
pub const CLEANUP_SLACK_MS: u64 = 5_000;

/// How much longer than its newest session the engine sessions' global index
/// lives: expired members are counted when a later insert drops them, so the
/// index must outlast a quiet spell (without it, the last sessions before one
/// would vanish with the index, uncounted).
pub const INDEX_GRACE_MS: u64 = 3_600_000;

/// The largest time, in milliseconds, the store represents exactly (2^53 - 1:
/// Lua numbers are doubles). Larger times and durations are clamped to it.
const MAX_MS: u64 = (1 << 53) - 1;

/// The oldest Redis with every command the scripts use (`GETDEL`: 6.2).
const MIN_VERSION: (u32, u32) = (6, 2);

fn clamp(ms: u64) -> u64 {
    ms.min(MAX_MS)
}

/// Where the Redis server is and what the store may hold.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user][:password]@host[:port][/db]`, or
    /// `redis+unix:///path?db=N&pass=…` for a Unix socket. TLS (`rediss://`) is
    /// not built in: use loopback, a private network or a TLS tunnel.
    pub url: String,
    /// Prepended to every key (default `scram-dh:`).
    pub prefix: String,
    /// Engine sessions live at once, all peers (default 100 000).
    pub max_sessions: usize,
    /// Engine sessions live at once for one peer (default 64).
    pub max_sessions_per_peer: usize,
    /// Bounds of the HTTP sessions.
    pub http: HttpSessionLimits,
    /// The longest any call may take, connecting included (default 2 s).
    pub op_timeout: Duration,
}

impl RedisOptions {
    /// Options for the server at `url`, with the defaults for the rest.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "scram-dh:".into(),
            max_sessions: 100_000,
            max_sessions_per_peer: 64,
            http: HttpSessionLimits::default(),
            op_timeout: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("max_sessions", &self.max_sessions)
            .field("max_sessions_per_peer", &self.max_sessions_per_peer)
            .field("http", &self.http)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

/// `url` with its password replaced by `***`: the userinfo's password
/// (`redis://user:PASS@host`, `redis://:PASS@host`) and a `pass=` or `password=`
/// query parameter (`redis+unix:///run/redis.sock?pass=PASS`). Use it wherever a
/// URL is shown.
///
/// ```
/// use scram_dh_store::redis::redact_url;
/// assert_eq!(redact_url("redis://:s3cret@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
/// assert_eq!(redact_url("redis://app:s3cret@cache/1"), "redis://app:***@cache/1");
/// assert_eq!(redact_url("redis+unix:///run/r.sock?db=1&pass=s3cret"), "redis+unix:///run/r.sock?db=1&pass=***");
/// assert_eq!(redact_url("redis://127.0.0.1"), "redis://127.0.0.1");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match before_query.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            let end = rest.find(['/', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            crate::push_redacted_authority(&mut out, authority);
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") => {
                    out.push_str(k);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// The password as written in `url` and percent-decoded, for scrubbing it from
/// error texts (only when at least four characters long, so that a short one
/// cannot mangle a message).
fn url_secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let before_query = url.split_once('?').map_or(url, |(b, _)| b);
    if let Some((_, rest)) = before_query.split_once("://") {
        let authority = &rest[..rest.find(['/', '#']).unwrap_or(rest.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, pass)) = userinfo.split_once(':')
        {
            found.push(pass.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && (k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password"))
            {
                found.push(v.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found.retain(|p| p.chars().count() >= 4);
    found.sort();
    found.dedup();
    found
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// The scripts. Numbers go into redis.call as strings made by string.format('%d'):
// Lua 5.1 would print a number past 10^14 in exponent form.

const LUA_BE: &str = "
local function be(s, i, n)
  if #s < i + n - 1 then return 0 end
  local x = 0
  for j = i, i + n - 1 do x = x * 256 + string.byte(s, j) end
  return x
end
local function keep(key, px)
  local t = redis.call('PTTL', key)
  if t == -1 or t < px then redis.call('PEXPIRE', key, string.format('%d', px)) end
end
";

/// Engine session insert or probe.
/// KEYS: value, global index, peer index.
/// ARGV: now, deadline, max, max per peer, px, member, framed value, probe flag,
/// global index px.
/// Returns {code, expired}: code 0 Inserted (or would), 1 Exists, 2 Full; expired
/// the sessions this call dropped from the global index because their deadline
/// passed untaken (a take removes its member, so each is dropped, and counted,
/// once, by whichever node's call gets there first).
const LUA_SESSION_INSERT: &str = "
local now = tonumber(ARGV[1])
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local old = redis.call('GET', KEYS[1])
if old and be(old, 1, 8) > now then return {1, expired} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) or redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  return {2, expired}
end
if ARGV[8] == '1' then return {0, expired} end
local px = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[6])
keep(KEYS[2], tonumber(ARGV[9]))
keep(KEYS[3], px)
return {0, expired}
";

/// Engine session take. KEYS: value, global index. ARGV: member, peer index prefix.
/// Returns {framed value, 1 if it was still in the global index}, or nil. (An
/// insert's purge may have dropped, and counted, an expired member whose value
/// Redis still holds: the caller counts a late take only when this removed it.)
const LUA_SESSION_TAKE: &str = "
local v = redis.call('GETDEL', KEYS[1])
if not v then return false end
local indexed = redis.call('ZREM', KEYS[2], ARGV[1])
if #v >= 12 then
  local n = be(v, 9, 4)
  redis.call('ZREM', ARGV[2] .. string.sub(v, 13, 12 + n), ARGV[1])
end
return {v, indexed}
";

/// HTTP session create. KEYS: hash, global index, user index.
/// ARGV: now, deadline, px, max, max per user, id, username, sealed keys, window, end.
/// Returns 1 created, 0 refused.
const LUA_HTTP_CREATE: &str = "
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) or redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  return 0
end
local d = redis.call('HGET', KEYS[1], 'deadline')
if d and tonumber(d) > now then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'user', ARGV[7], 'keys', ARGV[8], 'window', ARGV[9],
  'created', ARGV[1], 'end', ARGV[10], 'deadline', ARGV[2])
local px = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[6])
keep(KEYS[2], px)
keep(KEYS[3], px)
return 1
";

/// HTTP window compare-and-set. KEYS: hash, global index.
/// ARGV: now, old, new, idle, user index prefix, id, slack.
/// Returns 0 Swapped, 1 Changed, 2 Gone.
const LUA_HTTP_SWAP: &str = "
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'window', 'deadline', 'end', 'user')
if not f[2] or tonumber(f[2]) <= now then return 2 end
if f[1] ~= ARGV[2] then return 1 end
local d = math.min(now + tonumber(ARGV[4]), tonumber(f[3]))
local ds = string.format('%d', d)
redis.call('HSET', KEYS[1], 'window', ARGV[3], 'deadline', ds)
local px = d - now + tonumber(ARGV[7])
redis.call('PEXPIRE', KEYS[1], string.format('%d', px))
local user_index = ARGV[5] .. f[4]
redis.call('ZADD', KEYS[2], ds, ARGV[6])
redis.call('ZADD', user_index, ds, ARGV[6])
keep(KEYS[2], px)
keep(user_index, px)
return 0
";

/// HTTP session end. KEYS: hash, global index. ARGV: user index prefix, id.
const LUA_HTTP_END: &str = "
local u = redis.call('HGET', KEYS[1], 'user')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if u then redis.call('ZREM', ARGV[1] .. u, ARGV[2]) end
return 1
";

/// Live HTTP sessions. KEYS: global index. ARGV: now.
const LUA_HTTP_LIVE: &str = "
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
";

/// One failure, as `PenaltyRule::wait_after` and `MemoryPenaltyStore` count it.
/// KEYS: hash. ARGV: now, free, base, max, forget, slack, max ms.
/// Returns the wait in ms, or nil.
const LUA_PENALTY_FAIL: &str = "
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'count', 'last', 'until')
local count = tonumber(f[1]) or 0
local last = tonumber(f[2]) or now
local since = now - last
if since < 0 then since = 0 end
local until_ms = tonumber(f[3]) or 0
if (not f[1]) or since >= tonumber(ARGV[5]) then
  count = 0
  until_ms = 0
end
count = math.min(count + 1, 4294967295)
local wait = false
if count > free then
  local doublings = math.min(count - free - 1, 30)
  wait = math.min(tonumber(ARGV[3]) * (2 ^ doublings), tonumber(ARGV[4]))
  until_ms = math.min(now + wait, tonumber(ARGV[7]))
end
redis.call('HSET', KEYS[1], 'count', string.format('%d', count), 'last', ARGV[1],
  'until', string.format('%d', until_ms))
local keep_ms = math.max(tonumber(ARGV[5]), until_ms - now, 0) + tonumber(ARGV[6])
redis.call('PEXPIRE', KEYS[1], string.format('%d', keep_ms))
return wait
";

struct Scripts {
    session_insert: Script,
    session_take: Script,
    http_create: Script,
    http_swap: Script,
    http_end: Script,
    http_live: Script,
    penalty_fail: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{LUA_BE}{body}"));
        Self {
            session_insert: s(LUA_SESSION_INSERT),
            session_take: s(LUA_SESSION_TAKE),
            http_create: s(LUA_HTTP_CREATE),
            http_swap: s(LUA_HTTP_SWAP),
            http_end: s(LUA_HTTP_END),
            http_live: s(LUA_HTTP_LIVE),
            penalty_fail: s(LUA_PENALTY_FAIL),
        }
    }

    fn all(&self) -> [&Script; 7] {
        [
            &self.session_insert,
            &self.session_take,
            &self.http_create,
            &self.http_swap,
            &self.http_end,
            &self.http_live,
            &self.penalty_fail,
        ]
    }
}

/// The manager and how many times it was replaced.
struct Conn {
    generation: u64,
    manager: ConnectionManager,
}

struct Inner {
    conn: Mutex<Conn>,
    /// To build a new manager when the old one gives up for good (see `renew`).
    client: Client,
    config: ConnectionManagerConfig,
    scripts: Scripts,
    shown_url: String,
    secrets: Vec<String>,
    prefix: Vec<u8>,
    max_sessions: usize,
    max_sessions_per_peer: usize,
    http: HttpSessionLimits,
    op_timeout: Duration,
    /// Engine sessions this store's calls found expired untaken (see
    /// [`RedisStore::sessions_expired_total`]).
    sessions_expired: AtomicU64,
}

/// Engine sessions, HTTP sessions and penalties in one Redis server, shared by
/// every node that connects with the same URL and prefix. See the
/// [module documentation](self) for the key layout and the failure behaviour.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("RedisStore")
            .field("url", &i.shown_url)
            .field("prefix", &String::from_utf8_lossy(&i.prefix))
            .field("max_sessions", &i.max_sessions)
            .field("max_sessions_per_peer", &i.max_sessions_per_peer)
            .field("http", &i.http)
            .field("op_timeout", &i.op_timeout)
            .finish_non_exhaustive()
    }
}

fn scrub(text: String, secrets: &[String]) -> String {
    secrets.iter().fold(text, |t, s| t.replace(s.as_str(), "***"))
}

/// Whether `e` says the server cannot serve now (down, unreachable, refusing
/// the credentials, loading, read-only replica) rather than rejecting the call.
fn is_unavailable(e: &RedisError) -> bool {
    use ::redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                )
        )
}

fn describe(e: &RedisError) -> &'static str {
    if is_unavailable(e) { "redis unavailable" } else { "redis error" }
}

impl RedisStore {
    /// Connects to the server named by `opts.url`, checks that it answers and is
    /// recent enough (Redis 6.2 or later), and loads the scripts.
    ///
    /// # Errors
    /// A [`StoreError`] naming the (redacted) URL when it does not parse, or the
    /// server cannot be reached, refuses the credentials or is too old, within
    /// about `op_timeout`.
    pub async fn connect(opts: RedisOptions) -> Result<Self, StoreError> {
        let shown_url = redact_url(&opts.url);
        let secrets = url_secrets(&opts.url);
        let t = opts.op_timeout.max(Duration::from_millis(1));
        let fail = |what: &str, detail: String| {
            StoreError(scrub(
                format!("redis unavailable: cannot connect to {shown_url}: {what}{detail}"),
                &secrets,
            ))
        };
        let client = Client::open(opts.url.as_str())
            .map_err(|e| StoreError(scrub(format!("redis: invalid URL {shown_url}: {e}"), &secrets)))?;
        // Few, quick reconnection attempts: while Redis is down a call fails fast
        // instead of waiting out a long backoff, and every failed call starts a
        // new attempt, so the first call after Redis returns reconnects.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t))
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200))
            .set_number_of_retries(2);
        let setup = async {
            // One direct attempt first: its error (refused, wrong password) is the
            // one to report; the manager below would retry it with backoff.
            let direct =
                AsyncConnectionConfig::new().set_connection_timeout(Some(t)).set_response_timeout(Some(t));
            let mut probe = client
                .get_multiplexed_async_connection_with_config(&direct)
                .await
                .map_err(|e| fail("", e.to_string()))?;
            // A server that refuses INFO (renamed or denied by an ACL) is taken as
            // recent enough; one that answers must be.
            match ::redis::cmd("INFO").arg("server").query_async::<String>(&mut probe).await {
                Ok(info) => check_version(&info).map_err(|v| fail("", v))?,
                Err(e) if is_unavailable(&e) => return Err(fail("INFO: ", e.to_string())),
                Err(_) => {}
            }
            let mut conn = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .map_err(|e| fail("", e.to_string()))?;
            let scripts = Scripts::new();
            for script in scripts.all() {
                script
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(|e| fail("SCRIPT LOAD: ", e.to_string()))?;
            }
            Ok::<_, StoreError>((conn, scripts))
        };
        let (conn, scripts) = tokio::time::timeout(t, setup)
            .await
            .map_err(|_| fail("", format!("no answer within {} ms", t.as_millis())))??;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(Conn { generation: 0, manager: conn }),
                client,
                config,
                scripts,
                shown_url,
                secrets,
                prefix: opts.prefix.into_bytes(),
                max_sessions: opts.max_sessions,
                max_sessions_per_peer: opts.max_sessions_per_peer,
                http: opts.http,
                op_timeout: t,
                sessions_expired: AtomicU64::new(0),
            }),
        })
    }

    /// Engine handshake sessions whose deadline passed before they were taken
    /// (abandoned handshakes, or a next step too late), as this store's own calls
    /// found them in the shared index: a running total that never goes down.
    ///
    /// Each such session is counted once across every node sharing the Redis
    /// server and prefix, by the node whose session insert or probe dropped it
    /// from the index, or whose too-late take removed it, so the nodes' totals add
    /// up to the cluster's. A session is counted at the first handshake after its
    /// deadline, on any node: a quiet cluster counts its last ones late, and the
    /// index outlives its newest session by [`INDEX_GRACE_MS`] so that none is lost.
    #[must_use]
    pub fn sessions_expired_total(&self) -> u64 {
        self.inner.sessions_expired.load(Ordering::Relaxed)
    }

    /// Engine handshake sessions live in the shared index at `now_ms` (deadline
    /// later than `now_ms`), every node's together. A read only: the expired
    /// members it skips stay for the insert that drops and counts them (see
    /// [`sessions_expired_total`](Self::sessions_expired_total)).
    ///
    /// # Errors
    /// A [`StoreError`] when Redis does not answer.
    pub async fn sessions_live(&self, now_ms: u64) -> Result<usize, StoreError> {
        let index = self.key("sess-index", b"");
        let min = format!("({}", clamp(now_ms));
        let n: u64 = self
            .run("session count", |mut conn| async move {
                ::redis::cmd("ZCOUNT").arg(&index).arg(&min).arg("+inf").query_async(&mut conn).await
            })
            .await?;
        usize::try_from(n).map_err(|_| StoreError("redis error: session count out of range".into()))
    }

    fn key(&self, tag: &str, rest: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.inner.prefix.len() + tag.len() + rest.len());
        k.extend_from_slice(&self.inner.prefix);
        k.extend_from_slice(tag.as_bytes());
        k.extend_from_slice(rest);
        k
    }

    fn error(&self, op: &str, e: &RedisError) -> StoreError {
        StoreError(scrub(
            format!("{}: {op} at {}: {e}", describe(e), self.inner.shown_url),
            &self.inner.secrets,
        ))
    }

    /// Runs one call against Redis, bounded by the op timeout.
    async fn run<T, F>(
        &self,
        op: &'static str,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let t = self.inner.op_timeout;
        let (generation, manager) = {
            let conn = self.inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            (conn.generation, conn.manager.clone())
        };
        match tokio::time::timeout(t, call(manager)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.kind() == ::redis::ErrorKind::AuthenticationFailed {
                    self.renew(generation);
                }
                Err(self.error(op, &e))
            }
            Err(_) => Err(StoreError(format!(
                "redis unavailable: {op} at {}: no answer within {} ms",
                self.inner.shown_url,
                t.as_millis()
            ))),
        }
    }

    /// Replaces the connection manager of `generation` by a fresh, lazy one. The
    /// manager reconnects by itself after I/O errors only; one whose reconnection
    /// was refused (the server changed its password, say) would keep answering
    /// that refusal, so the next call starts over instead.
    fn renew(&self, generation: u64) {
        let mut conn = self.inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.generation != generation {
            return; // another call renewed it already
        }
        if let Ok(manager) =
            ConnectionManager::new_lazy_with_config(self.inner.client.clone(), self.inner.config.clone())
        {
            *conn = Conn { generation: generation + 1, manager };
        }
    }

    // -- engine sessions ------------------------------------------------------

    async fn session_insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: Option<&SecretBytes>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<SessionInsert, StoreError> {
        let now = clamp(now_ms);
        let deadline = clamp(now.saturating_add(ttl_ms));
        let member = key.to_key_string();
        let value_key = self.key("sess:", member.as_bytes());
        let index = self.key("sess-index", b"");
        let peer_index = self.key("sess-peer:", peer.as_bytes());
        let px = deadline - now + CLEANUP_SLACK_MS;
        let framed = match value {
            Some(v) => {
                let peer_len =
                    u32::try_from(peer.len()).map_err(|_| StoreError("redis: peer name too long".into()))?;
                let mut f = SecretBytes::new(Vec::with_capacity(12 + peer.len() + v.len()));
                f.extend_from_slice(&deadline.to_be_bytes());
                f.extend_from_slice(&peer_len.to_be_bytes());
                f.extend_from_slice(peer.as_bytes());
                f.extend_from_slice(v);
                f
            }
            None => SecretBytes::new(Vec::new()),
        };
        let probe = if value.is_some() { "0" } else { "1" };
        let op = if value.is_some() { "session insert" } else { "session probe" };
        let script = &self.inner.scripts.session_insert;
        let (answer, expired): (i64, u64) = self
            .run(op, |mut conn| async move {
                script
                    .key(&value_key)
                    .key(&index)
                    .key(&peer_index)
                    .arg(now)
                    .arg(deadline)
                    .arg(self.inner.max_sessions)
                    .arg(self.inner.max_sessions_per_peer)
                    .arg(px)
                    .arg(&member)
                    .arg(framed.as_slice())
                    .arg(probe)
                    .arg(px.saturating_add(INDEX_GRACE_MS))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        self.inner.sessions_expired.fetch_add(expired, Ordering::Relaxed);
        match answer {
            0 => Ok(SessionInsert::Inserted),
            1 => Ok(SessionInsert::Exists),
            2 => Ok(SessionInsert::Full),
            _ => Err(StoreError(format!("redis error: {op}: unexpected answer {answer}"))),
        }
    }

    async fn session_take(&self, key: &SessionKey, now_ms: u64) -> Result<Option<SecretBytes>, StoreError> {
        let now = clamp(now_ms);
        let member = key.to_key_string();
        let value_key = self.key("sess:", member.as_bytes());
        let index = self.key("sess-index", b"");
        let peer_prefix = self.key("sess-peer:", b"");
        let script = &self.inner.scripts.session_take;
        let answer: Option<(Vec<u8>, i64)> = self
            .run("session take", |mut conn| async move {
                script
                    .key(&value_key)
                    .key(&index)
                    .arg(&member)
                    .arg(&peer_prefix)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some((framed, indexed)) = answer else { return Ok(None) };
        let framed = SecretBytes::new(framed);
        let corrupt = || StoreError("redis error: session take: malformed session value".into());
        let deadline = framed.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).ok_or_else(corrupt)?;
        let peer_len = framed.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()).ok_or_else(corrupt)?;
        let start = usize::try_from(u32::from_be_bytes(peer_len)).map_err(|_| corrupt())?.saturating_add(12);
        let blob = framed.get(start..).ok_or_else(corrupt)?;
        if u64::from_be_bytes(deadline) <= now {
            // Too late: it expired untaken. Counted here if this take removed its
            // index entry; otherwise a purge already dropped and counted it.
            if indexed == 1 {
                self.inner.sessions_expired.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(None);
        }
        Ok(Some(SecretBytes::new(blob.to_vec())))
    }

    // -- HTTP sessions --------------------------------------------------------

    async fn http_create(
        &self,
        id: &str,
        record: &HttpSessionRecord,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let limits = self.inner.http;
        let now = clamp(now_ms);
        let idle = clamp(limits.idle_ms);
        let end = clamp(now.saturating_add(limits.lifetime_ms));
        let deadline = clamp(now.saturating_add(idle)).min(end);
        let px = deadline - now + CLEANUP_SLACK_MS;
        let hash = self.key("http:", id.as_bytes());
        let index = self.key("http-index", b"");
        let user_index = self.key("http-user:", record.username.as_bytes());
        let script = &self.inner.scripts.http_create;
        let created: i64 = self
            .run("http session create", |mut conn| async move {
                script
                    .key(&hash)
                    .key(&index)
                    .key(&user_index)
                    .arg(now)
                    .arg(deadline)
                    .arg(px)
                    .arg(limits.max_sessions)
                    .arg(limits.max_per_user)
                    .arg(id)
                    .arg(record.username.as_str())
                    .arg(record.sealed_keys.as_slice())
                    .arg(&record.window[..])
                    .arg(end)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(created == 1)
    }

    async fn http_get(&self, id: &str, now_ms: u64) -> Result<Option<HttpSessionRecord>, StoreError> {
        let now = clamp(now_ms);
        let hash = self.key("http:", id.as_bytes());
        let fields: Vec<Option<Vec<u8>>> = self
            .run("http session get", |mut conn| async move {
                ::redis::cmd("HMGET")
                    .arg(&hash)
                    .arg(&["user", "keys", "window", "deadline"])
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let corrupt = || StoreError("redis error: http session get: malformed session".into());
        let [user, keys, window, deadline] =
            <[Option<Vec<u8>>; 4]>::try_from(fields).map_err(|_| corrupt())?;
        let (Some(user), Some(keys), Some(window), Some(deadline)) = (user, keys, window, deadline) else {
            return Ok(None);
        };
        if parse_ms(&deadline).ok_or_else(corrupt)? <= now {
            return Ok(None);
        }
        Ok(Some(HttpSessionRecord {
            username: String::from_utf8(user).map_err(|_| corrupt())?,
            sealed_keys: keys,
            window: <[u8; 16]>::try_from(window.as_slice()).map_err(|_| corrupt())?,
        }))
    }

    async fn http_swap(
        &self,
        id: &str,
        old: &[u8; 16],
        new: &[u8; 16],
        now_ms: u64,
    ) -> Result<WindowSwap, StoreError> {
        let now = clamp(now_ms);
        let idle = clamp(self.inner.http.idle_ms);
        let hash = self.key("http:", id.as_bytes());
        let index = self.key("http-index", b"");
        let user_prefix = self.key("http-user:", b"");
        let script = &self.inner.scripts.http_swap;
        let answer: i64 = self
            .run("http window swap", |mut conn| async move {
                script
                    .key(&hash)
                    .key(&index)
                    .arg(now)
                    .arg(&old[..])
                    .arg(&new[..])
                    .arg(idle)
                    .arg(&user_prefix)
                    .arg(id)
                    .arg(CLEANUP_SLACK_MS)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match answer {
            0 => Ok(WindowSwap::Swapped),
            1 => Ok(WindowSwap::Changed),
            2 => Ok(WindowSwap::Gone),
            _ => Err(StoreError(format!("redis error: http window swap: unexpected answer {answer}"))),
        }
    }

    async fn http_end(&self, id: &str) -> Result<(), StoreError> {
        let hash = self.key("http:", id.as_bytes());
        let index = self.key("http-index", b"");
        let user_prefix = self.key("http-user:", b"");
        let script = &self.inner.scripts.http_end;
        let _: i64 = self
            .run("http session end", |mut conn| async move {
                script.key(&hash).key(&index).arg(&user_prefix).arg(id).invoke_async(&mut conn).await
            })
            .await?;
        Ok(())
    }

    async fn http_live(&self, now_ms: u64) -> Result<usize, StoreError> {
        let index = self.key("http-index", b"");
        let script = &self.inner.scripts.http_live;
        let n: u64 = self
            .run("http session count", |mut conn| async move {
                script.key(&index).arg(clamp(now_ms)).invoke_async(&mut conn).await
            })
            .await?;
        usize::try_from(n).map_err(|_| StoreError("redis error: http session count out of range".into()))
    }

    // -- penalties ------------------------------------------------------------

    async fn penalty_wait(&self, key: &str, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let now = clamp(now_ms);
        let hash = self.key("fail:", key.as_bytes());
        let until: Option<Vec<u8>> = self
            .run("penalty wait", |mut conn| async move {
                ::redis::cmd("HGET").arg(&hash).arg("until").query_async(&mut conn).await
            })
            .await?;
        let Some(until) = until else { return Ok(None) };
        let until = parse_ms(&until)
            .ok_or_else(|| StoreError("redis error: penalty wait: malformed entry".into()))?;
        Ok((until > now).then(|| until - now))
    }

    async fn penalty_fail(
        &self,
        key: &str,
        rule: &PenaltyRule,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let hash = self.key("fail:", key.as_bytes());
        let script = &self.inner.scripts.penalty_fail;
        self.run("penalty fail", |mut conn| async move {
            script
                .key(&hash)
                .arg(clamp(now_ms))
                .arg(rule.free)
                .arg(clamp(rule.base_ms))
                .arg(clamp(rule.max_ms))
                .arg(clamp(rule.forget_ms))
                .arg(CLEANUP_SLACK_MS)
                .arg(MAX_MS)
                .invoke_async(&mut conn)
                .await
        })
        .await
    }

    async fn penalty_clear(&self, key: &str) -> Result<(), StoreError> {
        let hash = self.key("fail:", key.as_bytes());
        let _: i64 = self
            .run("penalty clear", |mut conn| async move {
                ::redis::cmd("DEL").arg(&hash).query_async(&mut conn).await
            })
            .await?;
        Ok(())
    }

    async fn penalty_trust(&self, key: &str, ttl_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        let now = clamp(now_ms);
        let until = clamp(now.saturating_add(ttl_ms));
        let px = until - now + CLEANUP_SLACK_MS;
        let k = self.key("trust:", key.as_bytes());
        self.run("trust", |mut conn| async move {
            ::redis::cmd("SET").arg(&k).arg(until).arg("PX").arg(px).query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn penalty_trusted(&self, key: &str, now_ms: u64) -> Result<bool, StoreError> {
        let k = self.key("trust:", key.as_bytes());
        let until: Option<Vec<u8>> =
            self.run("trusted", |mut conn| async move {
                ::redis::cmd("GET").arg(&k).query_async(&mut conn).await
            })
            .await?;
        let Some(until) = until else { return Ok(false) };
        let until =
            parse_ms(&until).ok_or_else(|| StoreError("redis error: trusted: malformed entry".into()))?;
        Ok(until > clamp(now_ms))
    }
}

fn parse_ms(b: &[u8]) -> Option<u64> {
    core::str::from_utf8(b).ok()?.parse().ok()
}

/// Whether `INFO server` names Redis 6.2 or later (Valkey reports a compatible
/// `redis_version` too).
fn check_version(info: &str) -> Result<(), String> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(str::trim)
        .ok_or_else(|| "INFO server names no redis_version".to_owned())?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_VERSION {
        return Err(format!(
            "Redis {version} is too old (GETDEL needs {}.{} or later)",
            MIN_VERSION.0, MIN_VERSION.1
        ));
    }
    Ok(())
}

impl SessionStore for RedisStore {
    async fn probe(&self, key: &SessionKey, peer: &str, now_ms: u64) -> Result<SessionInsert, StoreError> {
        self.session_insert(key, peer, None, now_ms, 0).await
    }

    async fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<SessionInsert, StoreError> {
        self.session_insert(key, peer, Some(&value), now_ms, ttl_ms).await
    }

    async fn take(&self, key: &SessionKey, now_ms: u64) -> Result<Option<SecretBytes>, StoreError> {
        self.session_take(key, now_ms).await
    }

    async fn shared_live(&self, now_ms: u64) -> Result<Option<usize>, StoreError> {
        self.sessions_live(now_ms).await.map(Some)
    }
}

impl HttpSessionStore for RedisStore {
    fn create<'a>(
        &'a self,
        id: &'a str,
        record: &'a HttpSessionRecord,
        now_ms: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.http_create(id, record, now_ms))
    }

    fn get<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Option<HttpSessionRecord>> {
        Box::pin(self.http_get(id, now_ms))
    }

    fn swap_window<'a>(
        &'a self,
        id: &'a str,
        old: &'a [u8; 16],
        new: &'a [u8; 16],
        now_ms: u64,
    ) -> StoreFuture<'a, WindowSwap> {
        Box::pin(self.http_swap(id, old, new, now_ms))
    }

    fn end<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.http_end(id))
    }

    fn live(&self, now_ms: u64) -> StoreFuture<'_, usize> {
        Box::pin(self.http_live(now_ms))
    }
}

impl PenaltyStore for RedisStore {
    fn wait<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, Option<u64>> {
        Box::pin(self.penalty_wait(key, now_ms))
    }

    fn fail<'a>(&'a self, key: &'a str, rule: &'a PenaltyRule, now_ms: u64) -> StoreFuture<'a, Option<u64>> {
        Box::pin(self.penalty_fail(key, rule, now_ms))
    }

    fn clear<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.penalty_clear(key))
    }

    fn trust<'a>(&'a self, key: &'a str, ttl_ms: u64, now_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(self.penalty_trust(key, ttl_ms, now_ms))
    }

    fn trusted<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, bool> {
        Box::pin(self.penalty_trusted(key, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_every_password_form() {
        assert_eq!(redact_url("redis://:p4ss@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("redis://u:p@ss@h"), "redis://u:***@h");
        assert_eq!(redact_url("redis://u@h"), "redis://u@h");
        assert_eq!(redact_url("redis+unix:///s?pass=x&db=2"), "redis+unix:///s?pass=***&db=2");
        assert_eq!(redact_url("unix:///s?PASSWORD=x"), "unix:///s?PASSWORD=***");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn secrets_found_as_written_and_decoded() {
        assert_eq!(url_secrets("redis://:s3cr%40t@h"), ["s3cr%40t", "s3cr@t"]);
        assert_eq!(url_secrets("redis+unix:///s?pass=longpass"), ["longpass"]);
        assert!(url_secrets("redis://:abc@h").is_empty(), "short ones are not scrubbed");
        assert_eq!(scrub("x s3cr@t y".into(), &url_secrets("redis://:s3cr%40t@h")), "x *** y");
    }

    #[test]
    fn version_check() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\n").is_ok());
        assert!(check_version("redis_version:6.2.0\r\n").is_ok());
        assert!(check_version("redis_version:6.0.9\r\n").is_err());
        assert!(check_version("nothing").is_err());
    }

    #[test]
    fn options_debug_redacts() {
        let o = RedisOptions::new("redis://:hunter22@h:6379");
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("redis://:***@h:6379"), "{shown}");
    }
}
