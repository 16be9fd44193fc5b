//! The HTTP front (SPEC 7, "After authentication"): the four handshake steps as
//! JSON over `POST`, HTTP sessions after `/v1/auth/proof`, MAC-signed requests
//! with an anti-replay window, MAC'd responses, `whoami`, `logout`, `passwd`, an
//! extractor and a layer for application routes, and a gateway to an upstream.
//! `whoami`, `GET /v1/auth/token` and the gateway also take standard
//! SCRAM-SHA-256 over HTTP (RFC 7804) from clients that hold only a password
//! ([`HttpFront::rfc7804_layer`]); `logout` and `passwd` take signed requests only.
//! `GET /v1/ping` answers unsigned requests plainly and signed ones signed, for
//! load tests and health checks; `GET /metrics` serves the process's
//! [`crate::metrics`] unsigned (unless [`HttpOptions::metrics`] is off).
//! `GET /v1/ui/` serves the browser page and its scripts ([`ui`]; unless
//! [`HttpOptions::ui`] is off), and so does `GET /` with
//! [`HttpOptions::ui_at_root`] and no upstream.
//!
//! It shares the [`ServerEngine`] and the [`Admission`] layer with the TCP front
//! ([`crate::Server::from_parts`]): caps, buckets and penalties are the same ones,
//! keyed by the socket address, never a header.
//!
//! Several fronts behind a load balancer behave as one (issue 9) when they share
//! an [`HttpSessionStore`] ([`HttpFront::with_session_store`]; the channel keys in
//! it are sealed by the engine, so every node needs the same cluster secret), an
//! admission layer made with [`Admission::with_penalty_store`], and the engine's
//! stores: a session made on one node serves signed requests on any, each seq
//! is accepted once across all of them, and a logout on one ends it everywhere.
//! A shared store that fails refuses the request with 503 `server_error`.

mod gateway;
mod handshake;
mod proxy;
mod rfc7804;
mod sessions;
mod signed;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use scram_dh::cluster::{HttpSessionLimits, HttpSessionStore, MemoryHttpSessionStore};
use scram_dh::{CredentialStore, ErrorCode, ServerEngine, SessionStore};
use tower::ServiceExt as _;

use crate::admission::{Admission, Refusal};
use crate::metrics::{Front, Live};
use crate::passwd::PasswdBounds;
use handshake::Expect;
use sessions::Sessions;

pub use proxy::IpNet;
pub use rfc7804::{Rfc7804, Rfc7804Layer, challenge as rfc7804_challenge};
pub use signed::{SCRAM_DH_CHALLENGE, ScramDhUser, Signed, SignedLayer};

/// The largest handshake body (SPEC 7: 16 KiB, as a TCP handshake line).
pub const MAX_HANDSHAKE_BODY: usize = 16 * 1024;
/// The header the gateway sets to the authenticated user.
pub const USER_HEADER: &str = "x-scram-dh-user";

