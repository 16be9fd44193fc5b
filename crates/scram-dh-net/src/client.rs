//! Client drivers: register and log in over any `AsyncRead + AsyncWrite`.

use scram_dh::auth::client::AuthClient;
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, Fingerprint, Group, Labels, Password};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};

use crate::channel::{Role, SecureChannel};
use crate::error::NetError;
use crate::framing::{read_line, write_line};
use crate::known_hosts::KnownHosts;

/// How a registering client decides to trust the server's host key.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// An explicit fingerprint, given out of band.
    Fingerprint(Fingerprint),
    /// Trust on first use, then refuse a changed key, recording keys in a file
    /// under the server's name.
    KnownHosts {
        /// The file.
        file: KnownHosts,
        /// The name the server is recorded under (`host:port`).
        server: String,
    },
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    msg: &ClientMessage,
) -> Result<ServerMessage, NetError> {
    write_line(io, &msg.to_json()).await?;
    let line = read_line(io).await?.ok_or(NetError::Closed)?;
    Ok(ServerMessage::from_json(&line)?)
}

/// What a registration asks for, besides the connection, the name and the password.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// DH group of the registration key exchange.
    pub group: Group,
    /// Key-derivation kind of the new record.
    pub labels: Labels,
    /// How to trust the server's host key.
    pub policy: HostKeyPolicy,
    /// Client settings (the iteration-count ceiling).
    pub config: ClientConfig,
}

/// Registers `username` in-band (SPEC 3a) and returns the credential to save.
///
/// With [`HostKeyPolicy::KnownHosts`], an unknown server's key is recorded once
/// the registration succeeds; a known server presenting another key is refused
/// before the encrypted password is sent.
///
/// A connection lost after R3 leaves the caller without a credential although the
/// server may have committed the record: use [`register_with`] to save the
/// provisional credential first.
///
/// # Errors
/// [`NetError::Protocol`] with [`scram_dh::Error::HostKeyMismatch`],
/// `username_taken` and the rest; I/O errors.
pub async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    username: &str,
    password: Password,
    group: Group,
    labels: Labels,
    policy: &HostKeyPolicy,
    config: ClientConfig,
) -> Result<ClientCredential, NetError> {
    let options = RegisterOptions { group, labels, policy: policy.clone(), config };
    register_with(io, username, password, &options, |_| Ok(())).await
}

/// [`register`], calling `on_provisional` with the provisional credential (marked
/// [`unconfirmed`](ClientCredential::unconfirmed)) once R2 is verified and *before*
/// R3 is sent (SPEC 7: the labels are derivable before R3). A caller that saves it
/// there holds a working credential even if the connection dies between the
/// server's commit and R4; it is confirmed by R4 (the credential returned here) or
/// by a first successful login.
///
/// If `on_provisional` fails, the registration stops before the salted password is
/// sent, and its error is returned.
///
/// # Errors
/// As [`register`], and whatever `on_provisional` returns.
pub async fn register_with<S, F>(
    io: S,
    username: &str,
    password: Password,
    options: &RegisterOptions,
    on_provisional: F,
) -> Result<ClientCredential, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&ClientCredential) -> Result<(), NetError>,
{
    let mut io = Lines(BufReader::new(io));
    register_flow(username, password, options, on_provisional, &mut io).await
}

/// One handshake step over a transport: send a message, get the server's reply.
pub(crate) trait Exchange {
    /// What the transport fails with.
    type Error: From<NetError>;
    /// Sends `msg` (registration step `step`) and returns the reply.
    fn exchange(
        &mut self,
        step: RegistrationStep,
        msg: &ClientMessage,
    ) -> impl core::future::Future<Output = Result<ServerMessage, Self::Error>>;
}

/// The TCP transport: one JSON message per line.
struct Lines<S>(BufReader<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Exchange for Lines<S> {
    type Error = NetError;
    async fn exchange(
        &mut self,
        _: RegistrationStep,
        msg: &ClientMessage,
    ) -> Result<ServerMessage, NetError> {
        exchange(&mut self.0, msg).await
    }
}

/// Which registration step a message is, for transports that route by step (HTTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegistrationStep {
    /// R1 → R2.
    Pairing,
    /// R3 → R4.
    Password,
}

/// The client side of in-band registration over any transport: `exchange` sends
/// one step and returns the server's reply. Host-key pinning or TOFU, the
/// provisional credential before R3 (`on_provisional`), the known-hosts entry once
/// R4 checks out: the one definition the TCP and HTTP clients share.
pub(crate) async fn register_flow<X, F>(
    username: &str,
    password: Password,
    options: &RegisterOptions,
    on_provisional: F,
    transport: &mut X,
) -> Result<ClientCredential, X::Error>
where
    X: Exchange,
    F: FnOnce(&ClientCredential) -> Result<(), NetError>,
{
    let net = |e: scram_dh::Error| X::Error::from(NetError::from(e));
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let (check, tofu) = match &options.policy {
        HostKeyPolicy::Fingerprint(fp) => (HostKeyCheck::Pinned(*fp), None),
        HostKeyPolicy::KnownHosts { file, server } => match file.lookup(server)? {
            Some(fp) => (HostKeyCheck::Pinned(fp), None),
            None => (HostKeyCheck::TrustOnFirstUse, Some((file, server))),
        },
    };
    let step = RegistrationClient::start(
        &mut rng,
        username,
        password,
        options.group,
        options.labels,
        check,
        options.config,
    )
    .map_err(net)?;
    let r2 = transport
        .exchange(RegistrationStep::Pairing, &step.message)
        .await?
        .into_registration_pairing()
        .map_err(net)?;
    let step = step.state.receive_pairing(r2).map_err(net)?;
    let fingerprint = step.state.host_key_fingerprint();
    on_provisional(&step.state.provisional_credential())?;
    let r4 = transport
        .exchange(RegistrationStep::Password, &step.message)
        .await?
        .into_registration_keys()
        .map_err(net)?;
    let credential = step.state.finish(r4).map_err(net)?;
    if let Some((file, server)) = tofu {
        file.add(server, &fingerprint)?;
    }
    Ok(credential)
}

/// A successful login.
#[derive(Debug)]
pub struct Login<S> {
    /// The authenticated username.
    pub username: String,
    /// The encrypted channel, when one was asked for.
    pub channel: Option<SecureChannel<BufReader<S>>>,
}

/// Authenticates (SPEC 4) and, with `channel` set, opens the encrypted channel.
///
/// # Errors
/// [`NetError::Protocol`] with `authentication_failed` (wrong credential or
/// unknown user, indistinguishable) or [`scram_dh::Error::ServerSignature`] (the
/// server could not prove itself); I/O errors.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    username: &str,
    secret: ClientSecret,
    channel: Option<Group>,
    config: ClientConfig,
) -> Result<Login<S>, NetError> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut io = BufReader::new(io);
    let step = AuthClient::start(&mut rng, username, secret, channel, config)?;
    let a2 = exchange(&mut io, &step.message).await?.into_auth_pairing()?;
    let step = step.state.receive_pairing(a2)?;
    let a4 = exchange(&mut io, &step.message).await?.into_auth_proof()?;
    let done = step.state.finish(a4)?;
    let username = done.username().to_owned();
    let channel =
        done.into_session_keys().map(|keys| SecureChannel::new(io, username.clone(), keys, Role::Client));
    Ok(Login { username, channel })
}
