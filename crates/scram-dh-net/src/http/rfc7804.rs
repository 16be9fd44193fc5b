//! Standard SCRAM-SHA-256 over HTTP (RFC 7804, SPEC 7 "Standard SCRAM over
//! HTTP") on the protected routes, for clients that hold a password and no
//! scram-dh credential (npm `gel`, `requests-scram`, `scram-dh http --rfc7804`).
//!
//! | request `Authorization` | response |
//! |---|---|
//! | none (or another scheme) | what the signed layer answers; its 401s gain `WWW-Authenticate: SCRAM-SHA-256 realm="scram-dh"` first |
//! | `SCRAM-SHA-256 [realm=…,] data=<client-first>` | 401, `WWW-Authenticate: SCRAM-SHA-256 sid=<sid>, data=<server-first>` |
//! | `SCRAM-SHA-256 sid=<sid>, data=<client-final>` | the route's answer, served as a signed request is, plus `Authentication-Info: sid=<sid>, data=<server-final v=…>` |
//! | a failed exchange | 401, `WWW-Authenticate: SCRAM-SHA-256 realm="scram-dh", data=<e=…>`, the error object |
//!
//! `sid` and `data` are sent unquoted (gel does not unquote); `data` is accepted
//! quoted or not (erratum 6558), padded or not, with a trailing newline (the
//! RFC's examples). The exchange between the two round trips lives sealed in
//! the engine's session store (`sasl_park`/`sasl_resume`: single use, the
//! engine's TTL, per-peer and global caps). Every step goes through the
//! admission layer as an A1 without a channel does: penalties checked before
//! any work ([`crate::Admission::admit_login`]), failed proofs counted per peer and
//! per account and successes trusted ([`crate::Admission::learn_login`]), in the
//! shared penalty store when there is one. Only the
//! final request is served: `requests-scram` repeats the method and body on
//! each round trip.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scram_dh::sasl::server::ClientFirstRequest;
use scram_dh::sasl::{MECHANISM, SaslFailure, ServerChannel, ServerErrorValue};
use scram_dh::{CredentialStore, ErrorCode, SessionStore};
use tower::{Layer, Service};
use tracing::{debug, info, warn};

use super::signed::ScramDhUser;
use super::{FrontState, error_response, failure_status, refusal_response};
use crate::admission::{LoginOutcome, PeerKey};
use crate::http_auth::{
    AUTHENTICATION_INFO, MAX_RFC7804_HEADER, REALM, RFC7804_SCHEME, decode_data, encode_data,
    parse_credentials,
};
use crate::log::{Escaped, escaped};
use crate::metrics::{self, Front, HandshakeOutcome, Kind, Pending};
use crate::server::now_ms;

/// Put on a request by [`Rfc7804`] once the exchange verified: the signed layer
/// inside then serves it without a SCRAM-DH MAC. Only this module builds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rfc7804Verified(());

/// Put on a response by the signed layer when it refused a request as
/// unauthenticated: [`Rfc7804`] then adds its challenge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unauthenticated;

/// `SCRAM-SHA-256 realm="scram-dh"`: the challenge of a 401.
#[must_use]
pub fn challenge() -> String {
    format!("{RFC7804_SCHEME} realm=\"{REALM}\"")
}

/// The layer that runs RFC 7804 exchanges in front of a [`SignedLayer`]
/// (`HttpFront::rfc7804_layer`); apply it outside (after) `HttpFront::layer`.
///
/// [`SignedLayer`]: super::SignedLayer
pub struct Rfc7804Layer<C, S> {
    state: Arc<FrontState<C, S>>,
}

impl<C, S> Clone for Rfc7804Layer<C, S> {
    fn clone(&self) -> Self {
        Self { state: Arc::clone(&self.state) }
    }
}

impl<C, S> std::fmt::Debug for Rfc7804Layer<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc7804Layer").finish_non_exhaustive()
    }
}

impl<C, S> Rfc7804Layer<C, S> {
    pub(super) fn new(state: Arc<FrontState<C, S>>) -> Self {
        Self { state }
    }
}

impl<I, C, S> Layer<I> for Rfc7804Layer<C, S> {
    type Service = Rfc7804<I, C, S>;

    fn layer(&self, inner: I) -> Self::Service {
        Rfc7804 { inner, state: Arc::clone(&self.state) }
    }
}

/// The service [`Rfc7804Layer`] wraps around a (signed) router.
pub struct Rfc7804<I, C, S> {
    inner: I,
    state: Arc<FrontState<C, S>>,
}

impl<I: Clone, C, S> Clone for Rfc7804<I, C, S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), state: Arc::clone(&self.state) }
    }
}

impl<I, C, S> std::fmt::Debug for Rfc7804<I, C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc7804").finish_non_exhaustive()
    }
}

impl<I, C, S> Service<Request<Body>> for Rfc7804<I, C, S>
where
    I: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    I::Future: Send,
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let state = Arc::clone(&self.state);
        Box::pin(async move { Ok(handle(req, inner, &state).await) })
    }
}

