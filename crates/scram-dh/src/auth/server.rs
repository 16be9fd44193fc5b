//! Server side of authentication. The core stops where the caller must read the
//! record (STYLE 3): `AuthRequest::parse` → `store.read(username)` →
//! `continue_with(record)` → keep [`PendingAuth`] in the session store → A3 →
//! [`PendingAuth::receive_proof`].

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::{ChannelBinding, auth_message, session_keys};
use crate::codec::Reader;
use crate::config::ServerConfig;
use crate::crypto::{HmacKey, hmac, hmac_secret, put_lp, sha256, xor32};
use crate::dh::{Group, PublicKey, SharedSecret};
use crate::error::{Error, Result};
use crate::message::{AuthClientProof, AuthPairing, AuthPairingReply, AuthProof, Base64};
use crate::mock::MockProfile;
use crate::nonce::{CombinedNonce, Nonce};
use crate::record::Record;
use crate::secret::{ClientKey, SecretBytes, ServerKey, SessionKeys, StoredKey};
use crate::session::{Phase, SessionKey};

/// A parsed, validated A1.
#[derive(Debug)]
pub struct AuthRequest {
    username: String,
    client_nonce: Nonce,
    channel: Option<PublicKey>,
}

impl AuthRequest {
    /// Validates A1.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] (bad name, nonce, or only one of group and
    /// public_key), [`Error::Unsupported`] (group), [`Error::InvalidPublicKey`].
    pub fn parse(msg: &AuthPairing, config: &ServerConfig) -> Result<Self> {
        crate::username::require_normalized(&msg.username)?;
        let client_nonce = Nonce::parse(&msg.client_nonce)?;
        let channel = match (&msg.group, &msg.public_key) {
            (None, None) => None,
            (Some(g), Some(pk)) => Some(PublicKey::from_bytes(config.group(g)?, pk.as_bytes())?),
            _ => return Err(Error::invalid("group and public_key must be sent together")),
        };
        Ok(Self { username: msg.username.clone(), client_nonce, channel })
    }

    /// The username whose record the caller must read.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The session key this authentication will live under.
    #[must_use]
    pub fn session_key(&self) -> SessionKey {
        SessionKey::new(Phase::Authentication, &self.client_nonce)
    }

    /// Continues with the user's record, or `None` for an unknown user, which gets
    /// a mock reply shaped like a real record (`profile`: ic and salt length drawn
    /// from the real records, a deterministic salt) and a doomed proof check,
    /// answered exactly like a wrong password at the last step.
    ///
    /// Both paths do the same work (finding L8): the mock shape, salt and filler
    /// keys are computed and a full [`Record`] built whether or not the user exists;
    /// the only difference is which record is kept.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] when the DH shared secret is degenerate.
    pub fn continue_with<R: CryptoRng + ?Sized>(
        self,
        record: Option<Record>,
        rng: &mut R,
        config: &ServerConfig,
        profile: &MockProfile,
    ) -> Result<(AuthPairingReply, PendingAuth)> {
        self.continue_with_key(record, rng, config, profile, &HmacKey::new(&config.mock_secret))
    }

    /// [`continue_with`](Self::continue_with) with `config.mock_secret` already
    /// absorbed into `mock_key` (the engine keeps one). Known and unknown users
    /// alike compute the mock under it.
    pub(crate) fn continue_with_key<R: CryptoRng + ?Sized>(
        self,
        record: Option<Record>,
        rng: &mut R,
        config: &ServerConfig,
        profile: &MockProfile,
        mock_key: &HmacKey,
    ) -> Result<(AuthPairingReply, PendingAuth)> {
        // The mock, always: an HMAC-derived shape and salt (the same every time for a
        // given unknown name, unlinkable across servers) and random filler keys.
        let mut filler = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(filler.as_mut());
        let mock = profile.mock_record_with_key(mock_key, &self.username, config.ic, &filler);
        let known = record.is_some();
        // Keep one record and drop the other (the mock, for a known user).
        let record = record.unwrap_or(mock);
        let Record { salt, ic, stored_key, server_key, .. } = record;
        let nonce = CombinedNonce { client: self.client_nonce, server: Nonce::random(rng) };
        let (server_public, channel) = match self.channel {
            None => (None, None),
            Some(client_public) => {
                let secret = client_public.group().generate(rng);
                let server_public = secret.public_key().clone();
                let z = secret.diffie_hellman(&client_public)?;
                (Some(server_public.clone()), Some(ChannelState { client_public, server_public, z }))
            }
        };
        let reply = AuthPairingReply {
            salt: Base64(salt.clone()),
            ic,
            nonce: nonce.to_wire(),
            public_key: server_public.map(|pk| Base64(pk.as_bytes().to_vec())),
        };
        let pending =
            PendingAuth { username: self.username, nonce, salt, ic, stored_key, server_key, known, channel };
        Ok((reply, pending))
    }
}

