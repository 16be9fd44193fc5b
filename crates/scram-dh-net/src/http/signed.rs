//! Signed requests (SPEC 7): the layer that verifies `Authorization: SCRAM-DH
//! sid=…, seq=…, mac=…` (MAC first, then the anti-replay window, so a forged
//! request cannot burn a seq), buffers the body under a limit, and MACs the
//! response; the [`ScramDhUser`] extractor; `whoami`, `logout`, `passwd`. The
//! sessions may live in a store other nodes share ([`super::sessions`]); when it
//! fails, the request is refused with 503 `server_error`, never served.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scram_dh::{CredentialStore, ErrorCode, SessionStore};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::rfc7804::{Rfc7804Verified, Unauthenticated};
use super::sessions::{SessionRefusal, Sessions, Unavailable};
use super::{FrontState, USER_HEADER, error_response, unavailable_response};
use crate::http_auth::{Authorization, RESPONSE_MAC_HEADER, encode_mac, request_mac, response_mac};
use crate::metrics::{SignedResult, record_signed};
use crate::passwd::{PasswdError, PasswdRequest, replace_credential};
use crate::server::now_ms;

/// The challenge of a 401 for a missing or refused SCRAM-DH signature.
pub const SCRAM_DH_CHALLENGE: &str = "SCRAM-DH realm=\"scram-dh\"";

/// The authenticated user of a signed request, for application handlers under
/// [`HttpFront::layer`](super::HttpFront::layer) (which did the verifying): a
/// handler taking `ScramDhUser` answers only verified requests; without the
/// layer every request is refused with 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramDhUser {
    /// The SASLprep-normalised username.
    pub username: String,
}

/// The session a verified request came in (for `logout`).
#[derive(Clone)]
pub(super) struct SessionId(String);

impl<St: Send + Sync> FromRequestParts<St> for ScramDhUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::AuthenticationFailed,
                "a signed request is required",
            )
        })
    }
}

/// Verifies signed requests and MACs their responses; see the module docs.
#[derive(Clone)]
pub struct SignedLayer {
    sessions: Arc<Sessions>,
    max_body: usize,
}

impl std::fmt::Debug for SignedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedLayer").field("max_body", &self.max_body).finish_non_exhaustive()
    }
}

impl SignedLayer {
    pub(super) fn new(sessions: Arc<Sessions>, max_body: usize) -> Self {
        Self { sessions, max_body }
    }
}

impl<I> Layer<I> for SignedLayer {
    type Service = Signed<I>;

    fn layer(&self, inner: I) -> Signed<I> {
        Signed { inner, sessions: Arc::clone(&self.sessions), max_body: self.max_body }
    }
}

/// The service [`SignedLayer`] wraps around a router.
#[derive(Clone)]
pub struct Signed<I> {
    inner: I,
    sessions: Arc<Sessions>,
    max_body: usize,
}

impl<I> std::fmt::Debug for Signed<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed").finish_non_exhaustive()
    }
}

impl<I> Service<Request<Body>> for Signed<I>
where
    I: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    I::Future: Send,
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
        let sessions = Arc::clone(&self.sessions);
        let max_body = self.max_body;
        Box::pin(async move { Ok(verify_then_call(req, inner, &sessions, max_body).await) })
    }
}

/// A refusal of an unauthenticated request: 401 with the SCRAM-DH challenge
/// (RFC 9110 section 11.6.1), marked for the RFC 7804 layer to add its own.
fn unauthorized(code: ErrorCode, message: &str) -> Response {
    let mut r = error_response(StatusCode::UNAUTHORIZED, code, message);
    r.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static(SCRAM_DH_CHALLENGE));
    r.extensions_mut().insert(Unauthenticated);
    r
}

