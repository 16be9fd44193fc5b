//! Standard SCRAM-SHA-256 over TCP (SPEC 7, issue 8): RFC 5802 messages carried
//! as GNU SASL's command-line tool carries them, so that
//! `socat TCP:host:port EXEC:'gsasl --client --quiet -m SCRAM-SHA-256 …'` logs in
//! to [`SaslServer`], and [`sasl_login`] logs in to a `gsasl --server` (or any
//! server speaking the same framing) with a password.
//!
//! The framing, one token per `\n`-terminated line:
//!
//! | # | dir | line |
//! |---|-----|------|
//! | 1 | C→S | the mechanism: `SCRAM-SHA-256`, or `SCRAM-SHA-256-PLUS` over TLS |
//! | 2 | C→S | base64 client-first-message |
//! | 3 | S→C | base64 server-first-message |
//! | 4 | C→S | base64 client-final-message |
//! | 5 | S→C | base64 server-final-message (`v=…`) |
//! | 6 | C→S | an empty line (the client has checked the server's signature) |
//! | 7 | S→C | an empty line; the server closes |
//!
//! A failure replaces line 3 or 5 with the base64 of `e=<server-error-value>`,
//! then the server closes. An admission refusal (caps, penalties) is
//! `e=no-resources` at the first line the server writes, `e=other-error` when
//! the shared penalty store cannot be read ([`crate::Refusal::Unavailable`]);
//! its reason is in the server's log. A client that sends an empty line 2 (no
//! initial response) is sent an empty challenge and then gives its
//! client-first-message.
//!
//! Over the optional TLS 1.3 listener ([`SaslServer::with_tls`]) the server
//! offers `SCRAM-SHA-256-PLUS` with channel binding `tls-exporter` (RFC 9266): a
//! client that sends the `y` flag there is refused as a downgrade
//! (`e=server-does-support-channel-binding`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::sasl::client::SaslClient;
use scram_dh::sasl::server::ClientFirstRequest;
use scram_dh::sasl::{
    ClientChannel, MECHANISM, MECHANISM_PLUS, SaslFailure, ServerChannel, ServerErrorValue,
};
use scram_dh::{ClientConfig, CredentialStore, Error, Password, ServerEngine, SessionStore};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admission::{Admission, ConnectionGuard, LoginOutcome, PeerKey, Refusal};
use crate::error::NetError;
use crate::framing::{read_line, write_line};
use crate::log::{Escaped, escaped};
use crate::metrics::{Front, HandshakeOutcome, Kind, Live, Timer};

/// How long the server waits for the client's closing empty line (line 6).
const CLOSING_LINE_WAIT: Duration = Duration::from_secs(2);

/// The RFC 9266 `tls-exporter` value of a TLS connection (either side): 32
/// bytes of the exporter labelled `EXPORTER-Channel-Binding`, with no context.
fn exporter_value<D>(conn: &rustls::ConnectionCommon<D>) -> Result<[u8; 32], NetError> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, scram_dh::sasl::TLS_EXPORTER_LABEL, None)
        .map_err(|e| NetError::Tls(format!("tls-exporter unavailable: {e}")))?;
    Ok(out)
}

