//! The server's handshake driver over a credential store and a session store:
//! what the TCP and HTTP fronts call for each client message. Still sans-IO
//! (no sockets, no clock, no OS randomness): stores are traits, time and
//! randomness are arguments.
//!
//! Order of work per step, cheapest refusal first (SPEC 5):
//! - R1: registration open? → parse → session capacity probe → username free? →
//!   DH → seal → insert.
//! - A1: parse → session capacity probe → read record → (DH) → seal → insert.
//! - R3/A3: take the session → open the seal → finish.
//! - Standard SCRAM (RFC 5802): parse → read record → server-first; the state
//!   stays with the connection (TCP) or is sealed into the session store between
//!   two HTTP requests (`sasl_park` / `sasl_resume`, RFC 7804).

use std::sync::{PoisonError, RwLock};

use rand_core::CryptoRng;

use crate::auth::server::{AuthRequest, Authenticated, PendingAuth};
use crate::config::ServerConfig;
use crate::crypto::{
    HmacKey, TAG_LEN, XNONCE_LEN, open_random, open_random_owned, seal_random, seal_random_in_place,
};
use crate::error::{Error, Result};
use crate::message::{ClientMessage, ServerMessage};
use crate::mock::MockProfile;
use crate::nonce::{CombinedNonce, Nonce};
use crate::record::{CredentialStore, Inserted, RecordShape};
use crate::register::server::{PendingRegistration, RegistrationRequest};
use crate::sasl::server::{ClientFirstRequest, PendingSasl};
use crate::sasl::{SaslFailure, ServerChannel};
use crate::secret::SecretBytes;
use crate::session::{Phase, SessionInsert, SessionKey, SessionStore};

/// Sealed session states are zero-padded to a whole number of these bytes: four
/// ChaCha20 blocks. The `chacha20` crate's AVX2 backend computes four blocks per
/// call, and keeps only one of them when fewer than four remain to encrypt. So a
/// 206-byte login state took five such calls to seal (the Poly1305 key, three
/// whole blocks, the tail) and five to open; 256 bytes take two. The padding costs
/// 50 bytes per login session in the store.
const SEAL_RUN: usize = 256;

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
        /// The account the failure concerns, when the message named a well-formed
        /// username (R1/A1 after parsing) or the session state did (R3/A3);
        /// `None` for parse failures and unknown sessions. Known and unknown
        /// users alike: this is for per-account penalties, never for the peer.
        username: Option<String>,
    },
}

impl Outcome {
    /// A failure outcome: the peer's error message built from `error`.
    #[must_use]
    pub fn failed(error: Error, username: Option<String>) -> Self {
        Self::Failed { reply: ServerMessage::error(&error), error, username }
    }

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

    /// The account this outcome concerns: the registered or authenticated user, or
    /// a failure's `username`; `None` for `Continue`.
    #[must_use]
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Continue(_) => None,
            Self::Registered { username, .. } => Some(username),
            Self::Authenticated { auth, .. } => Some(auth.username()),
            Self::Failed { username, .. } => username.as_deref(),
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
    mock_profile: RwLock<MockProfile>,
    /// `config.mock_secret` absorbed once (the config cannot change after `new`):
    /// every A1, known user or not, skips that key setup alike.
    mock_key: HmacKey,
}

impl<C: CredentialStore, S: SessionStore> ServerEngine<C, S> {
    /// A driver with these settings and stores, with an empty mock profile
    /// (unknown users get the server's ic and 32-byte salts): call
    /// [`refresh_mock_profile`](Self::refresh_mock_profile) before serving, or
    /// use [`open`](Self::open).
    ///
    /// # Errors
    /// [`Error::ServerError`] when the settings are invalid.
    pub fn new(config: ServerConfig, credentials: C, sessions: S) -> Result<Self> {
        config.validate()?;
        let mock_key = HmacKey::new(&config.mock_secret);
        Ok(Self { config, credentials, sessions, mock_profile: RwLock::new(MockProfile::new()), mock_key })
    }

    /// [`new`](Self::new), then [`refresh_mock_profile`](Self::refresh_mock_profile).
    ///
    /// # Errors
    /// [`Error::ServerError`] when the settings are invalid; [`Error::Store`] when
    /// the credential store cannot be read.
    pub async fn open(config: ServerConfig, credentials: C, sessions: S) -> Result<Self> {
        let engine = Self::new(config, credentials, sessions)?;
        engine.refresh_mock_profile().await?;
        Ok(engine)
    }

