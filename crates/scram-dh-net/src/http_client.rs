//! The client side of the HTTP front (SPEC 7, "After authentication"): the four
//! handshake steps as JSON POSTs, then signed requests whose responses are checked.
//!
//! - [`register_http`]: in-band registration (R1..R4) with host key pinning or
//!   known-hosts trust on first use, exactly as the TCP [`register_with`](crate::register_with);
//! - [`login_http`]: A1..A4 (always with channel keys: over HTTP they are the
//!   session's request and response MAC keys) into an [`HttpSession`];
//! - [`HttpSession::request`]: signs with [`Authorization::sign`], sends, and refuses a
//!   response whose `Scram-DH-Mac` is missing or wrong ([`HttpError::BadResponseMac`]);
//! - [`HttpClient::rfc7804_request`]: one request authenticated with a password by
//!   standard SCRAM-SHA-256 over HTTP (RFC 7804), refused unless its
//!   `Authentication-Info` proves the server ([`HttpError::BadAuthenticationInfo`]).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use scram_dh::auth::client::AuthClient;
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::secret::{SessionKeys, SymmetricKey};
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, ErrorCode, Group, Password};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::client::{Exchange, RegisterOptions, RegistrationStep, register_flow};
use crate::error::NetError;
use crate::http_auth::{Authorization, RESPONSE_MAC_HEADER, mac_matches, response_mac};

mod rfc7804;
pub use rfc7804::Rfc7804Response;

/// Handshake routes (SPEC 7).
pub const REGISTRATION_PAIRING: &str = "/v1/registration/pairing";
/// R3 -> R4.
pub const REGISTRATION_PASSWORD: &str = "/v1/registration/password";
/// A1 -> A2.
pub const AUTH_PAIRING: &str = "/v1/auth/pairing";
/// A3 -> A4.
pub const AUTH_PROOF: &str = "/v1/auth/proof";
/// `GET`, unsigned ([`HttpClient::ping`]) or signed ([`HttpSession::request`]).
pub const PING: &str = "/v1/ping";

/// The default time for one whole HTTP exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body the client reads (handshake replies are < 16 KiB).
pub const MAX_RESPONSE: usize = 1 << 20;

/// What can go wrong over HTTP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The handshake failed (the server's error object becomes
    /// [`scram_dh::Error::Peer`]), or a local file (known hosts) failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The HTTP exchange itself failed: connection refused, reset, timed out.
    #[error("HTTP: {0}")]
    Transport(#[from] reqwest::Error),
    /// A response to a signed request came without a valid `Scram-DH-Mac`: it was
    /// altered on the way or does not come from the server holding the session.
    #[error(
        "the response's Scram-DH-Mac is missing or wrong (status {status}): it may have been tampered with"
    )]
    BadResponseMac {
        /// The status the response claimed.
        status: u16,
    },
    /// An RFC 7804 answer without a valid `Authentication-Info` (missing, another
    /// sid, or a server signature that does not verify), or a 2xx that skipped the
    /// exchange: it does not come from a server that knows the user's record.
    #[error(
        "the response's Authentication-Info is missing or wrong (status {status}): the server did not prove \
         it knows the credential"
    )]
    BadAuthenticationInfo {
        /// The status the response claimed.
        status: u16,
    },
    /// Something not HTTP-shaped: a bad URL, an oversized or non-UTF-8 body.
    #[error("{0}")]
    Invalid(String),
}

impl HttpError {
    /// Whether this is an authentication failure (wrong credential, server that
    /// could not prove itself, host key refused, response MAC wrong).
    #[must_use]
    pub fn is_auth_failure(&self) -> bool {
        match self {
            Self::Net(n) => n.is_auth_failure(),
            Self::BadResponseMac { .. } | Self::BadAuthenticationInfo { .. } => true,
            _ => false,
        }
    }