#[derive(Debug)]
struct ChannelState {
    client_public: PublicKey,
    server_public: PublicKey,
    z: SharedSecret,
}

/// The server's state between A2 and A3. Serialises to secret bytes for a session store.
#[derive(Debug)]
pub struct PendingAuth {
    username: String,
    nonce: CombinedNonce,
    salt: Vec<u8>,
    ic: u32,
    stored_key: StoredKey,
    server_key: ServerKey,
    known: bool,
    channel: Option<ChannelState>,
}

const STATE_VERSION: u8 = 0x41; // 'A'

impl PendingAuth {
    /// The username this authentication is for (known or not).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Encodes the state, in clear (secrets included): the engine seals it before
    /// any session store sees it (SPEC 5). Public for corpus generation; its
    /// inverse is crate-private.
    #[must_use]
    pub fn to_bytes(&self) -> SecretBytes {
        let mut out = SecretBytes::new(Vec::with_capacity(self.encoded_len()));
        self.write_into(&mut out);
        out
    }

    /// The exact length of [`to_bytes`](Self::to_bytes).
    pub(crate) fn encoded_len(&self) -> usize {
        let lp = |n: usize| 4 + n;
        let channel = match &self.channel {
            None => lp(0),
            Some(c) => {
                lp(c.client_public.group().name().len())
                    + lp(c.client_public.as_bytes().len())
                    + lp(c.server_public.as_bytes().len())
                    + lp(c.z.as_bytes().len())
            }
        };
        1 + lp(self.username.len()) + 2 * lp(32) + lp(self.salt.len()) + 4 + 2 * lp(32) + 8 + channel
    }

    /// Appends what [`to_bytes`](Self::to_bytes) returns to `out`, which should have
    /// [`encoded_len`](Self::encoded_len) bytes of room (the engine writes the
    /// state straight into the buffer it seals in place).
    pub(crate) fn write_into(&self, out: &mut Vec<u8>) {
        out.push(STATE_VERSION);
        put_lp(out, self.username.as_bytes());
        put_lp(out, self.nonce.client.as_bytes());
        put_lp(out, self.nonce.server.as_bytes());
        put_lp(out, &self.salt);
        out.extend_from_slice(&self.ic.to_be_bytes());
        put_lp(out, self.stored_key.expose());
        put_lp(out, self.server_key.expose());
        out.extend_from_slice(&u64::from(self.known).to_be_bytes());
        match &self.channel {
            None => put_lp(out, b""),
            Some(c) => {
                put_lp(out, c.client_public.group().name().as_bytes());
                put_lp(out, c.client_public.as_bytes());
                put_lp(out, c.server_public.as_bytes());
                put_lp(out, c.z.as_bytes());
            }
        }
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote. Crate-private: whoever
    /// could call it with bytes of their choosing could mint any user's
    /// authentication (issue 9); the engine calls it only on opened seals.
    ///
    /// # Errors
    /// [`Error::ServerError`] for bytes that are not such a state.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::ServerError("corrupt session state".into());
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let username = r.string()?;
        let nonce = CombinedNonce {
            client: Nonce::from_bytes(r.array32()?),
            server: Nonce::from_bytes(r.array32()?),
        };
        let salt = r.bytes()?.to_vec();
        let ic = r.u32()?;
        let stored_key = StoredKey::from_bytes(r.array32()?);
        let server_key = ServerKey::from_bytes(r.array32()?);
        let known = r.u64()? == 1;
        let group = r.string()?;
        let channel = if group.is_empty() {
            None
        } else {
            let group = Group::from_name(&group).ok_or_else(corrupt)?;
            let client_public = PublicKey::from_bytes(group, r.bytes()?).map_err(|_| corrupt())?;
            let server_public = PublicKey::from_bytes(group, r.bytes()?).map_err(|_| corrupt())?;
            let z = SharedSecret::from_bytes(group, r.bytes()?).ok_or_else(corrupt)?;
            Some(ChannelState { client_public, server_public, z })
        };
        r.end()?;
        Ok(Self { username, nonce, salt, ic, stored_key, server_key, known, channel })
    }

    /// Checks A3: the combined nonce (constant time) and the proof
    /// (`SHA-256(ClientProof XOR ClientSignature) == StoredKey`, constant time).
    ///
    /// # Errors
    /// [`Error::NonceMismatch`]; [`Error::InvalidMessage`] for a proof that is not
    /// 32 bytes; [`Error::AuthenticationFailed`] for a wrong proof or unknown user.
    pub fn receive_proof(self, msg: &AuthClientProof) -> Result<(AuthProof, Authenticated)> {
        self.receive_proof_naming(msg).map_err(|(error, _)| error)
    }

