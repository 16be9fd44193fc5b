//! Server side of in-band registration. The caller does the I/O between steps:
//! check the username is free, keep [`PendingRegistration`] in a session store,
//! insert the record, and only then send R4 (SPEC 7: "R4 is sent only after the
//! record is durably committed").

use rand_core::CryptoRng;

use super::{Transcript, registration_keys};
use crate::codec::{Reader, Writer};
use crate::config::ServerConfig;
use crate::crypto::{open, seal};
use crate::dh::{Group, PublicKey};
use crate::error::{Error, Result};
use crate::keys::{ClientKeys, KeyLabels};
use crate::message::{
    Base64, RegistrationKeysGeneration, RegistrationPairing, RegistrationPairingReply,
    RegistrationSendPassword,
};
use crate::nonce::{CombinedNonce, Nonce};
use crate::record::{Labels, Record};
use crate::secret::{SaltedPassword, SecretBytes, SymmetricKey};
use crate::session::{Phase, SessionKey};

/// A parsed, validated R1.
#[derive(Debug)]
pub struct RegistrationRequest {
    username: String,
    group: Group,
    client_public: PublicKey,
    client_nonce: Nonce,
    labels: Labels,
}

impl RegistrationRequest {
    /// Validates R1: normalised username, an offered group, a valid public key
    /// (range and subgroup), a well-formed nonce, a label kind this server allows.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`], [`Error::Unsupported`], [`Error::InvalidPublicKey`].
    pub fn parse(msg: &RegistrationPairing, config: &ServerConfig) -> Result<Self> {
        crate::username::require_normalized(&msg.username)?;
        let client_nonce = Nonce::parse(&msg.client_nonce)?;
        let labels = Labels::from_name(&msg.labels)
            .ok_or_else(|| Error::Unsupported("labels must be \"random\" or \"rfc\"".into()))?;
        if labels == Labels::Rfc && !config.allow_rfc_labels {
            return Err(Error::Unsupported("this server does not register RFC labels".into()));
        }
        let group = config.group(&msg.group)?;
        let client_public = PublicKey::from_bytes(group, msg.public_key.as_bytes())?;
        Ok(Self { username: msg.username.clone(), group, client_public, client_nonce, labels })
    }

    /// The username to check for existence before spending a DH operation.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The session key this registration will live under.
    #[must_use]
    pub fn session_key(&self) -> SessionKey {
        SessionKey::new(Phase::Registration, &self.client_nonce)
    }

    /// Generates the server's ephemeral key, salt and nonce, signs the transcript
    /// and builds R2 plus the state to keep until R3.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] when the shared secret is degenerate.
    pub fn respond<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
        config: &ServerConfig,
    ) -> Result<(RegistrationPairingReply, PendingRegistration)> {
        let secret = self.group.generate(rng);
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        let nonce = CombinedNonce { client: self.client_nonce, server: Nonce::random(rng) };
        let nonce_wire = nonce.to_wire();
        let host_key = config.host_key.public_key();
        let server_public = secret.public_key().clone();
        let h = Transcript {
            username: &self.username,
            group: self.group.name(),
            client_public_key: self.client_public.as_bytes(),
            client_nonce: &self.client_nonce.to_hex(),
            labels: self.labels.as_str(),
            salt: &salt,
            ic: config.ic,
            server_public_key: server_public.as_bytes(),
            nonce: &nonce_wire,
            host_key: &host_key,
        }
        .hash();
        let signature = config.host_key.sign(&h);
        let z = secret.diffie_hellman(&self.client_public)?;
        let (k_c2s, k_s2c, key_labels) = registration_keys(&h, &z, self.labels);
        let reply = RegistrationPairingReply {
            salt: Base64(salt.to_vec()),
            ic: config.ic,
            public_key: Base64(server_public.as_bytes().to_vec()),
            nonce: nonce_wire,
            host_key: Base64(host_key.to_vec()),
            signature: Base64(signature.to_vec()),
        };
        let pending = PendingRegistration {
            username: self.username,
            labels: self.labels,
            salt,
            ic: config.ic,
            h,
            k_c2s,
            k_s2c,
            key_labels,
            nonce,
        };
        Ok((reply, pending))
    }
}