/// Settings of the HTTP front. The four session bounds are those of the memory
/// session store [`HttpFront::new`] makes ([`session_limits`](Self::session_limits));
/// a store given to [`HttpFront::with_session_store`] has its own.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// A session unused this long ends (default 15 min).
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not (default 12 h).
    pub lifetime: Duration,
    /// Live sessions, all users (default 100,000).
    pub max_sessions: usize,
    /// Live sessions per user (default 64).
    pub max_sessions_per_user: usize,
    /// Largest signed request body, and largest upstream response (default 1 MiB).
    pub max_body: usize,
    /// Where signed requests outside `/v1/` go (`http://host:port`), if anywhere.
    pub upstream: Option<String>,
    /// The whole upstream exchange, at most (default 30 s).
    pub upstream_timeout: Duration,
    /// Load balancers whose `X-Forwarded-For` names the client (default none):
    /// the penalties and rate limits of a request from one of these count against
    /// the rightmost address in that header that is not itself a trusted proxy.
    pub trusted_proxies: Vec<IpNet>,
    /// Serve the Prometheus metrics ([`crate::metrics`]) unsigned on `GET
    /// /metrics` (default true). Off, `/metrics` is 404 `unsupported` — or,
    /// with an upstream, a path like any other, forwarded when signed.
    pub metrics: bool,
    /// Serve the browser page ([`ui`]) unsigned under `/v1/ui/` (default true).
    /// Off, those routes are 404 `unsupported`.
    pub ui: bool,
    /// Also serve the page on `GET /` when there is no upstream (default false,
    /// so an application that merges [`HttpFront::router`] into its own keeps
    /// its `/`; `scram-dh serve` turns it on). With [`ui`](Self::ui) off, `/` is
    /// then 404 `unsupported`; with an upstream, `/` is the upstream's either way.
    pub ui_at_root: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(15 * 60),
            lifetime: Duration::from_secs(12 * 3600),
            max_sessions: 100_000,
            max_sessions_per_user: 64,
            max_body: 1 << 20,
            upstream: None,
            upstream_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            metrics: true,
            ui: true,
            ui_at_root: false,
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl HttpOptions {
    /// The session bounds as an [`HttpSessionStore`] takes them.
    #[must_use]
    pub fn session_limits(&self) -> HttpSessionLimits {
        HttpSessionLimits {
            idle_ms: millis(self.idle_timeout),
            lifetime_ms: millis(self.lifetime),
            max_sessions: self.max_sessions,
            max_per_user: self.max_sessions_per_user,
        }
    }
}

pub(crate) struct FrontState<C, S> {
    pub(crate) engine: Arc<ServerEngine<C, S>>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) passwd_bounds: PasswdBounds,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) options: HttpOptions,
    pub(crate) upstream: Option<gateway::Upstream>,
}

/// The HTTP front.
pub struct HttpFront<C, S> {
    state: Arc<FrontState<C, S>>,
}

impl<C, S> Clone for HttpFront<C, S> {
    fn clone(&self) -> Self {
        Self { state: Arc::clone(&self.state) }
    }
}

