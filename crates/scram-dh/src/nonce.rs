//! Nonces: 32 random bytes as 64 lowercase hex characters; the combined nonce is
//! `client_nonce + "-" + server_nonce` (SPEC 2).

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Length of a hex nonce.
pub const NONCE_HEX_LEN: usize = 64;

/// A 32-byte nonce chosen by one side.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce([u8; 32]);

impl Nonce {
    /// Draws a fresh nonce.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// Wraps bytes.
    #[must_use]
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses exactly 64 lowercase hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] for any other length or character.
    pub fn parse(s: &str) -> Result<Self> {
        let b = s.as_bytes();
        if b.len() != NONCE_HEX_LEN {
            return Err(Error::invalid("nonce must be 64 lowercase hex characters"));
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Ok(Self(out))
    }

    /// The 64-character lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        push_hex(&mut s, &self.0);
        s
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn hex_val(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(Error::invalid("nonce must be 64 lowercase hex characters")),
    }
}

/// Appends the lowercase hex of `bytes`.
pub(crate) fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// The combined nonce `client_nonce-server_nonce`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CombinedNonce {
    /// The client's half (first).
    pub client: Nonce,
    /// The server's half.
    pub server: Nonce,
}

impl CombinedNonce {
    /// Parses `<64 hex>-<64 hex>`.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the shape is wrong.
    pub fn parse(s: &str) -> Result<Self> {
        let (c, rest) =
            s.split_once('-').ok_or_else(|| Error::invalid("nonce must be client_nonce-server_nonce"))?;
        Ok(Self { client: Nonce::parse(c)?, server: Nonce::parse(rest)? })
    }

    /// The wire form.
    #[must_use]
    pub fn to_wire(&self) -> String {
        let mut s = String::with_capacity(129);
        push_hex(&mut s, &self.client.0);
        s.push('-');
        push_hex(&mut s, &self.server.0);
        s
    }

    /// Checks that a nonce received on the wire is exactly this one, in constant time.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`] when it differs in any way (halves swapped, altered,
    /// another handshake's); [`Error::InvalidMessage`] when it is not a combined nonce.
    pub fn check(&self, received: &str) -> Result<()> {
        let other = Self::parse(received)?;
        let same = self.client.0.ct_eq(&other.client.0) & self.server.0.ct_eq(&other.server.0);
        if bool::from(same) { Ok(()) } else { Err(Error::NonceMismatch) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        let hex = "00".repeat(31) + "ff";
        assert!(Nonce::parse(&hex).is_ok());
        assert!(Nonce::parse(&hex.to_uppercase()).is_err(), "uppercase hex");
        assert!(Nonce::parse(&hex[..62]).is_err(), "short");
        assert!(Nonce::parse(&(hex.clone() + "00")).is_err(), "long");
        assert!(Nonce::parse(&("g".to_string() + &hex[1..])).is_err(), "not hex");
        let c = CombinedNonce { client: Nonce([1; 32]), server: Nonce([2; 32]) };
        assert_eq!(CombinedNonce::parse(&c.to_wire()).unwrap(), c);
        assert!(c.check(&c.to_wire()).is_ok());
        let swapped = CombinedNonce { client: c.server, server: c.client };
        assert!(matches!(c.check(&swapped.to_wire()), Err(Error::NonceMismatch)));
        assert!(matches!(c.check(&c.client.to_hex()), Err(Error::InvalidMessage(_))));
    }
}
