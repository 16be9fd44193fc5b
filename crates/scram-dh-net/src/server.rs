//! The TCP front (SPEC 1, 5, 7): newline-JSON handshakes under a per-handshake
//! deadline, global and per-peer caps on concurrent handshakes, a per-peer rate
//! limit on registration pairings (each costs the server a DH operation), then
//! the encrypted channel handed to a [`Service`]. Shuts down gracefully: stops
//! accepting, lets handshakes in flight finish (a committed record is never
//! lost: SQLite commits atomically before R4 is written), tells services to stop.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::{CredentialStore, Error, Outcome, ServerEngine, SessionStore};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::channel::{Role, SecureChannel};
use crate::error::NetError;
use crate::framing::{read_line, write_line};

/// The channel type a [`Service`] receives.
pub type ServerChannel = SecureChannel<BufReader<TcpStream>>;

/// An application run over an authenticated, encrypted connection.
pub trait Service: Send + Sync + 'static {
    /// Serves one connection until it ends or `shutdown` turns true.
    fn serve(
        &self,
        channel: ServerChannel,
        shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send;
}

/// Resource limits of the TCP front.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections in the handshake phase at once, server-wide; beyond, `busy`.
    pub max_handshakes: usize,
    /// Connections in the handshake phase at once from one IP address.
    pub max_handshakes_per_peer: usize,
    /// Authenticated channels open at once.
    pub max_channels: usize,
    /// Time a client has to finish one handshake.
    pub handshake_timeout: Duration,
    /// Registration pairings per second per IP (token bucket refill).
    pub registrations_per_sec: f64,
    /// Registration pairing burst per IP (token bucket size).
    pub registration_burst: f64,
    /// Handshakes one connection may run (e.g. register, then log in).
    pub max_handshakes_per_connection: u32,
    /// How long shutdown waits for connections before aborting them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_handshakes: 1024,
            max_handshakes_per_peer: 32,
            max_channels: 10_000,
            handshake_timeout: Duration::from_secs(10),
            registrations_per_sec: 2.0,
            registration_burst: 10.0,
            max_handshakes_per_connection: 4,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Shared<C, S, V> {
    engine: ServerEngine<C, S>,
    service: V,
    limits: Limits,
    handshakes: Arc<Semaphore>,
    channels: Arc<Semaphore>,
    per_peer: Mutex<HashMap<IpAddr, usize>>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Decrements a peer's handshake count on drop.
struct PeerSlot<'a> {
    map: &'a Mutex<HashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The TCP server.
pub struct Server<C, S, V> {
    shared: Arc<Shared<C, S, V>>,
}

/// Wall-clock time in Unix milliseconds: the only clock the network layer reads.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl<C, S, V> Server<C, S, V>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
    V: Service,
{
    /// A server driving `engine`, handing channels to `service`.
    pub fn new(engine: ServerEngine<C, S>, service: V, limits: Limits) -> Self {
        let shared = Shared {
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes)),
            channels: Arc::new(Semaphore::new(limits.max_channels)),
            engine,
            service,
            limits,
            per_peer: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        };
        Self { shared: Arc::new(shared) }
    }

    /// Accepts connections until `shutdown` completes, then drains them.
    ///
    /// # Errors
    /// Only when the listener itself fails persistently.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let shared = Arc::clone(&self.shared);
                        let stop = stop_rx.clone();
                        tasks.spawn(async move { shared.connection(stream, peer, stop).await });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        info!(open = tasks.len(), "shutting down: no new connections; draining");
        let _ = stop_tx.send(true);
        let grace = self.shared.limits.shutdown_grace;
        let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(aborted = tasks.len(), "shutdown grace elapsed; aborting remaining connections");
            tasks.shutdown().await;
        }
        info!("server stopped");
        Ok(())
    }
}