    /// The code of the server's refusal, when the server answered with its error
    /// object (`busy` for the admission layer's limits, `unknown_session`, …); `None` for every
    /// other failure.
    ///
    /// ```
    /// use scram_dh::{Error, ErrorCode};
    /// use scram_dh_net::NetError;
    /// use scram_dh_net::http_client::HttpError;
    ///
    /// let refused = HttpError::Net(NetError::Protocol(Error::Peer {
    ///     code: ErrorCode::Busy,
    ///     message: "rate limited".into(),
    /// }));
    /// assert_eq!(refused.refusal_code(), Some(ErrorCode::Busy));
    /// assert_eq!(HttpError::Invalid("status 502".into()).refusal_code(), None);
    /// ```
    #[must_use]
    pub fn refusal_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Net(NetError::Protocol(scram_dh::Error::Peer { code, .. })) => Some(*code),
            _ => None,
        }
    }

    /// Whether the connection failed.
    #[must_use]
    pub fn is_connection_failure(&self) -> bool {
        match self {
            Self::Net(n) => n.is_connection_failure(),
            Self::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            _ => false,
        }
    }
}

/// An HTTP client for one server: base URL, timeouts, no redirects, no proxies.
#[derive(Debug, Clone)]
pub struct HttpClient {
    base_url: String,
    http: reqwest::Client,
}

