//! The encrypted channel as a byte stream: [`SecureStream`] implements tokio's
//! `AsyncRead` and `AsyncWrite` over the same records as [`SecureChannel`]
//! (SPEC 7), so an application can use `read_exact`, `copy`, codecs or any
//! protocol that wants a stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use scram_dh::crypto::open;
use scram_dh::secret::SymmetricKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zeroize::Zeroizing;

use crate::channel::{MAX_RECORD_PLAINTEXT, push_record, record_len_ok};

/// An authenticated, encrypted byte stream. Each `write` seals at most 16384 bytes
/// into one record; reads return decrypted bytes across record boundaries. A
/// record that fails authentication, or arrives replayed, reordered or oversized,
/// is an `InvalidData` error and the stream stays failed.
pub struct SecureStream<S> {
    io: S,
    username: String,
    send_key: SymmetricKey,
    recv_key: SymmetricKey,
    send_seq: u64,
    recv_seq: u64,
    /// Raw bytes read but not yet a whole record.
    inbox: Vec<u8>,
    /// Decrypted bytes not yet handed out, and how many were.
    plain: Zeroizing<Vec<u8>>,
    plain_pos: usize,
    /// Sealed records not yet written to `io`, and how much of them was.
    outbox: Vec<u8>,
    out_pos: usize,
    failed: bool,
}

impl<S> core::fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureStream")
            .field("username", &self.username)
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<S> SecureStream<S> {
    pub(crate) fn from_parts(
        io: S,
        username: String,
        send_key: SymmetricKey,
        recv_key: SymmetricKey,
        (send_seq, recv_seq): (u64, u64),
        failed: bool,
    ) -> Self {
        Self {
            io,
            username,
            send_key,
            recv_key,
            send_seq,
            recv_seq,
            inbox: Vec::new(),
            plain: Zeroizing::new(Vec::new()),
            plain_pos: 0,
            outbox: Vec::new(),
            out_pos: 0,
            failed,
        }
    }

    /// The authenticated username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    fn check(&self) -> io::Result<()> {
        if self.failed { Err(invalid("encrypted stream failed earlier")) } else { Ok(()) }
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Writes out sealed records until the outbox is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.outbox.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outbox[self.out_pos..]))?;
            if n == 0 {
                self.failed = true;
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.outbox.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check()?;
        loop {
            if this.plain_pos < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.plain_pos);
                buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + n]);
                this.plain_pos += n;
                return Poll::Ready(Ok(()));
            }
            // A whole record in the inbox? Decrypt it.
            if this.inbox.len() >= 4 {
                let len =
                    u32::from_be_bytes([this.inbox[0], this.inbox[1], this.inbox[2], this.inbox[3]]) as usize;
                if !record_len_ok(len) {
                    this.failed = true;
                    return Poll::Ready(Err(invalid("record length out of range")));
                }
                if this.inbox.len() >= 4 + len {
                    let Some(plain) = open(&this.recv_key, this.recv_seq, b"", &this.inbox[4..4 + len])
                    else {
                        this.failed = true;
                        return Poll::Ready(Err(invalid("record failed authentication")));
                    };
                    this.inbox.drain(..4 + len);
                    this.recv_seq =
                        this.recv_seq.checked_add(1).ok_or_else(|| invalid("sequence exhausted"))?;
                    this.plain = plain;
                    this.plain_pos = 0;
                    continue;
                }
            }
            // Need more bytes.
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return if this.inbox.is_empty() {
                    Poll::Ready(Ok(())) // clean end of stream between records
                } else {
                    this.failed = true;
                    Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()))
                };
            }
            this.inbox.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check()?;
        // Earlier records go out first, so the outbox never holds more than one.
        ready!(this.poll_drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_RECORD_PLAINTEXT);
        push_record(&mut this.outbox, &this.send_key, this.send_seq, &data[..n]);
        this.send_seq = this.send_seq.checked_add(1).ok_or_else(|| invalid("sequence exhausted"))?;
        // The record is ours now: report it written even if the socket is not ready;
        // poll_flush (or the next write) delivers it.
        let _ = this.poll_drain(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::channel::{Role, SecureChannel};
    use scram_dh::SessionKeys;
    use scram_dh::secret::SymmetricKey;

    fn keys() -> SessionKeys {
        SessionKeys { c2s: SymmetricKey::from_bytes([3; 32]), s2c: SymmetricKey::from_bytes([4; 32]) }
    }

    #[tokio::test]
    async fn stream_talks_to_channel_both_ways() {
        let (a, b) = tokio::io::duplex(4096);
        let mut client = SecureChannel::new(a, "u".into(), keys(), Role::Client).into_stream();
        let mut server = SecureChannel::new(b, "u".into(), keys(), Role::Server);
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let big2 = big.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&big2).await.unwrap();
            client.flush().await.unwrap();
            let mut back = vec![0u8; 5];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hello");
            client
        });
        let mut got = Vec::new();
        while got.len() < big.len() {
            let rec = server.recv().await.unwrap().unwrap();
            assert!(rec.len() <= crate::channel::MAX_RECORD_PLAINTEXT);
            got.extend_from_slice(&rec);
        }
        assert_eq!(got, big);
        server.send(b"hel").await.unwrap();
        server.send(b"lo").await.unwrap();
        let mut client = writer.await.unwrap();
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0, "clean end between records");
    }

    #[tokio::test]
    async fn tampered_record_is_an_error_and_sticks() {
        let (a, mut b) = tokio::io::duplex(4096);
        let mut server = SecureChannel::new(a, "u".into(), keys(), Role::Server);
        server.send(b"secret").await.unwrap();
        let mut rec = vec![0u8; 4 + 6 + 16];
        b.read_exact(&mut rec).await.unwrap();
        rec[6] ^= 1;
        let (c, mut d) = tokio::io::duplex(4096);
        d.write_all(&rec).await.unwrap();
        let mut client = SecureChannel::new(c, "u".into(), keys(), Role::Client).into_stream();
        let mut buf = [0u8; 16];
        let e = client.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(client.read(&mut buf).await.is_err(), "stays failed");
        // A truncated record at end of stream is an error, not a clean EOF.
        let (e2, mut f) = tokio::io::duplex(4096);
        f.write_all(&rec[..10]).await.unwrap();
        drop(f);
        let mut client = SecureChannel::new(e2, "u".into(), keys(), Role::Client).into_stream();
        assert_eq!(client.read(&mut buf).await.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