impl<C, S, V> Shared<C, S, V>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
    V: Service,
{
    fn peer_slot(&self, ip: IpAddr) -> Option<PeerSlot<'_>> {
        let mut m = self.per_peer.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.max_handshakes_per_peer {
            return None;
        }
        *n += 1;
        Some(PeerSlot { map: &self.per_peer, ip })
    }

    fn registration_allowed(&self, ip: IpAddr) -> bool {
        let Ok(mut m) = self.buckets.lock() else { return false };
        let now = Instant::now();
        let (rate, burst) = (self.limits.registrations_per_sec, self.limits.registration_burst);
        if m.len() > 100_000 {
            // Bounded memory under a flood of addresses: forget refilled buckets.
            m.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = m.entry(ip).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn refuse(stream: TcpStream, error: &Error) {
        let mut stream = stream;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            write_line(&mut stream, &ServerMessage::error(error).to_json()),
        )
        .await;
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let ip = peer.ip();
        let Ok(permit) = Arc::clone(&self.handshakes).try_acquire_owned() else {
            debug!(%peer, "refused: global handshake cap");
            return Self::refuse(stream, &Error::Busy).await;
        };
        let Some(slot) = self.peer_slot(ip) else {
            debug!(%peer, "refused: per-peer handshake cap");
            return Self::refuse(stream, &Error::Busy).await;
        };
        let _ = stream.set_nodelay(true);
        let peer_key = ip.to_string();
        let mut io = BufReader::new(stream);
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let mut deadline = tokio::time::Instant::now() + self.limits.handshake_timeout;
        let mut done = 0u32;
        loop {
            let line = tokio::select! {
                r = tokio::time::timeout_at(deadline, read_line(&mut io)) => r,
                _ = stop.changed() => return,
            };
            let line = match line {
                Err(_) => {
                    debug!(%peer, "handshake deadline passed");
                    let e = Error::InvalidMessage("handshake timed out".into());
                    let _ = write_line(&mut io, &ServerMessage::error(&e).to_json()).await;
                    return;
                }
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => return,
                Ok(Err(NetError::LineTooLong)) => {
                    let e = Error::InvalidMessage("handshake line longer than 16 KiB".into());
                    let _ = write_line(&mut io, &ServerMessage::error(&e).to_json()).await;
                    return;
                }
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "read failed");
                    return;
                }
            };
            let outcome = match ClientMessage::from_json(&line) {
                Err(error) => Outcome::Failed { reply: ServerMessage::error(&error), error },
                Ok(ClientMessage::RegistrationPairing(_)) if !self.registration_allowed(ip) => {
                    Outcome::Failed { reply: ServerMessage::error(&Error::Busy), error: Error::Busy }
                }
                Ok(msg) => {
                    // A DH step costs up to ~10 ms of CPU (modp8192): on a multi-thread
                    // runtime, tell tokio so this worker's other connections move on.
                    let heavy = match &msg {
                        ClientMessage::RegistrationPairing(_) => true,
                        ClientMessage::AuthPairing(a) => a.public_key.is_some(),
                        _ => false,
                    };
                    let step = self.engine.handle(msg, &peer_key, now_ms(), &mut rng);
                    let handle = tokio::runtime::Handle::current();
                    if heavy && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                        tokio::task::block_in_place(|| handle.block_on(step))
                    } else {
                        step.await
                    }
                }
            };
            if let Err(e) = write_line(&mut io, &outcome.reply().to_json()).await {
                debug!(%peer, error = %e, "write failed");
                return;
            }
            match outcome {
                Outcome::Continue(_) => {}
                Outcome::Registered { username, .. } => {
                    info!(%peer, %username, "registered");
                    done += 1;
                    if done >= self.limits.max_handshakes_per_connection {
                        return;
                    }
                    deadline = tokio::time::Instant::now() + self.limits.handshake_timeout;
                }
                Outcome::Failed { error, .. } => {
                    warn!(%peer, code = %error.code(), error = %error, "handshake failed");
                    return;
                }
                Outcome::Authenticated { auth, .. } => {
                    let (username, keys) = auth.into_parts();
                    info!(%peer, %username, channel = keys.is_some(), "authenticated");
                    let Some(keys) = keys else { return };
                    drop(slot);
                    drop(permit);
                    let Ok(_channel_permit) = Arc::clone(&self.channels).try_acquire_owned() else {
                        warn!(%peer, "channel cap reached; closing");
                        return;
                    };
                    let channel = SecureChannel::new(io, username, keys, Role::Server);
                    self.service.serve(channel, stop).await;
                    return;
                }
            }
        }
    }
}

/// Keeps a permit alive for a scope (re-exported for services that spawn work).
pub type Permit = OwnedSemaphorePermit;