impl HttpClient {
    /// A client for `base_url` (`http://host:port`, a trailing `/` ignored); every
    /// exchange, connection included, must finish within `timeout`.
    ///
    /// # Errors
    /// [`HttpError::Invalid`] for a URL that is not `http://…`; [`HttpError::Transport`]
    /// when the client cannot be built.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, HttpError> {
        let base_url = base_url.trim_end_matches('/');
        if !base_url.starts_with("http://") || base_url.len() <= "http://".len() {
            return Err(HttpError::Invalid(format!("not an http:// URL: {base_url:?}")));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would re-send a signed body elsewhere; a proxy from the
            // environment would see every request: neither is wanted.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self { base_url: base_url.to_owned(), http })
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The name a server is recorded under in known-hosts: the URL without its
    /// scheme (`host:port`).
    #[must_use]
    pub fn server_name(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), HttpError> {
        let mut req = self.http.request(method, format!("{}{path_and_query}", self.base_url));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if !body.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(HttpError::Invalid("response body over 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }

    /// `GET /v1/ping`, unsigned: the body the server answers (`{"pong":true}`).
    ///
    /// # Errors
    /// A refusal the server answers with its error object (`busy` from the
    /// admission layer, say) as [`HttpError::Net`] with that code, so
    /// [`HttpError::refusal_code`] names it; [`HttpError::Invalid`] for another non-200 status
    /// or a body that is not UTF-8; transport errors.
    pub async fn ping(&self) -> Result<String, HttpError> {
        let (status, _, body) = self.send(reqwest::Method::GET, PING, &[], Vec::new()).await?;
        if status != 200 {
            return Err(error_object(status, &body).unwrap_or_else(|| {
                HttpError::Invalid(format!("{PING}: status {status} without an error object"))
            }));
        }
        String::from_utf8(body).map_err(|_| HttpError::Invalid(format!("{PING}: body not UTF-8")))
    }

    /// POSTs one handshake message and parses the reply (an error object with a
    /// 4xx/5xx status parses as [`ServerMessage::Error`]).
    async fn step(&self, route: &str, msg: &ClientMessage) -> Result<ServerMessage, HttpError> {
        let (status, _, body) =
            self.send(reqwest::Method::POST, route, &[], msg.to_json().into_bytes()).await?;
        let text = String::from_utf8(body)
            .map_err(|_| HttpError::Invalid(format!("{route}: status {status}, body not UTF-8")))?;
        match ServerMessage::from_json(&text) {
            Ok(reply) => Ok(reply),
            Err(e) if (200..300).contains(&status) => Err(NetError::Protocol(e).into()),
            Err(_) => Err(HttpError::Invalid(format!("{route}: status {status} without an error object"))),
        }
    }

    /// Registers `username` in-band (SPEC 3a) over HTTP; as
    /// [`register_with`](crate::register_with): `on_provisional` gets the provisional
    /// credential before R3 is sent, and with [`HostKeyPolicy::KnownHosts`](crate::HostKeyPolicy::KnownHosts) an
    /// unknown server's key is recorded (under [`server_name`](Self::server_name)'s
    /// choice of the caller) once the registration succeeds.
    ///
    /// # Errors
    /// [`HttpError::Net`] with the protocol's refusals (`username_taken`, a changed
    /// host key, …) or `on_provisional`'s error; transport errors.
    pub async fn register<F>(
        &self,
        username: &str,
        password: Password,
        options: &RegisterOptions,
        on_provisional: F,
    ) -> Result<ClientCredential, HttpError>
    where
        F: FnOnce(&ClientCredential) -> Result<(), NetError>,
    {
        register_flow(username, password, options, on_provisional, &mut &*self).await
    }

    /// Authenticates (SPEC 4) with channel keys in `group` and returns the HTTP
    /// session A4 opened.
    ///
    /// # Errors
    /// [`HttpError::Net`] with `authentication_failed` or
    /// [`scram_dh::Error::ServerSignature`]; [`HttpError::Invalid`] when A4 has no
    /// `session_id`; transport errors.
    pub async fn login(
        &self,
        username: &str,
        secret: ClientSecret,
        group: Group,
        config: ClientConfig,
    ) -> Result<HttpSession, HttpError> {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let step =
            AuthClient::start(&mut rng, username, secret, Some(group), config).map_err(NetError::from)?;
        let a2 = self.step(AUTH_PAIRING, &step.message).await?.into_auth_pairing().map_err(NetError::from)?;
        let step = step.state.receive_pairing(a2).map_err(NetError::from)?;
        let a4 = self.step(AUTH_PROOF, &step.message).await?.into_auth_proof().map_err(NetError::from)?;
        let session_id = a4.session_id.clone();
        let done = step.state.finish(a4).map_err(NetError::from)?;
        let username = done.username().to_owned();
        let keys = done.into_session_keys().ok_or_else(|| HttpError::Invalid("no session keys".into()))?;
        let session_id = session_id
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 128
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .ok_or_else(|| HttpError::Invalid("A4 carried no usable session_id".into()))?;
        Ok(HttpSession {
            base_url: self.base_url.clone(),
            username,
            session_id,
            keys,
            next_seq: 0,
            client: Some(self.clone()),
        })
    }
}

/// The HTTP transport: each registration step is a POST to its route.
impl Exchange for &HttpClient {
    type Error = HttpError;
    async fn exchange(
        &mut self,
        step: RegistrationStep,
        msg: &ClientMessage,
    ) -> Result<ServerMessage, HttpError> {
        let route = match step {
            RegistrationStep::Pairing => REGISTRATION_PAIRING,
            RegistrationStep::Password => REGISTRATION_PASSWORD,
        };
        self.step(route, msg).await
    }
}

/// [`HttpClient::register`] with [`DEFAULT_TIMEOUT`].
///
/// # Errors
/// As [`HttpClient::register`].
pub async fn register_http<F>(
    base_url: &str,
    username: &str,
    password: Password,
    options: &RegisterOptions,
    on_provisional: F,
) -> Result<ClientCredential, HttpError>
where
    F: FnOnce(&ClientCredential) -> Result<(), NetError>,
{
    HttpClient::new(base_url, DEFAULT_TIMEOUT)?.register(username, password, options, on_provisional).await
}

/// [`HttpClient::login`] with [`DEFAULT_TIMEOUT`] and an X25519 key exchange.
///
/// # Errors
/// As [`HttpClient::login`].
pub async fn login_http(
    base_url: &str,
    username: &str,
    secret: ClientSecret,
    config: ClientConfig,
) -> Result<HttpSession, HttpError> {
    HttpClient::new(base_url, DEFAULT_TIMEOUT)?.login(username, secret, Group::X25519, config).await
}

/// An HTTP session after A4: what signs requests and checks responses.
///
/// It serialises (for the CLI's 0600 session file) with its keys in base64; the
/// keys are wiped on drop and never shown by `Debug`.
#[derive(Serialize, Deserialize)]
pub struct HttpSession {
    /// The server's base URL.
    pub base_url: String,
    /// The authenticated username.
    pub username: String,
    /// The session id from A4.
    pub session_id: String,
    /// `k_c2s` (request MACs) and `k_s2c` (response MACs).
    #[serde(with = "keys_b64")]
    pub keys: SessionKeys,
    /// The sequence number the next request uses.
    pub next_seq: u64,
    #[serde(skip)]
    client: Option<HttpClient>,
}

impl core::fmt::Debug for HttpSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpSession")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

mod keys_b64 {
    use super::{STANDARD, SessionKeys, SymmetricKey};
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use zeroize::Zeroizing;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Keys {
        c2s: String,
        s2c: String,
    }

    impl Drop for Keys {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.c2s);
            zeroize::Zeroize::zeroize(&mut self.s2c);
        }
    }

    pub fn serialize<S: Serializer>(keys: &SessionKeys, s: S) -> Result<S::Ok, S::Error> {
        Keys { c2s: STANDARD.encode(keys.c2s.expose()), s2c: STANDARD.encode(keys.s2c.expose()) }.serialize(s)
    }

    fn key<E: serde::de::Error>(b64: &str) -> Result<SymmetricKey, E> {
        let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|_| E::custom("key is not base64"))?);
        SymmetricKey::from_slice(&bytes).ok_or_else(|| E::custom("key is not 32 bytes"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionKeys, D::Error> {
        let k = Keys::deserialize(d)?;
        Ok(SessionKeys { c2s: key(&k.c2s)?, s2c: key(&k.s2c)? })
    }
}

/// A response to a signed request whose MAC verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// `POST /v1/passwd`'s body (SPEC 7): the new record's public half.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswdBody {
    /// base64 salt.
    pub salt: String,
    /// Iteration count.
    pub ic: u32,
    /// base64 StoredKey.
    pub stored_key: String,
    /// base64 ServerKey.
    pub server_key: String,
    /// `random` or `rfc`.
    pub labels: String,
}

impl PasswdBody {
    /// The body and the updated credential for `new_password`, from the same
    /// computation as the TCP `passwd` ([`crate::passwd_request`]).
    ///
    /// # Errors
    /// [`scram_dh::Error`] from the key derivation; `Invalid` if that request is not
    /// the expected shape.
    pub fn new(
        current: &ClientCredential,
        new_password: &Password,
    ) -> Result<(Self, ClientCredential), HttpError> {
        let (request, updated) =
            crate::passwd_request(&mut rand_core::UnwrapErr(getrandom::SysRng), current, new_password)
                .map_err(NetError::from)?;
        let [salt, ic, stored_key, server_key, labels]: [String; 5] = request
            .args
            .try_into()
            .map_err(|_| HttpError::Invalid("unexpected passwd request shape".into()))?;
        let ic = ic.parse().map_err(|_| HttpError::Invalid("unexpected passwd ic".into()))?;
        Ok((Self { salt, ic, stored_key, server_key, labels }, updated))
    }
}

impl HttpSession {
    /// Rebuilds a session read from a file, with a client of `timeout`.
    ///
    /// # Errors
    /// As [`HttpClient::new`].
    pub fn attach(&mut self, timeout: Duration) -> Result<(), HttpError> {
        self.client = Some(HttpClient::new(&self.base_url, timeout)?);
        Ok(())
    }

    /// Takes the next sequence number (the caller persists `next_seq` before
    /// sending, so two processes sharing a session file never reuse one).
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    /// Sends one signed request numbered `seq` (from [`take_seq`](Self::take_seq)) and
    /// verifies the response MAC.
    ///
    /// # Errors
    /// [`HttpError::BadResponseMac`] when the response MAC is missing or wrong;
    /// transport errors.
    pub async fn request_with_seq(
        &self,
        seq: u64,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<SignedResponse, HttpError> {
        if !path_and_query.starts_with('/') {
            return Err(HttpError::Invalid(format!("path must start with '/': {path_and_query:?}")));
        }
        let method_up = method.to_ascii_uppercase();
        let m = reqwest::Method::from_bytes(method_up.as_bytes())
            .map_err(|_| HttpError::Invalid(format!("bad method {method:?}")))?;
        let auth =
            Authorization::sign(&self.session_id, seq, &self.keys.c2s, &method_up, path_and_query, body);
        let client = match &self.client {
            Some(c) => c.clone(),
            None => HttpClient::new(&self.base_url, DEFAULT_TIMEOUT)?,
        };
        let (status, headers, rbody) =
            client.send(m, path_and_query, &[("authorization", auth.to_header())], body.to_vec()).await?;
        let expected = response_mac(&self.keys.s2c, status, seq, &rbody);
        let ok = headers
            .get(RESPONSE_MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| mac_matches(&expected, v));
        if !ok {
            return Err(HttpError::BadResponseMac { status });
        }
        Ok(SignedResponse { status, body: rbody })
    }

    /// Signs, sends and verifies one request with the next sequence number.
    ///
    /// # Errors
    /// As [`request_with_seq`](Self::request_with_seq).
    pub async fn request(
        &mut self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<SignedResponse, HttpError> {
        let seq = self.take_seq();
        self.request_with_seq(seq, method, path_and_query, body).await
    }

    /// `GET /v1/whoami`: the username the server holds for this session.
    ///
    /// # Errors
    /// As [`request`](Self::request), and `Invalid` for a non-200 or odd body.
    pub async fn whoami(&mut self) -> Result<String, HttpError> {
        let r = self.request("GET", "/v1/whoami", b"").await?;
        #[derive(Deserialize)]
        struct Who {
            username: String,
        }
        if r.status != 200 {
            return Err(status_error(&r));
        }
        serde_json::from_slice::<Who>(&r.body)
            .map(|w| w.username)
            .map_err(|_| HttpError::Invalid("whoami: malformed body".into()))
    }

    /// `POST /v1/logout`.
    ///
    /// # Errors
    /// As [`request`](Self::request), and `Invalid` for a non-2xx status.
    pub async fn logout(&mut self) -> Result<(), HttpError> {
        let r = self.request("POST", "/v1/logout", b"").await?;
        if (200..300).contains(&r.status) { Ok(()) } else { Err(status_error(&r)) }
    }

    /// `POST /v1/passwd`: replaces the credential with one for `new_password` and
    /// returns the updated credential to save (the caller keeps it on disk first).
    ///
    /// # Errors
    /// As [`request`](Self::request), and `Invalid` for a non-200 status.
    pub async fn passwd(&mut self, body: &PasswdBody) -> Result<(), HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Invalid(e.to_string()))?;
        let r = self.request("POST", "/v1/passwd", &bytes).await?;
        if r.status == 200 { Ok(()) } else { Err(status_error(&r)) }
    }
}

/// A verified non-success response as an error (the server's error object, if any).
fn status_error(r: &SignedResponse) -> HttpError {
    error_object(r.status, &r.body).unwrap_or_else(|| HttpError::Invalid(format!("status {}", r.status)))
}

/// The server's error object in a non-success `body` as the refusal it names
/// ([`scram_dh::Error::Peer`] with its code: `busy`, `unknown_session`, …), or `None` when
/// the body is no error object (a proxy's page, say).
pub(crate) fn error_object(status: u16, body: &[u8]) -> Option<HttpError> {
    if (200..300).contains(&status) {
        return None;
    }
    match serde_json::from_slice::<ServerMessage>(body) {
        Ok(ServerMessage::Error(e)) => {
            Some(NetError::Protocol(scram_dh::Error::Peer { code: e.code, message: e.message }).into())
        }
        _ => None,
    }
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        // SessionKeys' keys wipe themselves; the id is a bearer-like handle.
        self.session_id.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::http_auth::{encode_mac, request_mac};
    use base64::Engine as _;

    fn session() -> HttpSession {
        HttpSession {
            base_url: "http://127.0.0.1:1".into(),
            username: "alice".into(),
            session_id: "abcDEF_-0".into(),
            keys: SessionKeys {
                c2s: SymmetricKey::from_bytes([1; 32]),
                s2c: SymmetricKey::from_bytes([2; 32]),
            },
            next_seq: 5,
            client: None,
        }
    }

    #[test]
    fn session_round_trips_and_debug_hides_secrets() {
        let s = session();
        let json = serde_json::to_string(&s).unwrap();
        let back: HttpSession = serde_json::from_str(&json).unwrap();
        assert_eq!(back.keys, s.keys);
        assert_eq!((back.next_seq, back.session_id.as_str()), (5, "abcDEF_-0"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("abcDEF") && !dbg.contains(&STANDARD.encode([1u8; 32])), "{dbg}");
        let bad = json.replace(&STANDARD.encode([1u8; 32]), "AAAA");
        assert!(serde_json::from_str::<HttpSession>(&bad).is_err(), "short key refused");
    }

    #[test]
    fn seq_is_taken_once() {
        let mut s = session();
        assert_eq!((s.take_seq(), s.take_seq(), s.next_seq), (5, 6, 7));
    }

    #[test]
    fn urls_are_checked() {
        assert!(HttpClient::new("127.0.0.1:80", DEFAULT_TIMEOUT).is_err());
        assert!(HttpClient::new("https://x", DEFAULT_TIMEOUT).is_err());
        assert!(HttpClient::new("http://", DEFAULT_TIMEOUT).is_err());
        let c = HttpClient::new("http://127.0.0.1:8080/", DEFAULT_TIMEOUT).unwrap();
        assert_eq!((c.base_url(), c.server_name()), ("http://127.0.0.1:8080", "127.0.0.1:8080"));
    }

    #[test]
    fn passwd_body_matches_the_tcp_request() {
        let cred = ClientCredential::from_json(
            &serde_json::json!({
                "format": scram_dh::credential::CREDENTIAL_FORMAT, "username": "alice", "salt": STANDARD.encode([3u8; 32]), "ic": 4096,
                "client_key": STANDARD.encode([4u8; 32]), "server_key": STANDARD.encode([5u8; 32]),
                "labels": "random"
            })
            .to_string(),
        )
        .unwrap();
        let (body, updated) = PasswdBody::new(&cred, &Password::new("new pw")).unwrap();
        assert_eq!((body.ic, body.labels.as_str()), (4096, "random"));
        assert_eq!(STANDARD.decode(&body.salt).unwrap(), updated.salt);
        assert_eq!(STANDARD.decode(&body.server_key).unwrap(), updated.server_key.expose().to_vec());
    }

    /// A one-shot loopback HTTP responder: answers one request with `mac`.
    async fn serve_once(status: u16, body: &'static str, mac: Option<String>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await.unwrap();
            let mac = mac.map(|m| format!("{RESPONSE_MAC_HEADER}: {m}\r\n")).unwrap_or_default();
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{mac}connection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn response_mac_is_required_and_checked() {
        let mut s = session();
        let good = encode_mac(&response_mac(&s.keys.s2c, 200, 5, b"{\"username\":\"alice\"}"));
        s.base_url = serve_once(200, "{\"username\":\"alice\"}", Some(good.clone())).await;
        assert_eq!(s.whoami().await.unwrap(), "alice");
        // Same MAC, one body byte changed.
        let mut s2 = session();
        s2.base_url = serve_once(200, "{\"username\":\"alicf\"}", Some(good)).await;
        assert!(matches!(s2.whoami().await, Err(HttpError::BadResponseMac { status: 200 })));
        let mut s3 = session();
        s3.base_url = serve_once(200, "{\"username\":\"alice\"}", None).await;
        let e = s3.whoami().await.unwrap_err();
        assert!(e.is_auth_failure(), "{e}");
        // The request MAC key is not the response key.
        let mut s4 = session();
        let wrong = encode_mac(&request_mac(&s4.keys.c2s, "GET", "/v1/whoami", 5, b""));
        s4.base_url = serve_once(200, "{\"username\":\"alice\"}", Some(wrong)).await;
        assert!(s4.whoami().await.is_err());
    }

    /// A server (or what stands in front of it) answering `GET /v1/ping` once.
    async fn pinged(status: u16, body: &'static str) -> Result<String, HttpError> {
        let url = serve_once(status, body, None).await;
        HttpClient::new(&url, Duration::from_secs(5)).unwrap().ping().await
    }

    #[tokio::test]
    async fn ping_names_the_refusal_the_server_answers() {
        let busy = ServerMessage::Error(scram_dh::message::ErrorMessage {
            code: ErrorCode::Busy,
            message: "rate limited".into(),
        })
        .to_json();
        let busy: &'static str = Box::leak(busy.into_boxed_str());
        let e = pinged(429, busy).await.unwrap_err();
        assert_eq!(e.refusal_code(), Some(ErrorCode::Busy), "{e}");
        // A page that is no error object (a proxy's 502) stays an HTTP error, with no code.
        let e = pinged(502, "<html>bad gateway</html>").await.unwrap_err();
        assert!(matches!(e, HttpError::Invalid(_)) && e.refusal_code().is_none(), "{e}");
        assert!(e.to_string().contains("502"), "{e}");
        // An error object on a 2xx is not a refusal: the body comes back as it is.
        assert_eq!(pinged(200, busy).await.unwrap(), busy);
    }
}
