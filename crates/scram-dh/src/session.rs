//! Server-side in-flight handshakes (SPEC 5): keyed by phase and client nonce,
//! single use, expiring, bounded globally and per peer.

use core::fmt;
use core::future::Future;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::nonce::Nonce;
use crate::record::StoreError;
use crate::secret::SecretBytes;

/// Which handshake a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// In-band registration (R1..R4).
    Registration,
    /// Authentication (A1..A4).
    Authentication,
    /// A standard SCRAM exchange parked between two HTTP requests (RFC 7804); the
    /// key's nonce is the `sid`.
    Sasl,
}

/// A session's key: phase and client nonce.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The phase.
    pub phase: Phase,
    /// The client nonce.
    pub client_nonce: [u8; 32],
}

impl SessionKey {
    /// A key for `phase` and `client_nonce`.
    #[must_use]
    pub fn new(phase: Phase, client_nonce: &Nonce) -> Self {
        Self { phase, client_nonce: *client_nonce.as_bytes() }
    }

    /// A printable, store-friendly form: `reg:<hex>`, `auth:<hex>` or `sasl:<hex>`.
    #[must_use]
    pub fn to_key_string(&self) -> String {
        let (bytes, len) = self.key_bytes();
        // Prefix and hex digits are ASCII, so the conversion never fails.
        String::from_utf8(bytes[..len].to_vec()).unwrap_or_default()
    }

    /// The bytes of [`to_key_string`](Self::to_key_string) in a fixed buffer, and how
    /// many of them are used.
    pub(crate) fn key_bytes(&self) -> ([u8; Self::MAX_KEY_LEN], usize) {
        let prefix: &[u8] = match self.phase {
            Phase::Registration => b"reg:",
            Phase::Authentication => b"auth:",
            Phase::Sasl => b"sasl:",
        };
        let mut out = [0u8; Self::MAX_KEY_LEN];
        out[..prefix.len()].copy_from_slice(prefix);
        let len = prefix.len() + 2 * self.client_nonce.len();
        crate::nonce::encode_hex(&self.client_nonce, &mut out[prefix.len()..len]);
        (out, len)
    }

    /// The longest [`to_key_string`](Self::to_key_string).
    pub(crate) const MAX_KEY_LEN: usize = 5 + 64;
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

/// Outcome of [`SessionStore::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionInsert {
    /// Stored.
    Inserted,
    /// A live session holds this key: `nonce_reused`.
    Exists,
    /// The global or per-peer cap is reached: `busy`.
    Full,
}

