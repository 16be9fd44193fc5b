//! The gateway: every signed request outside `/v1/` goes to the upstream with
//! `X-Scram-DH-User: <username>` (the layer removed any incoming one), without
//! hop-by-hop headers or `Authorization`, under a timeout, and the upstream's
//! response (at most `max_body` bytes) comes back MAC'd by the layer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use scram_dh::ErrorCode;
use tracing::warn;

use super::signed::ScramDhUser;
use super::{FrontState, USER_HEADER, error_response};
use crate::log::escaped;

/// RFC 9110 section 7.6.1's hop-by-hop fields, plus what the gateway sets itself.
const STRIPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    USER_HEADER,
];

pub(crate) struct Upstream {
    base: String,
    client: reqwest::Client,
    max_body: usize,
}

impl Upstream {
    pub(crate) fn new(base: &str, options: &super::HttpOptions) -> Self {
        let client = reqwest::Client::builder()
            .timeout(options.upstream_timeout)
            .connect_timeout(options.upstream_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { base: base.trim_end_matches('/').to_owned(), client, max_body: options.max_body }
    }
}

/// Drops hop-by-hop headers, including those a `Connection` header names.
fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in STRIPPED {
        headers.remove(*name);
    }
}

pub(super) async fn forward<C, S>(
    State(st): State<Arc<FrontState<C, S>>>,
    user: ScramDhUser,
    req: Request<Body>,
) -> Response {
    let Some(up) = &st.upstream else {
        return error_response(StatusCode::NOT_FOUND, ErrorCode::InvalidMessage, "no such route");
    };
    let (parts, body) = req.into_parts();
    if parts.uri.path().starts_with("/v1/") || parts.uri.path() == "/v1" {
        return error_response(StatusCode::NOT_FOUND, ErrorCode::InvalidMessage, "no such route");
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(bytes) = to_bytes(body, up.max_body).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidMessage,
            "request body too large",
        );
    };
    let mut headers = parts.headers;
    strip(&mut headers);
    let Ok(user_value) = HeaderValue::from_str(&user.username) else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "username not a header value",
        );
    };
    headers.insert(USER_HEADER, user_value);
    let sent = up
        .client
        .request(parts.method, format!("{}{path_and_query}", up.base))
        .headers(headers)
        .body(bytes)
        .send()
        .await;
    let mut reply = match sent {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %escaped(&e), "upstream request failed");
            return error_response(StatusCode::BAD_GATEWAY, ErrorCode::ServerError, "upstream unavailable");
        }
    };
    let status = reply.status();
    let mut headers = std::mem::take(reply.headers_mut());
    strip(&mut headers);
    let mut body = Vec::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > up.max_body {
                    return error_response(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::ServerError,
                        "upstream response too large",
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                warn!(error = %escaped(&e), "upstream response failed");
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ServerError,
                    "upstream response failed",
                );
            }
        }
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
