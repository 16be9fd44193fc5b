//! Secret values: zeroized on drop, redacted in `Debug`, compared in constant time.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

macro_rules! secret32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 bytes.
            #[must_use]
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// Copies 32 bytes out of a slice; `None` if it is not 32 bytes long.
            #[must_use]
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                let mut out = [0u8; 32];
                if bytes.len() != 32 {
                    return None;
                }
                out.copy_from_slice(bytes);
                Some(Self(out))
            }

            /// The raw bytes. Handle with care: do not log or persist them casually.
            #[must_use]
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                self.0.ct_eq(&other.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}
    };
}

secret32!(
    /// `SaltedPassword = Hi(SASLprep(password), salt, ic)` (RFC 5802).
    SaltedPassword
);
secret32!(
    /// `ClientKey = HMAC(SaltedPassword, client_label)`; the client's long-term secret.
    ClientKey
);
secret32!(
    /// `ServerKey = HMAC(SaltedPassword, server_label)`; stored on both sides.
    ServerKey
);
secret32!(
    /// `StoredKey = SHA-256(ClientKey)`; what the server stores to check proofs.
    StoredKey
);
secret32!(
    /// A 32-byte symmetric key (per-direction channel and registration keys).
    SymmetricKey
);
secret32!(
    /// The server-held key that seals session state before a session store sees
    /// it (SPEC 5, "Sealed").
    SessionSealKey
);

/// A password as the user typed it. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    #[must_use]
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password text.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Password {}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// The two per-direction keys of an encrypted channel (SPEC 4, 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Client-to-server key.
    pub c2s: SymmetricKey,
    /// Server-to-client key.
    pub s2c: SymmetricKey,
}

/// Bytes that must be wiped after use.
pub type SecretBytes = Zeroizing<Vec<u8>>;