/// A TLS 1.3 server configuration from PEM files: a certificate chain and its
/// private key (PKCS#8, SEC1 or PKCS#1).
///
/// # Errors
/// [`NetError::Tls`] when a file cannot be read or parsed, or the key does not
/// match the certificate.
pub fn tls_server_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<rustls::ServerConfig>, NetError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .and_then(Iterator::collect)
        .map_err(|e| NetError::Tls(format!("{}: {e}", cert_pem.display())))?;
    if certs.is_empty() {
        return Err(NetError::Tls(format!("{}: no certificate in the file", cert_pem.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .map_err(|e| NetError::Tls(format!("{}: {e}", key_pem.display())))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| NetError::Tls(format!("{}: {e}", key_pem.display())))?;
    Ok(Arc::new(config))
}

/// A TLS 1.3 client configuration trusting only the certificates in `ca_pem`.
///
/// # Errors
/// [`NetError::Tls`] when the file cannot be read or holds no usable certificate.
pub fn tls_client_config(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>, NetError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_pem)
        .and_then(Iterator::collect)
        .map_err(|e| NetError::Tls(format!("{}: {e}", ca_pem.display())))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(NetError::Tls(format!("{}: no usable CA certificate", ca_pem.display())));
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens TLS 1.3 over `stream` to `server_name` and returns the stream with its
/// RFC 9266 `tls-exporter` value, for [`ClientChannel::TlsExporter`].
///
/// # Errors
/// [`NetError::CertificateRefused`] when the server's certificate does not
/// verify, [`NetError::Tls`] for a bad name or another handshake failure.
pub async fn connect_tls(
    stream: TcpStream,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, [u8; 32]), NetError> {
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|e| NetError::Tls(format!("{server_name:?}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await.map_err(|e| {
        let certificate = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
        if certificate {
            NetError::CertificateRefused(format!("{server_name}: {e}"))
        } else {
            NetError::Tls(format!("TLS handshake with {server_name}: {e}"))
        }
    })?;
    let exporter = exporter_value(tls.get_ref().1)?;
    Ok((tls, exporter))
}

/// What a successful standard SCRAM login established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslLogin {
    /// The mechanism used.
    pub mechanism: &'static str,
    /// Whether the exchange was bound to the TLS connection (`-PLUS`).
    pub channel_bound: bool,
}

/// Logs in with a password over the GNU SASL line framing (module docs): to a
/// [`SaslServer`], or to `gsasl --server` behind socat.
///
/// The client sends the mechanism and its first message at once, then skips
/// the lines a `gsasl --server` sends before its challenge (its echo of the
/// mechanism and an empty initial challenge). The iteration count the server
/// asks for is checked against `config` before any PBKDF2 work.
///
/// # Errors
/// [`NetError::Protocol`] with [`scram_dh::Error::ScramRefused`] when the server
/// answers `e=…`, [`scram_dh::Error::AuthenticationFailed`] when it hangs up
/// instead of answering the proof, [`scram_dh::Error::ServerSignature`] when the server cannot
/// prove it holds the user's record, [`scram_dh::Error::IterationCount`];
/// I/O errors, [`NetError::Closed`], [`NetError::Timeout`] past `timeout`.
///
/// ```no_run
/// # async fn demo() -> Result<(), scram_dh_net::NetError> {
/// use scram_dh::sasl::ClientChannel;
/// use scram_dh::{ClientConfig, Password};
///
/// let stream = tokio::net::TcpStream::connect("127.0.0.1:7879").await?;
/// let done = scram_dh_net::sasl::sasl_login(
///     stream,
///     "alice",
///     &Password::new("correct horse"),
///     ClientChannel::Unsupported,
///     &ClientConfig::default(),
///     std::time::Duration::from_secs(10),
/// )
/// .await?;
/// assert!(!done.channel_bound);
/// # Ok(()) }
/// ```
pub async fn sasl_login<T: AsyncRead + AsyncWrite + Unpin>(
    stream: T,
    username: &str,
    password: &Password,
    channel: ClientChannel,
    config: &ClientConfig,
    timeout: Duration,
) -> Result<SaslLogin, NetError> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let client = SaslClient::new(username, password, channel, config, &mut rng)?;
    let mechanism = client.mechanism();
    let channel_bound = mechanism == MECHANISM_PLUS;
    let mut io = BufReader::new(stream);
    let exchange = async {
        let first = STANDARD.encode(client.client_first());
        write_line(&mut io, &format!("{mechanism}\n{first}")).await?;
        // A gsasl server echoes the mechanism and sends an empty challenge first.
        let server_first = loop {
            let line = read_line(&mut io).await?.ok_or(NetError::Closed)?;
            if line.is_empty() || line == mechanism {
                continue;
            }
            break decode_token(&line)?;
        };
        let fin = client.receive_server_first(&server_first)?;
        write_line(&mut io, &STANDARD.encode(fin.client_final())).await?;
        // A server that hangs up instead of answering the proof refused it: that is
        // what `gsasl --server` does on a wrong password (it sends no `e=`).
        let line = read_line(&mut io).await?.ok_or(NetError::Protocol(Error::AuthenticationFailed))?;
        fin.receive_server_final(&decode_token(&line)?)?;
        // Tell the server its signature checked out, and that nothing more follows:
        // ours answers with an empty line and closes; a gsasl server sends nothing
        // and waits for the end of our stream.
        let _ = write_line(&mut io, "").await;
        let _ = io.get_mut().shutdown().await;
        let _ = tokio::time::timeout(CLOSING_LINE_WAIT, read_line(&mut io)).await;
        Ok::<_, NetError>(())
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| NetError::Timeout)??;
    Ok(SaslLogin { mechanism, channel_bound })
}

