//! The four handshake routes: one JSON message in, one out, through the same
//! admission-checked engine step as the TCP front. A handshake is counted
//! ([`crate::metrics`]) when it ends: refused or failed at its pairing, or at
//! its final step, timed from its pairing request when that is remembered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::{CredentialStore, ErrorCode, Outcome, SessionStore};
use tracing::{debug, info, warn};

use super::sessions::Unavailable;
use super::{
    FrontState, MAX_HANDSHAKE_BODY, error_response, failure_status, refusal_response, status_of,
    unavailable_response,
};
use crate::handshake::admitted_step;
use crate::log::{Escaped, escaped};
use crate::metrics::{self, Front, HandshakeOutcome, Kind, Pending, RefusalReason};
use crate::server::now_ms;

type St<C, S> = State<Arc<FrontState<C, S>>>;

/// Which message a route takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    RegistrationPairing,
    RegistrationPassword,
    AuthPairing,
    AuthProof,
}

/// The `POST` route for one handshake step.
pub(super) fn route<C, S>(expect: Expect) -> MethodRouter<Arc<FrontState<C, S>>>
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    post(move |st: St<C, S>, peer: ConnectInfo<SocketAddr>, headers: HeaderMap, body: Body| {
        step(st, peer, headers, body, expect)
    })
}

/// Whether the request says `Content-Type: application/json` (parameters allowed).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn json(status: StatusCode, msg: &ServerMessage) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], msg.to_json()).into_response()
}

async fn step<C, S>(
    State(st): St<C, S>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
    expect: Expect,
) -> Response
where
    C: CredentialStore + Send + Sync + 'static,
    S: SessionStore + Send + Sync + 'static,
{
    let received = Instant::now();
    if !is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidMessage,
            "handshake bodies are application/json",
        );
    }
    let Ok(bytes) = to_bytes(body, MAX_HANDSHAKE_BODY).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidMessage,
            "handshake body longer than 16 KiB",
        );
    };
    let invalid = |m: &str| error_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidMessage, m);
    let Ok(text) = std::str::from_utf8(&bytes) else { return invalid("body is not UTF-8") };
    let msg = match ClientMessage::from_json(text) {
        Ok(msg) => msg,
        Err(e) => return error_response(status_of(e.code()), e.code(), &e.to_string()),
    };
    let fits = match (&msg, expect) {
        (ClientMessage::RegistrationPairing(_), Expect::RegistrationPairing)
        | (ClientMessage::RegistrationSendPassword(_), Expect::RegistrationPassword)
        | (ClientMessage::AuthClientProofGeneration(_), Expect::AuthProof) => true,
        // SPEC 7: over HTTP the session keys come from the channel derivation.
        (ClientMessage::AuthPairing(a), Expect::AuthPairing) => a.group.is_some() && a.public_key.is_some(),
        _ => false,
    };
    if !fits {
        return invalid(match expect {
            Expect::AuthPairing => "auth_pairing over HTTP needs group and public_key",
            _ => "not the message this route takes",
        });
    }
    let client = match super::proxy::client_ip(&st.options.trusted_proxies, addr.ip(), &headers) {
        Ok(ip) => ip,
        Err(why) => return invalid(why),
    };
    let peer = st.admission.peer(client);
    let peer_key = peer.to_string();
    let kind = Kind::of(&msg);
    let pairing = matches!(expect, Expect::RegistrationPairing | Expect::AuthPairing);
    let pending = Pending::of(kind, metrics::client_nonce(&msg));
    // A handshake ends here: timed from its pairing request (this one, or the
    // one remembered in its slot).
    let end = |outcome| {
        let took = if pairing { Some(received.elapsed()) } else { pending.take() };
        metrics::record_handshake(Front::Http, kind, outcome, took);
    };
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let outcome = match admitted_step(&st.engine, &st.admission, peer, msg, &peer_key, &mut rng).await {
        Ok(outcome) => outcome,
        Err(refusal) => {
            debug!(%peer, reason = %refusal.message(), "http handshake refused");
            end(HandshakeOutcome::Refused);
            return refusal_response(&refusal);
        }
    };
    match outcome {
        Outcome::Continue(reply) => {
            pending.start(received);
            json(StatusCode::OK, &reply)
        }
        Outcome::Registered { reply, username } => {
            end(HandshakeOutcome::Ok);
            info!(%peer, username = %Escaped(&username), front = "http", "registered");
            json(StatusCode::OK, &reply)
        }
        Outcome::Failed { reply, error, username } => {
            end(HandshakeOutcome::of_error(&error));
            let account = username.as_deref().map(Escaped);
            match error.code() {
                ErrorCode::AuthenticationFailed => debug!(%peer, account = ?account, "authentication failed"),
                ErrorCode::ServerError => {
                    warn!(%peer, account = ?account, error = %escaped(&error), "handshake failed");
                }
                code => debug!(%peer, %code, error = %escaped(&error), "handshake refused"),
            }
            json(failure_status(&error), &reply)
        }
        Outcome::Authenticated { reply, auth } => {
            let (username, keys) = auth.into_parts();
            let (Some(keys), ServerMessage::AuthProof(mut proof)) = (keys, reply) else {
                end(HandshakeOutcome::Error);
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::ServerError,
                    "no session keys",
                );
            };
            let created = st.sessions.create(&username, &keys, now_ms()).await;
            drop(keys);
            let sid = match created {
                Ok(Some(sid)) => sid,
                Ok(None) => {
                    end(HandshakeOutcome::Refused);
                    metrics::record_refusal(RefusalReason::HttpSessions);
                    info!(%peer, username = %Escaped(&username), "http session refused: cap");
                    let mut r = error_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        ErrorCode::Busy,
                        "server busy: HTTP session limit reached; try again later",
                    );
                    r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
                    return r;
                }
                Err(Unavailable(message)) => {
                    end(HandshakeOutcome::Error);
                    return unavailable_response(message);
                }
            };
            end(HandshakeOutcome::Ok);
            info!(%peer, username = %Escaped(&username), front = "http", "authenticated");
            proof.session_id = Some(sid);
            json(StatusCode::OK, &ServerMessage::AuthProof(proof))
        }
    }
}
