//! The two kinds of connection the data path reads and writes: plain TCP, or mesh mutual TLS
//! ([`crate::mesh`]) over TCP. One enum per side, so the HTTP/1 and HTTP/2 paths have one
//! concrete type to work with whichever the connection is:
//!
//! * [`ClientIo`]: the connection picket accepted; TLS when picket terminated a mesh
//!   handshake on it;
//! * [`UpstreamIo`]: the connection picket opened; TLS when the upstream is a mesh peer.
//!
//! The HTTP/1 path splits them with [`tokio::io::split`] (the response relay writes to the
//! client while the request loop reads from it) and puts the halves back together with
//! `unsplit` when it needs the whole stream (HTTP/2 takes over, or a reset). Dropping either
//! never sends anything by itself: no FIN before the last half goes, and no TLS
//! `close_notify` ever, unless `shutdown` is called. [`ClientIo::abort`] turns the close into
//! a TCP reset.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection picket accepted.
pub enum ClientIo {
    Plain(TcpStream),
    /// Mesh mTLS, terminated by picket.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A connection picket opened to an upstream.
pub enum UpstreamIo {
    Plain(TcpStream),
    /// Mesh mTLS to a picket peer.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl ClientIo {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientIo::Plain(s) => s,
            ClientIo::Tls(t) => t.get_ref().0,
        }
    }

    /// Closes the connection with a TCP reset (`SO_LINGER` 0, no FIN, no `close_notify`), so
    /// the client sees an abort, not the clean end of a response it might take as complete.
    pub fn abort(self) {
        if let Err(e) = self.tcp().set_zero_linger() {
            tracing::warn!(error = %e, "SO_LINGER 0 failed; the close will be a FIN");
        }
        drop(self);
    }
}

impl UpstreamIo {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamIo::Plain(s) => s,
            UpstreamIo::Tls(t) => t.get_ref().0,
        }
    }
}

/// AsyncRead and AsyncWrite for an enum whose variants are `Plain` and `Tls`, by delegation.
macro_rules! delegate_io {
    ($ty:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Plain(s) => Pin::new(s).poll_read(cx, buf),
                    $ty::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
                }
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Plain(s) => Pin::new(s).poll_write(cx, data),
                    $ty::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, data),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    $ty::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $ty::Plain(s) => s.is_write_vectored(),
                    $ty::Tls(t) => t.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Plain(s) => Pin::new(s).poll_flush(cx),
                    $ty::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Plain(s) => Pin::new(s).poll_shutdown(cx),
                    $ty::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_io!(ClientIo);
delegate_io!(UpstreamIo);
