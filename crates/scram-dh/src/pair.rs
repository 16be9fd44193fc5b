//! A deterministic in-memory client/server pair (seeded RNGs, a fixed clock that
//! moves only when told), for tests, examples and benchmarks: every message goes
//! through its JSON wire form and is recorded in a transcript.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::auth::client::{AuthClient, ClientAuthenticated};
use crate::auth::server::Authenticated;
use crate::config::ServerConfig;
use crate::credential::{ClientCredential, ClientSecret};
use crate::dh::Group;
use crate::engine::{Outcome, ServerEngine};
use crate::error::{Error, Result};
use crate::hostkey::HostKey;
use crate::keys::ClientConfig;
use crate::message::{ClientMessage, ServerMessage};
use crate::record::{Labels, MemoryCredentialStore};
use crate::register::client::{HostKeyCheck, RegistrationClient};
use crate::secret::Password;
use crate::session::MemorySessionStore;

/// Runs a future that never waits on outside events (the memory stores' futures
/// complete on first poll) to completion on the current thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Who sent a transcript line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// A client and a server in one process.
///
/// ```
/// use scram_dh::pair::Pair;
/// use scram_dh::{ClientConfig, Group, Labels};
///
/// let mut pair = Pair::new(42);
/// let cred = pair.register("alice", "s3cret", Group::X25519, Labels::Random).unwrap();
/// let (client, server) = pair.login(&cred.username, cred.secret(), Some(Group::X25519)).unwrap();
/// assert_eq!(client.session_keys(), server.session_keys());
/// ```
pub struct Pair {
    /// The server.
    pub engine: ServerEngine<MemoryCredentialStore, MemorySessionStore>,
    /// Client randomness.
    pub client_rng: ChaCha20Rng,
    /// Server randomness.
    pub server_rng: ChaCha20Rng,
    /// The clock, Unix milliseconds.
    pub now_ms: u64,
    /// Client settings.
    pub client_config: ClientConfig,
    /// Every message exchanged, as JSON.
    pub transcript: Vec<(Direction, String)>,
}

impl core::fmt::Debug for Pair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pair").field("now_ms", &self.now_ms).finish_non_exhaustive()
    }
}

impl Pair {
    /// A pair with default settings, seeded.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, |_| {})
    }

    /// A pair whose server settings `tweak` adjusts.
    ///
    /// # Panics
    /// When `tweak` makes the settings invalid (this is a test harness).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn with_config(seed: u64, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut server_rng = ChaCha20Rng::seed_from_u64(seed);
        let host_key = HostKey::generate(&mut server_rng);
        let mut mock = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut server_rng, &mut mock);
        let mut config = ServerConfig::new(host_key, mock);
        tweak(&mut config);
        let engine =
            ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::default())
                .expect("valid harness configuration");
        Self {
            engine,
            client_rng: ChaCha20Rng::seed_from_u64(seed ^ 0x5eed_c11e),
            server_rng,
            now_ms: 1_700_000_000_000,
            client_config: ClientConfig::default(),
            transcript: Vec::new(),
        }
    }

    /// Sends one client message through JSON to the server and returns the outcome.
    pub fn send(&mut self, msg: &ClientMessage) -> Outcome {
        let text = msg.to_json();
        self.transcript.push((Direction::ClientToServer, text.clone()));
        let out = block_on(self.engine.handle_json(&text, "pair", self.now_ms, &mut self.server_rng));
        self.transcript.push((Direction::ServerToClient, out.reply().to_json()));
        out
    }

    /// Sends and returns the reply as the client would parse it off the wire.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] if the server's JSON does not parse (a bug).
    pub fn exchange(&mut self, msg: &ClientMessage) -> Result<ServerMessage> {
        let out = self.send(msg);
        ServerMessage::from_json(&out.reply().to_json())
    }

    /// Moves the clock.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// A full in-band registration, trusting the host key on first use.
    ///
    /// # Errors
    /// Whatever either side refuses.
    pub fn register(
        &mut self,
        username: &str,
        password: &str,
        group: Group,
        labels: Labels,
    ) -> Result<ClientCredential> {
        let step = RegistrationClient::start(
            &mut self.client_rng,
            username,
            Password::new(password),
            group,
            labels,
            HostKeyCheck::TrustOnFirstUse,
            self.client_config,
        )?;
        let r2 = self.exchange(&step.message)?.into_registration_pairing()?;
        let step = step.state.receive_pairing(r2)?;
        let r4 = self.exchange(&step.message)?.into_registration_keys()?;
        step.state.finish(r4)
    }

    /// A full authentication; returns both sides' results.
    ///
    /// # Errors
    /// Whatever either side refuses.
    pub fn login(
        &mut self,
        username: &str,
        secret: ClientSecret,
        channel: Option<Group>,
    ) -> Result<(ClientAuthenticated, Authenticated)> {
        let step = AuthClient::start(&mut self.client_rng, username, secret, channel, self.client_config)?;
        let a2 = self.exchange(&step.message)?.into_auth_pairing()?;
        let step = step.state.receive_pairing(a2)?;
        match self.send(&step.message) {
            Outcome::Authenticated { reply, auth } => {
                let a4 = ServerMessage::from_json(&reply.to_json())?.into_auth_proof()?;
                Ok((step.state.finish(a4)?, auth))
            }
            Outcome::Failed { error, .. } => Err(error),
            other => Err(Error::invalid(format!("unexpected outcome {:?}", other.reply().type_name()))),
        }
    }
}
