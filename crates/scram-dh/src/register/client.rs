//! Client side of in-band registration: R1 → (R2) → R3 → (R4) → credential.

use rand_core::CryptoRng;

use super::{Transcript, registration_keys};
use crate::config::Step;
use crate::credential::{CREDENTIAL_FORMAT, ClientConfig, ClientCredential, ClientKeys, salted_password};
use crate::crypto::{open, seal};
use crate::dh::{EphemeralSecret, Group, PublicKey};
use crate::error::{Error, Result};
use crate::hostkey::{self, Fingerprint};
use crate::message::{
    Base64, ClientMessage, RegistrationKeysGeneration, RegistrationPairing, RegistrationPairingReply,
    RegistrationSendPassword,
};
use crate::nonce::{CombinedNonce, Nonce};
use crate::record::{Labels, RFC_CLIENT_LABEL, RFC_SERVER_LABEL};
use crate::secret::{Password, SaltedPassword, SymmetricKey};

/// How the client decides whether to trust the server's host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Refuse any key whose fingerprint is not this one.
    Pinned(Fingerprint),
    /// Accept the key presented (first contact); the caller records
    /// [`AwaitingKeys::host_key_fingerprint`] before sending R3 if it wants to.
    TrustOnFirstUse,
}

/// A registration in progress: R1 has been produced.
///
/// ```
/// use rand_core::SeedableRng;
/// use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
/// use scram_dh::{ClientConfig, Group, Labels, Password};
///
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let step = RegistrationClient::start(
///     &mut rng, "alice", Password::new("correct horse"), Group::X25519,
///     Labels::Random, HostKeyCheck::TrustOnFirstUse, ClientConfig::default(),
/// ).unwrap();
/// assert!(step.message.to_json().starts_with(r#"{"type":"registration_pairing","username":"alice""#));
/// ```
#[derive(Debug)]
pub struct RegistrationClient {
    username: String,
    password: Password,
    labels: Labels,
    secret: EphemeralSecret,
    client_nonce: Nonce,
    check: HostKeyCheck,
    config: ClientConfig,
}

impl RegistrationClient {
    /// Builds R1.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the username is not valid under SASLprep or too long.
    pub fn start<R: CryptoRng + ?Sized>(
        rng: &mut R,
        username: &str,
        password: Password,
        group: Group,
        labels: Labels,
        check: HostKeyCheck,
        config: ClientConfig,
    ) -> Result<Step<ClientMessage, Self>> {
        let username = crate::username::normalize(username)?;
        let secret = group.generate(rng);
        let client_nonce = Nonce::random(rng);
        let message = ClientMessage::RegistrationPairing(RegistrationPairing {
            username: username.clone(),
            group: group.name().to_owned(),
            public_key: Base64::from(secret.public_key().as_bytes()),
            client_nonce: client_nonce.to_hex(),
            labels: labels.as_str().to_owned(),
        });
        Ok(Step { message, state: Self { username, password, labels, secret, client_nonce, check, config } })
    }

    /// Checks R2 (nonce, iteration count, host key and its signature, server
    /// public key) and builds R3 carrying the encrypted salted password.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`] if R2 does not extend our nonce; [`Error::IterationCount`];
    /// [`Error::HostKeyMismatch`] for a key that is not the pinned one;
    /// [`Error::BadHostSignature`]; [`Error::InvalidPublicKey`];
    /// [`Error::InvalidMessage`] for malformed fields.
    pub fn receive_pairing(
        self,
        reply: RegistrationPairingReply,
    ) -> Result<Step<ClientMessage, AwaitingKeys>> {
        let nonce = CombinedNonce::parse(&reply.nonce)?;
        if nonce.client != self.client_nonce {
            return Err(Error::NonceMismatch);
        }
        let salt: [u8; 32] = reply.salt.array("salt")?;
        self.config.check_ic(reply.ic)?;
        let host_key: [u8; 32] = reply.host_key.array("host_key")?;
        let signature: [u8; 64] = reply.signature.array("signature")?;
        let presented = Fingerprint::of(&host_key);
        if let HostKeyCheck::Pinned(expected) = self.check
            && !expected.matches(&presented)
        {
            return Err(Error::HostKeyMismatch {
                expected: expected.to_string(),
                presented: presented.to_string(),
            });
        }
        let group = self.secret.group();
        let server_public = PublicKey::from_bytes(group, reply.public_key.as_bytes())?;
        let client_nonce_hex = self.client_nonce.to_hex();
        let h = Transcript {
            username: &self.username,
            group: group.name(),
            client_public_key: self.secret.public_key().as_bytes(),
            client_nonce: &client_nonce_hex,
            labels: self.labels.as_str(),
            salt: &salt,
            ic: reply.ic,
            server_public_key: server_public.as_bytes(),
            nonce: &reply.nonce,
            host_key: &host_key,
        }
        .hash();
        hostkey::verify(&host_key, &h, &signature)?;
        let z = self.secret.diffie_hellman(&server_public)?;
        let (k_c2s, k_s2c) = registration_keys(&h, &z);
        let salted = salted_password(&self.password, &salt, reply.ic)?;
        let secret_key = seal(&k_c2s, 0, &h, salted.expose());
        let message = ClientMessage::RegistrationSendPassword(RegistrationSendPassword {
            secret_key: Base64(secret_key),
            nonce: reply.nonce,
        });
        let state = AwaitingKeys {
            username: self.username,
            labels: self.labels,
            salt,
            ic: reply.ic,
            h,
            k_s2c,
            salted,
            nonce,
            host_key: presented,
        };
        Ok(Step { message, state })
    }
}

/// R3 has been produced; waiting for R4.
#[derive(Debug)]
pub struct AwaitingKeys {
    username: String,
    labels: Labels,
    salt: [u8; 32],
    ic: u32,
    h: [u8; 32],
    k_s2c: SymmetricKey,
    salted: SaltedPassword,
    nonce: CombinedNonce,
    host_key: Fingerprint,
}

impl AwaitingKeys {
    /// The fingerprint of the host key that signed this registration (for known-hosts files).
    #[must_use]
    pub fn host_key_fingerprint(&self) -> Fingerprint {
        self.host_key
    }

    /// Decrypts the labels from R4 and derives the client's credential.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`]; [`Error::Decryption`] for a tampered label;
    /// [`Error::InvalidMessage`] when the labels are not what was asked for.
    pub fn finish(self, msg: RegistrationKeysGeneration) -> Result<ClientCredential> {
        self.nonce.check(&msg.nonce)?;
        let client_label = open(&self.k_s2c, 0, &self.h, msg.secret_client_key.as_bytes())
            .ok_or(Error::Decryption("secret_client_key"))?;
        let server_label = open(&self.k_s2c, 1, &self.h, msg.secret_server_key.as_bytes())
            .ok_or(Error::Decryption("secret_server_key"))?;
        let ok = match self.labels {
            Labels::Rfc => {
                client_label.as_slice() == RFC_CLIENT_LABEL && server_label.as_slice() == RFC_SERVER_LABEL
            }
            Labels::Random => {
                client_label.len() == 32 && server_label.len() == 32 && client_label != server_label
            }
        };
        if !ok {
            return Err(Error::invalid("labels are not of the kind requested"));
        }
        let keys = ClientKeys::derive(&self.salted, &client_label, &server_label);
        Ok(ClientCredential {
            format: CREDENTIAL_FORMAT.to_owned(),
            username: self.username,
            salt: self.salt.to_vec(),
            ic: self.ic,
            labels: self.labels,
            client_key: keys.client_key,
            server_key: keys.server_key,
            server: None,
            host_key: Some(self.host_key),
            password: None,
        })
    }
}