/// The server's state between R2 and R3. Serialises to secret bytes for a session store.
#[derive(Debug)]
pub struct PendingRegistration {
    username: String,
    labels: Labels,
    salt: [u8; 32],
    ic: u32,
    h: [u8; 32],
    k_c2s: SymmetricKey,
    k_s2c: SymmetricKey,
    key_labels: KeyLabels,
    nonce: CombinedNonce,
}

// 'r': the labels are part of the state since they are derived at R1 (SPEC 7).
const STATE_VERSION: u8 = 0x72;

impl PendingRegistration {
    /// The username being registered.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Encodes the state, in clear (secrets included): the engine seals it before
    /// any session store sees it (SPEC 5). Public for corpus generation; its
    /// inverse is crate-private.
    #[must_use]
    pub fn to_bytes(&self) -> SecretBytes {
        Writer::new(STATE_VERSION)
            .bytes(self.username.as_bytes())
            .bytes(self.labels.as_str().as_bytes())
            .bytes(&self.salt)
            .u32(self.ic)
            .bytes(&self.h)
            .bytes(self.k_c2s.expose())
            .bytes(self.k_s2c.expose())
            .bytes(self.key_labels.client_label())
            .bytes(self.key_labels.server_label())
            .bytes(self.nonce.client.as_bytes())
            .bytes(self.nonce.server.as_bytes())
            .finish()
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote. Crate-private: whoever
    /// could call it with bytes of their choosing could mint any user's
    /// authentication (issue 9); the engine calls it only on opened seals.
    ///
    /// # Errors
    /// [`Error::ServerError`] for bytes that are not such a state.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let username = r.string()?;
        let labels = Labels::from_name(&r.string()?)
            .ok_or_else(|| Error::ServerError("corrupt session state".into()))?;
        let out = Self {
            username,
            labels,
            salt: r.array32()?,
            ic: r.u32()?,
            h: r.array32()?,
            k_c2s: SymmetricKey::from_bytes(r.array32()?),
            k_s2c: SymmetricKey::from_bytes(r.array32()?),
            key_labels: KeyLabels::from_parts(
                zeroize::Zeroizing::new(r.bytes()?.to_vec()),
                zeroize::Zeroizing::new(r.bytes()?.to_vec()),
            ),
            nonce: CombinedNonce {
                client: Nonce::from_bytes(r.array32()?),
                server: Nonce::from_bytes(r.array32()?),
            },
        };
        r.end()?;
        Ok(out)
    }

    /// Checks R3's nonce, decrypts the salted password and derives the record with
    /// the labels fixed at R1 (SPEC 7). The session is consumed whatever the outcome.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`]; [`Error::Decryption`] for a tampered `secret_key`;
    /// [`Error::InvalidMessage`] when it does not hold 32 bytes.
    pub fn receive_password(self, msg: &RegistrationSendPassword, now_secs: u64) -> Result<PasswordReceived> {
        self.nonce.check(&msg.nonce)?;
        let plain = open(&self.k_c2s, 0, &self.h, msg.secret_key.as_bytes())
            .ok_or(Error::Decryption("secret_key"))?;
        let salted = SaltedPassword::from_slice(&plain)
            .ok_or_else(|| Error::invalid("secret_key must hold 32 bytes"))?;
        let keys = ClientKeys::with_labels(&salted, &self.key_labels);
        let record = keys.record(&self.username, &self.salt, self.ic, now_secs, self.labels);
        let reply = RegistrationKeysGeneration {
            secret_client_key: Base64(seal(&self.k_s2c, 0, &self.h, self.key_labels.client_label())?),
            secret_server_key: Base64(seal(&self.k_s2c, 1, &self.h, self.key_labels.server_label())?),
            nonce: self.nonce.to_wire(),
        };
        Ok(PasswordReceived { record, reply })
    }
}

/// The record is ready; R4 is released only by [`committed`](Self::committed).
#[derive(Debug)]
pub struct PasswordReceived {
    record: Record,
    reply: RegistrationKeysGeneration,
}

impl PasswordReceived {
    /// The record to insert (insert-if-absent).
    #[must_use]
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Call after the store confirmed the insert; returns R4.
    #[must_use]
    pub fn committed(self) -> RegistrationKeysGeneration {
        self.reply
    }
}