/// Storage for in-flight handshakes. Values are opaque bytes; the engine seals
/// them before a store sees them (SPEC 5).
pub trait SessionStore: Send + Sync {
    /// Answers what [`insert`](Self::insert) would do now for `key` and `peer`
    /// (`Exists`, `Full` or `Inserted`) without storing anything. Must be cheap:
    /// the server asks before doing any DH work (SPEC 5, finding M2); the insert
    /// afterwards remains the real guard.
    fn probe(
        &self,
        key: &SessionKey,
        peer: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<SessionInsert, StoreError>> + Send;

    /// Stores `value` under `key` unless a live session has it, until `now_ms + ttl_ms`.
    /// `peer` names the remote party for the per-peer cap.
    fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<SessionInsert, StoreError>> + Send;

    /// Atomically removes and returns a live session; `None` if absent or expired.
    fn take(
        &self,
        key: &SessionKey,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<SecretBytes>, StoreError>> + Send;

    /// For a store that several nodes share: how many live sessions it holds at
    /// `now_ms`, every node's together (`scram_dh_handshake_sessions_shared`).
    /// `None`, the default, for a store only this process uses: the metrics count
    /// those directly ([`MemorySessionStore::len`]). A wrapper must forward it.
    fn shared_live(&self, now_ms: u64) -> impl Future<Output = Result<Option<usize>, StoreError>> + Send {
        let _ = now_ms;
        core::future::ready(Ok(None))
    }
}

struct Entry {
    value: SecretBytes,
    expires_ms: u64,
    seq: u64,
    /// The same allocation as this peer's key in `per_peer`.
    peer: Arc<str>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<SessionKey, Entry>,
    // Expiry index: (expires, insertion sequence) -> key. Removal is O(log n); no scans.
    by_expiry: BTreeMap<(u64, u64), SessionKey>,
    per_peer: HashMap<Arc<str>, usize>,
    seq: u64,
    /// Sessions removed because their TTL passed before anyone took them.
    expired: u64,
}

impl Inner {
    fn would_insert(
        &self,
        key: &SessionKey,
        peer: &str,
        max_sessions: usize,
        max_per_peer: usize,
    ) -> SessionInsert {
        if self.map.contains_key(key) {
            SessionInsert::Exists
        } else if self.map.len() >= max_sessions
            || self.per_peer.get(peer).copied().unwrap_or(0) >= max_per_peer
        {
            SessionInsert::Full
        } else {
            SessionInsert::Inserted
        }
    }

    fn remove(&mut self, key: &SessionKey) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.by_expiry.remove(&(entry.expires_ms, entry.seq));
        if let Some(n) = self.per_peer.get_mut(&entry.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }

    fn purge_expired(&mut self, now_ms: u64) {
        while let Some((&(expires, _), &key)) = self.by_expiry.first_key_value() {
            if expires > now_ms {
                break;
            }
            self.remove(&key);
            self.expired += 1;
        }
    }
}

/// An in-memory session store: O(log n) per operation, expired sessions dropped
/// as time passes (amortised over inserts and takes), never more than
/// `max_sessions` live, nor `max_per_peer` for one peer.
pub struct MemorySessionStore {
    inner: Mutex<Inner>,
    max_sessions: usize,
    max_per_peer: usize,
}

impl fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySessionStore")
            .field("live", &self.len())
            .field("max_sessions", &self.max_sessions)
            .field("max_per_peer", &self.max_per_peer)
            .finish()
    }
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new(100_000, 64)
    }
}

impl MemorySessionStore {
    /// A store with the given caps.
    #[must_use]
    pub fn new(max_sessions: usize, max_per_peer: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), max_sessions, max_per_peer }
    }

    /// Live (not yet purged) sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    /// Drops the sessions whose TTL has passed at `now_ms` (inserts and takes do
    /// this as they go; a reader of [`len`](Self::len) and
    /// [`expired_total`](Self::expired_total) calls it first for current figures).
    pub fn purge(&self, now_ms: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.purge_expired(now_ms);
        }
    }

    /// Sessions this store dropped because their TTL passed before they were taken:
    /// handshakes abandoned after their first step, or whose next step came too
    /// late. Counted when purged (see [`purge`](Self::purge)); it only grows.
    ///
    /// ```
    /// use scram_dh::nonce::Nonce;
    /// use scram_dh::secret::SecretBytes;
    /// use scram_dh::session::{Phase, SessionKey};
    /// use scram_dh::{MemorySessionStore, SessionStore};
    ///
    /// let store = MemorySessionStore::default();
    /// let key = SessionKey::new(Phase::Authentication, &Nonce::from_bytes([1; 32]));
    /// let insert = store.insert(&key, "peer", SecretBytes::new(vec![1]), 0, 100);
    /// scram_dh::pair::block_on(insert).unwrap();
    /// store.purge(99);
    /// assert_eq!((store.len(), store.expired_total()), (1, 0));
    /// store.purge(100);
    /// assert_eq!((store.len(), store.expired_total()), (0, 1));
    /// ```
    #[must_use]
    pub fn expired_total(&self) -> u64 {
        self.inner.lock().map(|i| i.expired).unwrap_or(0)
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn poisoned() -> StoreError {
        StoreError("memory session store lock poisoned".into())
    }
}

