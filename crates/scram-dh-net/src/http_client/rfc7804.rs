//! The client of standard SCRAM-SHA-256 over HTTP (RFC 7804, SPEC 7): one
//! request authenticated with a password in two round trips, the server's
//! signature in `Authentication-Info` checked before the answer is trusted.

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use scram_dh::sasl::ClientChannel;
use scram_dh::sasl::client::SaslClient;
use scram_dh::{ClientConfig, ErrorCode, Password};

use super::{HttpClient, HttpError};
use crate::error::NetError;
use crate::http_auth::{
    AUTHENTICATION_INFO, Challenge, RFC7804_SCHEME, decode_data, encode_data, parse_auth_info,
    parse_challenges,
};

/// The answer to an RFC 7804 request whose `Authentication-Info` verified: the
/// server proved it holds the user's record, so the answer is its own.
#[derive(Debug, Clone)]
pub struct Rfc7804Response {
    /// The HTTP status of the final round trip.
    pub status: u16,
    /// Its headers (`Authentication-Info` included).
    pub headers: HeaderMap,
    /// Its body (for `GET /v1/whoami` or `/v1/auth/token`: `{"username": ...}`).
    pub body: Vec<u8>,
}

/// The SCRAM-SHA-256 challenges among a response's `WWW-Authenticate` fields
/// (fields that do not parse are another scheme's business and are skipped).
fn scram_challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse_challenges(v).ok())
        .flatten()
        .filter(|c| c.is(RFC7804_SCHEME))
        .collect()
}

/// A server-error-value (`e=…`) as the error the core gives for one.
fn refused(server_error: &str) -> HttpError {
    let mut value: String = server_error.strip_prefix("e=").unwrap_or(server_error).to_owned();
    value.truncate(value.char_indices().nth(256).map_or(value.len(), |(i, _)| i));
    NetError::Protocol(scram_dh::Error::ScramRefused { value }).into()
}

/// A refusal without SCRAM data: the error object if there is one.
fn status_refusal(status: u16, body: &[u8]) -> HttpError {
    if let Some(e) = super::error_object(status, body) {
        return e;
    }
    if status == 401 {
        return NetError::Protocol(scram_dh::Error::Peer {
            code: ErrorCode::AuthenticationFailed,
            message: format!("status 401 without a {RFC7804_SCHEME} exchange"),
        })
        .into();
    }
    HttpError::Invalid(format!("status {status} without a {RFC7804_SCHEME} exchange"))
}

