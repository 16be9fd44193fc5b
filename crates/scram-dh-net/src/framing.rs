//! Handshake framing (SPEC 7): one JSON message per `\n`-terminated line, at most
//! 16 KiB per line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::NetError;

/// The longest handshake line accepted, newline excluded.
pub const MAX_LINE: usize = scram_dh::message::MAX_MESSAGE_BYTES;

/// Reads one line of at most [`MAX_LINE`] bytes, without the newline.
/// `Ok(None)` at a clean end of stream before any byte.
///
/// # Errors
/// [`NetError::LineTooLong`] past the limit (nothing more is read),
/// [`NetError::Io`] on I/O failure, [`NetError::Closed`] on EOF mid-line,
/// [`NetError::Protocol`] for a line that is not UTF-8.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<String>, NetError> {
    let mut line = Vec::with_capacity(512);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(NetError::Closed) };
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        line.extend_from_slice(chunk);
        // The limit is on the message, whichever line ending the client uses: one
        // byte over is allowed only as the `\r` of a `\r\n` (finding L13).
        if line.len() > MAX_LINE && !(line.len() == MAX_LINE + 1 && line.last() == Some(&b'\r')) {
            return Err(NetError::LineTooLong);
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| NetError::Protocol(scram_dh::Error::InvalidMessage("line is not UTF-8".into())))
}

/// Writes `text` and a newline, then flushes.
///
/// # Errors
/// [`NetError::Io`].
pub async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> Result<(), NetError> {
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn lines_and_limits() {
        let data = b"one\ntwo\r\nthree".to_vec();
        let mut r = BufReader::new(&data[..]);
        assert_eq!(read_line(&mut r).await.unwrap().as_deref(), Some("one"));
        assert_eq!(read_line(&mut r).await.unwrap().as_deref(), Some("two"));
        assert!(matches!(read_line(&mut r).await, Err(NetError::Closed)));
        let mut r = BufReader::new(&b""[..]);
        assert!(read_line(&mut r).await.unwrap().is_none());
        let big = vec![b'a'; MAX_LINE + 1];
        let mut r = BufReader::with_capacity(1024, &big[..]);
        assert!(matches!(read_line(&mut r).await, Err(NetError::LineTooLong)));
        let ok = [vec![b'a'; MAX_LINE], b"\n".to_vec()].concat();
        let mut r = BufReader::with_capacity(1024, &ok[..]);
        assert_eq!(read_line(&mut r).await.unwrap().map(|l| l.len()), Some(MAX_LINE));
        // L13: `\r\n` does not count against the limit; a longer line still fails.
        let crlf = [vec![b'a'; MAX_LINE], b"\r\n".to_vec()].concat();
        let mut r = BufReader::with_capacity(1024, &crlf[..]);
        assert_eq!(read_line(&mut r).await.unwrap().map(|l| l.len()), Some(MAX_LINE));
        let over = [vec![b'a'; MAX_LINE + 1], b"\n".to_vec()].concat();
        let mut r = BufReader::with_capacity(1024, &over[..]);
        assert!(matches!(read_line(&mut r).await, Err(NetError::LineTooLong)));
        let over_crlf = [vec![b'a'; MAX_LINE + 1], b"\r\n".to_vec()].concat();
        let mut r = BufReader::with_capacity(1024, &over_crlf[..]);
        assert!(matches!(read_line(&mut r).await, Err(NetError::LineTooLong)));
        let mut r = BufReader::new(&[0xff, b'\n'][..]);
        assert!(matches!(read_line(&mut r).await, Err(NetError::Protocol(_))));
    }
}
