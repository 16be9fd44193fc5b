//! State that several server nodes share besides credentials and in-flight
//! handshakes ([`crate::session::SessionStore`]): the HTTP sessions after login,
//! with their anti-replay windows ([`HttpSessionStore`]), and the failed-proof
//! penalties ([`PenaltyStore`]). The in-memory implementations here serve one
//! node; `scram-dh-store` has Redis ones for several.
//!
//! Both traits are object-safe (`Arc<dyn …>`): a front holds one without another
//! type parameter, and a call costs one boxed future beside a network round trip.
//! Time is an argument (`now_ms`, milliseconds of one clock all nodes share: the
//! Unix epoch), as everywhere in this crate.
//!
//! What a store holds is never a secret in the clear: the HTTP front seals a
//! session's channel keys with [`crate::ServerEngine::seal_blob`] before
//! [`HttpSessionStore::create`] sees them; penalties are counts and deadlines.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::record::StoreError;

/// The future every method of [`HttpSessionStore`] and [`PenaltyStore`] returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Bounds of an [`HttpSessionStore`], fixed when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSessionLimits {
    /// A session unused this long ends.
    pub idle_ms: u64,
    /// A session ends this long after it was created, used or not.
    pub lifetime_ms: u64,
    /// Live sessions, all users.
    pub max_sessions: usize,
    /// Live sessions of one user.
    pub max_per_user: usize,
}

impl Default for HttpSessionLimits {
    fn default() -> Self {
        Self {
            idle_ms: 15 * 60 * 1000,
            lifetime_ms: 12 * 3600 * 1000,
            max_sessions: 100_000,
            max_per_user: 64,
        }
    }
}

/// One HTTP session as a store holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSessionRecord {
    /// Whose session it is.
    pub username: String,
    /// The channel keys, sealed by the front (opaque to the store).
    pub sealed_keys: Vec<u8>,
    /// The anti-replay window, serialized by the front (opaque to the store,
    /// compared byte for byte by [`HttpSessionStore::swap_window`]).
    pub window: [u8; 16],
}

impl fmt::Debug for HttpSessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSessionRecord")
            .field("username", &self.username)
            .field("sealed_keys", &format_args!("<{} bytes sealed>", self.sealed_keys.len()))
            .finish_non_exhaustive()
    }
}

/// What [`HttpSessionStore::swap_window`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSwap {
    /// The window was `old` and is now `new`; the idle deadline moved on.
    Swapped,
    /// The window is no longer `old` (a concurrent request moved it): read again.
    Changed,
    /// No such live session.
    Gone,
}

/// HTTP sessions after login (SPEC 7, "After authentication"), shared by every
/// node that serves them. A session lives until `idle_ms` after its last
/// successful [`swap_window`](Self::swap_window) (or its creation), and never past
/// `lifetime_ms` after its creation.
pub trait HttpSessionStore: Send + Sync + fmt::Debug {
    /// Stores a new session under `id` (fresh and random: the caller never reuses
    /// one). `Ok(false)` when the global or the user's cap is reached.
    fn create<'a>(&'a self, id: &'a str, record: &'a HttpSessionRecord, now_ms: u64)
    -> StoreFuture<'a, bool>;

    /// The live session `id`, if any.
    fn get<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Option<HttpSessionRecord>>;

    /// Atomically: if session `id` is live and its window is `old`, sets it to
    /// `new` and extends the idle deadline (never past the lifetime).
    fn swap_window<'a>(
        &'a self,
        id: &'a str,
        old: &'a [u8; 16],
        new: &'a [u8; 16],
        now_ms: u64,
    ) -> StoreFuture<'a, WindowSwap>;

    /// Ends session `id` (no error if there is none).
    fn end<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Live sessions now (for metrics and tests; may purge expired ones). For a
    /// store several nodes share, every node's together.
    fn live(&self, now_ms: u64) -> StoreFuture<'_, usize>;
}

/// How failures on one key turn into a wait: the first `free` failures cost
/// nothing, the next waits `base_ms`, each further one doubles it up to `max_ms`;
/// `forget_ms` without a failure forgets them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyRule {
    /// Failures without a wait.
    pub free: u32,
    /// The first wait.
    pub base_ms: u64,
    /// The longest wait.
    pub max_ms: u64,
    /// Failures are forgotten this long after the last one.
    pub forget_ms: u64,
}

impl PenaltyRule {
    /// The wait after the `failures`-th failure, if any.
    #[must_use]
    pub fn wait_after(&self, failures: u32) -> Option<u64> {
        if failures <= self.free {
            return None;
        }
        let doublings = (failures - self.free - 1).min(30);
        Some(self.base_ms.saturating_mul(1u64 << doublings).min(self.max_ms))
    }
}

