//! Client side of standard SCRAM-SHA-256 (RFC 5802, RFC 7677), sans-IO:
//! [`SaslClient::new`] → send [`client_first`](SaslClient::client_first) →
//! [`receive_server_first`](SaslClient::receive_server_first) → send
//! [`client_final`](SaslClientFinal::client_final) →
//! [`receive_server_final`](SaslClientFinal::receive_server_final).
//!
//! The RFC 7677 section 3 exchange, client side:
//!
//! ```
//! use scram_dh::sasl::ClientChannel;
//! use scram_dh::sasl::client::SaslClient;
//! use scram_dh::{ClientConfig, Password};
//!
//! let client = SaslClient::with_nonce("user", &Password::new("pencil"), ClientChannel::Unsupported,
//!     &ClientConfig::default(), "rOprNGfwEbeRWgbNEkqO")?;
//! assert_eq!(client.mechanism(), "SCRAM-SHA-256");
//! assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
//! let client = client.receive_server_first(
//!     b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")?;
//! assert_eq!(client.client_final(), "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
//!     p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
//! client.receive_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")?;
//! # Ok::<(), scram_dh::Error>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::server::CLIENT_NONCE_LEN;
use super::text::{ServerFinal, ServerFirst, is_printable_nonce};
use super::{ClientChannel, MECHANISM, MECHANISM_PLUS, TLS_EXPORTER};
use crate::crypto::{hi, hmac_secret, xor32};
use crate::error::{Error, Result};
use crate::keys::{ClientConfig, ClientKeys, prepare_password};
use crate::secret::Password;

/// Random bytes in the client nonce (32 base64 characters).
pub const CLIENT_NONCE_BYTES: usize = 24;

/// The salt lengths the client accepts, in bytes.
pub const SALT_LEN: core::ops::RangeInclusive<usize> = 1..=1024;

/// The longest `e=` value kept in [`Error::ScramRefused`], in bytes.
pub const MAX_REFUSAL_LEN: usize = 256;

/// A standard SCRAM exchange in progress: the client-first-message is ready.
pub struct SaslClient {
    mechanism: &'static str,
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
    /// The tls-exporter value for `p=tls-exporter`.
    binding: Option<Zeroizing<[u8; 32]>>,
    /// `SASLprep(password)`, or its raw bytes when SASLprep refuses it.
    password: Zeroizing<Vec<u8>>,
    config: ClientConfig,
}