/// Whether an `Authorization` value names the SCRAM-SHA-256 scheme.
fn is_rfc7804(value: &HeaderValue) -> bool {
    let scheme = value.as_bytes().split(|b| *b == b' ').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case(RFC7804_SCHEME.as_bytes())
}

async fn handle<I, C, S>(req: Request<Body>, mut inner: I, st: &FrontState<C, S>) -> Response
where
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    let Some(value) = req.headers().get(header::AUTHORIZATION).filter(|v| is_rfc7804(v)).cloned() else {
        let Ok(mut response) = inner.call(req).await;
        if response.extensions().get::<Unauthenticated>().is_some() {
            add_challenge_first(&mut response);
        }
        return response;
    };
    let received = Instant::now();
    let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ServerError, "no peer address");
    };
    let client = match super::proxy::client_ip(&st.options.trusted_proxies, addr.ip(), req.headers()) {
        Ok(ip) => ip,
        Err(why) => {
            return failure_response(ErrorCode::InvalidMessage, &format!("{RFC7804_SCHEME}: {why}"), None);
        }
    };
    let peer = st.admission.peer(client);
    let invalid = |why: &str| {
        debug!(%peer, reason = why, "rfc7804: malformed Authorization");
        failure_response(ErrorCode::InvalidMessage, &format!("{RFC7804_SCHEME}: {why}"), None)
    };
    if value.len() > MAX_RFC7804_HEADER {
        return invalid("Authorization header too long");
    }
    let Ok(text) = value.to_str() else { return invalid("Authorization header is not ASCII") };
    let credentials = match parse_credentials(text) {
        Ok(c) => c,
        Err(e) => return invalid(e.0),
    };
    let Some(data) = credentials.param("data") else { return invalid("no data parameter") };
    let message = match decode_data(data) {
        Ok(m) => m,
        Err(e) => return invalid(e.0),
    };
    match credentials.param("sid") {
        None => client_first(st, peer, message.as_bytes(), received).await,
        Some(sid) => {
            let sid = sid.to_owned();
            match client_final(st, peer, &sid, message.as_bytes()).await {
                Ok((server_final, user)) => serve(req, inner, &sid, &server_final, user).await,
                Err(response) => response,
            }
        }
    }
}

/// Round trip 1: client-first -> 401 with the sid and the server-first.
async fn client_first<C, S>(
    st: &FrontState<C, S>,
    peer: PeerKey,
    message: &[u8],
    received: Instant,
) -> Response
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    // Parsed first for the name the penalties need, before any store read.
    let request = match ClientFirstRequest::parse(MECHANISM, message, ServerChannel::None) {
        Ok(request) => request,
        Err(failure) => return sasl_failure(st, peer, &failure, Some(received.elapsed())).await,
    };
    if let Err(refusal) = st.admission.admit_login(peer, Some(request.username())).await {
        debug!(%peer, reason = %refusal.message(), "rfc7804 login refused");
        let took = Some(received.elapsed());
        metrics::record_handshake(Front::Rfc7804, Kind::Authentication, HandshakeOutcome::Refused, took);
        return refusal_response(&refusal);
    }
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let (server_first, pending) = match st.engine.sasl_continue(request, &mut rng).await {
        Ok(started) => started,
        Err(failure) => return sasl_failure(st, peer, &failure, Some(received.elapsed())).await,
    };
    let sid = match st.engine.sasl_park(pending, &peer.to_string(), now_ms(), &mut rng).await {
        Ok(sid) => sid,
        Err(failure) => return sasl_failure(st, peer, &failure, Some(received.elapsed())).await,
    };
    Pending::of(Kind::Authentication, &sid).start(received);
    let challenge = format!("{RFC7804_SCHEME} sid={sid}, data={}", encode_data(&server_first));
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Round trip 2: client-final -> the server-final and the user, or the refusal.
async fn client_final<C, S>(
    st: &FrontState<C, S>,
    peer: PeerKey,
    sid: &str,
    message: &[u8],
) -> Result<(String, ScramDhUser), Response>
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    let slot = Pending::of(Kind::Authentication, sid);
    let pending = match st.engine.sasl_resume(sid, now_ms()).await {
        Ok(pending) => pending,
        Err(f) => return Err(sasl_failure(st, peer, &f, slot.take()).await),
    };
    let account = pending.username().to_owned();
    match pending.receive_final(message) {
        Ok((server_final, auth)) => {
            st.admission.learn_login(peer, LoginOutcome::Authenticated(auth.username())).await;
            metrics::record_handshake(
                Front::Rfc7804,
                Kind::Authentication,
                HandshakeOutcome::Ok,
                slot.take(),
            );
            info!(%peer, username = %Escaped(auth.username()), front = "http", mechanism = MECHANISM, "authenticated");
            Ok((server_final, ScramDhUser { username: auth.username().to_owned() }))
        }
        Err(mut failure) => {
            failure.username.get_or_insert(account);
            Err(sasl_failure(st, peer, &failure, slot.take()).await)
        }
    }
}

