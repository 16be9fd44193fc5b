//! One operation of each kind `bench` runs, and the code each failure is
//! counted under: a SPEC error code (`busy`, `authentication_failed`, …), or
//! `io`, `timeout`, `http_<status>`, `bad_response_mac`, `other`.

use std::net::{IpAddr, SocketAddr};

use scram_dh::message::{AuthPairing, ClientMessage, ServerMessage};
use scram_dh::{ClientConfig, ClientCredential, Fingerprint, Group, Labels, Password};
use scram_dh_net::http_client::{HttpClient, HttpError, HttpSession};
use scram_dh_net::{HostKeyPolicy, NetError};
use tokio::io::BufReader;
use tokio::net::{TcpSocket, TcpStream};

/// What one operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP login, no channel.
    Login,
    /// TCP login with an X25519 channel, then one `whoami` over it.
    LoginChannel,
    /// In-band registration of a new user over TCP in this group.
    Register(Group),
    /// The null protocol over TCP.
    Null,
    /// HTTP login (an X25519 channel key: the HTTP front wants one).
    HttpLogin,
    /// Signed `GET /v1/ping` in an HTTP session logged in once per client task.
    Signed,
    /// Plain `GET /v1/ping`.
    Unsigned,
    /// Signed `GET /bench/ping` through the gateway to the bench's upstream.
    Gateway,
    /// Plain `GET /bench/ping` straight to that upstream.
    Direct,
    /// A1 only, then the connection is dropped: the session stays on the server.
    HalfOpen,
}

impl Kind {
    /// Its name in `--mode` and `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginChannel => "login-channel",
            Self::Register(_) => "register",
            Self::Null => "null",
            Self::HttpLogin => "http-login",
            Self::Signed => "signed-request",
            Self::Unsigned => "unsigned",
            Self::Gateway => "gateway",
            Self::Direct => "direct",
            Self::HalfOpen => "half-open",
        }
    }

    /// Parses a `--mode`/`--mix` name.
    pub fn parse(name: &str, group: Group) -> Option<Self> {
        Some(match name {
            "login" => Self::Login,
            "login-channel" => Self::LoginChannel,
            "register" => Self::Register(group),
            "null" => Self::Null,
            "http-login" => Self::HttpLogin,
            "signed-request" => Self::Signed,
            "unsigned" => Self::Unsigned,
            "gateway" => Self::Gateway,
            "direct" => Self::Direct,
            "half-open" => Self::HalfOpen,
            _ => return None,
        })
    }

    /// Whether it needs the TCP front.
    pub fn tcp(self) -> bool {
        matches!(self, Self::Login | Self::LoginChannel | Self::Register(_) | Self::Null | Self::HalfOpen)
    }

    /// Whether it needs the HTTP front.
    pub fn http(self) -> bool {
        matches!(self, Self::HttpLogin | Self::Signed | Self::Unsigned | Self::Gateway)
    }

    /// Whether it needs a logged-in HTTP session per client task.
    pub fn session(self) -> bool {
        matches!(self, Self::Signed | Self::Gateway)
    }

    /// Whether it logs in as the bench user.
    pub fn user(self) -> bool {
        matches!(self, Self::Login | Self::LoginChannel | Self::HttpLogin | Self::HalfOpen) || self.session()
    }
}

/// What every operation may use.
pub struct Ctx {
    /// The TCP front.
    pub tcp: Option<String>,
    /// The HTTP front.
    pub http: Option<HttpClient>,
    /// For unsigned and direct requests.
    pub plain: reqwest::Client,
    /// The bench's own upstream, behind the gateway.
    pub upstream: Option<String>,
    /// The user the logins are for.
    pub cred: Option<ClientCredential>,
    /// The server's host key (registrations pin it).
    pub fingerprint: Option<Fingerprint>,
    /// Tells this run's registered names from other runs'.
    pub run_id: String,
    /// Source addresses to spread connections over (loopback only; empty: any).
    pub sources: Vec<IpAddr>,
}

/// One client task's own state.
#[derive(Default)]
pub struct Worker {
    /// Its HTTP session (signed requests, the gateway).
    pub session: Option<HttpSession>,
}

/// A failed operation's code.
pub type Code = String;