/// A session id as a server may send one, and as it can go back in a header.
fn usable_sid(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= 128
        && sid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl HttpClient {
    /// Sends `method path_and_query` with `body`, authenticated as `username`
    /// with `password` by RFC 7804 SCRAM-SHA-256: the first request carries the
    /// client-first-message, the server answers 401 with a `sid` and its
    /// server-first-message, the same request goes again with the
    /// client-final-message, and the answer must carry `Authentication-Info`
    /// with the server's signature, which is checked. A server that answers the
    /// first request with a bare challenge (`realm` only) gets the
    /// client-first-message once more with that realm.
    ///
    /// Works against any RFC 7804 server on the user's password; against
    /// scram-dh on `/v1/whoami`, `/v1/auth/token` and gateway routes, for
    /// records with RFC labels (a password, not random keys).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), scram_dh_net::http_client::HttpError> {
    /// use std::time::Duration;
    /// use scram_dh::{ClientConfig, Password};
    /// use scram_dh_net::http_client::HttpClient;
    ///
    /// let http = HttpClient::new("http://127.0.0.1:8080", Duration::from_secs(10))?;
    /// let r = http
    ///     .rfc7804_request("GET", "/v1/whoami", b"", "alice", &Password::new("pencil"), &ClientConfig::default())
    ///     .await?;
    /// assert_eq!(r.status, 200);
    /// println!("{}", String::from_utf8_lossy(&r.body));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`HttpError::BadAuthenticationInfo`] for a 2xx (or any answer to the
    ///   final round trip) without a valid `Authentication-Info`: it does not come
    ///   from a server that knows the record;
    /// - [`HttpError::Net`] with [`scram_dh::Error::ScramRefused`] when the server
    ///   answered `e=…` (`invalid-proof` for a wrong password or an unknown user),
    ///   with [`scram_dh::Error::Peer`] for a refusal without SCRAM data (`busy`, …),
    ///   or with the core's error for a server-first-message it refuses (an
    ///   iteration count above `config.max_iterations`, a nonce not extending its own);
    /// - [`HttpError::Invalid`] for a bad path or method, or an unusable `sid`;
    /// - transport errors.
    ///
    /// [`is_auth_failure`](HttpError::is_auth_failure) is true for the first two
    /// kinds when they mean the credential or the server's proof failed.
    pub async fn rfc7804_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        username: &str,
        password: &Password,
        config: &ClientConfig,
    ) -> Result<Rfc7804Response, HttpError> {
        if !path_and_query.starts_with('/') {
            return Err(HttpError::Invalid(format!("path must start with '/': {path_and_query:?}")));
        }
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpError::Invalid(format!("bad method {method:?}")))?;
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let client = SaslClient::new(username, password, ClientChannel::Unsupported, config, &mut rng)
            .map_err(NetError::from)?;
        let first_data = encode_data(&client.client_first());
        let mut realm: Option<String> = None;
        let (sid, server_first) = loop {
            let authorization = match &realm {
                Some(r) => format!("{RFC7804_SCHEME} realm={}, data={first_data}", quoted(r)),
                None => format!("{RFC7804_SCHEME} data={first_data}"),
            };
            let (status, headers, rbody) = self
                .send(method.clone(), path_and_query, &[("authorization", authorization)], body.to_vec())
                .await?;
            if status != 401 {
                // Served without the exchange: nothing proves who answered.
                if (200..300).contains(&status) {
                    return Err(HttpError::BadAuthenticationInfo { status });
                }
                return Err(status_refusal(status, &rbody));
            }
            let challenges = scram_challenges(&headers);
            if let Some(c) = challenges.iter().find(|c| c.param("sid").is_some() && c.param("data").is_some())
            {
                let (sid, data) = (c.param("sid").unwrap_or_default(), c.param("data").unwrap_or_default());
                if !usable_sid(sid) {
                    return Err(HttpError::Invalid("the server's sid is not usable".into()));
                }
                let server_first = decode_data(data).map_err(|e| HttpError::Invalid(e.to_string()))?;
                break (sid.to_owned(), server_first);
            }
            if let Some(data) = challenges.iter().find_map(|c| c.param("data")) {
                let text = decode_data(data).map_err(|e| HttpError::Invalid(e.to_string()))?;
                return Err(refused(&text));
            }
            match challenges.first() {
                // A bare challenge: the server wants the exchange to start over
                // (once) within its realm.
                Some(c) if realm.is_none() => realm = Some(c.param("realm").unwrap_or_default().to_owned()),
                _ => return Err(status_refusal(status, &rbody)),
            }
        };
        let waiting = client.receive_server_first(server_first.as_bytes()).map_err(NetError::from)?;
        let authorization =
            format!("{RFC7804_SCHEME} sid={sid}, data={}", encode_data(&waiting.client_final()));
        let (status, headers, rbody) =
            self.send(method, path_and_query, &[("authorization", authorization)], body.to_vec()).await?;
        let Some(info) = headers.get(AUTHENTICATION_INFO) else {
            if status == 401
                && let Some(data) = scram_challenges(&headers).iter().find_map(|c| c.param("data"))
            {
                let text = decode_data(data).map_err(|e| HttpError::Invalid(e.to_string()))?;
                return Err(refused(&text));
            }
            if (200..300).contains(&status) {
                return Err(HttpError::BadAuthenticationInfo { status });
            }
            return Err(status_refusal(status, &rbody));
        };
        let bad = || HttpError::BadAuthenticationInfo { status };
        let params = info.to_str().ok().and_then(|v| parse_auth_info(v).ok()).ok_or_else(bad)?;
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if param("sid") != Some(sid.as_str()) {
            return Err(bad());
        }
        let server_final = param("data").and_then(|d| decode_data(d).ok()).ok_or_else(bad)?;
        match waiting.receive_server_final(server_final.as_bytes()) {
            Ok(()) => Ok(Rfc7804Response { status, headers, body: rbody }),
            Err(e @ scram_dh::Error::ScramRefused { .. }) => Err(NetError::Protocol(e).into()),
            Err(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\"");
        assert!(usable_sid(&"ab".repeat(32)));
        assert!(!usable_sid("a b") && !usable_sid("") && !usable_sid(&"a".repeat(129)));
        assert!(matches!(
            refused("e=invalid-proof"),
            HttpError::Net(NetError::Protocol(scram_dh::Error::ScramRefused { ref value })) if value == "invalid-proof"
        ));
        assert!(refused("e=invalid-proof").is_auth_failure());
        assert!(!refused("e=no-resources").is_auth_failure());
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, "SCRAM-DH realm=\"scram-dh\"".parse().unwrap());
        h.append(WWW_AUTHENTICATE, "Basic realm=\"x\", scram-sha-256 sid=ab, data=biws".parse().unwrap());
        let c = scram_challenges(&h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("sid"), Some("ab"));
        assert!(status_refusal(401, b"").is_auth_failure());
        assert!(!status_refusal(503, b"").is_auth_failure());
    }
}
