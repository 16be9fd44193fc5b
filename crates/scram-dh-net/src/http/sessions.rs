//! HTTP sessions after `/v1/auth/proof` (SPEC 7, "After authentication"), held by
//! an [`HttpSessionStore`] that every node behind a load balancer may share
//! (issue 9): keyed by a 256-bit random id, holding the user, the channel keys
//! sealed by the engine (SPEC 5, "Sealed": [`ServerEngine::seal_blob`] with
//! `http-session:<id>` as associated data, so a store sees no key and a blob
//! moved to another id does not open) and the anti-replay window as 16 bytes
//! ([`ReplayWindow::to_bytes`]). Idle expiry, the absolute lifetime and the caps
//! are the store's ([`scram_dh::cluster::HttpSessionLimits`]), on Unix-ms time.
//!
//! A signed request moves the window by compare-and-swap
//! ([`HttpSessionStore::swap_window`]): the new window is computed from the one
//! read, and a window that moved meanwhile (a concurrent request, maybe on
//! another node) is read again, so no seq is ever accepted twice. Any store
//! failure refuses the request ([`Unavailable`], answered 503): fail closed.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scram_dh::cluster::{HttpSessionRecord, HttpSessionStore, WindowSwap};
use scram_dh::secret::{SecretBytes, SymmetricKey};
use scram_dh::{CredentialStore, ServerEngine, SessionKeys, SessionStore};
use tracing::warn;
use zeroize::Zeroizing;

use crate::http_auth::ReplayWindow;

/// Swaps of one request's window before it gives up (each lost swap means
/// another request of the same session was accepted meanwhile).
const MAX_SWAPS: usize = 16;

/// Seals and opens a session's channel keys: the engine's
/// [`seal_blob`](ServerEngine::seal_blob) and [`open_blob`](ServerEngine::open_blob),
/// behind an object so that the signed layer needs no engine type.
pub(crate) trait Sealer: Send + Sync {
    /// `plaintext` sealed with `context` as associated data.
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, scram_dh::Error>;
    /// What [`seal`](Self::seal) sealed under `context`, if it opens.
    fn open(&self, context: &[u8], sealed: &[u8]) -> Option<SecretBytes>;
}

impl<C, S> Sealer for ServerEngine<C, S>
where
    C: CredentialStore + Send + Sync,
    S: SessionStore + Send + Sync,
{
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, scram_dh::Error> {
        self.seal_blob(context, plaintext, &mut rand_core::UnwrapErr(getrandom::SysRng))
    }

    fn open(&self, context: &[u8], sealed: &[u8]) -> Option<SecretBytes> {
        self.open_blob(context, sealed)
    }
}

/// A live session's view for one request.
pub(crate) struct Live {
    pub(crate) username: String,
    pub(crate) keys: SessionKeys,
    /// The window as read, the `old` of the first swap.
    pub(crate) window: [u8; 16],
}

/// The session store could not be used (it failed, or one session's window kept
/// moving): the request is refused, with this message, as `server_error` (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable(pub(crate) &'static str);

const STORE_DOWN: Unavailable =
    Unavailable("server error: the HTTP session store is unavailable; try again later");

/// Why a signed request's session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionRefusal {
    /// No such session (never was, expired, logged out, or its keys do not open).
    Unknown,
    /// The seq was seen or is below the window.
    Replay,
    /// See [`Unavailable`].
    Unavailable(Unavailable),
}

impl From<Unavailable> for SessionRefusal {
    fn from(u: Unavailable) -> Self {
        Self::Unavailable(u)
    }
}

/// 32 random bytes, base64url unpadded (43 characters).
fn random_id<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The associated data of session `id`'s sealed keys.
fn context(id: &str) -> Vec<u8> {
    [b"http-session:".as_slice(), id.as_bytes()].concat()
}

fn store_failed(what: &str, e: &scram_dh::record::StoreError) -> Unavailable {
    // The session id is a bearer handle: never logged.
    warn!(error = %e, "HTTP session store failed ({what}): request refused");
    STORE_DOWN
}

/// The sessions of one front: a store (maybe shared) and the engine's sealing.
pub(crate) struct Sessions {
    store: Arc<dyn HttpSessionStore>,
    sealer: Arc<dyn Sealer>,
}

