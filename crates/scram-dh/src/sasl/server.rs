//! Server side of standard SCRAM-SHA-256 (RFC 5802, RFC 7677), sans-IO. The core
//! stops where the caller must read the record (STYLE 3):
//! [`ClientFirstRequest::parse`] → `store.read(username)` →
//! [`ClientFirstRequest::continue_with`] → keep [`PendingSasl`] →
//! [`PendingSasl::receive_final`]. [`ServerEngine::sasl_start`](crate::ServerEngine::sasl_start)
//! does the first three for a credential store.
//!
//! `AuthMessage` is built from the bytes as received: client-first-message-bare
//! and client-final-message-without-proof exactly as the client sent them, the
//! server-first-message exactly as sent. An unknown user and a record with random
//! labels take the same path as a real one (a mock record shaped like the real
//! ones, a doomed proof check) and fail only at the end with `e=invalid-proof`.
//!
//! The RFC 7677 section 3 exchange, server side:
//!
//! ```
//! use scram_dh::hostkey::HostKey;
//! use scram_dh::mock::MockProfile;
//! use scram_dh::sasl::ServerChannel;
//! use scram_dh::sasl::server::ClientFirstRequest;
//! use scram_dh::{Labels, Record, ServerConfig};
//!
//! let record = Record::from_postgres_verifier("user", "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
//!     WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", 0)?;
//! let config = ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32]);
//! let request = ClientFirstRequest::parse("SCRAM-SHA-256", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
//!     ServerChannel::None).map_err(|f| f.error)?;
//! let (server_first, pending) = request
//!     .continue_with_nonce(Some(record), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", &config, &MockProfile::new())
//!     .map_err(|f| f.error)?;
//! assert_eq!(server_first,
//!     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
//! let (server_final, auth) = pending.receive_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
//!     p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").map_err(|f| f.error)?;
//! assert_eq!(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
//! assert_eq!(auth.username(), "user");
//! # Ok::<(), scram_dh::Error>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::text::{
    ClientFinal, ClientFirst, Gs2Cb, ServerFinal, ServerFirst, is_printable_nonce, split_gs2, split_proof,
};
use super::{MECHANISM, MECHANISM_PLUS, SaslFailure, ServerChannel, TLS_EXPORTER};
use crate::codec::{Reader, Writer};
use crate::config::ServerConfig;
use crate::crypto::{HmacKey, hmac, hmac_secret, sha256, xor32};
use crate::error::{Error, Result};
use crate::mock::MockProfile;
use crate::record::{Labels, Record};
use crate::secret::{ClientKey, SecretBytes, ServerKey, StoredKey};

/// The client nonce lengths accepted, in characters.
pub const CLIENT_NONCE_LEN: core::ops::RangeInclusive<usize> = 8..=512;

/// Random bytes in the server's part of the nonce (32 base64 characters).
pub const SERVER_NONCE_BYTES: usize = 24;

const MOCK_FILLER_LABEL: &[u8] = b"scram-dh sasl mock filler";

/// A parsed and checked client-first-message.
pub struct ClientFirstRequest {
    username: String,
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
    /// The tls-exporter value, when the client asked for `p=tls-exporter`.
    binding: Option<Zeroizing<[u8; 32]>>,
}

impl core::fmt::Debug for ClientFirstRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientFirstRequest")
            .field("username", &self.username)
            .field("gs2_header", &self.gs2_header)
            .field("channel_bound", &self.binding.is_some())
            .finish_non_exhaustive()
    }
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| Error::invalid("SCRAM message is not UTF-8"))
}