/// Failed-proof penalties and trusted pairs, shared by every node. Keys are
/// chosen by the caller (`scram-dh-net` uses `peer:…`, `account:…` and
/// `trust:…`); a store treats them as opaque bytes.
pub trait PenaltyStore: Send + Sync + fmt::Debug {
    /// The remaining wait of `key` in milliseconds, if it is penalised now.
    fn wait<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, Option<u64>>;

    /// Counts one failure of `key` under `rule`, atomically; returns the wait it
    /// starts ([`PenaltyRule::wait_after`] of the new count), if any.
    fn fail<'a>(&'a self, key: &'a str, rule: &'a PenaltyRule, now_ms: u64) -> StoreFuture<'a, Option<u64>>;

    /// Forgets the failures of `key`.
    fn clear<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Marks `key` trusted until `now_ms + ttl_ms`.
    fn trust<'a>(&'a self, key: &'a str, ttl_ms: u64, now_ms: u64) -> StoreFuture<'a, ()>;

    /// Whether `key` is trusted now.
    fn trusted<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, bool>;
}

fn poisoned() -> StoreError {
    StoreError("memory store lock poisoned".into())
}

// ---------------------------------------------------------------------------
// HTTP sessions in memory.

struct HttpEntry {
    record: HttpSessionRecord,
    created_ms: u64,
    deadline_ms: u64,
}

#[derive(Default)]
struct HttpInner {
    by_id: HashMap<String, HttpEntry>,
    deadlines: BTreeSet<(u64, String)>,
    per_user: HashMap<String, usize>,
}

impl HttpInner {
    fn remove(&mut self, id: &str) -> Option<HttpEntry> {
        let entry = self.by_id.remove(id)?;
        self.deadlines.remove(&(entry.deadline_ms, id.to_owned()));
        if let Some(n) = self.per_user.get_mut(&entry.record.username) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&entry.record.username);
            }
        }
        Some(entry)
    }

    fn purge(&mut self, now_ms: u64) {
        while let Some((deadline, id)) = self.deadlines.first().cloned() {
            if deadline > now_ms {
                break;
            }
            self.remove(&id);
        }
    }
}

/// HTTP sessions in this process: O(log n) per operation, expired sessions leave
/// through a deadline index, never a scan.
pub struct MemoryHttpSessionStore {
    inner: Mutex<HttpInner>,
    limits: HttpSessionLimits,
}

impl fmt::Debug for MemoryHttpSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHttpSessionStore").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl MemoryHttpSessionStore {
    /// An empty store with these bounds.
    #[must_use]
    pub fn new(limits: HttpSessionLimits) -> Self {
        Self { inner: Mutex::new(HttpInner::default()), limits }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HttpInner>, StoreError> {
        self.inner.lock().map_err(|_| poisoned())
    }

    fn create_now(&self, id: &str, record: &HttpSessionRecord, now_ms: u64) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.purge(now_ms);
        let user_count = inner.per_user.get(&record.username).copied().unwrap_or(0);
        if inner.by_id.len() >= self.limits.max_sessions
            || user_count >= self.limits.max_per_user
            || inner.by_id.contains_key(id)
        {
            return Ok(false);
        }
        let deadline_ms = now_ms.saturating_add(self.limits.idle_ms.min(self.limits.lifetime_ms));
        inner.deadlines.insert((deadline_ms, id.to_owned()));
        *inner.per_user.entry(record.username.clone()).or_default() += 1;
        inner
            .by_id
            .insert(id.to_owned(), HttpEntry { record: record.clone(), created_ms: now_ms, deadline_ms });
        Ok(true)
    }

    fn swap_now(
        &self,
        id: &str,
        old: &[u8; 16],
        new: &[u8; 16],
        now_ms: u64,
    ) -> Result<WindowSwap, StoreError> {
        let mut inner = self.lock()?;
        inner.purge(now_ms);
        let idle = self.limits.idle_ms;
        let lifetime = self.limits.lifetime_ms;
        let Some(entry) = inner.by_id.get_mut(id) else {
            return Ok(WindowSwap::Gone);
        };
        if &entry.record.window != old {
            return Ok(WindowSwap::Changed);
        }
        entry.record.window = *new;
        let before = entry.deadline_ms;
        entry.deadline_ms = now_ms.saturating_add(idle).min(entry.created_ms.saturating_add(lifetime));
        let after = entry.deadline_ms;
        if before != after {
            inner.deadlines.remove(&(before, id.to_owned()));
            inner.deadlines.insert((after, id.to_owned()));
        }
        Ok(WindowSwap::Swapped)
    }
}