    /// [`receive_proof`](Self::receive_proof), giving the username back with a
    /// failure (the engine names the account only then, without a copy).
    pub(crate) fn receive_proof_naming(
        self,
        msg: &AuthClientProof,
    ) -> core::result::Result<(AuthProof, Authenticated), (Error, String)> {
        match self.check_proof(msg) {
            Ok((proof, session_keys)) => {
                Ok((proof, Authenticated { username: self.username, session_keys, _seal: () }))
            }
            Err(error) => Err((error, self.username)),
        }
    }

    fn check_proof(&self, msg: &AuthClientProof) -> Result<(AuthProof, Option<SessionKeys>)> {
        self.nonce.check(&msg.nonce)?;
        let proof: [u8; 32] = msg.client_proof.array("client_proof")?;
        let cb = self.channel.as_ref().map(|c| ChannelBinding {
            group: c.client_public.group(),
            client_public_key: c.client_public.as_bytes(),
            server_public_key: c.server_public.as_bytes(),
        });
        // The check above makes `msg.nonce` our wire form, client half first.
        let (client_nonce_hex, _) = msg.nonce.split_at(crate::nonce::NONCE_HEX_LEN);
        let am = auth_message(&self.username, client_nonce_hex, &msg.nonce, &self.salt, self.ic, cb.as_ref());
        let client_signature = hmac_secret(self.stored_key.expose(), &[am.as_bytes()]);
        let client_key = ClientKey::from_bytes(xor32(&proof, &client_signature));
        let ok =
            sha256(client_key.expose()).ct_eq(self.stored_key.expose()) & Choice::from(u8::from(self.known));
        if !bool::from(ok) {
            return Err(Error::AuthenticationFailed);
        }
        let server_signature = hmac(self.server_key.expose(), &[am.as_bytes()]);
        let keys = self.channel.as_ref().map(|c| session_keys(&client_key, &am, &c.z));
        Ok((AuthProof { server_signature: Base64(server_signature.to_vec()), session_id: None }, keys))
    }
}

/// Proof that a client authenticated; only [`PendingAuth::receive_proof`] builds it.
#[derive(Debug)]
pub struct Authenticated {
    username: String,
    session_keys: Option<SessionKeys>,
    _seal: (),
}

impl Authenticated {
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

    /// The null protocol's login ([`crate::null`]): no proof, no keys.
    pub(crate) fn null(username: String) -> Self {
        Self { username, session_keys: None, _seal: () }
    }

    /// Splits into username and channel keys.
    #[must_use]
    pub fn into_parts(self) -> (String, Option<SessionKeys>) {
        (self.username, self.session_keys)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::PendingAuth;
    use crate::message::ClientMessage;

    /// A pending state survives its own encoding, with or without a channel; every
    /// truncation is refused (never a panic).
    #[test]
    fn pending_state_round_trips_and_truncations_fail() {
        for group in [None, Some(crate::Group::X25519)] {
            let mut pair = crate::pair::Pair::new(1);
            let step = crate::auth::client::AuthClient::start(
                &mut pair.client_rng,
                "u",
                crate::ClientSecret::Password("p".into()),
                group,
                crate::ClientConfig::default(),
            )
            .unwrap();
            let ClientMessage::AuthPairing(a1) = step.message else { panic!("not A1") };
            let req = super::AuthRequest::parse(&a1, pair.engine.config()).unwrap();
            let profile = crate::mock::MockProfile::new();
            let (_, pending) =
                req.continue_with(None, &mut pair.server_rng, pair.engine.config(), &profile).unwrap();
            let bytes = pending.to_bytes();
            assert_eq!((bytes.len(), bytes.capacity()), (pending.encoded_len(), pending.encoded_len()));
            // The layout the codec's writer gave before `write_into` (blobs sealed
            // by earlier builds must still open).
            let mut w = crate::codec::Writer::new(super::STATE_VERSION)
                .bytes(pending.username.as_bytes())
                .bytes(pending.nonce.client.as_bytes())
                .bytes(pending.nonce.server.as_bytes())
                .bytes(&pending.salt)
                .u32(pending.ic)
                .bytes(pending.stored_key.expose())
                .bytes(pending.server_key.expose())
                .u64(u64::from(pending.known));
            w = match &pending.channel {
                None => w.bytes(b""),
                Some(c) => w
                    .bytes(c.client_public.group().name().as_bytes())
                    .bytes(c.client_public.as_bytes())
                    .bytes(c.server_public.as_bytes())
                    .bytes(c.z.as_bytes()),
            };
            assert_eq!(w.finish(), bytes);
            let back = PendingAuth::from_bytes(&bytes).unwrap();
            assert_eq!(back.to_bytes(), bytes);
            for cut in 0..bytes.len() {
                assert!(PendingAuth::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
