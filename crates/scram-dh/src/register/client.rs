//! Client side of in-band registration: R1 → (R2) → R3 → (R4) → credential.

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

use super::{Transcript, registration_keys};
use crate::credential::{CREDENTIAL_FORMAT, ClientCredential};
use crate::crypto::{open, seal};
use crate::dh::{EphemeralSecret, Group, PublicKey};
use crate::error::{Error, Result};
use crate::hostkey::{self, Fingerprint};
use crate::keys::{ClientConfig, ClientKeys, KeyLabels, salted_password};
use crate::message::{
    Base64, ClientMessage, RegistrationKeysGeneration, RegistrationPairing, RegistrationPairingReply,
    RegistrationSendPassword,
};
use crate::nonce::{CombinedNonce, Nonce};
use crate::record::Labels;
use crate::secret::{Password, SymmetricKey};
use crate::step::Step;

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
        let (k_c2s, k_s2c, labels) = registration_keys(&h, &z, self.labels);
        let salted = salted_password(&self.password, &salt, reply.ic)?;
        let secret_key = seal(&k_c2s, 0, &h, salted.expose())?;
        // The keys are known now, before R3 leaves (SPEC 7): a client that loses R4
        // after the server committed still holds a working credential.
        let keys = ClientKeys::with_labels(&salted, &labels);
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
            expected_labels: labels,
            keys,
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
    expected_labels: KeyLabels,
    keys: ClientKeys,
    nonce: CombinedNonce,
    host_key: Fingerprint,
}

impl AwaitingKeys {
    /// The fingerprint of the host key that signed this registration (for known-hosts files).
    #[must_use]
    pub fn host_key_fingerprint(&self) -> Fingerprint {
        self.host_key
    }

    /// The credential this registration will produce, marked
    /// [`unconfirmed`](ClientCredential::unconfirmed): save it *before* sending R3,
    /// so that a lost R4 (the server committed, then the connection died) leaves a
    /// working credential (finding L10). Both label kinds are known before R3.
    #[must_use]
    pub fn provisional_credential(&self) -> ClientCredential {
        self.credential(true)
    }

    fn credential(&self, unconfirmed: bool) -> ClientCredential {
        ClientCredential {
            format: CREDENTIAL_FORMAT.to_owned(),
            username: self.username.clone(),
            salt: self.salt.to_vec(),
            ic: self.ic,
            labels: self.labels,
            client_key: self.keys.client_key.clone(),
            server_key: self.keys.server_key.clone(),
            server: None,
            host_key: Some(self.host_key),
            password: None,
            unconfirmed,
        }
    }

