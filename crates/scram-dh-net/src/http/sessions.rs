//! HTTP sessions after `/v1/auth/proof` (SPEC 7, "After authentication"): keyed by
//! a 256-bit random id, holding the user, the channel keys and the anti-replay
//! window, with idle expiry and an absolute lifetime on tokio's monotonic clock.
//! Expired sessions leave through a deadline index, O(log n) each, never a scan.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scram_dh::SessionKeys;
use tokio::time::Instant;

use crate::http_auth::ReplayWindow;

/// A live session's view for one request.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) username: String,
    pub(crate) keys: Arc<SessionKeys>,
}

struct Entry {
    username: String,
    keys: Arc<SessionKeys>,
    window: ReplayWindow,
    created: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    deadlines: BTreeSet<(Instant, String)>,
    per_user: HashMap<String, usize>,
}

impl Inner {
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(id)?;
        self.deadlines.remove(&(entry.deadline, id.to_owned()));
        if let Some(n) = self.per_user.get_mut(&entry.username) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&entry.username);
            }
        }
        Some(entry)
    }

    fn purge(&mut self, now: Instant) {
        while let Some((deadline, id)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.remove(&id);
        }
    }
}

/// 32 random bytes, base64url unpadded (43 characters).
fn random_id<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a signed request's session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionRefusal {
    /// No such session (never was, expired, or logged out).
    Unknown,
    /// The seq was seen or is below the window.
    Replay,
}

/// The session table.
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
    idle: Duration,
    lifetime: Duration,
    max: usize,
    max_per_user: usize,
}

impl Sessions {
    pub(crate) fn new(idle: Duration, lifetime: Duration, max: usize, max_per_user: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), idle, lifetime, max, max_per_user }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session for `username`; `None` over a cap.
    pub(crate) fn create(&self, username: &str, keys: SessionKeys) -> Option<String> {
        let id = random_id(&mut rand_core::UnwrapErr(getrandom::SysRng));
        let now = Instant::now();
        let mut inner = self.lock();
        inner.purge(now);
        let user_count = inner.per_user.get(username).copied().unwrap_or(0);
        if inner.by_id.len() >= self.max || user_count >= self.max_per_user {
            return None;
        }
        let deadline = now + self.idle.min(self.lifetime);
        inner.deadlines.insert((deadline, id.clone()));
        *inner.per_user.entry(username.to_owned()).or_default() += 1;
        inner.by_id.insert(
            id.clone(),
            Entry {
                username: username.to_owned(),
                keys: Arc::new(keys),
                window: ReplayWindow::default(),
                created: now,
                deadline,
            },
        );
        Some(id)
    }

    /// The session's keys, to verify a request's MAC.
    pub(crate) fn get(&self, id: &str) -> Option<Live> {
        let mut inner = self.lock();
        inner.purge(Instant::now());
        inner.by_id.get(id).map(|e| Live { username: e.username.clone(), keys: Arc::clone(&e.keys) })
    }

    /// After the MAC verified: accepts `seq` once and marks the session used.
    pub(crate) fn accept(&self, id: &str, seq: u64) -> Result<(), SessionRefusal> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.purge(now);
        let (old, new) = {
            let entry = inner.by_id.get_mut(id).ok_or(SessionRefusal::Unknown)?;
            if !entry.window.accept(seq) {
                return Err(SessionRefusal::Replay);
            }
            let old = entry.deadline;
            entry.deadline = (now + self.idle).min(entry.created + self.lifetime);
            (old, entry.deadline)
        };
        if old != new {
            inner.deadlines.remove(&(old, id.to_owned()));
            inner.deadlines.insert((new, id.to_owned()));
        }
        Ok(())
    }

    /// Ends a session.
    pub(crate) fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Live sessions.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut inner = self.lock();
        inner.purge(Instant::now());
        inner.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scram_dh::secret::SymmetricKey;

    fn keys() -> SessionKeys {
        SessionKeys { c2s: SymmetricKey::from_bytes([1; 32]), s2c: SymmetricKey::from_bytes([2; 32]) }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_lifetime_caps_and_window() {
        let s = Sessions::new(Duration::from_secs(10), Duration::from_secs(25), 3, 2);
        let a = s.create("alice", keys()).unwrap();
        let _b = s.create("alice", keys()).unwrap();
        assert!(s.create("alice", keys()).is_none(), "per-user cap");
        let c = s.create("bob", keys()).unwrap();
        assert!(s.create("carol", keys()).is_none(), "global cap");
        assert_eq!(s.accept(&a, 0), Ok(()));
        assert_eq!(s.accept(&a, 0), Err(SessionRefusal::Replay));
        for seq in 1..=3 {
            tokio::time::advance(Duration::from_secs(8)).await;
            assert_eq!(s.accept(&a, seq), Ok(()));
        }
        // 24 s in: the idle ones are gone, a is kept alive by use.
        assert_eq!(s.len(), 1);
        assert!(s.get(&c).is_none(), "idle-expired");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(s.get(&a).is_none(), "lifetime over");
        assert_eq!(s.accept(&a, 9), Err(SessionRefusal::Unknown));
        let d = s.create("alice", keys()).unwrap();
        s.end(&d);
        assert!(s.get(&d).is_none());
        assert_eq!(s.len(), 0);
    }
}