async fn verify_then_call<I>(
    mut req: Request<Body>,
    mut inner: I,
    sessions: &Sessions,
    max_body: usize,
) -> Response
where
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    // Nobody but this layer names the user, signed request or not.
    req.headers_mut().remove(USER_HEADER);
    if req.extensions().get::<Rfc7804Verified>().is_some() {
        // The RFC 7804 layer outside verified this request (and put its
        // ScramDhUser in): no session, no MAC, the same body limit.
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, max_body).await else {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidMessage,
                "request body too large",
            );
        };
        let Ok(response) = inner.call(Request::from_parts(parts, Body::from(bytes))).await;
        return response;
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        record_signed(SignedResult::Missing);
        return unauthorized(
            ErrorCode::AuthenticationFailed,
            "a signed request is required (Authorization: SCRAM-DH)",
        );
    };
    let auth = match value.to_str().map(Authorization::parse) {
        Ok(Ok(auth)) => auth,
        Ok(Err(e)) => {
            record_signed(SignedResult::Malformed);
            return unauthorized(ErrorCode::AuthenticationFailed, &e.to_string());
        }
        Err(_) => {
            record_signed(SignedResult::Malformed);
            return unauthorized(ErrorCode::AuthenticationFailed, "malformed Authorization header");
        }
    };
    let live = match sessions.get(&auth.sid, now_ms()).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            record_signed(SignedResult::UnknownSession);
            return unauthorized(ErrorCode::UnknownSession, "unknown or expired session");
        }
        Err(Unavailable(message)) => {
            record_signed(SignedResult::Unavailable);
            return unavailable_response(message);
        }
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, max_body).await else {
        record_signed(SignedResult::TooLarge);
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidMessage,
            "request body too large",
        );
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let expected = request_mac(&live.keys.c2s, parts.method.as_str(), path_and_query, auth.seq, &bytes);
    if !bool::from(expected.ct_eq(&auth.mac)) {
        record_signed(SignedResult::BadMac);
        return unauthorized(ErrorCode::AuthenticationFailed, "bad request MAC");
    }
    match sessions.accept(&auth.sid, auth.seq, live.window, now_ms()).await {
        Ok(()) => record_signed(SignedResult::Ok),
        Err(SessionRefusal::Unknown) => {
            record_signed(SignedResult::UnknownSession);
            return unauthorized(ErrorCode::UnknownSession, "unknown or expired session");
        }
        Err(SessionRefusal::Replay) => {
            record_signed(SignedResult::Replay);
            return unauthorized(ErrorCode::AuthenticationFailed, "replayed or too old seq");
        }
        Err(SessionRefusal::Unavailable(Unavailable(message))) => {
            record_signed(SignedResult::Unavailable);
            return unavailable_response(message);
        }
    }
    parts.extensions.insert(ScramDhUser { username: live.username.clone() });
    parts.extensions.insert(SessionId(auth.sid.clone()));
    let Ok(response) = inner.call(Request::from_parts(parts, Body::from(bytes))).await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return error_response(StatusCode::BAD_GATEWAY, ErrorCode::ServerError, "response body failed");
    };
    let mac = response_mac(&live.keys.s2c, parts.status.as_u16(), auth.seq, &bytes);
    if let Ok(v) = HeaderValue::from_str(&encode_mac(&mac)) {
        parts.headers.insert(RESPONSE_MAC_HEADER, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// `GET /v1/whoami`.
pub(super) async fn whoami(user: ScramDhUser) -> Response {
    Json(serde_json::json!({"username": user.username})).into_response()
}

/// `GET /v1/ping` with the signature headers (or an RFC 7804 exchange): the
/// verified request's user, in a MAC'd response.
pub(super) async fn signed_ping(user: ScramDhUser) -> Response {
    Json(serde_json::json!({"pong": true, "user": user.username})).into_response()
}

/// `POST /v1/logout`: later requests in the session get 401, on every node
/// sharing the session store (503 when the store cannot end it).
pub(super) async fn logout<C, S>(
    State(st): State<Arc<FrontState<C, S>>>,
    user: ScramDhUser,
    axum::Extension(SessionId(sid)): axum::Extension<SessionId>,
) -> Response {
    if let Err(Unavailable(message)) = st.sessions.end(&sid).await {
        return unavailable_response(message);
    }
    Json(serde_json::json!({"username": user.username, "result": "logged out"})).into_response()
}

/// `POST /v1/passwd`: the same operation as the TCP service's `passwd`.
pub(super) async fn passwd<C, S>(
    State(st): State<Arc<FrontState<C, S>>>,
    user: ScramDhUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    if !super::handshake::is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidMessage,
            "passwd takes application/json",
        );
    }
    let Ok(request) = serde_json::from_slice::<PasswdRequest>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            "body must be {\"salt\",\"ic\",\"stored_key\",\"server_key\",\"labels\"}",
        );
    };
    match replace_credential(st.engine.credentials(), &user.username, &request, &st.passwd_bounds).await {
        Ok(()) => Json(serde_json::json!({"username": user.username, "result": "credential replaced"}))
            .into_response(),
        Err(e @ PasswdError::Invalid(_)) => {
            error_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidMessage, &e.to_string())
        }
        Err(e @ PasswdError::NoSuchUser) => {
            error_response(StatusCode::UNAUTHORIZED, ErrorCode::AuthenticationFailed, &e.to_string())
        }
        // The store failed (logged by replace_credential): retryable.
        Err(e @ PasswdError::Store) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServerError, &e.to_string())
        }
    }
}