/// The code of a transport or protocol failure.
pub fn net_code(e: &NetError) -> Code {
    match e {
        NetError::Protocol(scram_dh::Error::Peer { code, .. }) => code.to_string(),
        NetError::Protocol(other) => other.code().to_string(),
        NetError::Io(_) | NetError::Closed => "io".into(),
        NetError::Timeout => "timeout".into(),
        _ => "other".into(),
    }
}

/// The code of an HTTP client failure. A response without a valid MAC that is
/// not a success is counted by its status (an unknown route answers unsigned).
pub fn http_code(e: &HttpError) -> Code {
    match e {
        HttpError::Net(n) => net_code(n),
        HttpError::Transport(t) => transport_code(t),
        HttpError::BadResponseMac { status } if !(200..300).contains(status) => format!("http_{status}"),
        HttpError::BadResponseMac { .. } => "bad_response_mac".into(),
        _ => "other".into(),
    }
}

fn transport_code(e: &reqwest::Error) -> Code {
    if e.is_timeout() { "timeout".into() } else { "io".into() }
}

/// The code of a non-200 answer: its error object's code, else `http_<status>`.
fn status_code(status: u16, body: &[u8]) -> Code {
    match std::str::from_utf8(body).ok().map(ServerMessage::from_json) {
        Some(Ok(ServerMessage::Error(m))) => m.code.to_string(),
        _ => format!("http_{status}"),
    }
}

impl Ctx {
    fn tcp_addr(&self) -> Result<&str, Code> {
        self.tcp.as_deref().ok_or_else(|| "other".to_owned())
    }

    fn cred(&self) -> Result<&ClientCredential, Code> {
        self.cred.as_ref().ok_or_else(|| "other".to_owned())
    }

