//! The encrypted channel as a byte stream: [`SecureStream`] implements tokio's
//! `AsyncRead` and `AsyncWrite` over the same records as [`SecureChannel`](crate::channel::SecureChannel)
//! (SPEC 7), so an application can use `read_exact`, `copy`, codecs or any
//! protocol that wants a stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zeroize::Zeroizing;

use crate::channel::{MAX_RECORD_PLAINTEXT, RecordLayer};

/// An authenticated, encrypted byte stream. Each `write` seals at most 16384 bytes
/// into one record; reads return decrypted bytes across record boundaries.
/// `shutdown` sends the authenticated end of stream; a read reports the end of
/// the stream (`Ok` with no bytes) only after the peer's, and `UnexpectedEof` when
/// the connection is cut without it. A record that fails authentication, or
/// arrives replayed, reordered or oversized, is an `InvalidData` error and the
/// stream stays failed.
pub struct SecureStream<S> {
    layer: RecordLayer<S>,
    username: String,
    /// Decrypted bytes not yet handed out, and how many were.
    plain: Zeroizing<Vec<u8>>,
    plain_pos: usize,
}

impl<S> core::fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureStream").field("username", &self.username).finish_non_exhaustive()
    }
}

impl<S> SecureStream<S> {
    pub(crate) fn from_layer(layer: RecordLayer<S>, username: String) -> Self {
        Self { layer, username, plain: Zeroizing::new(Vec::new()), plain_pos: 0 }
    }

    /// The authenticated username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.plain_pos >= this.plain.len() {
            match ready!(this.layer.poll_record_io(cx))? {
                Some(plain) => {
                    this.plain = plain;
                    this.plain_pos = 0;
                }
                None => return Poll::Ready(Ok(())), // the authenticated end of stream
            }
        }
        let n = buf.remaining().min(this.plain.len() - this.plain_pos);
        buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + n]);
        this.plain_pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Earlier records go out first, so the outbox never holds more than one.
        ready!(this.layer.poll_drain_io(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_RECORD_PLAINTEXT);
        this.layer.queue_io(&data[..n])?;
        // The record is ours now: report it written even if the socket is not ready;
        // poll_flush (or the next write) delivers it.
        let _ = this.layer.poll_drain_io(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.layer.poll_flush_io(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.layer.poll_close_io(cx)
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
        server.close().await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0, "authenticated end of stream");
        // The stream's shutdown sends the end of stream the channel side sees.
        client.shutdown().await.unwrap();
        assert!(server.recv().await.unwrap().is_none());
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
        // A cut connection, between records or inside one, is an error, not a clean EOF.
        let (g, h) = tokio::io::duplex(4096);
        drop(h);
        let mut client = SecureChannel::new(g, "u".into(), keys(), Role::Client).into_stream();
        assert_eq!(client.read(&mut buf).await.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        let (e2, mut f) = tokio::io::duplex(4096);
        f.write_all(&rec[..10]).await.unwrap();
        drop(f);
        let mut client = SecureChannel::new(e2, "u".into(), keys(), Role::Client).into_stream();
        assert_eq!(client.read(&mut buf).await.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
