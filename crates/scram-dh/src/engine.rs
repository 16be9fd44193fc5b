//! The server's handshake driver over a credential store and a session store:
//! what the TCP and HTTP fronts call for each client message. Still sans-IO
//! (no sockets, no clock, no OS randomness): stores are traits, time and
//! randomness are arguments.

use rand_core::CryptoRng;

use crate::auth::server::{AuthRequest, Authenticated, PendingAuth};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::message::{ClientMessage, ServerMessage};
use crate::nonce::CombinedNonce;
use crate::record::{CredentialStore, Inserted};
use crate::register::server::{PendingRegistration, RegistrationRequest};
use crate::session::{Phase, SessionInsert, SessionKey, SessionStore};

/// What a client message led to.
#[derive(Debug)]
pub enum Outcome {
    /// Send this message and wait for the client's next one.
    Continue(ServerMessage),
    /// Registration complete (the record is committed); send R4.
    Registered {
        /// R4.
        reply: ServerMessage,
        /// The new user.
        username: String,
    },
    /// Authentication complete; send A4.
    Authenticated {
        /// A4.
        reply: ServerMessage,
        /// The proof of authentication, with channel keys if asked for.
        auth: Authenticated,
    },
    /// The handshake failed; send the error message and close.
    Failed {
        /// The `error` message for the peer.
        reply: ServerMessage,
        /// The full error, for the server's own log (contains no secret).
        error: Error,
        /// The account the failed handshake named, when known (for penalties).
        username: Option<String>,
    },
}

impl Outcome {
    /// The message to send.
    #[must_use]
    pub fn reply(&self) -> &ServerMessage {
        match self {
            Self::Continue(m) => m,
            Self::Registered { reply, .. }
            | Self::Authenticated { reply, .. }
            | Self::Failed { reply, .. } => reply,
        }
    }
}

/// Drives handshakes for any credential and session store.
///
/// See [`crate::pair`] for a complete in-memory example.
#[derive(Debug)]
pub struct ServerEngine<C, S> {
    config: ServerConfig,
    credentials: C,
    sessions: S,
}

impl<C: CredentialStore, S: SessionStore> ServerEngine<C, S> {
    /// A driver with these settings and stores.
    ///
    /// # Errors
    /// [`Error::ServerError`] when the settings are invalid.
    pub fn new(config: ServerConfig, credentials: C, sessions: S) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, credentials, sessions })
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The credential store.
    pub fn credentials(&self) -> &C {
        &self.credentials
    }

    /// The session store.
    pub fn sessions(&self) -> &S {
        &self.sessions
    }

    /// Handles one client message from `peer` (an address or other per-client key
    /// for the per-peer cap) at time `now_ms` (Unix milliseconds).
    pub async fn handle<R: CryptoRng + Send + ?Sized>(
        &self,
        msg: ClientMessage,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Outcome {
        let result = match msg {
            ClientMessage::RegistrationPairing(m) => {
                self.registration_pairing(&m, peer, now_ms, rng).await.map(Outcome::Continue)
            }
            ClientMessage::RegistrationSendPassword(m) => self.registration_password(&m, now_ms, rng).await,
            ClientMessage::AuthPairing(m) => {
                self.auth_pairing(&m, peer, now_ms, rng).await.map(Outcome::Continue)
            }
            ClientMessage::AuthClientProofGeneration(m) => self.auth_proof(&m, now_ms).await,
        };
        result.unwrap_or_else(|error| Outcome::Failed {
            reply: ServerMessage::error(&error),
            error,
            username: None,
        })
    }

    /// Handles a raw JSON line; a parse failure is an `invalid_message` outcome.
    pub async fn handle_json<R: CryptoRng + Send + ?Sized>(
        &self,
        text: &str,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Outcome {
        match ClientMessage::from_json(text) {
            Ok(msg) => self.handle(msg, peer, now_ms, rng).await,
            Err(error) => Outcome::Failed { reply: ServerMessage::error(&error), error, username: None },
        }
    }

    async fn store_session(
        &self,
        key: &SessionKey,
        peer: &str,
        blob: crate::secret::SecretBytes,
        now_ms: u64,
    ) -> Result<()> {
        match self.sessions.insert(key, peer, blob, now_ms, self.config.session_ttl_ms).await? {
            SessionInsert::Inserted => Ok(()),
            SessionInsert::Exists => Err(Error::NonceReused),
            SessionInsert::Full => Err(Error::Busy),
        }
    }

    async fn take_session(
        &self,
        phase: Phase,
        nonce: &str,
        now_ms: u64,
    ) -> Result<crate::secret::SecretBytes> {
        let combined = CombinedNonce::parse(nonce)?;
        let key = SessionKey::new(phase, &combined.client);
        self.sessions.take(&key, now_ms).await?.ok_or(Error::UnknownSession)
    }

    async fn registration_pairing<R: CryptoRng + Send + ?Sized>(
        &self,
        msg: &crate::message::RegistrationPairing,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<ServerMessage> {
        let req = RegistrationRequest::parse(msg, &self.config)?;
        // Cheap refusal before any DH work; the insert at R3 is the real guard.
        if self.credentials.read(req.username()).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        let key = req.session_key();
        let (reply, pending) = req.respond(rng, &self.config)?;
        self.store_session(&key, peer, pending.to_bytes(), now_ms).await?;
        Ok(ServerMessage::RegistrationPairing(reply))
    }

    async fn registration_password<R: CryptoRng + Send + ?Sized>(
        &self,
        msg: &crate::message::RegistrationSendPassword,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Outcome> {
        let blob = self.take_session(Phase::Registration, &msg.nonce, now_ms).await?;
        let pending = PendingRegistration::from_bytes(&blob)?;
        let received = pending.receive_password(rng, msg, now_ms / 1000)?;
        match self.credentials.insert(received.record()).await? {
            Inserted::Inserted => {
                let username = received.record().username.clone();
                Ok(Outcome::Registered {
                    reply: ServerMessage::RegistrationKeysGeneration(received.committed()),
                    username,
                })
            }
            Inserted::AlreadyExists => Err(Error::UsernameTaken),
        }
    }

    async fn auth_pairing<R: CryptoRng + Send + ?Sized>(
        &self,
        msg: &crate::message::AuthPairing,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<ServerMessage> {
        let req = AuthRequest::parse(msg, &self.config)?;
        let record = self.credentials.read(req.username()).await?;
        let key = req.session_key();
        let (reply, pending) = req.continue_with(record, rng, &self.config)?;
        self.store_session(&key, peer, pending.to_bytes(), now_ms).await?;
        Ok(ServerMessage::AuthPairing(reply))
    }

    async fn auth_proof(&self, msg: &crate::message::AuthClientProof, now_ms: u64) -> Result<Outcome> {
        let blob = self.take_session(Phase::Authentication, &msg.nonce, now_ms).await?;
        let pending = PendingAuth::from_bytes(&blob)?;
        let username = pending.username().to_owned();
        match pending.receive_proof(msg) {
            Ok((proof, auth)) => Ok(Outcome::Authenticated { reply: ServerMessage::AuthProof(proof), auth }),
            Err(error) => {
                Ok(Outcome::Failed { reply: ServerMessage::error(&error), error, username: Some(username) })
            }
        }
    }
}