impl ClientFirstRequest {
    /// Parses and checks the client-first-message. `mechanism` is the name the
    /// client chose ([`MECHANISM`] or [`MECHANISM_PLUS`]); `channel` what this
    /// connection offers (the server advertises [`MECHANISM_PLUS`] exactly when it
    /// is [`ServerChannel::TlsExporter`]).
    ///
    /// # Errors
    /// A [`SaslFailure`] whose `value` is the `e=` to send:
    /// - `invalid-encoding`: not UTF-8, or breaks RFC 5802's ABNF, or a client
    ///   nonce outside 8..=512 characters;
    /// - `extensions-not-supported`: an `m=` attribute;
    /// - `invalid-username-encoding`: a bad saslname, or a name SASLprep refuses;
    /// - `channel-binding-not-supported`: `p=` on a connection without TLS;
    /// - `unsupported-channel-binding-type`: `p=` with another type than `tls-exporter`;
    /// - `server-does-support-channel-binding`: `y` on a connection offering
    ///   -PLUS (a downgrade: someone removed -PLUS from the mechanism list);
    /// - `other-error`: an unknown mechanism, -PLUS without `p=` or `p=` without
    ///   -PLUS, or an authzid other than the username.
    pub fn parse(
        mechanism: &str,
        client_first: &[u8],
        channel: ServerChannel<'_>,
    ) -> Result<Self, SaslFailure> {
        let plus = match mechanism {
            MECHANISM => false,
            MECHANISM_PLUS => true,
            other => {
                return Err(SaslFailure::new(
                    Error::Unsupported(format!(
                        "SASL mechanism {other:?} (only {MECHANISM} and {MECHANISM_PLUS})"
                    )),
                    None,
                ));
            }
        };
        Self::parse_text(plus, client_first, channel).map_err(|(e, user)| SaslFailure::new(e, user))
    }

    fn parse_text(
        plus: bool,
        client_first: &[u8],
        channel: ServerChannel<'_>,
    ) -> Result<Self, (Error, Option<String>)> {
        let text = utf8(client_first).map_err(|e| (e, None))?;
        let msg = ClientFirst::parse(text).map_err(|e| (e, None))?;
        let (gs2_header, bare) = split_gs2(text).map_err(|e| (e, None))?;
        let username = crate::username::normalize(&msg.username).map_err(|_| {
            (Error::InvalidUsernameEncoding("username is not valid under SASLprep or too long".into()), None)
        })?;
        let with_user = |e: Error| (e, Some(username.clone()));
        let binding = match (&msg.gs2.cb, channel) {
            (Gs2Cb::Bound(_), ServerChannel::None) => {
                return Err(with_user(Error::ChannelBindingNotSupported));
            }
            (Gs2Cb::Bound(name), ServerChannel::TlsExporter(value)) => {
                if name != TLS_EXPORTER {
                    return Err(with_user(Error::UnsupportedChannelBindingType(name.clone())));
                }
                Some(Zeroizing::new(*value))
            }
            (Gs2Cb::Yes, ServerChannel::TlsExporter(_)) => {
                return Err(with_user(Error::ChannelBindingDowngrade));
            }
            (Gs2Cb::Yes | Gs2Cb::No, _) => None,
        };
        if plus != binding.is_some() {
            let what = if plus {
                "SCRAM-SHA-256-PLUS chosen but the gs2 header has no p= (channel binding)"
            } else {
                "SCRAM-SHA-256 chosen but the gs2 header asks for channel binding (that is SCRAM-SHA-256-PLUS)"
            };
            return Err(with_user(Error::Unsupported(what.into())));
        }
        if let Some(authzid) = &msg.gs2.authzid {
            let same = crate::username::normalize(authzid).is_ok_and(|a| a == username);
            if !same {
                return Err(with_user(Error::Unsupported(
                    "an authorization identity other than the username is not supported".into(),
                )));
            }
        }
        if !CLIENT_NONCE_LEN.contains(&msg.nonce.len()) {
            return Err(with_user(Error::invalid("the client nonce must be 8 to 512 characters")));
        }
        Ok(Self {
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            client_nonce: msg.nonce,
            binding,
            username,
        })
    }