fn decode_token(line: &str) -> Result<Vec<u8>, NetError> {
    STANDARD
        .decode(line.trim_end())
        .map_err(|_| NetError::Protocol(Error::InvalidMessage("a SASL token is not valid base64".into())))
}

/// The standard SCRAM-SHA-256 listener over a shared engine and admission layer
/// (the records of the native protocol, the same caps and penalties).
///
/// ```no_run
/// # async fn demo(engine: std::sync::Arc<scram_dh::ServerEngine<scram_dh::MemoryCredentialStore, scram_dh::MemorySessionStore>>) -> std::io::Result<()> {
/// use scram_dh_net::{Admission, Limits};
/// use scram_dh_net::sasl::SaslServer;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7879").await?;
/// let server = SaslServer::new(engine, Admission::new(Limits::default()));
/// server.run(listener, std::future::pending()).await
/// # }
/// ```
pub struct SaslServer<C, S> {
    shared: Arc<SaslShared<C, S>>,
}

struct SaslShared<C, S> {
    engine: Arc<ServerEngine<C, S>>,
    admission: Arc<Admission>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl<C, S> SaslServer<C, S>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
{
    /// A plain-TCP listener offering `SCRAM-SHA-256` (no channel binding).
    #[must_use]
    pub fn new(engine: Arc<ServerEngine<C, S>>, admission: Arc<Admission>) -> Self {
        crate::metrics::watch_engine(&engine);
        Self { shared: Arc::new(SaslShared { engine, admission, tls: None }) }
    }

    /// A TLS 1.3 listener offering `SCRAM-SHA-256-PLUS` (channel binding
    /// `tls-exporter`) and `SCRAM-SHA-256`; see [`tls_server_config`].
    #[must_use]
    pub fn with_tls(
        engine: Arc<ServerEngine<C, S>>,
        admission: Arc<Admission>,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        crate::metrics::watch_engine(&engine);
        let tls = Some(tokio_rustls::TlsAcceptor::from(config));
        Self { shared: Arc::new(SaslShared { engine, admission, tls }) }
    }

    /// Accepts connections until `shutdown` completes, then lets the exchanges
    /// in flight finish within the shutdown grace.
    ///
    /// # Errors
    /// Never today; the signature leaves room for listener failures.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let peer = self.shared.admission.peer(addr.ip());
                        match self.shared.admission.connect(peer) {
                            Ok(guard) => {
                                let shared = Arc::clone(&self.shared);
                                let stop = stop_rx.clone();
                                let live = Live::connection(Front::Sasl);
                                tasks.spawn(async move {
                                    shared.connection(stream, guard, stop).await;
                                    drop(live);
                                });
                            }
                            Err(refusal) => {
                                debug!(%peer, reason = %refusal.message(), "standard SCRAM connection refused");
                                let line = format!("{}\n", STANDARD.encode(b"e=no-resources"));
                                let _ = stream.try_write(line.as_bytes());
                            }
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let grace = self.shared.admission.limits().shutdown_grace;
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tasks.shutdown().await;
        }
        Ok(())
    }
}