impl<C, S> HttpFront<C, S>
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    /// A front over a (shared) engine and admission layer; `passwd` applies
    /// `passwd_bounds` ([`crate::KvLimits::passwd_bounds`]). Its HTTP sessions
    /// live in this process ([`MemoryHttpSessionStore`] with
    /// [`HttpOptions::session_limits`]).
    #[must_use]
    pub fn new(
        engine: Arc<ServerEngine<C, S>>,
        admission: Arc<Admission>,
        passwd_bounds: PasswdBounds,
        options: HttpOptions,
    ) -> Self {
        let store = Arc::new(MemoryHttpSessionStore::new(options.session_limits()));
        Self::with_session_store(engine, admission, passwd_bounds, options, store)
    }

    /// A front whose HTTP sessions live in `store`, which other nodes may share
    /// (module docs); the store's own bounds apply, not `options`' session fields.
    #[must_use]
    pub fn with_session_store(
        engine: Arc<ServerEngine<C, S>>,
        admission: Arc<Admission>,
        passwd_bounds: PasswdBounds,
        options: HttpOptions,
        store: Arc<dyn HttpSessionStore>,
    ) -> Self {
        crate::metrics::watch_engine(&engine);
        let sealer: Arc<dyn sessions::Sealer> = Arc::clone(&engine) as _;
        let sessions = Arc::new(Sessions::new(store, sealer));
        let upstream = options.upstream.as_deref().map(|base| gateway::Upstream::new(base, &options));
        Self { state: Arc::new(FrontState { engine, admission, passwd_bounds, sessions, options, upstream }) }
    }

    /// The layer that verifies signed requests for an application's own router
    /// (see [`ScramDhUser`]).
    #[must_use]
    pub fn layer(&self) -> SignedLayer {
        SignedLayer::new(Arc::clone(&self.state.sessions), self.state.options.max_body)
    }

    /// The layer that also lets standard SCRAM-SHA-256 clients in (RFC 7804,
    /// SPEC 7): apply it outside [`layer`](Self::layer), i.e. after it. A verified
    /// exchange reaches the handler with a [`ScramDhUser`] as a signed request
    /// does, and its response carries `Authentication-Info`; the layer's 401s
    /// gain `WWW-Authenticate: SCRAM-SHA-256 realm="scram-dh"`.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use scram_dh::{MemoryCredentialStore, MemorySessionStore, ServerEngine};
    /// # fn app(front: scram_dh_net::http::HttpFront<Arc<MemoryCredentialStore>, MemorySessionStore>) -> axum::Router {
    /// use axum::routing::get;
    /// use scram_dh_net::http::ScramDhUser;
    ///
    /// let notes = axum::Router::new()
    ///     .route("/notes", get(|user: ScramDhUser| async move { format!("notes of {}", user.username) }))
    ///     .layer(front.layer())
    ///     .layer(front.rfc7804_layer());
    /// front.router().merge(notes)
    /// # }
    /// ```
    #[must_use]
    pub fn rfc7804_layer(&self) -> Rfc7804Layer<C, S> {
        Rfc7804Layer::new(Arc::clone(&self.state))
    }

    /// The routes: the handshake under `/v1/registration/*` and `/v1/auth/*`,
    /// then the signed `GET /v1/whoami`, `GET /v1/auth/token` (the same answer,
    /// where npm gel's HTTP SCRAM client asks), `POST /v1/logout`,
    /// `POST /v1/passwd`, and with an upstream, every signed request outside
    /// `/v1/` forwarded. `whoami`, `auth/token` and the gateway also take RFC 7804
    /// exchanges ([`rfc7804_layer`](Self::rfc7804_layer)); `logout` and `passwd`
    /// only signed requests.
    ///
    /// `GET /v1/ping` without an `Authorization` header answers `{"pong":true}`;
    /// with one it is verified as `whoami` is (a bad signature gets the same
    /// 401) and answers `{"pong":true,"user":"<name>"}`, MAC'd. `GET /metrics`
    /// (when [`HttpOptions::metrics`]) answers the Prometheus text exposition.
    ///
    /// The browser page (when [`HttpOptions::ui`], unsigned, [`ui`]):
    /// `GET /v1/ui` (308 to `/v1/ui/`), `GET /v1/ui/` (the page, with this
    /// engine's host key fingerprint in it), `/v1/ui/app.js`,
    /// `/v1/ui/scram-dh.js`, `/v1/ui/style.css`, any other `/v1/ui/*` 404
    /// `unsupported`; and with [`HttpOptions::ui_at_root`], `GET /`, the page,
    /// unless an upstream has it. Without that option `/` is left to the
    /// application the router is merged into.
    pub fn router(&self) -> Router {
        let mut either = Router::new()
            .route("/v1/whoami", get(signed::whoami))
            .route("/v1/auth/token", get(signed::whoami));
        if self.state.upstream.is_some() {
            either = either.fallback(gateway::forward::<C, S>);
        }
        let either =
            either.with_state(Arc::clone(&self.state)).layer(self.layer()).layer(self.rfc7804_layer());
        let signed_ping = Router::new()
            .route("/v1/ping", get(signed::signed_ping))
            .layer(self.layer())
            .layer(self.rfc7804_layer());
        let ping = get(move |req: Request<Body>| ping(signed_ping, req));
        let signed_only = Router::new()
            .route("/v1/logout", post(signed::logout::<C, S>))
            .route("/v1/passwd", post(signed::passwd::<C, S>))
            .with_state(Arc::clone(&self.state))
            .layer(self.layer());
        let mut open = Router::new().route("/v1/ping", ping);
        if self.state.options.metrics {
            open = open.route("/metrics", get(metrics_route::<C, S>));
        } else if self.state.upstream.is_none() {
            // Else the signed layer's fallback would answer 401, as if they were there.
            open = open.route("/metrics", get(metrics_off));
        }
        open.route("/v1/registration/pairing", handshake::route(Expect::RegistrationPairing))
            .route("/v1/registration/password", handshake::route(Expect::RegistrationPassword))
            .route("/v1/auth/pairing", handshake::route(Expect::AuthPairing))
            .route("/v1/auth/proof", handshake::route(Expect::AuthProof))
            .with_state(Arc::clone(&self.state))
            .merge(signed_only)
            .merge(ui::routes(
                &self.state.engine.config().host_key.fingerprint(),
                self.state.options.ui,
                self.state.options.ui_at_root && self.state.upstream.is_none(),
            ))
            .merge(either)
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        // As the TCP front does: records changed by other means (passwd,
        // imports) reach the unknown users' mock profile (finding M6).
        let engine = Arc::clone(&self.state.engine);
        let refresh = tokio::spawn(async move {
            let mut every = tokio::time::interval(crate::server::MOCK_PROFILE_REFRESH);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = engine.refresh_mock_profile().await {
                    tracing::warn!(error = %e, "refreshing the mock profile failed");
                }
            }
        });
        // Counted in `scram_dh_connections{front="http"}` while open.
        let listener = Counted(listener).tap_io(|_| {});
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        refresh.abort();
        served
    }
}