    /// SASLprep-normalised username (what to read from the store).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Continues with the user's record (`None` for an unknown user) and a fresh
    /// server nonce part (24 random bytes, base64). Returns the
    /// server-first-message (not base64) and the state to keep.
    ///
    /// An unknown user gets a mock reply shaped like a real record (`profile`:
    /// ic and salt length drawn from the real records, a deterministic salt) and
    /// fails at [`PendingSasl::receive_final`] with `e=invalid-proof`, exactly like
    /// a wrong password. A record with random labels keeps its own salt and ic and
    /// fails the same way (its `SaslFailure::error` says why, for the log). The
    /// mock is computed on every path (finding L8).
    ///
    /// # Errors
    /// None in practice; the `Result` leaves room for store-backed variants.
    pub fn continue_with<R: CryptoRng + ?Sized>(
        self,
        record: Option<Record>,
        rng: &mut R,
        config: &ServerConfig,
        profile: &MockProfile,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        self.continue_with_key(record, rng, config, profile, &HmacKey::new(&config.mock_secret))
    }

    /// [`continue_with`](Self::continue_with) with `config.mock_secret` already
    /// absorbed into `mock_key` (the engine keeps one).
    pub(crate) fn continue_with_key<R: CryptoRng + ?Sized>(
        self,
        record: Option<Record>,
        rng: &mut R,
        config: &ServerConfig,
        profile: &MockProfile,
        mock_key: &HmacKey,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        let mut nonce = [0u8; SERVER_NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        let mut filler = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(filler.as_mut());
        Ok(self.respond(record, STANDARD.encode(nonce), &filler, config, profile, mock_key))
    }

    /// [`continue_with`](Self::continue_with) with an explicit server nonce part
    /// (the RFC 7677 section 3 vector; tests). The mock keys come from the mock
    /// secret instead of an RNG.
    ///
    /// # Errors
    /// `other-error` ([`Error::ServerError`]) when `server_nonce` is empty or not printable.
    pub fn continue_with_nonce(
        self,
        record: Option<Record>,
        server_nonce: &str,
        config: &ServerConfig,
        profile: &MockProfile,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        if !is_printable_nonce(server_nonce) || server_nonce.len() > crate::message::MAX_MESSAGE_BYTES / 4 {
            return Err(SaslFailure::new(
                Error::ServerError("the server nonce must be printable ASCII other than ','".into()),
                Some(self.username),
            ));
        }
        // One key setup for the filler and the mock record alike.
        let mock_key = HmacKey::new(&config.mock_secret);
        let parts: [&[u8]; 3] = [MOCK_FILLER_LABEL, self.username.as_bytes(), server_nonce.as_bytes()];
        let t1 = Zeroizing::new(mock_key.mac(&parts));
        let t2 = Zeroizing::new(mock_key.mac(&[t1.as_ref(), MOCK_FILLER_LABEL]));
        let mut filler = Zeroizing::new([0u8; 64]);
        filler[..32].copy_from_slice(t1.as_ref());
        filler[32..].copy_from_slice(t2.as_ref());
        Ok(self.respond(record, server_nonce.to_owned(), &filler, config, profile, &mock_key))
    }

    fn respond(
        self,
        record: Option<Record>,
        server_nonce: String,
        filler: &[u8; 64],
        config: &ServerConfig,
        profile: &MockProfile,
        mock_key: &HmacKey,
    ) -> (String, PendingSasl) {
        // The mock, always: the same shape and salt every time for a given unknown
        // name (HMAC of the mock secret), filler keys that no proof matches.
        let mock = profile.mock_record_with_key(mock_key, &self.username, config.ic, filler);
        let status = match &record {
            None => Status::UnknownUser,
            Some(r) if r.labels == Labels::Rfc => Status::Usable,
            Some(_) => Status::RandomLabels,
        };
        let Record { salt, ic, stored_key, server_key, .. } = record.unwrap_or(mock);
        let mut nonce = self.client_nonce;
        nonce.push_str(&server_nonce);
        let server_first = ServerFirst { nonce, salt, iterations: ic, extensions: Vec::new() };
        let encoded = server_first.encode();
        let mut expected_cbind = Zeroizing::new(self.gs2_header.into_bytes());
        if let Some(b) = &self.binding {
            expected_cbind.extend_from_slice(b.as_ref());
        }
        let pending = PendingSasl {
            username: self.username,
            client_first_bare: self.client_first_bare,
            server_first: encoded.clone(),
            nonce: server_first.nonce,
            expected_cbind,
            stored_key,
            server_key,
            status,
            channel_bound: self.binding.is_some(),
        };
        (encoded, pending)
    }
}

/// Why a pending exchange can or cannot succeed (kept in the sealed state only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Usable = 0,
    UnknownUser = 1,
    RandomLabels = 2,
}