impl<C, S> SaslShared<C, S>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
{
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        conn: ConnectionGuard,
        mut stop: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let peer = conn.peer();
        let first_wait = {
            let l = self.admission.limits();
            l.first_line_timeout.min(l.handshake_timeout)
        };
        let work = async {
            match &self.tls {
                None => self.exchange(stream, peer, None).await,
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(first_wait, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            debug!(%peer, error = %escaped(&e), "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    match exporter_value(tls.get_ref().1) {
                        Ok(exporter) => self.exchange(tls, peer, Some(exporter)).await,
                        Err(e) => warn!(%peer, error = %escaped(&e), "no tls-exporter value"),
                    }
                }
            }
        };
        tokio::select! {
            () = work => {}
            _ = stop.changed() => {}
        }
        drop(conn);
    }

    /// One exchange on an admitted connection (module docs for the lines).
    async fn exchange<T: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: T,
        peer: PeerKey,
        exporter: Option<[u8; 32]>,
    ) {
        let limits = self.admission.limits().clone();
        let mut io = BufReader::new(stream);
        let channel = exporter.as_ref().map_or(ServerChannel::None, ServerChannel::TlsExporter);
        let first_deadline =
            tokio::time::Instant::now() + limits.first_line_timeout.min(limits.handshake_timeout);
        let deadline = tokio::time::Instant::now() + limits.handshake_timeout;
        let Some(mechanism) = read_until(&mut io, first_deadline, peer).await else { return };
        // Timed from its first line; dropped unfinished, the exchange counts as `error`.
        let timer = Timer::start(Front::Sasl, Kind::Authentication, std::time::Instant::now());
        let mechanism = mechanism.trim_end().to_owned();
        let offered = mechanism == MECHANISM || (mechanism == MECHANISM_PLUS && exporter.is_some());
        if !offered {
            debug!(%peer, mechanism = %Escaped(&mechanism), "mechanism not offered");
            let _ = send_error(&mut io, ServerErrorValue::OtherError).await;
            return;
        }
        let Some(mut line) = read_until(&mut io, deadline, peer).await else { return };
        if line.is_empty() {
            // No initial response: send the empty challenge, then read it.
            if write_line(&mut io, "").await.is_err() {
                return;
            }
            let Some(next) = read_until(&mut io, deadline, peer).await else { return };
            line = next;
        }
        let Ok(client_first) = STANDARD.decode(line.trim_end()) else {
            let _ = send_error(&mut io, ServerErrorValue::InvalidEncoding).await;
            return;
        };
        if let Err(refusal) = self.admission.admit_login(peer, None).await {
            debug!(%peer, reason = %refusal.message(), "standard SCRAM login refused");
            timer.finish(HandshakeOutcome::Refused);
            let _ = send_error(&mut io, refusal_value(&refusal)).await;
            return;
        }
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let (server_first, pending) =
            match self.first(&mechanism, &client_first, channel, peer, &mut rng).await {
                Ok(step) => step,
                Err(Stop::Refused(refusal)) => {
                    timer.finish(HandshakeOutcome::Refused);
                    let _ = send_error(&mut io, refusal_value(&refusal)).await;
                    return;
                }
                Err(Stop::Failed(failure)) => {
                    timer.finish(sasl_outcome(&failure));
                    self.failed(peer, &failure).await;
                    let _ = send_error(&mut io, failure.value).await;
                    return;
                }
            };
        if write_line(&mut io, &STANDARD.encode(server_first)).await.is_err() {
            return;
        }
        let Some(line) = read_until(&mut io, deadline, peer).await else { return };
        let Ok(client_final) = STANDARD.decode(line.trim_end()) else {
            let _ = send_error(&mut io, ServerErrorValue::InvalidEncoding).await;
            return;
        };
        match pending.receive_final(&client_final) {
            Ok((server_final, auth)) => {
                self.admission.learn_login(peer, LoginOutcome::Authenticated(auth.username())).await;
                timer.finish(HandshakeOutcome::Ok);
                info!(
                    %peer,
                    username = %Escaped(auth.username()),
                    channel_bound = auth.channel_bound(),
                    "authenticated (standard SCRAM)"
                );
                if write_line(&mut io, &STANDARD.encode(server_final)).await.is_err() {
                    return;
                }
                // The client's closing empty line, then ours.
                if let Ok(Ok(Some(_))) = tokio::time::timeout(CLOSING_LINE_WAIT, read_line(&mut io)).await {
                    let _ = write_line(&mut io, "").await;
                }
            }
            Err(failure) => {
                timer.finish(sasl_outcome(&failure));
                self.failed(peer, &failure).await;
                let _ = send_error(&mut io, failure.value).await;
            }
        }
    }

    /// Parses the client-first-message, checks the account's penalties, then lets
    /// the engine read the record and answer.
    async fn first<R: rand_core::CryptoRng + Send + ?Sized>(
        &self,
        mechanism: &str,
        client_first: &[u8],
        channel: ServerChannel<'_>,
        peer: PeerKey,
        rng: &mut R,
    ) -> Result<(String, scram_dh::sasl::server::PendingSasl), Stop> {
        let request = ClientFirstRequest::parse(mechanism, client_first, channel).map_err(Stop::Failed)?;
        let username = request.username().to_owned();
        if let Err(refusal) = self.admission.admit_login(peer, Some(&username)).await {
            debug!(%peer, reason = %refusal.message(), "standard SCRAM login refused");
            return Err(Stop::Refused(refusal));
        }
        self.engine.sasl_continue(request, rng).await.map_err(Stop::Failed)
    }

    async fn failed(&self, peer: PeerKey, failure: &SaslFailure) {
        let account = failure.username.as_deref();
        if failure.is_failed_proof() {
            // The reason tells a wrong password from a record with random labels.
            debug!(%peer, account = ?account.map(Escaped), reason = %escaped(&failure.error), "standard SCRAM proof failed");
            self.admission.learn_login(peer, LoginOutcome::FailedProof(account)).await;
        } else {
            self.admission.learn_login(peer, LoginOutcome::Other).await;
            match failure.error.code() {
                scram_dh::ErrorCode::ServerError => {
                    warn!(%peer, account = ?account.map(Escaped), error = %escaped(&failure.error), "standard SCRAM failed");
                }
                _ => debug!(
                    %peer,
                    value = failure.value.as_str(),
                    error = %escaped(&failure.error),
                    "standard SCRAM refused"
                ),
            }
        }
    }
}