impl Sessions {
    pub(crate) fn new(store: Arc<dyn HttpSessionStore>, sealer: Arc<dyn Sealer>) -> Self {
        Self { store, sealer }
    }

    /// A new session for `username` with `keys`; `Ok(None)` over a cap.
    pub(crate) async fn create(
        &self,
        username: &str,
        keys: &SessionKeys,
        now_ms: u64,
    ) -> Result<Option<String>, Unavailable> {
        let id = random_id(&mut rand_core::UnwrapErr(getrandom::SysRng));
        let mut plain = Zeroizing::new([0u8; 64]);
        plain[..32].copy_from_slice(keys.c2s.expose());
        plain[32..].copy_from_slice(keys.s2c.expose());
        let sealed_keys = self.sealer.seal(&context(&id), plain.as_slice()).map_err(|e| {
            warn!(error = %e, "sealing an HTTP session's keys failed");
            Unavailable("server error: could not seal the session; try again later")
        })?;
        drop(plain);
        let record = HttpSessionRecord {
            username: username.to_owned(),
            sealed_keys,
            window: ReplayWindow::default().to_bytes(),
        };
        match self.store.create(&id, &record, now_ms).await {
            Ok(true) => Ok(Some(id)),
            Ok(false) => Ok(None),
            Err(e) => Err(store_failed("create", &e)),
        }
    }

    /// Session `id` with its keys opened, to verify a request's MAC; `Ok(None)`
    /// when there is none or its keys do not open.
    pub(crate) async fn get(&self, id: &str, now_ms: u64) -> Result<Option<Live>, Unavailable> {
        let record = match self.store.get(id, now_ms).await {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(e) => return Err(store_failed("get", &e)),
        };
        let keys = self.sealer.open(&context(id), &record.sealed_keys).and_then(|plain| {
            let (c2s, s2c) = (plain.get(..32)?, plain.get(32..)?);
            Some(SessionKeys { c2s: SymmetricKey::from_slice(c2s)?, s2c: SymmetricKey::from_slice(s2c)? })
        });
        let Some(keys) = keys else {
            warn!("an HTTP session's keys did not open (tampered, or nodes with different cluster secrets)");
            return Ok(None);
        };
        Ok(Some(Live { username: record.username, keys, window: record.window }))
    }

    /// After the MAC verified: accepts `seq` once, moving the window from
    /// `window` (as [`get`](Self::get) read it) by compare-and-swap, rereading
    /// it when another request moved it first; marks the session used.
    pub(crate) async fn accept(
        &self,
        id: &str,
        seq: u64,
        mut window: [u8; 16],
        now_ms: u64,
    ) -> Result<(), SessionRefusal> {
        for _ in 0..MAX_SWAPS {
            let mut next = ReplayWindow::from_bytes(&window);
            if !next.accept(seq) {
                return Err(SessionRefusal::Replay);
            }
            match self.store.swap_window(id, &window, &next.to_bytes(), now_ms).await {
                Ok(WindowSwap::Swapped) => return Ok(()),
                Ok(WindowSwap::Gone) => return Err(SessionRefusal::Unknown),
                Ok(WindowSwap::Changed) => match self.store.get(id, now_ms).await {
                    Ok(Some(record)) => window = record.window,
                    Ok(None) => return Err(SessionRefusal::Unknown),
                    Err(e) => return Err(store_failed("get", &e).into()),
                },
                Err(e) => return Err(store_failed("swap_window", &e).into()),
            }
        }
        warn!(tries = MAX_SWAPS, "an HTTP session's window kept changing: request refused");
        Err(Unavailable("server error: too many concurrent requests in this session; try again").into())
    }

    /// Ends session `id`.
    pub(crate) async fn end(&self, id: &str) -> Result<(), Unavailable> {
        self.store.end(id).await.map_err(|e| store_failed("end", &e))
    }

    /// Live sessions (for `scram_dh_http_sessions`).
    pub(crate) async fn live(&self, now_ms: u64) -> Result<usize, Unavailable> {
        self.store.live(now_ms).await.map_err(|e| store_failed("live", &e))
    }