/// `GET /v1/ping`: unsigned without `Authorization`, else through the signed layers.
async fn ping(signed: Router, req: Request<Body>) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        match signed.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], r#"{"pong":true}"#)
            .into_response()
    }
}

/// `GET /metrics`: the registry, with this front's live HTTP sessions and, for a
/// session store other nodes share, its live handshake sessions. A store that
/// does not answer leaves its gauge out of this scrape (the failure is logged).
async fn metrics_route<C, S>(State(st): State<Arc<FrontState<C, S>>>) -> Response
where
    C: CredentialStore,
    S: SessionStore,
{
    let now = crate::server::now_ms();
    // Both may ask the same Redis: at once, so a hung one costs one timeout, not two.
    let (http_sessions, shared) = tokio::join!(st.sessions.live(now), st.engine.sessions().shared_live(now));
    let http_sessions = http_sessions.ok();
    let shared = match shared {
        Ok(n) => n,
        Err(error) => {
            tracing::warn!(%error, "metrics: the shared session store did not answer; scram_dh_handshake_sessions_shared left out");
            None
        }
    };
    let body = crate::metrics::render_with(http_sessions, shared);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE))], body).into_response()
}

/// `GET /metrics` with [`HttpOptions::metrics`] off (and no upstream): 404.
async fn metrics_off() -> Response {
    error_response(StatusCode::NOT_FOUND, ErrorCode::Unsupported, "metrics are not served here")
}

/// The HTTP listener, counting its open connections.
struct Counted(tokio::net::TcpListener);

impl axum::serve::Listener for Counted {
    type Io = CountedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedIo, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => return (CountedIo { io, _live: Live::connection(Front::Http) }, addr),
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset)
}

/// A connection of [`Counted`]: the stream and its unit of the gauge.
struct CountedIo {
    io: tokio::net::TcpStream,
    _live: Live,
}

impl tokio::io::AsyncRead for CountedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The SPEC error object with a status.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({"type": "error", "code": code.as_str(), "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The status an error code travels with.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::AuthenticationFailed | ErrorCode::UnknownSession => StatusCode::UNAUTHORIZED,
        ErrorCode::UsernameTaken | ErrorCode::NonceReused => StatusCode::CONFLICT,
        ErrorCode::Busy => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The status of a failed step: as [`status_of`] its code, but 503 for a store
/// failure (a credential or session store that is down or unreachable: the
/// client may retry, on this node or another).
pub(crate) fn failure_status(error: &scram_dh::Error) -> StatusCode {
    match error {
        scram_dh::Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        e => status_of(e.code()),
    }
}

/// `503 server_error` with `Retry-After: 1` and `message`: shared state (a
/// session or penalty store) could not be read or written, so the request is
/// refused rather than served unchecked (fail closed).
pub(crate) fn unavailable_response(message: &str) -> Response {
    let mut r = error_response(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServerError, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// `429 busy` with `Retry-After` when the refusal knows when; `503
/// server_error` for [`Refusal::Unavailable`].
pub(crate) fn refusal_response(refusal: &Refusal) -> Response {
    if *refusal == Refusal::Unavailable {
        return unavailable_response(&refusal.message());
    }
    let retry = match refusal {
        Refusal::RateLimited { retry_after }
        | Refusal::PeerPenalty { retry_after }
        | Refusal::AccountPenalty { retry_after } => {
            retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
        }
        _ => 1,
    };
    let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Busy, &refusal.message());
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
    r
}