impl SessionStore for MemorySessionStore {
    async fn probe(&self, key: &SessionKey, peer: &str, now_ms: u64) -> Result<SessionInsert, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| Self::poisoned())?;
        inner.purge_expired(now_ms);
        Ok(inner.would_insert(key, peer, self.max_sessions, self.max_per_peer))
    }

    async fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<SessionInsert, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| Self::poisoned())?;
        inner.purge_expired(now_ms);
        match inner.would_insert(key, peer, self.max_sessions, self.max_per_peer) {
            SessionInsert::Inserted => {}
            refused => return Ok(refused),
        }
        inner.seq += 1;
        let seq = inner.seq;
        let expires_ms = now_ms.saturating_add(ttl_ms);
        inner.by_expiry.insert((expires_ms, seq), *key);
        // One shared copy of the peer's name per live peer (none for a peer that
        // already has sessions), not two per session.
        let peer = match inner.per_peer.get_key_value(peer) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(peer),
        };
        *inner.per_peer.entry(Arc::clone(&peer)).or_insert(0) += 1;
        inner.map.insert(*key, Entry { value, expires_ms, seq, peer });
        Ok(SessionInsert::Inserted)
    }

    async fn take(&self, key: &SessionKey, now_ms: u64) -> Result<Option<SecretBytes>, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| Self::poisoned())?;
        inner.purge_expired(now_ms);
        Ok(inner.remove(key).map(|e| e.value))
    }
}