    /// Live sessions.
    #[cfg(test)]
    pub(crate) async fn len(&self, now_ms: u64) -> usize {
        self.live(now_ms).await.unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scram_dh::cluster::{HttpSessionLimits, MemoryHttpSessionStore, StoreFuture};
    use scram_dh::record::StoreError;
    use scram_dh::{HostKey, MemoryCredentialStore, MemorySessionStore, ServerConfig};

    fn keys() -> SessionKeys {
        SessionKeys { c2s: SymmetricKey::from_bytes([1; 32]), s2c: SymmetricKey::from_bytes([2; 32]) }
    }

    fn engine(secret: u8) -> Arc<dyn Sealer> {
        let config = ServerConfig::new(HostKey::from_seed(&[7; 32]), [secret; 32]);
        Arc::new(
            ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::default())
                .unwrap(),
        )
    }

    fn memory(idle_ms: u64, lifetime_ms: u64, max: usize, per_user: usize) -> Arc<dyn HttpSessionStore> {
        Arc::new(MemoryHttpSessionStore::new(HttpSessionLimits {
            idle_ms,
            lifetime_ms,
            max_sessions: max,
            max_per_user: per_user,
        }))
    }

    /// Accepts `seq` as a request does: get, then accept from the window read.
    async fn use_it(s: &Sessions, id: &str, seq: u64, now: u64) -> Result<(), SessionRefusal> {
        let live = s.get(id, now).await.unwrap().ok_or(SessionRefusal::Unknown)?;
        s.accept(id, seq, live.window, now).await
    }

    // The behaviour of the former in-process table, now on Unix-ms time through
    // the store: caps, idle expiry, lifetime, the window, logout.
    #[tokio::test]
    async fn idle_lifetime_caps_and_window() {
        let s = Sessions::new(memory(10_000, 25_000, 3, 2), engine(4));
        let t0 = 1_700_000_000_000;
        let a = s.create("alice", &keys(), t0).await.unwrap().unwrap();
        assert_eq!(a.len(), 43);
        let _b = s.create("alice", &keys(), t0).await.unwrap().unwrap();
        assert!(s.create("alice", &keys(), t0).await.unwrap().is_none(), "per-user cap");
        let c = s.create("bob", &keys(), t0).await.unwrap().unwrap();
        assert!(s.create("carol", &keys(), t0).await.unwrap().is_none(), "global cap");
        assert_eq!(s.get(&a, t0).await.unwrap().unwrap().keys, keys());
        assert_eq!(use_it(&s, &a, 0, t0).await, Ok(()));
        assert_eq!(use_it(&s, &a, 0, t0).await, Err(SessionRefusal::Replay));
        for seq in 1..=3 {
            assert_eq!(use_it(&s, &a, seq, t0 + seq * 8_000).await, Ok(()));
        }
        // 24 s in: the idle ones are gone, a is kept alive by use.
        assert_eq!(s.len(t0 + 24_000).await, 1);
        assert!(s.get(&c, t0 + 24_000).await.unwrap().is_none(), "idle-expired");
        assert!(s.get(&a, t0 + 26_000).await.unwrap().is_none(), "lifetime over");
        assert_eq!(s.accept(&a, 9, [0; 16], t0 + 26_000).await, Err(SessionRefusal::Unknown));
        let d = s.create("alice", &keys(), t0 + 30_000).await.unwrap().unwrap();
        s.end(&d).await.unwrap();
        assert!(s.get(&d, t0 + 30_000).await.unwrap().is_none());
        assert_eq!(s.len(t0 + 30_000).await, 0);
    }