/// Serves the verified request through the signed layer (which then skips its
/// MAC) and adds `Authentication-Info`.
async fn serve<I>(
    mut req: Request<Body>,
    mut inner: I,
    sid: &str,
    server_final: &str,
    user: ScramDhUser,
) -> Response
where
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    req.extensions_mut().insert(user);
    req.extensions_mut().insert(Rfc7804Verified(()));
    let Ok(mut response) = inner.call(req).await;
    let info = format!("sid={sid}, data={}", encode_data(server_final));
    if let Ok(v) = HeaderValue::from_str(&info) {
        response.headers_mut().insert(AUTHENTICATION_INFO, v);
    }
    response
}

/// Records a failed step for the penalties and the metrics (the exchange took
/// `took`, when known), logs it, and answers it.
async fn sasl_failure<C, S>(
    st: &FrontState<C, S>,
    peer: PeerKey,
    failure: &SaslFailure,
    took: Option<Duration>,
) -> Response {
    let counted = if failure.is_failed_proof() {
        HandshakeOutcome::Failed
    } else {
        HandshakeOutcome::of_code(code_of(failure))
    };
    metrics::record_handshake(Front::Rfc7804, Kind::Authentication, counted, took);
    let outcome = if failure.is_failed_proof() {
        LoginOutcome::FailedProof(failure.username.as_deref())
    } else {
        LoginOutcome::Other
    };
    st.admission.learn_login(peer, outcome).await;
    let account = failure.username.as_deref().map(Escaped);
    let code = code_of(failure);
    match code {
        // Counted and summarised by the admission layer.
        ErrorCode::AuthenticationFailed => debug!(%peer, account = ?account, "rfc7804 authentication failed"),
        ErrorCode::ServerError => {
            warn!(%peer, account = ?account, error = %escaped(&failure.error), "rfc7804 exchange failed");
        }
        code => debug!(%peer, %code, error = %escaped(&failure.error), "rfc7804 exchange refused"),
    }
    // Only the e= value reaches the peer: the error text may say more (a record
    // with random labels) than an unknown user's answer would.
    let message = match failure.value {
        ServerErrorValue::InvalidProof => "authentication failed".to_owned(),
        v => format!("{RFC7804_SCHEME}: e={}", v.as_str()),
    };
    match code {
        ErrorCode::Busy => {
            let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, code, &message);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        ErrorCode::ServerError => error_response(failure_status(&failure.error), code, &message),
        code => failure_response(code, &message, Some(&failure.server_final())),
    }
}

/// The code the peer sees, from the `e=` value alone (never from the error,
/// which may tell a random-labels record from an unknown user).
fn code_of(failure: &SaslFailure) -> ErrorCode {
    use ServerErrorValue as V;
    match failure.value {
        V::InvalidProof | V::UnknownUser | V::ChannelBindingsDontMatch => ErrorCode::AuthenticationFailed,
        V::InvalidEncoding | V::InvalidUsernameEncoding => ErrorCode::InvalidMessage,
        V::ExtensionsNotSupported
        | V::ServerDoesSupportChannelBinding
        | V::ChannelBindingNotSupported
        | V::UnsupportedChannelBindingType => ErrorCode::Unsupported,
        V::NoResources => ErrorCode::Busy,
        // An expired or consumed sid (unknown_session), a nonce from another
        // exchange (nonce_mismatch), or a store fault (server_error).
        V::OtherError => match failure.error.code() {
            code @ (ErrorCode::UnknownSession | ErrorCode::NonceMismatch | ErrorCode::Busy) => code,
            ErrorCode::InvalidMessage => ErrorCode::InvalidMessage,
            _ => ErrorCode::ServerError,
        },
    }
}

/// 401 with a fresh challenge (carrying `e=` when there is one, as flask-scram
/// does, so requests-scram fails cleanly) and the error object.
fn failure_response(code: ErrorCode, message: &str, server_final: Option<&str>) -> Response {
    let mut r = error_response(StatusCode::UNAUTHORIZED, code, message);
    let value = match server_final {
        Some(e) => format!("{}, data={}", challenge(), encode_data(e)),
        None => challenge(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Puts `SCRAM-SHA-256 realm="scram-dh"` before the challenges already there
/// (clients that read only the first one, or join them, see it first).
fn add_challenge_first(response: &mut Response) {
    let headers = response.headers_mut();
    let others: Vec<HeaderValue> = headers.get_all(header::WWW_AUTHENTICATE).iter().cloned().collect();
    headers.remove(header::WWW_AUTHENTICATE);
    if let Ok(v) = HeaderValue::from_str(&challenge()) {
        headers.append(header::WWW_AUTHENTICATE, v);
    }
    for v in others {
        headers.append(header::WWW_AUTHENTICATE, v);
    }
}
