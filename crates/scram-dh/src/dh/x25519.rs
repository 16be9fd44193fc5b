//! X25519 (RFC 7748) through `x25519_dalek::x25519`.

use subtle::ConstantTimeEq;
use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};
use zeroize::Zeroizing;

use super::DhError;

/// Length of scalars, public keys and shared secrets.
pub(crate) const LEN: usize = 32;

/// Public key `X25519(k, 9)` for the 32-byte scalar `k` (clamped inside `x25519`).
pub(crate) fn public_key(scalar: &[u8; LEN]) -> [u8; LEN] {
    x25519(*scalar, X25519_BASEPOINT_BYTES)
}

/// Shared secret `X25519(k, peer)`; an all-zero result (a low-order peer point) is
/// rejected, with the comparison done in constant time.
pub(crate) fn shared_secret(scalar: &[u8; LEN], peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, DhError> {
    let point: [u8; LEN] = peer.try_into().map_err(|_| DhError::WrongLength)?;
    let z = Zeroizing::new(x25519(*scalar, point));
    if bool::from(z.ct_eq(&[0u8; LEN])) {
        return Err(DhError::Degenerate);
    }
    Ok(Zeroizing::new(z.to_vec()))
}