    /// Rebuilds the mock profile from the credential store's record shapes, so
    /// unknown users' replies (ic, salt length) follow the real records' mix
    /// (finding M6). In-band registrations update it as they commit; call this at
    /// start-up and after records are changed by other means (imports, password
    /// changes, provisioning).
    ///
    /// # Errors
    /// [`Error::Store`] when the credential store cannot be read.
    pub async fn refresh_mock_profile(&self) -> Result<()> {
        let shapes = self.credentials.record_shapes().await?;
        let profile = MockProfile::from_shapes(&shapes);
        *self.mock_profile.write().unwrap_or_else(PoisonError::into_inner) = profile;
        Ok(())
    }

    /// A copy of the current mock profile.
    #[must_use]
    pub fn mock_profile(&self) -> MockProfile {
        self.mock_profile.read().unwrap_or_else(PoisonError::into_inner).clone()
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

    /// Seals `plaintext` for a store several nodes share (SPEC 5), under the same
    /// key as the engine's own sessions, with `context` (e.g. the HTTP session id)
    /// bound in as associated data, domain-separated from the engine's sessions.
    /// [`open_blob`](Self::open_blob) with the same `context` is the inverse.
    ///
    /// # Errors
    /// [`Error::ServerError`] if sealing fails.
    pub fn seal_blob<R: CryptoRng + ?Sized>(
        &self,
        context: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        seal_random(self.config.session_seal_key.expose(), rng, &blob_aad(context), plaintext)
    }

    /// Opens what [`seal_blob`](Self::seal_blob) sealed under `context`; `None` when
    /// it was tampered with, sealed under another key, or moved from another context.
    #[must_use]
    pub fn open_blob(&self, context: &[u8], sealed: &[u8]) -> Option<SecretBytes> {
        open_random(self.config.session_seal_key.expose(), &blob_aad(context), sealed)
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
        if self.config.null_protocol {
            return crate::null::handle(msg, &self.config);
        }
        let mut account = None;
        let result = match msg {
            ClientMessage::RegistrationPairing(m) => {
                self.registration_pairing(&m, peer, now_ms, rng, &mut account).await.map(Outcome::Continue)
            }
            ClientMessage::RegistrationSendPassword(m) => {
                self.registration_password(&m, now_ms, &mut account).await
            }
            ClientMessage::AuthPairing(m) => {
                self.auth_pairing(&m, peer, now_ms, rng, &mut account).await.map(Outcome::Continue)
            }
            ClientMessage::AuthClientProofGeneration(m) => self.auth_proof(&m, now_ms, &mut account).await,
        };
        result.unwrap_or_else(|error| Outcome::failed(error, account))
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
            Err(error) => Outcome::failed(error, None),
        }
    }

    /// Refuses early, before any DH or keygen work, what the insert would refuse.
    async fn probe_session(&self, key: &SessionKey, peer: &str, now_ms: u64) -> Result<()> {
        insert_result(self.sessions.probe(key, peer, now_ms).await?)
    }

    /// Seals `state` under the server's key with the session key as associated
    /// data (SPEC 5), then stores it.
    async fn store_session<R: CryptoRng + Send + ?Sized>(
        &self,
        key: &SessionKey,
        peer: &str,
        state: SecretBytes,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<()> {
        let len = state.len();
        self.store_session_with(key, peer, len, |out| out.extend_from_slice(&state), now_ms, rng).await
    }

    /// [`store_session`](Self::store_session) for a state that `write` appends,
    /// `len` bytes exactly, straight into the buffer that is then sealed in place
    /// (no separate plaintext buffer to fill, copy and wipe).
    async fn store_session_with<R: CryptoRng + Send + ?Sized>(
        &self,
        key: &SessionKey,
        peer: &str,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>),
        now_ms: u64,
        rng: &mut R,
    ) -> Result<()> {
        let expires_ms = now_ms.saturating_add(self.config.session_ttl_ms);
        let (aad, aad_len) = session_aad(key, expires_ms);
        let padded = len.div_ceil(SEAL_RUN) * SEAL_RUN;
        // The expiry travels in the clear beside the seal and is bound into it, so
        // whoever can write the store cannot revive a session past its TTL.
        let mut blob = SecretBytes::new(Vec::with_capacity(8 + XNONCE_LEN + padded + TAG_LEN));
        blob.extend_from_slice(&expires_ms.to_be_bytes());
        blob.extend_from_slice(&[0u8; XNONCE_LEN]);
        write(&mut blob);
        // The room was reserved up front: the plaintext was never moved (and so left
        // behind in a freed allocation).
        debug_assert_eq!(blob.len(), 8 + XNONCE_LEN + len);
        // Zero padding, which the state decoders skip (`codec::Reader::end`).
        blob.resize(8 + XNONCE_LEN + padded, 0);
        seal_random_in_place(self.config.session_seal_key.expose(), rng, &aad[..aad_len], &mut blob, 8)?;
        insert_result(self.sessions.insert(key, peer, blob, now_ms, self.config.session_ttl_ms).await?)
    }