/// Why an exchange stopped at its first message.
enum Stop {
    /// The admission layer refused the account's login.
    Refused(Refusal),
    /// The message or the engine failed it.
    Failed(SaslFailure),
}

/// How a failed exchange counts in the metrics: a failed proof, `no-resources`
/// (the engine at its session cap), or an error.
fn sasl_outcome(failure: &SaslFailure) -> HandshakeOutcome {
    if failure.is_failed_proof() {
        HandshakeOutcome::Failed
    } else if matches!(failure.value, ServerErrorValue::NoResources) {
        HandshakeOutcome::Refused
    } else {
        HandshakeOutcome::of_error(&failure.error)
    }
}

/// The `e=` value of an admission refusal: `no-resources` for caps and
/// penalties, `other-error` when the shared penalty store is down (the server's
/// fault, not the client's load).
fn refusal_value(refusal: &Refusal) -> ServerErrorValue {
    match refusal {
        Refusal::Unavailable => ServerErrorValue::OtherError,
        _ => ServerErrorValue::NoResources,
    }
}

/// One line before `until`; `None` (logged) at EOF, on an error or past the deadline.
async fn read_until<R: tokio::io::AsyncBufRead + Unpin>(
    io: &mut R,
    until: tokio::time::Instant,
    peer: PeerKey,
) -> Option<String> {
    match tokio::time::timeout_at(until, read_line(io)).await {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => {
            debug!(%peer, error = %escaped(&e), "standard SCRAM read failed");
            None
        }
        Err(_) => {
            debug!(%peer, "standard SCRAM exchange timed out");
            None
        }
    }
}

async fn send_error<W: AsyncWrite + Unpin>(io: &mut W, value: ServerErrorValue) -> Result<(), NetError> {
    write_line(io, &STANDARD.encode(format!("e={}", value.as_str()))).await
}