impl core::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// Starts an exchange with a fresh client nonce (24 random bytes, base64).
    ///
    /// The username is SASLprep-normalised, then escaped (`,` → `=2C`, `=` →
    /// `=3D`); the password is SASLprep-prepared, or taken as its raw bytes when
    /// SASLprep refuses it (as PostgreSQL does).
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the username is not valid under SASLprep or
    /// not 1 to 255 bytes after it.
    pub fn new<R: CryptoRng + ?Sized>(
        username: &str,
        password: &Password,
        channel: ClientChannel,
        config: &ClientConfig,
        rng: &mut R,
    ) -> Result<Self> {
        let mut nonce = [0u8; CLIENT_NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        Self::with_nonce(username, password, channel, config, &STANDARD.encode(nonce))
    }

    /// [`new`](Self::new) with this client nonce (the RFC 7677 section 3 vector; tests).
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the username is not valid, or the nonce is
    /// not 8 to 512 printable characters other than `,`.
    pub fn with_nonce(
        username: &str,
        password: &Password,
        channel: ClientChannel,
        config: &ClientConfig,
        nonce: &str,
    ) -> Result<Self> {
        let username = crate::username::normalize(username)?;
        if !is_printable_nonce(nonce) || !CLIENT_NONCE_LEN.contains(&nonce.len()) {
            return Err(Error::invalid(
                "the client nonce must be 8 to 512 printable characters other than ','",
            ));
        }
        let (mechanism, gs2_header, binding) = match channel {
            ClientChannel::Unsupported => (MECHANISM, "n,,".to_owned(), None),
            ClientChannel::ServerLacksIt => (MECHANISM, "y,,".to_owned(), None),
            ClientChannel::TlsExporter(value) => {
                (MECHANISM_PLUS, format!("p={TLS_EXPORTER},,"), Some(Zeroizing::new(value)))
            }
        };
        let mut client_first_bare = String::with_capacity(username.len() + nonce.len() + 8);
        client_first_bare.push_str("n=");
        client_first_bare.push_str(&crate::username::escape(&username));
        client_first_bare.push_str(",r=");
        client_first_bare.push_str(nonce);
        Ok(Self {
            mechanism,
            gs2_header,
            client_first_bare,
            client_nonce: nonce.to_owned(),
            binding,
            password: prepare_password(password),
            config: *config,
        })
    }

    /// [`MECHANISM_PLUS`] iff the channel is [`ClientChannel::TlsExporter`].
    #[must_use]
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// The client-first-message (not base64).
    #[must_use]
    pub fn client_first(&self) -> String {
        let mut out = String::with_capacity(self.gs2_header.len() + self.client_first_bare.len());
        out.push_str(&self.gs2_header);
        out.push_str(&self.client_first_bare);
        out
    }

    /// Checks the server-first-message (exactly as received) and computes the
    /// proof: the combined nonce must extend ours, the salt be 1 to 1024 bytes,
    /// the iteration count within `4096..=config.max_iterations` (checked before
    /// any PBKDF2 work). Then `SaltedPassword = Hi(password, salt, i)`.
    ///
    /// # Errors
    /// [`Error::ScramRefused`] when the server sent `e=<value>` instead (it
    /// refused the client-first-message); [`Error::ExtensionsNotSupported`] for
    /// `m=`; [`Error::InvalidMessage`] for a malformed message or salt length;
    /// [`Error::NonceMismatch`]; [`Error::IterationCount`].
    pub fn receive_server_first(self, server_first: &[u8]) -> Result<SaslClientFinal> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| Error::invalid("SCRAM message is not UTF-8"))?;
        // A server that refuses the client-first sends `e=` in place of server-first.
        if text.starts_with("e=")
            && let ServerFinal::Error(value) = ServerFinal::parse(text)?
        {
            return Err(Error::ScramRefused { value: truncate(value, MAX_REFUSAL_LEN) });
        }
        let msg = ServerFirst::parse(text)?;
        if msg.nonce.len() <= self.client_nonce.len() || !msg.nonce.starts_with(&self.client_nonce) {
            return Err(Error::NonceMismatch);
        }
        if !SALT_LEN.contains(&msg.salt.len()) {
            return Err(Error::invalid("the salt must be 1 to 1024 bytes"));
        }
        self.config.check_ic(msg.iterations)?;
        let keys = ClientKeys::rfc(&hi(&self.password, &msg.salt, msg.iterations));
        let mut cbind = Zeroizing::new(self.gs2_header.into_bytes());
        if let Some(b) = &self.binding {
            cbind.extend_from_slice(b.as_ref());
        }
        let mut client_final = String::with_capacity(cbind.len() * 4 / 3 + msg.nonce.len() + 56);
        client_final.push_str("c=");
        STANDARD.encode_string(cbind.as_slice(), &mut client_final);
        client_final.push_str(",r=");
        client_final.push_str(&msg.nonce);
        let mut auth_message = Zeroizing::new(String::with_capacity(
            self.client_first_bare.len() + text.len() + client_final.len() + 2,
        ));
        auth_message.push_str(&self.client_first_bare);
        auth_message.push(',');
        auth_message.push_str(text);
        auth_message.push(',');
        auth_message.push_str(&client_final);
        let stored_key = keys.stored_key();
        let client_signature = hmac_secret(stored_key.expose(), &[auth_message.as_bytes()]);
        let proof = Zeroizing::new(xor32(keys.client_key.expose(), &client_signature));
        let server_signature = hmac_secret(keys.server_key.expose(), &[auth_message.as_bytes()]);
        client_final.push_str(",p=");
        STANDARD.encode_string(proof.as_ref(), &mut client_final);
        Ok(SaslClientFinal { client_final, server_signature })
    }
}

/// The client-final-message is ready; waiting for the server-final-message.
pub struct SaslClientFinal {
    client_final: String,
    server_signature: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for SaslClientFinal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslClientFinal").finish_non_exhaustive()
    }
}

impl SaslClientFinal {
    /// The client-final-message (not base64).
    #[must_use]
    pub fn client_final(&self) -> String {
        self.client_final.clone()
    }

    /// Verifies the server-final-message: `v=` must be the ServerSignature,
    /// compared in constant time.
    ///
    /// # Errors
    /// [`Error::ScramRefused`] for `e=<value>` (the value kept, at most 256
    /// bytes); [`Error::ServerSignature`] when `v=` does not verify (the server does
    /// not know the credential); [`Error::ExtensionsNotSupported`] for `m=`;
    /// [`Error::InvalidMessage`] when malformed.
    pub fn receive_server_final(self, server_final: &[u8]) -> Result<()> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| Error::invalid("SCRAM message is not UTF-8"))?;
        match ServerFinal::parse(text)? {
            ServerFinal::Error(value) => Err(Error::ScramRefused { value: truncate(value, MAX_REFUSAL_LEN) }),
            ServerFinal::Verifier(signature) => {
                if bool::from(signature.ct_eq(&*self.server_signature)) {
                    Ok(())
                } else {
                    Err(Error::ServerSignature)
                }
            }
        }
    }
}

/// `value` cut to at most `max` bytes on a character boundary.
fn truncate(mut value: String, max: usize) -> String {
    if value.len() > max {
        let mut end = max;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn truncate_on_char_boundary() {
        assert_eq!(truncate("abc".into(), 2), "ab");
        assert_eq!(truncate("a\u{e9}".into(), 2), "a");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }

    #[test]
    fn debug_prints_no_secret() {
        let c = SaslClient::with_nonce(
            "user",
            &Password::new("pencil"),
            ClientChannel::TlsExporter([9; 32]),
            &ClientConfig::default(),
            "abcdefgh",
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("pencil") && !text.contains("9, 9"), "{text}");
        assert_eq!(c.client_first(), "p=tls-exporter,,n=user,r=abcdefgh");
        assert_eq!(c.mechanism(), MECHANISM_PLUS);
    }
}
