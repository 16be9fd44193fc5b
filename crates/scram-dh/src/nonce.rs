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
        let b: &[u8; NONCE_HEX_LEN] = s.as_bytes().try_into().map_err(|_| bad_hex())?;
        decode_hex(b).map(Self).ok_or_else(bad_hex)
    }

    /// The 64-character lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut hex = [0u8; NONCE_HEX_LEN];
        encode_hex(&self.0, &mut hex);
        // Hex digits are ASCII, so the conversion never fails.
        String::from_utf8(hex.to_vec()).unwrap_or_default()
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

fn bad_hex() -> Error {
    Error::invalid("nonce must be 64 lowercase hex characters")
}

/// A lowercase hex digit's value; `0xff` for every other byte. Arithmetic and
/// selects rather than a table or a match, so the decoding loop vectorises.
#[inline]
fn hex_value(c: u8) -> u8 {
    let digit = c.wrapping_sub(b'0');
    let letter = c.wrapping_sub(b'a');
    if digit < 10 {
        digit
    } else if letter < 6 {
        letter + 10
    } else {
        0xff
    }
}

/// Decodes 64 lowercase hex characters; `None` if any other byte occurs. Nonces are
/// public, but the loop does not branch on them anyway: invalid digits are
/// collected in one flag checked at the end.
fn decode_hex(b: &[u8; NONCE_HEX_LEN]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (hex_value(pair[0]), hex_value(pair[1]));
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 15);
    }
    // Valid digits are below 16; 0xff sets the high bits.
    if bad & 0xf0 == 0 { Some(out) } else { None }
}

/// Writes the lowercase hex of `bytes` into `out` (twice as long).
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    // Arithmetic instead of a table lookup, so the loop vectorises: a nibble n
    // becomes '0' + n, plus 39 (to reach 'a') when n > 9.
    let digit = |n: u8| b'0' + n + (u8::from(n > 9) * 39);
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = digit(b >> 4);
        pair[1] = digit(b & 15);
    }
}

/// Appends the lowercase hex of `bytes`.
pub(crate) fn push_hex(s: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(64) {
        let hex = &mut buf[..2 * chunk.len()];
        encode_hex(chunk, hex);
        // Hex digits are ASCII, so this never fails.
        if let Ok(text) = core::str::from_utf8(hex) {
            s.push_str(text);
        }
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
    /// Length of the wire form: two hex nonces and a `-`.
    pub const WIRE_LEN: usize = 2 * NONCE_HEX_LEN + 1;

    /// Parses `<64 hex>-<64 hex>`.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the shape is wrong.
    pub fn parse(s: &str) -> Result<Self> {
        let (c, rest) =
            s.split_once('-').ok_or_else(|| Error::invalid("nonce must be client_nonce-server_nonce"))?;
        Ok(Self { client: Nonce::parse(c)?, server: Nonce::parse(rest)? })
    }

    /// The wire form as bytes.
    fn wire_bytes(&self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        encode_hex(&self.client.0, &mut out[..NONCE_HEX_LEN]);
        out[NONCE_HEX_LEN] = b'-';
        encode_hex(&self.server.0, &mut out[NONCE_HEX_LEN + 1..]);
        out
    }

    /// The wire form.
    #[must_use]
    pub fn to_wire(&self) -> String {
        // Hex digits and '-' are ASCII, so the conversion never fails.
        String::from_utf8(self.wire_bytes().to_vec()).unwrap_or_default()
    }

    /// Checks that a nonce received on the wire is exactly this one, in constant time.
    ///
    /// The wire form is canonical (one spelling per nonce), so "parses to this
    /// nonce" is "equals our wire form byte for byte"; the received text is parsed
    /// only to tell a malformed nonce from another one.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`] when it differs in any way (halves swapped, altered,
    /// another handshake's); [`Error::InvalidMessage`] when it is not a combined nonce.
    pub fn check(&self, received: &str) -> Result<()> {
        let ours = self.wire_bytes();
        // OR of the byte differences, then one constant-time test of it: no branch
        // and no early exit on the contents (subtle's slice `ct_eq` does the same
        // with one optimisation barrier per byte).
        let same = received.len() == ours.len() && {
            let diff = ours.iter().zip(received.as_bytes()).fold(0u8, |d, (a, b)| d | (a ^ b));
            bool::from(diff.ct_eq(&0))
        };
        if same {
            return Ok(());
        }
        Self::parse(received)?;
        Err(Error::NonceMismatch)
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
        let lettered = CombinedNonce { client: Nonce([0xab; 32]), server: Nonce([0xcd; 32]) };
        assert!(lettered.check(&lettered.to_wire()).is_ok());
        assert!(matches!(lettered.check(&lettered.to_wire().to_uppercase()), Err(Error::InvalidMessage(_))));
        assert!(matches!(lettered.check(&c.to_wire()), Err(Error::NonceMismatch)));
    }

    /// The table decoder agrees with a plain digit-by-digit one on every byte value
    /// in every position of a digit pair.
    #[test]
    fn every_byte_value_is_classified() {
        let plain = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        for c in 0..=255u8 {
            for pos in [0usize, 1, 62, 63] {
                let mut hex = *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
                hex[pos] = c;
                let parsed = core::str::from_utf8(&hex).ok().map(Nonce::parse);
                match (plain(c), parsed) {
                    (Some(v), Some(Ok(n))) => {
                        assert_eq!(n.to_hex().as_bytes(), &hex[..]);
                        let byte = n.as_bytes()[pos / 2];
                        assert_eq!(if pos % 2 == 0 { byte >> 4 } else { byte & 15 }, v);
                    }
                    (None, None | Some(Err(Error::InvalidMessage(_)))) => {}
                    (want, got) => panic!("byte {c:#x} at {pos}: want {want:?}, got {got:?}"),
                }
            }
        }
        let mut s = String::new();
        push_hex(&mut s, &[0xab; 100]);
        assert_eq!(s, "ab".repeat(100));
    }
}