    /// A TCP connection to the server, from source address `n mod sources`.
    async fn connect(&self, n: u64) -> Result<TcpStream, Code> {
        let addr = self.tcp_addr()?;
        let stream = if self.sources.is_empty() {
            TcpStream::connect(addr).await.map_err(|_| "io".to_owned())?
        } else {
            let to: SocketAddr = addr.parse().map_err(|_| "other".to_owned())?;
            let from = self.sources[(n % self.sources.len() as u64) as usize];
            let socket = TcpSocket::new_v4().map_err(|_| "io".to_owned())?;
            socket.bind(SocketAddr::new(from, 0)).map_err(|_| "io".to_owned())?;
            socket.connect(to).await.map_err(|_| "io".to_owned())?
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Logs in over HTTP as the bench user: a worker's session.
    pub async fn http_session(&self) -> Result<HttpSession, Code> {
        let http = self.http.as_ref().ok_or_else(|| "other".to_owned())?;
        let cred = self.cred()?;
        http.login(&cred.username, cred.secret(), Group::X25519, ClientConfig::default())
            .await
            .map_err(|e| http_code(&e))
    }

    /// Runs operation number `n` of kind `kind`.
    pub async fn run(&self, worker: &mut Worker, kind: Kind, n: u64) -> Result<(), Code> {
        let net = |e: NetError| net_code(&e);
        let http = |e: HttpError| http_code(&e);
        match kind {
            Kind::Login | Kind::LoginChannel => {
                let cred = self.cred()?;
                let stream = self.connect(n).await?;
                let channel = (kind == Kind::LoginChannel).then_some(Group::X25519);
                let mut s = scram_dh_net::login(
                    stream,
                    &cred.username,
                    cred.secret(),
                    channel,
                    ClientConfig::default(),
                )
                .await
                .map_err(net)?;
                if let Some(ch) = s.channel.as_mut() {
                    ch.send(br#"{"cmd":"whoami"}"#).await.map_err(net)?;
                    ch.recv().await.map_err(net)?;
                }
            }
            Kind::Register(group) => {
                let fp = self.fingerprint.ok_or_else(|| "other".to_owned())?;
                let stream = self.connect(n).await?;
                let name = format!("bench-{}-{n}", self.run_id);
                scram_dh_net::register(
                    stream,
                    &name,
                    Password::new("bench"),
                    group,
                    Labels::Random,
                    &HostKeyPolicy::Fingerprint(fp),
                    ClientConfig::default(),
                )
                .await
                .map_err(net)?;
            }
            Kind::Null => {
                let stream = self.connect(n).await?;
                scram_dh_net::null_login(stream, "bench").await.map_err(net)?;
            }
            Kind::HalfOpen => {
                let cred = self.cred()?;
                let stream = self.connect(n).await?;
                let nonce = scram_dh::nonce::Nonce::random(&mut rand_core::UnwrapErr(getrandom::SysRng));
                let a1 = ClientMessage::AuthPairing(AuthPairing {
                    username: cred.username.clone(),
                    client_nonce: nonce.to_hex(),
                    group: None,
                    public_key: None,
                });
                let mut io = BufReader::new(stream);
                scram_dh_net::framing::write_line(&mut io, &a1.to_json()).await.map_err(net)?;
                let line = scram_dh_net::framing::read_line(&mut io)
                    .await
                    .map_err(net)?
                    .ok_or_else(|| "io".to_owned())?;
                ServerMessage::from_json(&line)
                    .and_then(ServerMessage::into_auth_pairing)
                    .map_err(|e| net(e.into()))?;
                // Dropped here, without A3: the session lives on until its TTL.
            }
            Kind::HttpLogin => {
                self.http_session().await?;
            }
            Kind::Signed | Kind::Gateway => {
                if worker.session.is_none() {
                    worker.session = Some(self.http_session().await?);
                }
                let session = worker.session.as_mut().ok_or_else(|| "other".to_owned())?;
                let path = if kind == Kind::Signed { "/v1/ping" } else { "/bench/ping" };
                let r = session.request("GET", path, b"").await.map_err(http)?;
                if r.status != 200 {
                    return Err(status_code(r.status, &r.body));
                }
                if !r.body.windows(4).any(|w| w == b"pong") {
                    return Err("other".into());
                }
            }
            Kind::Unsigned => {
                let http = self.http.as_ref().ok_or_else(|| "other".to_owned())?;
                // A plain GET rather than `HttpClient::ping`, which folds every
                // refusal into one error: here a refusal is counted by its code.
                let body = get(&self.plain, &format!("{}/v1/ping", http.base_url())).await?;
                if !body.contains("pong") {
                    return Err("other".into());
                }
            }
            Kind::Direct => {
                let base = self.upstream.as_deref().ok_or_else(|| "other".to_owned())?;
                let body = get(&self.plain, &format!("{base}/bench/ping")).await?;
                if body != "pong" {
                    return Err("other".into());
                }
            }
        }
        Ok(())
    }
}

/// A plain GET: the body of a 200, else the failure's code.
async fn get(client: &reqwest::Client, url: &str) -> Result<String, Code> {
    let resp = client.get(url).send().await.map_err(|e| transport_code(&e))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| transport_code(&e))?;
    if status != 200 {
        return Err(status_code(status, &body));
    }
    String::from_utf8(body.to_vec()).map_err(|_| "other".to_owned())
}

/// The bench's upstream behind the gateway: every path answers 200 `pong`.
/// Returns its base URL; it serves until the runtime stops.
pub async fn start_upstream() -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(|| async { "pong" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_codes_read_error_objects() {
        for k in [
            Kind::Login,
            Kind::LoginChannel,
            Kind::Register(Group::Modp2048),
            Kind::Null,
            Kind::HttpLogin,
            Kind::Signed,
            Kind::Unsigned,
            Kind::Gateway,
            Kind::Direct,
            Kind::HalfOpen,
        ] {
            assert_eq!(Kind::parse(k.name(), Group::Modp2048), Some(k));
        }
        assert_eq!(Kind::parse("nope", Group::X25519), None);
        assert_eq!(status_code(503, br#"{"type":"error","code":"busy","message":"m"}"#), "busy");
        assert_eq!(status_code(404, b"not found"), "http_404");
        assert_eq!(http_code(&HttpError::BadResponseMac { status: 404 }), "http_404");
        assert_eq!(http_code(&HttpError::BadResponseMac { status: 200 }), "bad_response_mac");
        assert_eq!(net_code(&NetError::Closed), "io");
        let peer = scram_dh::Error::Peer { code: scram_dh::ErrorCode::Busy, message: String::new() };
        assert_eq!(net_code(&NetError::Protocol(peer)), "busy");
    }
}
