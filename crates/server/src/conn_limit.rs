//! Bounded authz connections: a cap on the open ones, and a deadline for a
//! new connection's first byte.
//!
//! The authz port only ever needs a handful of connections (the local
//! Envoy's gRPC client), so an unbounded number of idle ones is only a way
//! to run the process out of file descriptors (slowloris). Every accepted
//! connection takes a permit from a semaphore of [`MAX_CONNECTIONS`]; one
//! accepted with none left is closed at once and counted. A connection that
//! sends nothing within [`FIRST_BYTE_TIMEOUT`] (not even the HTTP/2 preface)
//! is closed and counted too, so idle sockets cannot hold the permits for
//! long. Past its first byte a connection is HTTP/2's to police: keep-alive
//! pings close one whose peer stopped answering (see `listen.rs`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hallpass_telemetry::Metrics;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;

/// Open authz connections at most; more are closed at accept.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// How long a new connection may stay silent before it is closed.
pub(crate) const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wrap a listener's stream of accepted connections: over the cap, a
/// connection is dropped (closed) and counted instead of handed on.
pub(crate) fn limit<S, IO, E>(
    incoming: S,
    metrics: Metrics,
) -> impl Stream<Item = Result<Bounded<IO>, E>>
where
    S: Stream<Item = Result<IO, E>>,
{
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    incoming.filter_map(move |accepted| match accepted {
        Err(e) => Some(Err(e)),
        Ok(io) => match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => Some(Ok(Bounded::new(io, permit, metrics.clone()))),
            Err(_) => {
                metrics.authz_connections_refused.inc();
                drop(io);
                None
            }
        },
    })
}

/// An accepted connection holding its permit (given back when dropped),
/// closed with an error if its first byte does not come in time.
pub(crate) struct Bounded<IO> {
    io: IO,
    first_byte: Option<Pin<Box<Sleep>>>,
    metrics: Metrics,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Bounded<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit, metrics: Metrics) -> Self {
        metrics.authz_connections.inc();
        Self {
            io,
            first_byte: Some(Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT))),
            metrics,
            _permit: permit,
        }
    }
}

impl<IO> Drop for Bounded<IO> {
    fn drop(&mut self) {
        self.metrics.authz_connections.dec();
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Bounded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.first_byte = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                // The timer is polled with the same waker, so a silent
                // socket is woken (and closed) when it fires.
                let expired = this
                    .first_byte
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.first_byte = None;
                this.metrics.authz_connections_idle_closed.inc();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no byte within the first-byte deadline",
                )))
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Bounded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Bounded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