/// The server's state between the server-first-message and the
/// client-final-message. Secrets are wiped on drop; `Debug` shows only the
/// username.
pub struct PendingSasl {
    username: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// gs2 header as received ‖ channel-binding data: what `c=` must decode to.
    expected_cbind: Zeroizing<Vec<u8>>,
    stored_key: StoredKey,
    server_key: ServerKey,
    status: Status,
    channel_bound: bool,
}

impl core::fmt::Debug for PendingSasl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingSasl").field("username", &self.username).finish_non_exhaustive()
    }
}

const STATE_VERSION: u8 = 0x53; // 'S'

impl PendingSasl {
    /// The (normalised) username this exchange is for, known or not.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Verifies the client-final-message: the combined nonce, `c=` against the gs2
    /// header and channel binding, and the proof
    /// (`SHA-256(ClientProof XOR ClientSignature) == StoredKey`), each in constant
    /// time. Returns the server-final-message `v=<ServerSignature>` (not base64).
    ///
    /// # Errors
    /// A [`SaslFailure`] whose `value` is the `e=` to send: `invalid-encoding`
    /// (malformed, a proof not 32 bytes), `extensions-not-supported` (`m=`),
    /// `other-error` ([`Error::NonceMismatch`]), `channel-bindings-dont-match`,
    /// `invalid-proof` (a wrong password, an unknown user, a record with random
    /// labels: [`Error::AuthenticationFailed`] or [`Error::RandomLabelsRecord`]).
    pub fn receive_final(self, client_final: &[u8]) -> Result<(String, SaslAuthenticated), SaslFailure> {
        let user = Some(self.username.clone());
        self.check_final(client_final).map_err(|e| SaslFailure::new(e, user))
    }

    fn check_final(self, client_final: &[u8]) -> Result<(String, SaslAuthenticated)> {
        let text = utf8(client_final)?;
        let msg = ClientFinal::parse(text)?;
        let (without_proof, _) = split_proof(text)?;
        let nonce_ok = msg.nonce.as_bytes().ct_eq(self.nonce.as_bytes());
        let cbind_ok = msg.channel_binding.as_slice().ct_eq(self.expected_cbind.as_slice());
        let mut auth_message = Zeroizing::new(String::with_capacity(
            self.client_first_bare.len() + self.server_first.len() + without_proof.len() + 2,
        ));
        auth_message.push_str(&self.client_first_bare);
        auth_message.push(',');
        auth_message.push_str(&self.server_first);
        auth_message.push(',');
        auth_message.push_str(without_proof);
        let client_signature = hmac_secret(self.stored_key.expose(), &[auth_message.as_bytes()]);
        let client_key = ClientKey::from_bytes(xor32(&msg.proof, &client_signature));
        let usable = Choice::from(u8::from(self.status == Status::Usable));
        let proof_ok = sha256(client_key.expose()).ct_eq(self.stored_key.expose()) & usable;
        if !bool::from(nonce_ok) {
            return Err(Error::NonceMismatch);
        }
        if !bool::from(cbind_ok) {
            return Err(Error::ChannelBindingsDontMatch);
        }
        if !bool::from(proof_ok) {
            return Err(match self.status {
                Status::RandomLabels => Error::RandomLabelsRecord,
                Status::Usable | Status::UnknownUser => Error::AuthenticationFailed,
            });
        }
        let server_signature = hmac(self.server_key.expose(), &[auth_message.as_bytes()]);
        let auth = SaslAuthenticated {
            username: self.username.clone(),
            channel_bound: self.channel_bound,
            _seal: (),
        };
        Ok((ServerFinal::Verifier(server_signature).encode(), auth))
    }

