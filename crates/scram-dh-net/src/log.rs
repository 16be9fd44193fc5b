//! Peer-controlled text in log lines (finding M4): anything a client sent, or any
//! error text that may quote it (serde names the unknown `"type"` it met), goes
//! through [`Escaped`], so an ESC sequence or a newline can never reach a terminal
//! or forge a log line, in the text format and the JSON format alike.

use core::fmt;
use std::borrow::Cow;

/// Displays a string with every control character, every non-ASCII whitespace
/// or format character, and the backslash escaped (`\x1b`, `\n`, `\u{2028}`, `\\`).
/// Printable text, including non-ASCII letters, is shown as it is.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(needs_escape) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or('\u{fffd}');
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        // Line and paragraph separators, bidi overrides and other invisible format
        // characters can reorder or split what an operator reads.
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `s` escaped as [`Escaped`] shows it; borrowed when nothing needs escaping.
#[must_use]
pub fn escape(s: &str) -> Cow<'_, str> {
    if s.contains(needs_escape) { Cow::Owned(Escaped(s).to_string()) } else { Cow::Borrowed(s) }
}

/// An error (or anything displayable) rendered, then escaped.
pub struct EscapedDisplay(String);

impl fmt::Display for EscapedDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Escaped(&self.0).fmt(f)
    }
}

/// Renders `value` and escapes the result: `error = %escaped(&e)`.
pub fn escaped(value: &impl fmt::Display) -> EscapedDisplay {
    EscapedDisplay(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_lines_and_escape_sequences_are_neutralised() {
        let evil = "x\u{1b}[2J\n2026-12-01T00:00:00Z  INFO authenticated username=root\r\\";
        let shown = Escaped(evil).to_string();
        assert_eq!(shown, "x\\x1b[2J\\n2026-12-01T00:00:00Z  INFO authenticated username=root\\r\\\\");
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(Escaped("älice").to_string(), "älice", "printable non-ASCII kept");
        assert_eq!(Escaped("a\u{202e}b\u{7f}").to_string(), "a\\u{202e}b\\x7f");
        assert_eq!(escaped(&"tab\there").to_string(), "tab\\there");
    }
}