impl<T: SessionStore> SessionStore for std::sync::Arc<T> {
    fn probe(
        &self,
        key: &SessionKey,
        peer: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<SessionInsert, StoreError>> + Send {
        (**self).probe(key, peer, now_ms)
    }
    fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<SessionInsert, StoreError>> + Send {
        (**self).insert(key, peer, value, now_ms, ttl_ms)
    }
    fn take(
        &self,
        key: &SessionKey,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<SecretBytes>, StoreError>> + Send {
        (**self).take(key, now_ms)
    }
    fn shared_live(&self, now_ms: u64) -> impl Future<Output = Result<Option<usize>, StoreError>> + Send {
        (**self).shared_live(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn block<F: Future>(f: F) -> F::Output {
        crate::pair::block_on(f)
    }

    fn key(n: u8, phase: Phase) -> SessionKey {
        SessionKey::new(phase, &Nonce::from_bytes([n; 32]))
    }

    fn val(b: u8) -> SecretBytes {
        Zeroizing::new(vec![b])
    }

    #[test]
    fn key_strings() {
        let n = Nonce::from_bytes([0xa5; 32]);
        let hex = "a5".repeat(32);
        for (phase, prefix) in
            [(Phase::Registration, "reg:"), (Phase::Authentication, "auth:"), (Phase::Sasl, "sasl:")]
        {
            assert_eq!(SessionKey::new(phase, &n).to_key_string(), format!("{prefix}{hex}"));
        }
    }

    #[test]
    fn single_use_and_phase_separation() {
        let s = MemorySessionStore::new(10, 10);
        let k = key(1, Phase::Authentication);
        assert_eq!(block(s.insert(&k, "p", val(1), 0, 100)).unwrap(), SessionInsert::Inserted);
        assert_eq!(block(s.insert(&k, "p", val(2), 1, 100)).unwrap(), SessionInsert::Exists);
        assert!(block(s.take(&key(1, Phase::Registration), 2)).unwrap().is_none());
        assert_eq!(block(s.take(&k, 2)).unwrap().as_deref().map(Vec::as_slice), Some(&[1u8][..]));
        assert!(block(s.take(&k, 3)).unwrap().is_none(), "consumed");
        assert!(s.is_empty());
    }

    #[test]
    fn a_process_local_store_reports_no_shared_count() {
        // The metrics count a memory store through `len`; its `shared_live` (the
        // trait's default, and through an Arc) is `None`, so no node adds a
        // `scram_dh_handshake_sessions_shared` for it.
        let s = std::sync::Arc::new(MemorySessionStore::new(10, 10));
        block(s.insert(&key(3, Phase::Authentication), "p", val(1), 0, 100)).unwrap();
        assert_eq!(block(s.shared_live(1)).unwrap(), None);
        assert_eq!(block((*s).shared_live(1)).unwrap(), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn expiry_and_reuse_after_expiry() {
        let s = MemorySessionStore::new(10, 10);
        let k = key(2, Phase::Registration);
        block(s.insert(&k, "p", val(1), 1000, 10)).unwrap();
        assert!(block(s.take(&k, 1010)).unwrap().is_none(), "expired at ttl");
        assert_eq!(block(s.insert(&k, "p", val(1), 1011, 10)).unwrap(), SessionInsert::Inserted);
    }

    #[test]
    fn caps() {
        let s = MemorySessionStore::new(3, 2);
        assert_eq!(
            block(s.insert(&key(1, Phase::Registration), "a", val(1), 0, 10)).unwrap(),
            SessionInsert::Inserted
        );
        assert_eq!(
            block(s.insert(&key(2, Phase::Registration), "a", val(1), 0, 10)).unwrap(),
            SessionInsert::Inserted
        );
        assert_eq!(
            block(s.insert(&key(3, Phase::Registration), "a", val(1), 0, 10)).unwrap(),
            SessionInsert::Full,
            "per peer"
        );
        assert_eq!(
            block(s.insert(&key(3, Phase::Registration), "b", val(1), 0, 10)).unwrap(),
            SessionInsert::Inserted
        );
        assert_eq!(
            block(s.insert(&key(4, Phase::Registration), "c", val(1), 0, 10)).unwrap(),
            SessionInsert::Full,
            "global"
        );
        // Expiry frees room without any scan by the caller.
        assert_eq!(
            block(s.insert(&key(4, Phase::Registration), "c", val(1), 10, 10)).unwrap(),
            SessionInsert::Inserted
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn probe_answers_like_insert_without_inserting() {
        let s = MemorySessionStore::new(2, 1);
        let (k1, k2, k3) =
            (key(1, Phase::Registration), key(2, Phase::Registration), key(3, Phase::Registration));
        assert_eq!(block(s.probe(&k1, "a", 0)).unwrap(), SessionInsert::Inserted);
        assert!(s.is_empty(), "a probe stores nothing");
        block(s.insert(&k1, "a", val(1), 0, 10)).unwrap();
        assert_eq!(block(s.probe(&k1, "b", 0)).unwrap(), SessionInsert::Exists);
        assert_eq!(block(s.probe(&k2, "a", 0)).unwrap(), SessionInsert::Full, "per peer");
        block(s.insert(&k2, "b", val(1), 0, 10)).unwrap();
        assert_eq!(block(s.probe(&k3, "c", 0)).unwrap(), SessionInsert::Full, "global");
        assert_eq!(block(s.probe(&k3, "c", 10)).unwrap(), SessionInsert::Inserted, "after expiry");
    }

    #[test]
    fn peer_names_are_shared_and_released() {
        let s = MemorySessionStore::new(10, 10);
        for n in 1..=3 {
            block(s.insert(&key(n, Phase::Authentication), "p", val(n), 0, 100)).unwrap();
        }
        block(s.insert(&key(4, Phase::Authentication), "q", val(4), 0, 100)).unwrap();
        {
            let inner = s.inner.lock().unwrap();
            assert_eq!(inner.per_peer.len(), 2);
            let (name, &count) = inner.per_peer.get_key_value("p").unwrap();
            assert_eq!(count, 3);
            let sharing = inner.map.values().filter(|e| Arc::ptr_eq(&e.peer, name)).count();
            assert_eq!(sharing, 3, "one allocation for the peer's name");
        }
        for n in 1..=4 {
            assert!(block(s.take(&key(n, Phase::Authentication), 1)).unwrap().is_some());
        }
        assert!(s.inner.lock().unwrap().per_peer.is_empty(), "released with the last session");
    }

    #[test]
    fn flood_stays_bounded() {
        let s = MemorySessionStore::new(1000, 1000);
        for i in 0..100_000u32 {
            let mut n = [0u8; 32];
            n[..4].copy_from_slice(&i.to_be_bytes());
            let k = SessionKey::new(Phase::Authentication, &Nonce::from_bytes(n));
            let _ = block(s.insert(&k, "flood", val(0), u64::from(i), 50)).unwrap();
            assert!(s.len() <= 1000);
        }
        let inner = s.inner.lock().unwrap();
        assert_eq!(inner.map.len(), inner.by_expiry.len());
    }
}
