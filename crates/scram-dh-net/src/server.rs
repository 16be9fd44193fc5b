//! The TCP front (SPEC 1, 5, 7): accepts connections through the
//! [admission layer](crate::admission), runs each connection's handshakes
//! (the crate's `handshake` module), then hands the encrypted channel to a [`Service`]
//! under an idle timeout. Shuts down gracefully: stops accepting, lets handshakes
//! in flight finish (a committed record is never lost: SQLite commits atomically
//! before R4 is written), tells services to stop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scram_dh::{CredentialStore, ServerEngine, SessionStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admission::{Admission, Refusal};
pub use crate::admission::{Limits, Penalties};
use crate::channel::SecureChannel;
use crate::metrics::{Front, Live};

/// The channel type a [`Service`] receives.
pub type ServerChannel = SecureChannel<BufReader<TcpStream>>;

/// An application run over an authenticated, encrypted connection.
pub trait Service: Send + Sync + 'static {
    /// Serves one connection until it ends or `shutdown` turns true (server
    /// shutdown, or the channel sat idle past the idle timeout); on `shutdown`,
    /// close the channel ([`SecureChannel::close`]) and return promptly.
    fn serve(
        &self,
        channel: ServerChannel,
        shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send;
}

pub(crate) struct Shared<C, S, V> {
    pub(crate) engine: Arc<ServerEngine<C, S>>,
    pub(crate) service: V,
    pub(crate) admission: Arc<Admission>,
}

/// The TCP server.
pub struct Server<C, S, V> {
    shared: Arc<Shared<C, S, V>>,
}

/// Wall-clock time in Unix milliseconds: the only clock the network layer reads
/// for the protocol (deadlines use tokio's monotonic clock).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How often the engine's mock profile is rebuilt from the credential store.
pub(crate) const MOCK_PROFILE_REFRESH: Duration = Duration::from_secs(300);

/// Refused connections being told why, at most; past it they are closed at once.
const MAX_LINGERING_REFUSALS: usize = 256;

impl<C, S, V> Server<C, S, V>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
    V: Service,
{
    /// A server driving `engine`, handing channels to `service`, admitting
    /// connections under `limits` (check them with [`Limits::check`] first).
    pub fn new(engine: ServerEngine<C, S>, service: V, limits: Limits) -> Self {
        Self::with_admission(engine, service, Admission::new(limits))
    }

    /// A server sharing an existing admission layer (e.g. with an HTTP front).
    pub fn with_admission(engine: ServerEngine<C, S>, service: V, admission: Arc<Admission>) -> Self {
        Self::from_parts(Arc::new(engine), service, admission)
    }

    /// A server over a shared engine and admission layer, so that the HTTP front
    /// ([`crate::http::HttpFront`]) and this one serve the same stores under the
    /// same limits.
    pub fn from_parts(engine: Arc<ServerEngine<C, S>>, service: V, admission: Arc<Admission>) -> Self {
        crate::metrics::watch_engine(&engine);
        Self { shared: Arc::new(Shared { engine, service, admission }) }
    }

    /// The engine, to share with another front.
    #[must_use]
    pub fn engine_arc(&self) -> Arc<ServerEngine<C, S>> {
        Arc::clone(&self.shared.engine)
    }

    /// The admission layer.
    #[must_use]
    pub fn admission(&self) -> &Arc<Admission> {
        &self.shared.admission
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &ServerEngine<C, S> {
        &self.shared.engine
    }

    /// Accepts connections until `shutdown` completes, then drains them.
    ///
    /// # Errors
    /// Only when the listener itself fails persistently.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let lingering = Arc::new(AtomicUsize::new(0));
        // Records changed by other means than in-band registration (passwd,
        // imports, provisioning by another process) reach the mock profile here.
        let mut refresh = tokio::time::interval(MOCK_PROFILE_REFRESH);
        refresh.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = refresh.tick() => {
                    let shared = Arc::clone(&self.shared);
                    tasks.spawn(async move {
                        if let Err(e) = shared.engine.refresh_mock_profile().await {
                            warn!(error = %e, "refreshing the mock profile failed");
                        }
                    });
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let admission = &self.shared.admission;
                        let peer = admission.peer(addr.ip());
                        match admission.connect(peer) {
                            Ok(guard) => {
                                let shared = Arc::clone(&self.shared);
                                let stop = stop_rx.clone();
                                let live = Live::connection(Front::Tcp);
                                tasks.spawn(async move {
                                    shared.connection(stream, guard, stop).await;
                                    drop(live);
                                });
                            }
                            Err(refusal) => {
                                debug!(%peer, reason = %refusal.message(), "connection refused");
                                refuse(stream, &refusal, &lingering);
                            }
                        }
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
        let grace = self.shared.admission.limits().shutdown_grace;
        let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(aborted = tasks.len(), "shutdown grace elapsed; aborting remaining connections");
            tasks.shutdown().await;
        }
        info!("server stopped");
        Ok(())
    }
}

/// Tells a refused connection why (`busy`), then closes it. The line is written
/// at once; the connection lingers briefly, reading and discarding, so that the
/// client's unread bytes do not turn the close into a reset that loses the line.
fn refuse(stream: TcpStream, refusal: &Refusal, lingering: &Arc<AtomicUsize>) {
    let mut line = refusal.reply().to_json();
    line.push('\n');
    let _ = stream.try_write(line.as_bytes());
    if lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING_REFUSALS {
        lingering.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let lingering = Arc::clone(lingering);
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        lingering.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Keeps a permit alive for a scope (re-exported for services that spawn work).
pub type Permit = OwnedSemaphorePermit;
