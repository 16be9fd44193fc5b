//! TEMPORARY stand-in: replaced by the real module (MODP + X25519).
#![allow(missing_docs, clippy::all)]
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Group {
    Modp2048,
    Modp3072,
    Modp4096,
    #[default]
    Modp6144,
    Modp8192,
    X25519,
}
impl Group {
    pub const ALL: [Group; 6] =
        [Group::Modp2048, Group::Modp3072, Group::Modp4096, Group::Modp6144, Group::Modp8192, Group::X25519];
    pub fn name(self) -> &'static str {
        match self {
            Self::Modp2048 => "modp2048",
            Self::Modp3072 => "modp3072",
            Self::Modp4096 => "modp4096",
            Self::Modp6144 => "modp6144",
            Self::Modp8192 => "modp8192",
            Self::X25519 => "x25519",
        }
    }
    pub fn from_name(name: &str) -> Option<Group> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
    pub fn modulus_bytes(self) -> Option<Vec<u8>> {
        None
    }
    pub fn public_key_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Modp4096 => 512,
            Self::Modp6144 => 768,
            Self::Modp8192 => 1024,
            Self::X25519 => 32,
        }
    }
    pub fn generate<R: CryptoRng + ?Sized>(self, rng: &mut R) -> EphemeralSecret {
        let mut s = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(s.as_mut());
        let p = x25519_dalek::x25519(*s, x25519_dalek::X25519_BASEPOINT_BYTES);
        EphemeralSecret { group: self, secret: s, public: PublicKey { group: self, bytes: p.to_vec() } }
    }
}
impl core::fmt::Display for Group {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublicKey {
    group: Group,
    bytes: Vec<u8>,
}
impl PublicKey {
    pub fn from_bytes(group: Group, bytes: &[u8]) -> Result<PublicKey, DhError> {
        if bytes.len() != group.public_key_len() {
            return Err(DhError::WrongLength);
        }
        Ok(Self { group, bytes: bytes.to_vec() })
    }
    pub fn group(&self) -> Group {
        self.group
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
pub struct EphemeralSecret {
    group: Group,
    secret: Zeroizing<[u8; 32]>,
    public: PublicKey,
}
impl core::fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EphemeralSecret {{ group: {:?}, .. }}", self.group)
    }
}
impl EphemeralSecret {
    pub fn group(&self) -> Group {
        self.group
    }
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    pub fn diffie_hellman(self, peer: &PublicKey) -> Result<SharedSecret, DhError> {
        if peer.group != self.group {
            return Err(DhError::GroupMismatch);
        }
        let mut p = [0u8; 32];
        p.copy_from_slice(&peer.bytes[..32]);
        let z = x25519_dalek::x25519(*self.secret, p);
        if bool::from(z.ct_eq(&[0u8; 32])) {
            return Err(DhError::Degenerate);
        }
        Ok(SharedSecret(Zeroizing::new(z.to_vec())))
    }
}
pub struct SharedSecret(Zeroizing<Vec<u8>>);
impl core::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}
impl SharedSecret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn from_bytes(group: Group, b: &[u8]) -> Option<Self> {
        (b.len() == group.public_key_len()).then(|| Self(Zeroizing::new(b.to_vec())))
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DhError {
    #[error("wrong length")]
    WrongLength,
    #[error("out of range")]
    OutOfRange,
    #[error("not in subgroup")]
    NotInSubgroup,
    #[error("degenerate")]
    Degenerate,
    #[error("group mismatch")]
    GroupMismatch,
}