    /// Encodes the state for a session store (the engine seals it).
    pub(crate) fn to_bytes(&self) -> SecretBytes {
        Writer::new(STATE_VERSION)
            .bytes(self.username.as_bytes())
            .bytes(self.client_first_bare.as_bytes())
            .bytes(self.server_first.as_bytes())
            .bytes(self.nonce.as_bytes())
            .bytes(&self.expected_cbind)
            .bytes(self.stored_key.expose())
            .bytes(self.server_key.expose())
            .u32(self.status as u32)
            .u32(u32::from(self.channel_bound))
            .finish()
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::ServerError("corrupt session state".into());
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let username = r.string()?;
        let client_first_bare = r.string()?;
        let server_first = r.string()?;
        let nonce = r.string()?;
        let expected_cbind = Zeroizing::new(r.bytes()?.to_vec());
        let stored_key = StoredKey::from_bytes(r.array32()?);
        let server_key = ServerKey::from_bytes(r.array32()?);
        let status = match r.u32()? {
            0 => Status::Usable,
            1 => Status::UnknownUser,
            2 => Status::RandomLabels,
            _ => return Err(corrupt()),
        };
        let channel_bound = match r.u32()? {
            0 => false,
            1 => true,
            _ => return Err(corrupt()),
        };
        r.end()?;
        Ok(Self {
            username,
            client_first_bare,
            server_first,
            nonce,
            expected_cbind,
            stored_key,
            server_key,
            status,
            channel_bound,
        })
    }
}

/// Proof that a standard SCRAM client authenticated; only
/// [`PendingSasl::receive_final`] builds it.
#[derive(Debug)]
pub struct SaslAuthenticated {
    username: String,
    channel_bound: bool,
    _seal: (),
}

impl SaslAuthenticated {
    /// The authenticated (normalised) username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the exchange was bound to the TLS connection (`p=tls-exporter`).
    #[must_use]
    pub fn channel_bound(&self) -> bool {
        self.channel_bound
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hostkey::HostKey;

    fn config() -> ServerConfig {
        ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32])
    }

    fn request(first: &str) -> ClientFirstRequest {
        ClientFirstRequest::parse(MECHANISM, first.as_bytes(), ServerChannel::None).unwrap()
    }

    #[test]
    fn state_round_trips_and_rejects_junk() {
        let (_, pending) = request("n,,n=u,r=abcdefgh")
            .continue_with_nonce(None, "xyz", &config(), &MockProfile::new())
            .unwrap();
        let bytes = pending.to_bytes();
        let back = PendingSasl::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.status, Status::UnknownUser);
        assert!(PendingSasl::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        // Zeros after the state are the engine's seal padding; any other byte is junk.
        let mut extra = bytes.to_vec();
        extra.extend_from_slice(&[0; 50]);
        assert_eq!(PendingSasl::from_bytes(&extra).unwrap().to_bytes(), bytes);
        extra.push(1);
        assert!(PendingSasl::from_bytes(&extra).is_err());
        let mut bad_status = bytes.to_vec();
        let n = bad_status.len();
        bad_status[n - 5] = 9;
        assert!(PendingSasl::from_bytes(&bad_status).is_err());
        assert!(PendingSasl::from_bytes(b"").is_err());
    }

    #[test]
    fn debug_prints_no_secret() {
        let (_, pending) = request("n,,n=u,r=abcdefgh")
            .continue_with_nonce(None, "xyz", &config(), &MockProfile::new())
            .unwrap();
        let text = format!("{pending:?}");
        assert_eq!(text, r#"PendingSasl { username: "u", .. }"#);
    }

    #[test]
    fn server_nonce_must_be_printable() {
        for bad in ["", "a,b", "a b", "\u{e9}"] {
            let f = request("n,,n=u,r=abcdefgh")
                .continue_with_nonce(None, bad, &config(), &MockProfile::new())
                .unwrap_err();
            assert_eq!(f.value, super::super::ServerErrorValue::OtherError);
        }
    }
}
