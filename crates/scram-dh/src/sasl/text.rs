//! The RFC 5802 section 7 text codec for the four SCRAM messages (sans-IO).
//!
//! Strict: what does not match the ABNF is refused. `parse(encode(x)) == x` for
//! every valid `x`, and for the three messages that enter `AuthMessage`
//! `encode(parse(s)) == s` byte for byte.
//!
//! Errors: [`Error::ExtensionsNotSupported`] when an `m=` attribute is present,
//! [`Error::InvalidUsernameEncoding`] for a bad `saslname`, and
//! [`Error::InvalidMessage`] for anything else malformed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};
use crate::message::MAX_MESSAGE_BYTES;

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

/// The attribute letters RFC 5802 defines; none of them may be an optional extension.
const DEFINED_ATTRIBUTES: &str = "acinprsve";

fn malformed(what: &str) -> Error {
    Error::invalid(format!("SCRAM message: {what}"))
}

fn check_size(s: &str) -> Result<()> {
    if s.len() > MAX_MESSAGE_BYTES {
        return Err(malformed("longer than 16 KiB"));
    }
    Ok(())
}

/// Splits one attribute `ALPHA "=" rest`; `m=` is refused as a mandatory extension.
fn attribute(part: &str) -> Result<(char, &str)> {
    let mut chars = part.chars();
    match (chars.next(), chars.next()) {
        (Some('m'), Some('=')) => Err(Error::ExtensionsNotSupported),
        (Some(name), Some('=')) if name.is_ascii_alphabetic() => Ok((name, &part[2..])),
        _ => Err(malformed("expected an attribute of the form x=value")),
    }
}

/// The attribute `name=value`, or an error saying which was expected.
fn expect(part: Option<&str>, name: char) -> Result<&str> {
    let part = part.ok_or_else(|| malformed(&format!("missing attribute {name}=")))?;
    let (got, value) = attribute(part)?;
    if got != name {
        return Err(malformed(&format!("expected attribute {name}=, found {got}=")));
    }
    Ok(value)
}

/// `value = 1*value-char`: at least one character, no NUL (and no `,`, which
/// splitting already ruled out).
fn check_value(value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['\0', ',']) {
        return Err(malformed("an attribute value is empty or holds NUL or ','"));
    }
    Ok(())
}

/// Optional extensions: unknown letters are kept; RFC 5802's own letters are refused
/// (`m` as a mandatory extension).
fn extensions<'a>(parts: impl Iterator<Item = &'a str>) -> Result<Vec<Extension>> {
    let mut out = Vec::new();
    for part in parts {
        let (name, value) = attribute(part)?;
        if DEFINED_ATTRIBUTES.contains(name) {
            return Err(malformed(&format!("attribute {name}= out of place")));
        }
        check_value(value)?;
        out.push(Extension { name, value: value.to_owned() });
    }
    Ok(out)
}

fn push_extensions(out: &mut String, extensions: &[Extension]) {
    for e in extensions {
        out.push(',');
        out.push(e.name);
        out.push('=');
        out.push_str(&e.value);
    }
}

/// `saslname = 1*(value-safe-char / "=2C" / "=3D")`, unescaped.
fn saslname(value: &str) -> Result<String> {
    let bad = || Error::InvalidUsernameEncoding("not a valid saslname (RFC 5802 section 5.1)".into());
    if value.is_empty() || value.contains('\0') {
        return Err(bad());
    }
    crate::username::unescape(value).ok_or_else(bad)
}

/// `1*printable` with `printable = %x21-2B / %x2D-7E`.
pub(crate) fn is_printable_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.bytes().all(|b| matches!(b, 0x21..=0x2b | 0x2d..=0x7e))
}

fn nonce(value: &str) -> Result<String> {
    if !is_printable_nonce(value) {
        return Err(malformed("the nonce must be printable ASCII other than ','"));
    }
    Ok(value.to_owned())
}

/// Strict base64: standard alphabet, canonical padding, no stray bits.
fn base64(value: &str, what: &str) -> Result<Vec<u8>> {
    STANDARD.decode(value).map_err(|_| malformed(&format!("{what} is not canonical base64")))
}

