//! The RFC 5802 section 7 text codec for the four SCRAM messages (sans-IO).
//!
//! Strict: what does not match the ABNF is refused. `parse(encode(x)) == x` for
//! every valid `x`, and for the three messages that enter `AuthMessage`
//! `encode(parse(s)) == s` byte for byte.
//!
//! Errors: [`Error::ExtensionsNotSupported`] when an `m=` attribute is present,
//! [`Error::InvalidUsernameEncoding`] for a bad `saslname`, and
//! [`Error::InvalidMessage`] for anything else malformed.

use crate::error::{Error, Result};

/// What the gs2 channel-binding flag says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gs2Cb {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports channel binding but thinks the server does not.
    Yes,
    /// `p=<cb-name>`: the client requires channel binding of this type.
    Bound(String),
}

/// The GS2 header: `gs2-cbind-flag "," [ "a=" saslname ] ","`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gs2Header {
    /// The channel-binding flag.
    pub cb: Gs2Cb,
    /// The authorization identity, unescaped.
    pub authzid: Option<String>,
}

/// An optional extension attribute (`ALPHA "=" value`), kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension {
    /// The attribute letter (never one RFC 5802 defines).
    pub name: char,
    /// The value (1 or more characters, no `,`, no `=`).
    pub value: String,
}

/// client-first-message = gs2-header client-first-message-bare.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientFirst {
    /// The GS2 header.
    pub gs2: Gs2Header,
    /// `n=`: the username, unescaped (not SASLprep-normalised).
    pub username: String,
    /// `r=`: the client nonce.
    pub nonce: String,
    /// Optional extensions after the nonce.
    pub extensions: Vec<Extension>,
}

/// server-first-message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerFirst {
    /// `r=`: the combined nonce.
    pub nonce: String,
    /// `s=`: the salt.
    pub salt: Vec<u8>,
    /// `i=`: the iteration count.
    pub iterations: u32,
    /// Optional extensions.
    pub extensions: Vec<Extension>,
}

/// client-final-message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientFinal {
    /// `c=`: the gs2 header and channel-binding data, decoded.
    pub channel_binding: Vec<u8>,
    /// `r=`: the combined nonce.
    pub nonce: String,
    /// Optional extensions before the proof.
    pub extensions: Vec<Extension>,
    /// `p=`: the ClientProof.
    pub proof: [u8; 32],
}

/// server-final-message (optional extensions are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerFinal {
    /// `v=`: the ServerSignature.
    Verifier([u8; 32]),
    /// `e=`: a server-error-value.
    Error(String),
}

impl Gs2Header {
    /// Parses a gs2 header (both commas included).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(_s: &str) -> Result<Self> {
        todo!()
    }

    /// The wire form, both commas included.
    #[must_use]
    pub fn encode(&self) -> String {
        todo!()
    }
}

impl ClientFirst {
    /// Parses a client-first-message.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(_s: &str) -> Result<Self> {
        todo!()
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        todo!()
    }
}

impl ServerFirst {
    /// Parses a server-first-message.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(_s: &str) -> Result<Self> {
        todo!()
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        todo!()
    }
}

impl ClientFinal {
    /// Parses a client-final-message.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(_s: &str) -> Result<Self> {
        todo!()
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        todo!()
    }
}

impl ServerFinal {
    /// Parses a server-final-message.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(_s: &str) -> Result<Self> {
        todo!()
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        let _ = Error::ExtensionsNotSupported;
        todo!()
    }
}
