//! Usernames: SASLprep (RFC 4013) normalisation and RFC 5802 `saslname` escaping.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// The longest username accepted, in bytes after normalisation (SPEC 7).
pub const MAX_USERNAME_BYTES: usize = 255;

/// SASLprep-normalises a username and checks its length (1–255 bytes).
///
/// # Errors
/// [`Error::InvalidMessage`] when the name holds prohibited characters, breaks the
/// bidi rules, or is empty or too long after normalisation.
///
/// ```
/// assert_eq!(scram_dh::username::normalize("I\u{00AD}X").unwrap(), "IX");
/// assert!(scram_dh::username::normalize("").is_err());
/// ```
pub fn normalize(username: &str) -> Result<String> {
    let prepped = stringprep::saslprep(username)
        .map_err(|_| Error::invalid("username is not valid under SASLprep (RFC 4013)"))?;
    check_len(&prepped)?;
    Ok(prepped.into_owned())
}

/// Checks that a username received on the wire is already in SASLprep form.
///
/// Clients send the normalised name, so the transcript and `AuthMessage` are
/// computed over one unambiguous string (a README protocol note).
///
/// # Errors
/// [`Error::InvalidMessage`] when the name is not normalised or not valid.
pub fn require_normalized(username: &str) -> Result<()> {
    let prepped = stringprep::saslprep(username)
        .map_err(|_| Error::invalid("username is not valid under SASLprep (RFC 4013)"))?;
    if prepped != username {
        return Err(Error::invalid("username is not in SASLprep normal form"));
    }
    check_len(username)
}

fn check_len(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_USERNAME_BYTES {
        return Err(Error::invalid("username must be 1 to 255 bytes after SASLprep"));
    }
    Ok(())
}

/// Escapes a username as an RFC 5802 `saslname`: `,` → `=2C`, `=` → `=3D`.
///
/// ```
/// assert_eq!(scram_dh::username::escape("a,b=c"), "a=2Cb=3Dc");
/// ```
#[must_use]
pub fn escape(username: &str) -> Cow<'_, str> {
    if !username.contains([',', '=']) {
        return Cow::Borrowed(username);
    }
    let mut out = String::with_capacity(username.len() + 8);
    for ch in username.chars() {
        match ch {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Reverses [`escape`]. `None` for a lone `=` not followed by `2C` or `3D`, or a raw `,`.
#[must_use]
pub fn unescape(saslname: &str) -> Option<String> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(pos) = rest.find(['=', ',']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return None;
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslprep_rfc4013_examples() {
        // RFC 4013 section 3 examples.
        assert_eq!(normalize("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(normalize("user").unwrap(), "user");
        assert_eq!(normalize("USER").unwrap(), "USER");
        assert_eq!(normalize("\u{00AA}").unwrap(), "a");
        assert_eq!(normalize("\u{2168}").unwrap(), "IX");
        assert!(normalize("\u{0007}").is_err(), "prohibited character");
        assert!(normalize("\u{0627}1").is_err(), "bidi check");
    }

    #[test]
    fn lengths() {
        assert!(normalize("").is_err());
        assert!(normalize("\u{00AD}").is_err(), "empty after mapping");
        assert!(normalize(&"a".repeat(255)).is_ok());
        assert!(normalize(&"a".repeat(256)).is_err());
    }

    #[test]
    fn require_normalized_rejects_unprepped() {
        assert!(require_normalized("alice").is_ok());
        assert!(require_normalized("I\u{00AD}X").is_err());
        assert!(require_normalized("").is_err());
    }

    #[test]
    fn escape_round_trip() {
        for name in ["plain", "a,b", "=", "==,,", "x=2Cy"] {
            assert_eq!(unescape(&escape(name)).as_deref(), Some(name));
        }
        assert_eq!(unescape("a=2"), None);
        assert_eq!(unescape("a=4Fb"), None);
        assert_eq!(unescape("a,b"), None);
    }
}