impl HttpSessionStore for MemoryHttpSessionStore {
    fn create<'a>(
        &'a self,
        id: &'a str,
        record: &'a HttpSessionRecord,
        now_ms: u64,
    ) -> StoreFuture<'a, bool> {
        let answer = self.create_now(id, record, now_ms);
        Box::pin(async move { answer })
    }

    fn get<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Option<HttpSessionRecord>> {
        let answer = self.lock().map(|mut inner| {
            inner.purge(now_ms);
            inner.by_id.get(id).map(|e| e.record.clone())
        });
        Box::pin(async move { answer })
    }

    fn swap_window<'a>(
        &'a self,
        id: &'a str,
        old: &'a [u8; 16],
        new: &'a [u8; 16],
        now_ms: u64,
    ) -> StoreFuture<'a, WindowSwap> {
        let answer = self.swap_now(id, old, new, now_ms);
        Box::pin(async move { answer })
    }

    fn end<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        let answer = self.lock().map(|mut inner| {
            inner.remove(id);
        });
        Box::pin(async move { answer })
    }

    fn live(&self, now_ms: u64) -> StoreFuture<'_, usize> {
        let answer = self.lock().map(|mut inner| {
            inner.purge(now_ms);
            inner.by_id.len()
        });
        Box::pin(async move { answer })
    }
}

// ---------------------------------------------------------------------------
// Penalties in memory.

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
    until_ms: u64,
}

#[derive(Default)]
struct PenaltyInner {
    failures: HashMap<String, Failures>,
    trusted: HashMap<String, u64>,
}

/// Penalties in this process, at most `max_tracked` keys of each kind (past it,
/// forgotten and expired entries go first, then the oldest).
pub struct MemoryPenaltyStore {
    inner: Mutex<PenaltyInner>,
    max_tracked: usize,
}

impl fmt::Debug for MemoryPenaltyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPenaltyStore").field("max_tracked", &self.max_tracked).finish_non_exhaustive()
    }
}

impl MemoryPenaltyStore {
    /// An empty store remembering at most `max_tracked` keys of each kind.
    #[must_use]
    pub fn new(max_tracked: usize) -> Self {
        Self { inner: Mutex::new(PenaltyInner::default()), max_tracked: max_tracked.max(1) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, PenaltyInner>, StoreError> {
        self.inner.lock().map_err(|_| poisoned())
    }

    fn fail_now(&self, key: &str, rule: &PenaltyRule, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let mut inner = self.lock()?;
        let forgotten = |f: &Failures| now_ms.saturating_sub(f.last_ms) >= rule.forget_ms;
        if inner.failures.len() >= self.max_tracked && !inner.failures.contains_key(key) {
            inner.failures.retain(|_, f| !forgotten(f));
            if inner.failures.len() >= self.max_tracked
                && let Some(oldest) =
                    inner.failures.iter().min_by_key(|(_, f)| f.last_ms).map(|(k, _)| k.clone())
            {
                inner.failures.remove(&oldest);
            }
        }
        let f = inner.failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
            until_ms: 0,
        });
        if forgotten(f) {
            *f = Failures { count: 0, last_ms: now_ms, until_ms: 0 };
        }
        f.count = f.count.saturating_add(1);
        f.last_ms = now_ms;
        let wait = rule.wait_after(f.count);
        if let Some(w) = wait {
            f.until_ms = now_ms.saturating_add(w);
        }
        Ok(wait)
    }

    fn trust_now(&self, key: &str, ttl_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.trusted.len() >= self.max_tracked && !inner.trusted.contains_key(key) {
            inner.trusted.retain(|_, until| *until > now_ms);
            if inner.trusted.len() >= self.max_tracked
                && let Some(oldest) = inner.trusted.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone())
            {
                inner.trusted.remove(&oldest);
            }
        }
        inner.trusted.insert(key.to_owned(), now_ms.saturating_add(ttl_ms));
        Ok(())
    }
}

impl PenaltyStore for MemoryPenaltyStore {
    fn wait<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, Option<u64>> {
        let answer = self.lock().map(|inner| {
            inner.failures.get(key).and_then(|f| (f.until_ms > now_ms).then(|| f.until_ms - now_ms))
        });
        Box::pin(async move { answer })
    }