    /// Decrypts the labels from R4, checks in constant time that they are the ones
    /// derived before R3 (the RFC strings, or SPEC 7's derived `random` labels),
    /// and returns the confirmed credential.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`]; [`Error::Decryption`] for a tampered label;
    /// [`Error::InvalidMessage`] when the labels differ from the expected ones.
    pub fn finish(self, msg: RegistrationKeysGeneration) -> Result<ClientCredential> {
        self.nonce.check(&msg.nonce)?;
        let client_label = open(&self.k_s2c, 0, &self.h, msg.secret_client_key.as_bytes())
            .ok_or(Error::Decryption("secret_client_key"))?;
        let server_label = open(&self.k_s2c, 1, &self.h, msg.secret_server_key.as_bytes())
            .ok_or(Error::Decryption("secret_server_key"))?;
        let received = KeyLabels::from_parts(client_label, server_label);
        if !bool::from(received.ct_eq(&self.expected_labels)) {
            return Err(Error::invalid("labels in R4 are not the ones derived for this registration"));
        }
        Ok(self.credential(false))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::message::{ClientMessage, ServerMessage};
    use crate::pair::Pair;

    /// Runs R1..R3 on a pair and returns the client's state and the server's R4.
    fn until_r4(pair: &mut Pair, user: &str, labels: Labels) -> (AwaitingKeys, RegistrationKeysGeneration) {
        let step = RegistrationClient::start(
            &mut pair.client_rng,
            user,
            Password::new("pw"),
            crate::Group::X25519,
            labels,
            HostKeyCheck::TrustOnFirstUse,
            ClientConfig::default(),
        )
        .unwrap();
        let r2 = pair.exchange(&step.message).unwrap().into_registration_pairing().unwrap();
        let step = step.state.receive_pairing(r2).unwrap();
        let ClientMessage::RegistrationSendPassword(_) = &step.message else { panic!() };
        let r4 = pair.exchange(&step.message).unwrap();
        let ServerMessage::RegistrationKeysGeneration(r4) = r4 else { panic!("{r4:?}") };
        (step.state, r4)
    }

    /// A server's R4 carrying `client`/`server` as labels, properly encrypted.
    fn forged_r4(state: &AwaitingKeys, client: &[u8], server: &[u8]) -> RegistrationKeysGeneration {
        RegistrationKeysGeneration {
            secret_client_key: Base64(seal(&state.k_s2c, 0, &state.h, client).unwrap()),
            secret_server_key: Base64(seal(&state.k_s2c, 1, &state.h, server).unwrap()),
            nonce: state.nonce.to_wire(),
        }
    }

    #[test]
    fn derived_labels_equal_r4_labels() {
        for labels in [Labels::Random, Labels::Rfc] {
            let mut pair = Pair::new(31);
            let (state, r4) = until_r4(&mut pair, "dl", labels);
            let client = open(&state.k_s2c, 0, &state.h, r4.secret_client_key.as_bytes()).unwrap();
            let server = open(&state.k_s2c, 1, &state.h, r4.secret_server_key.as_bytes()).unwrap();
            assert_eq!(client.as_slice(), state.expected_labels.client_label(), "{labels}");
            assert_eq!(server.as_slice(), state.expected_labels.server_label(), "{labels}");
            let provisional = state.provisional_credential();
            let cred = state.finish(r4).unwrap();
            assert!(provisional.unconfirmed && !cred.unconfirmed);
            assert_eq!(ClientCredential { unconfirmed: true, ..cred }, provisional);
        }
    }

    /// F12 and SPEC 7: a server that sends labels other than the derived ones (or,
    /// for `rfc`, other than the RFC strings) is refused. Before the fix any two
    /// distinct 32-byte labels were taken.
    #[test]
    fn f12_server_sending_other_labels_is_refused() {
        let mut pair = Pair::new(32);
        let (state, _) = until_r4(&mut pair, "o1", Labels::Random);
        let r4 = forged_r4(&state, &[1; 32], &[2; 32]);
        assert!(matches!(state.finish(r4), Err(Error::InvalidMessage(_))));

        // Right client label, wrong server label.
        let (state, _) = until_r4(&mut pair, "o2", Labels::Random);
        let right = state.expected_labels.client_label().to_vec();
        let r4 = forged_r4(&state, &right, &[2; 32]);
        assert!(matches!(state.finish(r4), Err(Error::InvalidMessage(_))));

        // Random asked for, RFC strings sent.
        let (state, _) = until_r4(&mut pair, "o3", Labels::Random);
        let r4 = forged_r4(&state, b"Client Key", b"Server Key");
        assert!(matches!(state.finish(r4), Err(Error::InvalidMessage(_))));

        // RFC asked for, other strings (same length and not) sent.
        let (state, _) = until_r4(&mut pair, "o4", Labels::Rfc);
        let r4 = forged_r4(&state, b"Client Kez", b"Server Key");
        assert!(matches!(state.finish(r4), Err(Error::InvalidMessage(_))));
        let (state, _) = until_r4(&mut pair, "o5", Labels::Rfc);
        let r4 = forged_r4(&state, &[1; 32], &[2; 32]);
        assert!(matches!(state.finish(r4), Err(Error::InvalidMessage(_))));

        // The genuine labels, re-encrypted, pass: the check is on content.
        let (state, _) = until_r4(&mut pair, "o6", Labels::Random);
        let (c, s) =
            (state.expected_labels.client_label().to_vec(), state.expected_labels.server_label().to_vec());
        let r4 = forged_r4(&state, &c, &s);
        assert!(state.finish(r4).is_ok());
    }
}