    /// Takes and opens a session. A blob that does not open (tampered, sealed
    /// under another key, moved from another session key) is `unknown_session`.
    async fn take_session(&self, phase: Phase, nonce: &str, now_ms: u64) -> Result<SecretBytes> {
        let combined = CombinedNonce::parse(nonce)?;
        self.take_session_key(&SessionKey::new(phase, &combined.client), now_ms).await
    }

    /// [`take_session`](Self::take_session) for a known session key.
    async fn take_session_key(&self, key: &SessionKey, now_ms: u64) -> Result<SecretBytes> {
        let key = *key;
        let blob = self.sessions.take(&key, now_ms).await?.ok_or(Error::UnknownSession)?;
        let expiry = blob.first_chunk::<8>().ok_or(Error::UnknownSession)?;
        let expires_ms = u64::from_be_bytes(*expiry);
        let (aad, aad_len) = session_aad(&key, expires_ms);
        let state = open_random_owned(self.config.session_seal_key.expose(), &aad[..aad_len], blob, 8)
            .ok_or(Error::UnknownSession)?;
        if expires_ms <= now_ms {
            return Err(Error::UnknownSession);
        }
        Ok(state)
    }

    async fn registration_pairing<R: CryptoRng + Send + ?Sized>(
        &self,
        msg: &crate::message::RegistrationPairing,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
        account: &mut Option<String>,
    ) -> Result<ServerMessage> {
        if !self.config.registration_open {
            return Err(Error::Unsupported("registration is closed on this server".into()));
        }
        let req = RegistrationRequest::parse(msg, &self.config)?;
        *account = Some(req.username().to_owned());
        let key = req.session_key();
        self.probe_session(&key, peer, now_ms).await?;
        // Cheap refusal before any DH work; the insert at R3 is the real guard.
        if self.credentials.read(req.username()).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        let (reply, pending) = req.respond(rng, &self.config)?;
        self.store_session(&key, peer, pending.to_bytes(), now_ms, rng).await?;
        Ok(ServerMessage::RegistrationPairing(reply))
    }