fn base64_32(value: &str, what: &str) -> Result<[u8; 32]> {
    base64(value, what)?.try_into().map_err(|_| malformed(&format!("{what} must decode to 32 bytes")))
}

/// `posit-number = %x31-39 *DIGIT`, within u32.
fn posit_number(value: &str) -> Result<u32> {
    let bad = || malformed("the iteration count must be a positive decimal number without leading zeros");
    let b = value.as_bytes();
    if b.is_empty() || !matches!(b[0], b'1'..=b'9') || !b.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// `cb-name = 1*(ALPHA / DIGIT / "." / "-")`.
fn is_cb_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Splits a client-first-message into its gs2 header (both commas included) and
/// client-first-message-bare, as received.
pub(crate) fn split_gs2(s: &str) -> Result<(&str, &str)> {
    let first = s.find(',').ok_or_else(|| malformed("no gs2 header"))?;
    let second = s[first + 1..].find(',').ok_or_else(|| malformed("no gs2 header"))? + first + 1;
    Ok(s.split_at(second + 1))
}

/// Splits a client-final-message into client-final-message-without-proof and the
/// proof's base64, as received (base64 holds no ',', so the proof follows the last one).
pub(crate) fn split_proof(s: &str) -> Result<(&str, &str)> {
    let last = s.rfind(',').ok_or_else(|| malformed("no proof"))?;
    let (without, proof) = (&s[..last], &s[last + 1..]);
    let proof = proof.strip_prefix("p=").ok_or_else(|| malformed("the last attribute must be p="))?;
    Ok((without, proof))
}

impl Gs2Header {
    /// Parses a gs2 header, both commas included: `n,,`, `y,,`, `p=tls-exporter,,`,
    /// `n,a=user,`.
    ///
    /// ```
    /// use scram_dh::sasl::text::{Gs2Cb, Gs2Header};
    /// let h = Gs2Header::parse("p=tls-exporter,a=me,")?;
    /// assert_eq!(h.cb, Gs2Cb::Bound("tls-exporter".into()));
    /// assert_eq!(h.authzid.as_deref(), Some("me"));
    /// assert_eq!(h.encode(), "p=tls-exporter,a=me,");
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidMessage`]; [`Error::InvalidUsernameEncoding`] for a bad authzid.
    pub fn parse(s: &str) -> Result<Self> {
        check_size(s)?;
        let (flag, rest) = s.split_once(',').ok_or_else(|| malformed("no gs2 header"))?;
        let authz = rest.strip_suffix(',').ok_or_else(|| malformed("the gs2 header must end in ','"))?;
        let cb = match flag {
            "n" => Gs2Cb::No,
            "y" => Gs2Cb::Yes,
            _ => match flag.strip_prefix("p=") {
                Some(name) if is_cb_name(name) => Gs2Cb::Bound(name.to_owned()),
                _ => return Err(malformed("the gs2 flag must be n, y or p=<cb-name>")),
            },
        };
        let authzid = if authz.is_empty() {
            None
        } else {
            let value = authz
                .strip_prefix("a=")
                .ok_or_else(|| malformed("the gs2 header's second field must be a="))?;
            Some(saslname(value)?)
        };
        Ok(Self { cb, authzid })
    }

    /// The wire form, both commas included.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(32);
        match &self.cb {
            Gs2Cb::No => out.push('n'),
            Gs2Cb::Yes => out.push('y'),
            Gs2Cb::Bound(name) => {
                out.push_str("p=");
                out.push_str(name);
            }
        }
        out.push(',');
        if let Some(a) = &self.authzid {
            out.push_str("a=");
            out.push_str(&crate::username::escape(a));
        }
        out.push(',');
        out
    }
}

impl ClientFirst {
    /// Parses a client-first-message.
    ///
    /// ```
    /// use scram_dh::sasl::text::{ClientFirst, Gs2Cb};
    /// // RFC 7677 section 3
    /// let m = ClientFirst::parse("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")?;
    /// assert_eq!((m.gs2.cb.clone(), m.username.as_str(), m.nonce.as_str()),
    ///            (Gs2Cb::No, "user", "rOprNGfwEbeRWgbNEkqO"));
    /// assert_eq!(m.encode(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    /// assert!(ClientFirst::parse("n,,m=x,n=user,r=abc").is_err());
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ExtensionsNotSupported`] for `m=`; [`Error::InvalidUsernameEncoding`]
    /// for a bad saslname; [`Error::InvalidMessage`] for anything else malformed.
    pub fn parse(s: &str) -> Result<Self> {
        check_size(s)?;
        let (gs2, bare) = split_gs2(s)?;
        let gs2 = Gs2Header::parse(gs2)?;
        let mut parts = bare.split(',');
        let username = saslname(expect(parts.next(), 'n')?)?;
        let nonce = nonce(expect(parts.next(), 'r')?)?;
        let extensions = extensions(parts)?;
        Ok(Self { gs2, username, nonce, extensions })
    }

    /// client-first-message-bare: `n=<saslname>,r=<nonce>[,extensions]`.
    #[must_use]
    pub fn encode_bare(&self) -> String {
        let mut out = String::with_capacity(self.username.len() + self.nonce.len() + 8);
        out.push_str("n=");
        out.push_str(&crate::username::escape(&self.username));
        out.push_str(",r=");
        out.push_str(&self.nonce);
        push_extensions(&mut out, &self.extensions);
        out
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = self.gs2.encode();
        out.push_str(&self.encode_bare());
        out
    }
}

impl ServerFirst {
    /// Parses a server-first-message.
    ///
    /// ```
    /// use scram_dh::sasl::text::ServerFirst;
    /// // RFC 7677 section 3
    /// let s = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    /// let m = ServerFirst::parse(s)?;
    /// assert_eq!((m.salt.len(), m.iterations), (16, 4096));
    /// assert_eq!(m.encode(), s);
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ExtensionsNotSupported`] for `m=`; [`Error::InvalidMessage`] for
    /// anything else malformed (bad nonce, base64 or iteration count).
    pub fn parse(s: &str) -> Result<Self> {
        check_size(s)?;
        let mut parts = s.split(',');
        let nonce = nonce(expect(parts.next(), 'r')?)?;
        let salt = base64(expect(parts.next(), 's')?, "the salt")?;
        let iterations = posit_number(expect(parts.next(), 'i')?)?;
        let extensions = extensions(parts)?;
        Ok(Self { nonce, salt, iterations, extensions })
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.nonce.len() + self.salt.len() * 4 / 3 + 24);
        out.push_str("r=");
        out.push_str(&self.nonce);
        out.push_str(",s=");
        STANDARD.encode_string(&self.salt, &mut out);
        out.push_str(",i=");
        out.push_str(&self.iterations.to_string());
        push_extensions(&mut out, &self.extensions);
        out
    }
}

impl ClientFinal {
    /// Parses a client-final-message.
    ///
    /// ```
    /// use scram_dh::sasl::text::ClientFinal;
    /// // RFC 7677 section 3
    /// let s = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    ///          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    /// let m = ClientFinal::parse(s)?;
    /// assert_eq!(m.channel_binding, b"n,,");
    /// assert_eq!(m.encode(), s);
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ExtensionsNotSupported`] for `m=`; [`Error::InvalidMessage`] for
    /// anything else malformed (a proof that is not 32 bytes, among others).
    pub fn parse(s: &str) -> Result<Self> {
        check_size(s)?;
        let (without, proof) = split_proof(s)?;
        let mut parts = without.split(',');
        let channel_binding = base64(expect(parts.next(), 'c')?, "the channel binding")?;
        let nonce = nonce(expect(parts.next(), 'r')?)?;
        let extensions = extensions(parts)?;
        let proof = base64_32(proof, "the proof")?;
        Ok(Self { channel_binding, nonce, extensions, proof })
    }

    /// client-final-message-without-proof: `c=...,r=...[,extensions]`.
    #[must_use]
    pub fn encode_without_proof(&self) -> String {
        let mut out = String::with_capacity(self.nonce.len() + self.channel_binding.len() * 4 / 3 + 16);
        out.push_str("c=");
        STANDARD.encode_string(&self.channel_binding, &mut out);
        out.push_str(",r=");
        out.push_str(&self.nonce);
        push_extensions(&mut out, &self.extensions);
        out
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = self.encode_without_proof();
        out.push_str(",p=");
        STANDARD.encode_string(self.proof, &mut out);
        out
    }
}

impl ServerFinal {
    /// Parses a server-final-message; optional extensions after the first
    /// attribute are checked and ignored.
    ///
    /// ```
    /// use scram_dh::sasl::text::ServerFinal;
    /// let m = ServerFinal::parse("e=invalid-proof")?;
    /// assert_eq!(m, ServerFinal::Error("invalid-proof".into()));
    /// // RFC 7677 section 3
    /// let v = ServerFinal::parse("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")?;
    /// assert!(matches!(v, ServerFinal::Verifier(_)));
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ExtensionsNotSupported`] for `m=`; [`Error::InvalidMessage`] for
    /// anything else malformed (a verifier that is not 32 bytes, an empty `e=`).
    pub fn parse(s: &str) -> Result<Self> {
        check_size(s)?;
        let mut parts = s.split(',');
        let first = parts.next().ok_or_else(|| malformed("empty"))?;
        let out = match attribute(first)? {
            ('v', value) => Self::Verifier(base64_32(value, "the server signature")?),
            ('e', value) => {
                check_value(value)?;
                Self::Error(value.to_owned())
            }
            _ => return Err(malformed("the server-final-message must start with v= or e=")),
        };
        extensions(parts)?;
        Ok(out)
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::Verifier(v) => {
                let mut out = String::with_capacity(46);
                out.push_str("v=");
                STANDARD.encode_string(v, &mut out);
                out
            }
            Self::Error(value) => format!("e={value}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn invalid<T: core::fmt::Debug>(r: Result<T>) {
        assert!(matches!(r, Err(Error::InvalidMessage(_))), "{r:?}");
    }

    fn mext<T: core::fmt::Debug>(r: Result<T>) {
        assert!(matches!(r, Err(Error::ExtensionsNotSupported)), "{r:?}");
    }

    fn bad_name<T: core::fmt::Debug>(r: Result<T>) {
        assert!(matches!(r, Err(Error::InvalidUsernameEncoding(_))), "{r:?}");
    }

    const PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    #[test]
    fn gs2_header_rules() {
        assert_eq!(Gs2Header::parse("n,,").unwrap(), Gs2Header { cb: Gs2Cb::No, authzid: None });
        assert_eq!(Gs2Header::parse("y,,").unwrap().cb, Gs2Cb::Yes);
        assert_eq!(Gs2Header::parse("p=tls-unique,,").unwrap().cb, Gs2Cb::Bound("tls-unique".into()));
        assert_eq!(Gs2Header::parse("n,a=a=2Cb=3D,").unwrap().authzid.as_deref(), Some("a,b="));
        for bad in
            ["", "n", "n,", "x,,", "N,,", "F,n,,", "p=,,", "p=tls exporter,,", "p=tls_x,,", "n,b=x,", "n,,x"]
        {
            invalid(Gs2Header::parse(bad));
        }
        bad_name(Gs2Header::parse("n,a=,"));
        bad_name(Gs2Header::parse("n,a=x=41,"));
        bad_name(Gs2Header::parse("n,a=x\0,"));
    }

    #[test]
    fn client_first_rules() {
        let m = ClientFirst::parse("n,,n=u=2Cv=3Dw,r=abc,x=1,y=a=b").unwrap();
        assert_eq!(m.username, "u,v=w");
        assert_eq!(
            m.extensions,
            vec![Extension { name: 'x', value: "1".into() }, Extension { name: 'y', value: "a=b".into() }]
        );
        assert_eq!(m.encode(), "n,,n=u=2Cv=3Dw,r=abc,x=1,y=a=b");
        mext(ClientFirst::parse("n,,m=ext,n=user,r=abc"));
        mext(ClientFirst::parse("n,,n=user,r=abc,m=ext"));
        bad_name(ClientFirst::parse("n,,n=,r=abc"));
        bad_name(ClientFirst::parse("n,,n=a=2c,r=abc"));
        bad_name(ClientFirst::parse("n,,n=a=b,r=abc"));
        bad_name(ClientFirst::parse("n,,n=a\0b,r=abc"));
        for bad in [
            "n,,r=abc,n=user",
            "n,,n=user",
            "n,,n=user,r=",
            "n,,n=user,r=ab c",
            "n,,n=user,r=ab\u{e9}",
            "n,,n=user,r=abc,",
            "n,,n=user,r=abc,x=",
            "n,,n=user,r=abc,r=def",
            "n,,n=user,r=abc,1=x",
            "n,,n=user,r=abc,xy",
            "n,,n=user,r=abc,x=a\0",
            "n,, n=user,r=abc",
            "n,n=user,r=abc",
        ] {
            invalid(ClientFirst::parse(bad));
        }
        invalid(ClientFirst::parse(&format!("n,,n=user,r={}", "a".repeat(MAX_MESSAGE_BYTES))));
    }

    #[test]
    fn server_first_rules() {
        let ok = "r=abc,s=c2FsdA==,i=4096";
        assert_eq!(ServerFirst::parse(ok).unwrap().encode(), ok);
        assert_eq!(ServerFirst::parse("r=abc,s=c2FsdA==,i=4294967295").unwrap().iterations, u32::MAX);
        mext(ServerFirst::parse("m=x,r=abc,s=c2FsdA==,i=4096"));
        mext(ServerFirst::parse("r=abc,s=c2FsdA==,i=4096,m=x"));
        for bad in [
            "r=abc,s=c2FsdA==",
            "r=abc,i=4096,s=c2FsdA==",
            "r=abc,s=c2FsdA=,i=4096",
            "r=abc,s=c2FsdB==,i=4096",
            "r=abc,s=c2Fsd A==,i=4096",
            "r=abc,s=c2FsdA==,i=0",
            "r=abc,s=c2FsdA==,i=04096",
            "r=abc,s=c2FsdA==,i=+4096",
            "r=abc,s=c2FsdA==,i=4294967296",
            "r=abc,s=c2FsdA==,i=4096 ",
            "r=abc,s=c2FsdA==,i=4096,",
            "r=a,c,s=c2FsdA==,i=4096",
        ] {
            invalid(ServerFirst::parse(bad));
        }
    }

    #[test]
    fn client_final_rules() {
        let ok = format!("c=biws,r=abc,x=y,p={PROOF}");
        let m = ClientFinal::parse(&ok).unwrap();
        assert_eq!(m.encode(), ok);
        assert_eq!(m.encode_without_proof(), "c=biws,r=abc,x=y");
        mext(ClientFinal::parse(&format!("c=biws,r=abc,m=y,p={PROOF}")));
        for bad in [
            format!("r=abc,c=biws,p={PROOF}"),
            format!("c=biws,p={PROOF}"),
            "c=biws,r=abc".to_owned(),
            "c=biws,r=abc,p=".to_owned(),
            format!("c=biws,r=abc,p={}", &PROOF[..40]),
            "c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQA".to_owned(),
            format!("c=biws,r=abc,p={PROOF}AAAA"),
            format!("c=biw,r=abc,p={PROOF}"),
            format!("c=biws,r=abc,p={PROOF},x=1"),
            format!("c=biws,r=abc,p=x,p={PROOF}"),
        ] {
            invalid(ClientFinal::parse(&bad));
        }
    }

    #[test]
    fn server_final_rules() {
        let v = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert_eq!(ServerFinal::parse(v).unwrap().encode(), v);
        assert!(matches!(ServerFinal::parse(&format!("{v},x=1")).unwrap(), ServerFinal::Verifier(_)));
        assert_eq!(
            ServerFinal::parse("e=some-future-value").unwrap(),
            ServerFinal::Error("some-future-value".into())
        );
        mext(ServerFinal::parse("m=x"));
        mext(ServerFinal::parse(&format!("{v},m=x")));
        for bad in [
            "",
            "e=",
            "v=",
            "v=c2FsdA==",
            "x=1",
            "e=a\0",
            "e=invalid-proof,",
            "E=invalid-proof",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
        ] {
            invalid(ServerFinal::parse(bad));
        }
    }

    #[test]
    fn splits_keep_bytes() {
        assert_eq!(split_gs2("p=tls-exporter,a=x,n=u,r=n").unwrap(), ("p=tls-exporter,a=x,", "n=u,r=n"));
        assert_eq!(split_proof("c=biws,r=a,p=AAAA").unwrap(), ("c=biws,r=a", "AAAA"));
        invalid(split_proof("c=biws,r=a,x=AAAA"));
    }
}
