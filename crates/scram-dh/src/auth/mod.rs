//! Authentication (SPEC 4, wire A1..A4): SCRAM-SHA-256 with RFC 5802's exact
//! `AuthMessage`, optionally binding two DH public keys as channel-binding data
//! and deriving encrypted-channel keys.

pub mod client;
pub mod server;

use crate::crypto::{hkdf_pair, hmac, put_lp, sha256};
use crate::dh::{Group, SharedSecret};
use crate::secret::{ClientKey, SessionKeys};

pub(crate) const INFO_C2S: &[u8] = b"scram-dh/1 session c2s";
pub(crate) const INFO_S2C: &[u8] = b"scram-dh/1 session s2c";

/// The channel part of a handshake: group and both public keys.
#[derive(Debug, Clone, Copy)]
pub struct ChannelBinding<'a> {
    /// The DH group.
    pub group: Group,
    /// The client's public key bytes.
    pub client_public_key: &'a [u8],
    /// The server's public key bytes.
    pub server_public_key: &'a [u8],
}

/// RFC 5802 `AuthMessage` = client-first-bare `,` server-first `,`
/// client-final-without-proof (SPEC 7), for a SASLprep-normalised `username`.
///
/// ```
/// let m = scram_dh::auth::auth_message("user", "cn", "cn-sn", b"salt", 4096, None);
/// assert_eq!(m, "n=user,r=cn,r=cn-sn,s=c2FsdA==,i=4096,c=biws,r=cn-sn");
/// ```
#[must_use]
pub fn auth_message(
    username: &str,
    client_nonce_hex: &str,
    nonce: &str,
    salt: &[u8],
    ic: u32,
    channel: Option<&ChannelBinding<'_>>,
) -> String {
    let saslname = crate::username::escape(username);
    let mut m = String::with_capacity(
        64 + saslname.len() + client_nonce_hex.len() + 2 * nonce.len() + 4 * salt.len().div_ceil(3),
    );
    m.push_str("n=");
    m.push_str(&saslname);
    m.push_str(",r=");
    m.push_str(client_nonce_hex);
    m.push_str(",r=");
    m.push_str(nonce);
    m.push_str(",s=");
    crate::message::push_base64(&mut m, salt);
    m.push_str(",i=");
    push_decimal(&mut m, ic);
    m.push_str(",c=");
    match channel {
        // base64("n,,")
        None => m.push_str("biws"),
        Some(cb) => {
            let mut cbind = Vec::with_capacity(64);
            cbind.extend_from_slice(b"p=scram-dh-");
            cbind.extend_from_slice(cb.group.name().as_bytes());
            cbind.extend_from_slice(b",,");
            let mut keys = Vec::with_capacity(8 + cb.client_public_key.len() + cb.server_public_key.len());
            put_lp(&mut keys, cb.client_public_key);
            put_lp(&mut keys, cb.server_public_key);
            cbind.extend_from_slice(&sha256(&keys));
            crate::message::push_base64(&mut m, &cbind);
        }
    }
    m.push_str(",r=");
    m.push_str(nonce);
    m
}

/// Appends the decimal digits of `x` (what `x.to_string()` gives, without the
/// formatting machinery).
fn push_decimal(out: &mut String, mut x: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    // ASCII digits: the conversion never fails.
    if let Ok(text) = core::str::from_utf8(&digits[i..]) {
        out.push_str(text);
    }
}

/// Channel keys: `HKDF(salt = HMAC(ClientKey, AuthMessage), IKM = Z)`.
pub(crate) fn session_keys(client_key: &ClientKey, auth_message: &str, z: &SharedSecret) -> SessionKeys {
    let salt = zeroize::Zeroizing::new(hmac(client_key.expose(), &[auth_message.as_bytes()]));
    let (c2s, s2c) = hkdf_pair(salt.as_ref(), z.as_bytes(), INFO_C2S, INFO_S2C);
    SessionKeys { c2s, s2c }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::crypto::{hi, xor32};
    use crate::keys::ClientKeys;

    // RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_section3_known_answer() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let client_nonce = "rOprNGfwEbeRWgbNEkqO";
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let keys = ClientKeys::rfc(&hi(b"pencil", &salt, 4096));
        assert_eq!(
            STANDARD.encode(keys.stored_key().expose()),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        );
        assert_eq!(STANDARD.encode(keys.server_key.expose()), "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
        let am = auth_message("user", client_nonce, nonce, &salt, 4096, None);
        assert_eq!(
            am,
            "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        );
        let client_signature = hmac(keys.stored_key().expose(), &[am.as_bytes()]);
        let proof = xor32(keys.client_key.expose(), &client_signature);
        assert_eq!(STANDARD.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let server_signature = hmac(keys.server_key.expose(), &[am.as_bytes()]);
        assert_eq!(STANDARD.encode(server_signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // The server's check: SHA-256(ClientProof XOR ClientSignature) == StoredKey.
        assert_eq!(sha256(&xor32(&proof, &client_signature)), *keys.stored_key().expose());
    }

    #[test]
    fn decimal_matches_to_string() {
        for x in [0, 1, 9, 10, 99, 100, 4096, 65_535, 1_000_000, u32::MAX - 1, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, x);
            assert_eq!(s, x.to_string());
        }
    }

    #[test]
    fn shape_without_channel() {
        let m = auth_message("a,b", "cn", "cn-sn", b"salt", 4096, None);
        assert_eq!(m, "n=a=2Cb,r=cn,r=cn-sn,s=c2FsdA==,i=4096,c=biws,r=cn-sn");
    }
}