    async fn registration_password(
        &self,
        msg: &crate::message::RegistrationSendPassword,
        now_ms: u64,
        account: &mut Option<String>,
    ) -> Result<Outcome> {
        let state = self.take_session(Phase::Registration, &msg.nonce, now_ms).await?;
        let pending = PendingRegistration::from_bytes(&state)?;
        *account = Some(pending.username().to_owned());
        let received = pending.receive_password(msg, now_ms / 1000)?;
        match self.credentials.insert(received.record()).await? {
            Inserted::Inserted => {
                let shape = RecordShape::of(received.record());
                self.mock_profile.write().unwrap_or_else(PoisonError::into_inner).add(shape);
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
        account: &mut Option<String>,
    ) -> Result<ServerMessage> {
        let req = AuthRequest::parse(msg, &self.config)?;
        let result = self.auth_pairing_parsed(req, peer, now_ms, rng).await;
        if result.is_err() {
            // The name parsed (it is the normalised `req.username()`): the failure
            // concerns that account. Named only on failure, the one time it is read.
            *account = Some(msg.username.clone());
        }
        result
    }

    async fn auth_pairing_parsed<R: CryptoRng + Send + ?Sized>(
        &self,
        req: AuthRequest,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<ServerMessage> {
        let key = req.session_key();
        self.probe_session(&key, peer, now_ms).await?;
        let record = self.credentials.read(req.username()).await?;
        let (reply, pending) = {
            let profile = self.mock_profile.read().unwrap_or_else(PoisonError::into_inner);
            req.continue_with_key(record, rng, &self.config, &profile, &self.mock_key)?
        };
        let len = pending.encoded_len();
        self.store_session_with(&key, peer, len, |out| pending.write_into(out), now_ms, rng).await?;
        Ok(ServerMessage::AuthPairing(reply))
    }

    async fn auth_proof(
        &self,
        msg: &crate::message::AuthClientProof,
        now_ms: u64,
        account: &mut Option<String>,
    ) -> Result<Outcome> {
        let state = self.take_session(Phase::Authentication, &msg.nonce, now_ms).await?;
        let pending = PendingAuth::from_bytes(&state)?;
        match pending.receive_proof_naming(msg) {
            Ok((proof, auth)) => Ok(Outcome::Authenticated { reply: ServerMessage::AuthProof(proof), auth }),
            Err((error, username)) => {
                *account = Some(username);
                Err(error)
            }
        }
    }

    /// Standard SCRAM (RFC 5802): parses and checks the client-first-message,
    /// reads the record and continues with it (with the engine's mock profile for
    /// an unknown user). Returns the server-first-message (not base64) and the
    /// state to keep until the client-final-message.
    ///
    /// An RFC 7804 style exchange over two HTTP requests, parked in between:
    ///
    /// ```
    /// use rand_core::SeedableRng;
    /// use scram_dh::pair::block_on;
    /// use scram_dh::sasl::client::SaslClient;
    /// use scram_dh::sasl::{ClientChannel, ServerChannel};
    /// use scram_dh::{ClientConfig, ClientKeys, CredentialStore, HostKey, Labels, MemoryCredentialStore,
    ///     MemorySessionStore, Password, ServerConfig, ServerEngine};
    ///
    /// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    /// let config = ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32]);
    /// let engine = ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::default())?;
    /// let salted = scram_dh::keys::salted_password(&Password::new("pencil"), &[9; 32], 4096)?;
    /// block_on(engine.credentials().insert(&ClientKeys::rfc(&salted).record("user", &[9; 32], 4096, 0, Labels::Rfc)))
    ///     .map_err(scram_dh::Error::from)?;
    ///
    /// let client = SaslClient::new("user", &Password::new("pencil"), ClientChannel::Unsupported,
    ///     &ClientConfig::default(), &mut rng)?;
    /// // Request 1: client-first in, server-first and a sid out.
    /// let (server_first, pending) = block_on(engine.sasl_start(client.mechanism(),
    ///     client.client_first().as_bytes(), ServerChannel::None, &mut rng)).map_err(|f| f.error)?;
    /// let sid = block_on(engine.sasl_park(pending, "192.0.2.1", 0, &mut rng)).map_err(|f| f.error)?;
    /// let client = client.receive_server_first(server_first.as_bytes())?;
    /// // Request 2: sid and client-final in, server-final out.
    /// let pending = block_on(engine.sasl_resume(&sid, 5)).map_err(|f| f.error)?;
    /// let (server_final, auth) = pending.receive_final(client.client_final().as_bytes()).map_err(|f| f.error)?;
    /// client.receive_server_final(server_final.as_bytes())?;
    /// assert_eq!(auth.username(), "user");
    /// assert!(block_on(engine.sasl_resume(&sid, 6)).is_err(), "single use");
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// A [`SaslFailure`] with the `e=` value to send: see
    /// [`ClientFirstRequest::parse`]; `other-error` when the store fails.
    pub async fn sasl_start<R: CryptoRng + Send + ?Sized>(
        &self,
        mechanism: &str,
        client_first: &[u8],
        channel: ServerChannel<'_>,
        rng: &mut R,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        let request = ClientFirstRequest::parse(mechanism, client_first, channel)?;
        self.sasl_continue(request, rng).await
    }

    /// The second half of [`sasl_start`](Self::sasl_start), for fronts that check
    /// the parsed username (penalties) before any store read: reads the record and
    /// answers with the engine's mock profile.
    ///
    /// # Errors
    /// `other-error` when the credential store fails.
    pub async fn sasl_continue<R: CryptoRng + Send + ?Sized>(
        &self,
        request: ClientFirstRequest,
        rng: &mut R,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        let username = request.username().to_owned();
        let record = self
            .credentials
            .read(&username)
            .await
            .map_err(|e| SaslFailure::new(e.into(), Some(username.clone())))?;
        let profile = self.mock_profile.read().unwrap_or_else(PoisonError::into_inner);
        request.continue_with_key(record, rng, &self.config, &profile, &self.mock_key)
    }

    /// HTTP (RFC 7804): seals `pending` into the session store (phase
    /// [`Phase::Sasl`], key = sid, the engine's TTL) and returns the sid: 32 random
    /// bytes as 64 lowercase hex characters.
    ///
    /// # Errors
    /// `no-resources` ([`Error::Busy`]) when the session store is full (globally
    /// or for `peer`); `other-error` when it fails.
    pub async fn sasl_park<R: CryptoRng + Send + ?Sized>(
        &self,
        pending: PendingSasl,
        peer: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<String, SaslFailure> {
        let username = Some(pending.username().to_owned());
        let sid = Nonce::random(rng);
        let key = SessionKey::new(Phase::Sasl, &sid);
        let state = pending.to_bytes();
        drop(pending);
        self.store_session(&key, peer, state, now_ms, rng)
            .await
            .map_err(|e| SaslFailure::new(e, username))?;
        Ok(sid.to_hex())
    }

    /// Takes and opens an exchange parked by [`sasl_park`](Self::sasl_park)
    /// (single use: a second resume of the same sid fails).
    ///
    /// # Errors
    /// `other-error` with [`Error::UnknownSession`] for an unknown, expired,
    /// consumed, malformed or tampered sid or blob; `other-error` when the store fails.
    pub async fn sasl_resume(&self, sid: &str, now_ms: u64) -> Result<PendingSasl, SaslFailure> {
        let unknown = || SaslFailure::new(Error::UnknownSession, None);
        let sid = Nonce::parse(sid).map_err(|_| unknown())?;
        let state = self
            .take_session_key(&SessionKey::new(Phase::Sasl, &sid), now_ms)
            .await
            .map_err(|e| SaslFailure::new(e, None))?;
        PendingSasl::from_bytes(&state).map_err(|_| unknown())
    }
}

fn insert_result(answer: SessionInsert) -> Result<()> {
    match answer {
        SessionInsert::Inserted => Ok(()),
        SessionInsert::Exists => Err(Error::NonceReused),
        SessionInsert::Full => Err(Error::Busy),
    }
}

/// The associated data of a blob sealed for another store: a prefix no session
/// key string starts with (those start `reg:`, `auth:` or `sasl:`), then `context`.
fn blob_aad(context: &[u8]) -> Vec<u8> {
    let mut aad = b"scram-dh blob\0".to_vec();
    aad.extend_from_slice(context);
    aad
}

/// The associated data of a sealed session: its key string, `@`, and its expiry as
/// u64 big-endian (SPEC 5), in a fixed buffer with its length (no allocation).
fn session_aad(key: &SessionKey, expires_ms: u64) -> ([u8; SessionKey::MAX_KEY_LEN + 9], usize) {
    let mut aad = [0u8; SessionKey::MAX_KEY_LEN + 9];
    let (key_bytes, len) = key.key_bytes();
    aad[..len].copy_from_slice(&key_bytes[..len]);
    aad[len] = b'@';
    aad[len + 1..len + 9].copy_from_slice(&expires_ms.to_be_bytes());
    (aad, len + 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The associated data stays `key string || "@" || expiry (u64 BE)`, so blobs
    /// sealed by earlier builds (a shared store) still open.
    #[test]
    fn session_aad_layout() {
        for phase in [Phase::Registration, Phase::Authentication, Phase::Sasl] {
            let key = SessionKey::new(phase, &Nonce::from_bytes([0x3c; 32]));
            let mut want = key.to_key_string().into_bytes();
            want.push(b'@');
            want.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
            let (aad, len) = session_aad(&key, 0x0102_0304_0506_0708);
            assert_eq!(&aad[..len], &want[..]);
        }
    }
}