    // Two fronts on one store are one table: a window moved by one is reread
    // by the other (compare-and-swap), a replay is refused across them, and
    // sealed keys open only under the same secret and the same id.
    #[tokio::test]
    async fn two_fronts_share_windows_and_keys_stay_sealed() {
        let store = memory(60_000, 600_000, 10, 10);
        let (a, b) =
            (Sessions::new(Arc::clone(&store), engine(4)), Sessions::new(Arc::clone(&store), engine(4)));
        let now = 1_700_000_000_000;
        let id = a.create("alice", &keys(), now).await.unwrap().unwrap();
        let stale = b.get(&id, now).await.unwrap().unwrap();
        assert_eq!(stale.keys, keys(), "opened by the other node");
        use_it(&a, &id, 1, now).await.unwrap();
        // b still holds the window from before seq 1: its swap loses, it rereads.
        assert_eq!(b.accept(&id, 2, stale.window, now).await, Ok(()));
        assert_eq!(b.accept(&id, 1, stale.window, now).await, Err(SessionRefusal::Replay));
        assert_eq!(use_it(&a, &id, 2, now).await, Err(SessionRefusal::Replay));
        // The store holds no key in the clear.
        let record = store.get(&id, now).await.unwrap().unwrap();
        assert!(!record.sealed_keys.windows(32).any(|w| w == [1; 32] || w == [2; 32]));
        // Another cluster secret cannot open it: unknown session, not an error.
        let other = Sessions::new(Arc::clone(&store), engine(5));
        assert!(other.get(&id, now).await.unwrap().is_none());
        // Nor does a blob moved to another id.
        let id2 = a.create("mallory", &keys(), now).await.unwrap().unwrap();
        let moved = HttpSessionRecord { username: "mallory".into(), ..record };
        assert!(store.create("moved", &moved, now).await.unwrap());
        assert!(a.get("moved", now).await.unwrap().is_none());
        assert!(a.get(&id2, now).await.unwrap().is_some());
        b.end(&id).await.unwrap();
        assert_eq!(use_it(&a, &id, 3, now).await, Err(SessionRefusal::Unknown));
    }

    /// A store that fails every call, or whose windows always move.
    #[derive(Debug)]
    struct Broken {
        down: bool,
        inner: Arc<dyn HttpSessionStore>,
    }

    impl HttpSessionStore for Broken {
        fn create<'a>(&'a self, id: &'a str, r: &'a HttpSessionRecord, now: u64) -> StoreFuture<'a, bool> {
            if self.down {
                Box::pin(async { Err(StoreError("down".into())) })
            } else {
                self.inner.create(id, r, now)
            }
        }
        fn get<'a>(&'a self, id: &'a str, now: u64) -> StoreFuture<'a, Option<HttpSessionRecord>> {
            if self.down {
                Box::pin(async { Err(StoreError("down".into())) })
            } else {
                self.inner.get(id, now)
            }
        }
        fn swap_window<'a>(
            &'a self,
            _: &'a str,
            _: &'a [u8; 16],
            _: &'a [u8; 16],
            _: u64,
        ) -> StoreFuture<'a, WindowSwap> {
            let down = self.down;
            Box::pin(
                async move { if down { Err(StoreError("down".into())) } else { Ok(WindowSwap::Changed) } },
            )
        }
        fn end<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async { Err(StoreError("down".into())) })
        }
        fn live(&self, _: u64) -> StoreFuture<'_, usize> {
            Box::pin(async { Err(StoreError("down".into())) })
        }
    }

    // Fail closed: a store error is Unavailable everywhere, and a window that
    // never stops moving is given up on after MAX_SWAPS, not retried forever.
    #[tokio::test]
    async fn store_failures_and_endless_contention_refuse() {
        let now = 1_700_000_000_000;
        let down = Sessions::new(Arc::new(Broken { down: true, inner: memory(1, 1, 1, 1) }), engine(4));
        assert_eq!(down.create("alice", &keys(), now).await, Err(STORE_DOWN));
        assert!(down.get("x", now).await.is_err());
        assert_eq!(down.accept("x", 1, [0; 16], now).await, Err(SessionRefusal::Unavailable(STORE_DOWN)));
        assert_eq!(down.end("x").await, Err(STORE_DOWN));
        let busy =
            Sessions::new(Arc::new(Broken { down: false, inner: memory(60_000, 60_000, 9, 9) }), engine(4));
        let id = busy.create("alice", &keys(), now).await.unwrap().unwrap();
        match use_it(&busy, &id, 1, now).await {
            Err(SessionRefusal::Unavailable(Unavailable(m))) => assert!(m.contains("concurrent"), "{m}"),
            other => panic!("expected a refusal: {other:?}"),
        }
    }
}