    fn fail<'a>(&'a self, key: &'a str, rule: &'a PenaltyRule, now_ms: u64) -> StoreFuture<'a, Option<u64>> {
        let answer = self.fail_now(key, rule, now_ms);
        Box::pin(async move { answer })
    }

    fn clear<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let answer = self.lock().map(|mut inner| {
            inner.failures.remove(key);
        });
        Box::pin(async move { answer })
    }

    fn trust<'a>(&'a self, key: &'a str, ttl_ms: u64, now_ms: u64) -> StoreFuture<'a, ()> {
        let answer = self.trust_now(key, ttl_ms, now_ms);
        Box::pin(async move { answer })
    }

    fn trusted<'a>(&'a self, key: &'a str, now_ms: u64) -> StoreFuture<'a, bool> {
        let answer = self.lock().map(|inner| inner.trusted.get(key).is_some_and(|until| *until > now_ms));
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::block_on;

    #[test]
    fn penalty_rule_doubles_to_the_cap() {
        let r = PenaltyRule { free: 2, base_ms: 100, max_ms: 1000, forget_ms: 10_000 };
        let waits: Vec<_> = (1..=8).map(|n| r.wait_after(n)).collect();
        assert_eq!(waits, [None, None, Some(100), Some(200), Some(400), Some(800), Some(1000), Some(1000)]);
        assert_eq!(r.wait_after(u32::MAX), Some(1000), "no overflow");
    }

    #[test]
    fn memory_penalties_forget_and_trust_expires() {
        let s = MemoryPenaltyStore::new(2);
        let r = PenaltyRule { free: 1, base_ms: 100, max_ms: 1000, forget_ms: 5000 };
        assert_eq!(block_on(s.fail("a", &r, 0)).unwrap(), None);
        assert_eq!(block_on(s.fail("a", &r, 10)).unwrap(), Some(100));
        assert_eq!(block_on(s.wait("a", 50)).unwrap(), Some(60));
        assert_eq!(block_on(s.wait("a", 110)).unwrap(), None);
        assert_eq!(block_on(s.fail("a", &r, 6000)).unwrap(), None, "forgotten after 5 s");
        block_on(s.trust("t", 100, 0)).unwrap();
        assert!(block_on(s.trusted("t", 99)).unwrap());
        assert!(!block_on(s.trusted("t", 100)).unwrap());
        // Bounded: a third key evicts the oldest.
        block_on(s.fail("b", &r, 6001)).unwrap();
        block_on(s.fail("c", &r, 6002)).unwrap();
        assert!(s.inner.lock().unwrap().failures.len() <= 2);
    }

    #[test]
    fn memory_http_sessions_window_swap_and_lifetime() {
        let s = MemoryHttpSessionStore::new(HttpSessionLimits {
            idle_ms: 10,
            lifetime_ms: 25,
            max_sessions: 3,
            max_per_user: 2,
        });
        let rec =
            |u: &str| HttpSessionRecord { username: u.into(), sealed_keys: vec![1, 2], window: [0; 16] };
        assert!(block_on(s.create("a", &rec("alice"), 0)).unwrap());
        assert!(block_on(s.create("b", &rec("alice"), 0)).unwrap());
        assert!(!block_on(s.create("c", &rec("alice"), 0)).unwrap(), "per-user cap");
        assert!(block_on(s.create("d", &rec("bob"), 0)).unwrap());
        assert!(!block_on(s.create("e", &rec("carol"), 0)).unwrap(), "global cap");
        let one = [1u8; 16];
        assert_eq!(block_on(s.swap_window("a", &[0; 16], &one, 8)).unwrap(), WindowSwap::Swapped);
        assert_eq!(block_on(s.swap_window("a", &[0; 16], &one, 8)).unwrap(), WindowSwap::Changed);
        assert_eq!(block_on(s.get("a", 17)).unwrap().unwrap().window, one, "kept alive by use");
        assert!(block_on(s.get("b", 17)).unwrap().is_none(), "idle-expired");
        assert_eq!(block_on(s.swap_window("a", &one, &[2; 16], 16)).unwrap(), WindowSwap::Swapped);
        assert!(block_on(s.get("a", 25)).unwrap().is_none(), "lifetime over");
        assert_eq!(block_on(s.swap_window("a", &one, &[2; 16], 25)).unwrap(), WindowSwap::Gone);
        assert_eq!(block_on(s.live(25)).unwrap(), 0);
        assert!(block_on(s.create("f", &rec("alice"), 30)).unwrap());
        block_on(s.end("f")).unwrap();
        assert_eq!(block_on(s.live(30)).unwrap(), 0);
    }
}
