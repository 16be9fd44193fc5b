//! Client side of authentication: A1 → (A2) → A3 → (A4) → [`ClientAuthenticated`].

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

use super::{ChannelBinding, auth_message, session_keys};
use crate::credential::ClientSecret;
use crate::crypto::{hmac_secret, xor32};
use crate::dh::{EphemeralSecret, Group, PublicKey};
use crate::error::{Error, Result};
use crate::keys::{ClientConfig, ClientKeys, MIN_ITERATIONS, salted_password};
use crate::message::{AuthClientProof, AuthPairing, AuthPairingReply, AuthProof, Base64, ClientMessage};
use crate::nonce::{CombinedNonce, Nonce};
use crate::secret::SessionKeys;
use crate::step::Step;

/// An authentication in progress: A1 has been produced.
///
/// ```
/// use rand_core::SeedableRng;
/// use scram_dh::auth::client::AuthClient;
/// use scram_dh::{ClientConfig, ClientSecret, Password};
///
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
/// let secret = ClientSecret::Password(Password::new("pencil"));
/// let step = AuthClient::start(&mut rng, "user", secret, None, ClientConfig::default()).unwrap();
/// assert!(step.message.to_json().starts_with(r#"{"type":"auth_pairing","username":"user""#));
/// ```
#[derive(Debug)]
pub struct AuthClient {
    username: String,
    client_nonce: Nonce,
    secret: ClientSecret,
    channel: Option<EphemeralSecret>,
    config: ClientConfig,
}

impl AuthClient {
    /// Builds A1; with `channel` set, a DH key is sent for an encrypted channel.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the username is not valid under SASLprep.
    pub fn start<R: CryptoRng + ?Sized>(
        rng: &mut R,
        username: &str,
        secret: ClientSecret,
        channel: Option<Group>,
        config: ClientConfig,
    ) -> Result<Step<ClientMessage, Self>> {
        let username = crate::username::normalize(username)?;
        let client_nonce = Nonce::random(rng);
        let channel = channel.map(|g| g.generate(rng));
        let message = ClientMessage::AuthPairing(AuthPairing {
            username: username.clone(),
            client_nonce: client_nonce.to_hex(),
            group: channel.as_ref().map(|s| s.group().name().to_owned()),
            public_key: channel.as_ref().map(|s| Base64::from(s.public_key().as_bytes())),
        });
        Ok(Step { message, state: Self { username, client_nonce, secret, channel, config } })
    }

    /// Checks A2 and builds A3 with the client proof.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`] when A2 does not extend our nonce;
    /// [`Error::IterationCount`]; [`Error::InvalidPublicKey`]; [`Error::InvalidMessage`]
    /// when the channel key is missing or unexpected.
    pub fn receive_pairing(
        self,
        reply: AuthPairingReply,
    ) -> Result<Step<ClientMessage, AwaitingServerSignature>> {
        let nonce = CombinedNonce::parse(&reply.nonce)?;
        if nonce.client != self.client_nonce {
            return Err(Error::NonceMismatch);
        }
        if reply.salt.as_bytes().is_empty() {
            return Err(Error::invalid("salt must not be empty"));
        }
        let keys = match &self.secret {
            ClientSecret::Keys(keys) => {
                if reply.ic < MIN_ITERATIONS {
                    return Err(Error::IterationCount {
                        ic: reply.ic,
                        min: MIN_ITERATIONS,
                        max: self.config.max_iterations,
                    });
                }
                keys.clone()
            }
            ClientSecret::Password(pw) => {
                self.config.check_ic(reply.ic)?;
                ClientKeys::rfc(&salted_password(pw, reply.salt.as_bytes(), reply.ic)?)
            }
        };
        // The parse above makes the first half of `reply.nonce` our own nonce's hex.
        let (client_nonce_hex, _) = reply.nonce.split_at(crate::nonce::NONCE_HEX_LEN);
        let (am, z) = match (self.channel, &reply.public_key) {
            (None, None) => (
                auth_message(
                    &self.username,
                    client_nonce_hex,
                    &reply.nonce,
                    reply.salt.as_bytes(),
                    reply.ic,
                    None,
                ),
                None,
            ),
            (Some(secret), Some(server_pk)) => {
                let group = secret.group();
                let server_public = PublicKey::from_bytes(group, server_pk.as_bytes())?;
                let cb = ChannelBinding {
                    group,
                    client_public_key: secret.public_key().as_bytes(),
                    server_public_key: server_public.as_bytes(),
                };
                let am = auth_message(
                    &self.username,
                    client_nonce_hex,
                    &reply.nonce,
                    reply.salt.as_bytes(),
                    reply.ic,
                    Some(&cb),
                );
                (am, Some(secret.diffie_hellman(&server_public)?))
            }
            (None, Some(_)) => return Err(Error::invalid("server sent a public key that was not asked for")),
            (Some(_), None) => return Err(Error::invalid("server omitted the channel public key")),
        };
        let stored_key = keys.stored_key();
        // ClientSignature and ServerSignature are secrets until sent or checked (F6).
        let client_signature = hmac_secret(stored_key.expose(), &[am.as_bytes()]);
        let client_proof = xor32(keys.client_key.expose(), &client_signature);
        let server_signature = hmac_secret(keys.server_key.expose(), &[am.as_bytes()]);
        let session_keys = z.map(|z| session_keys(&keys.client_key, &am, &z));
        let message = ClientMessage::AuthClientProofGeneration(AuthClientProof {
            client_proof: Base64(client_proof.to_vec()),
            nonce: reply.nonce,
        });
        let state = AwaitingServerSignature { username: self.username, server_signature, session_keys };
        Ok(Step { message, state })
    }
}

/// A3 has been produced; waiting for the server's signature.
#[derive(Debug)]
pub struct AwaitingServerSignature {
    username: String,
    server_signature: zeroize::Zeroizing<[u8; 32]>,
    session_keys: Option<SessionKeys>,
}

impl AwaitingServerSignature {
    /// Verifies the server signature in constant time.
    ///
    /// # Errors
    /// [`Error::ServerSignature`] when it does not verify (the server does not know
    /// the credential); [`Error::InvalidMessage`] when it is not 32 bytes.
    pub fn finish(self, msg: AuthProof) -> Result<ClientAuthenticated> {
        let sig: [u8; 32] = msg.server_signature.array("server_signature")?;
        if !bool::from(sig.ct_eq(&*self.server_signature)) {
            return Err(Error::ServerSignature);
        }
        Ok(ClientAuthenticated {
            username: self.username,
            session_keys: self.session_keys,
            session_id: msg.session_id,
        })
    }
}

/// Proof, on the client, that the server proved knowledge of the credential.
#[derive(Debug)]
pub struct ClientAuthenticated {
    username: String,
    session_keys: Option<SessionKeys>,
    session_id: Option<String>,
}

impl ClientAuthenticated {
    /// The authenticated username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Channel keys, when a channel was asked for.
    #[must_use]
    pub fn session_keys(&self) -> Option<&SessionKeys> {
        self.session_keys.as_ref()
    }

    /// Takes the channel keys out.
    #[must_use]
    pub fn into_session_keys(self) -> Option<SessionKeys> {
        self.session_keys
    }

    /// The HTTP session id, when the server gave one.
    #[must_use]
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
}
