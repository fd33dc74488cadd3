//! Catches clients that stop reading. A server writing to a full socket is never woken,
//! so a relay whose idle timer lives in the response body is never polled again, and a
//! viewer that stops reading would hold its slot and its origin connection forever.
//! [`WriteWatch`] wraps the client's socket and notes since when writes have been
//! blocked; [`stalled`] resolves once that has lasted the allowed time.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// A socket whose write progress is watched.
pub struct WriteWatch<T> {
    inner: T,
    state: Arc<Progress>,
}

/// When writes became blocked, shared with the watcher.
#[derive(Debug)]
pub struct Progress {
    epoch: Instant,
    /// Milliseconds since `epoch` (plus one) when the pending write began; 0: none pending.
    blocked_since: AtomicU64,
}

impl Progress {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn blocked(&self) {
        let now = self.now_ms();
        let _ = self
            .blocked_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn progressed(&self) {
        self.blocked_since.store(0, Ordering::Relaxed);
    }

    /// How long writes have been blocked, if they are.
    fn blocked_for(&self) -> Option<Duration> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(self.now_ms().saturating_sub(since))),
        }
    }
}

impl<T> WriteWatch<T> {
    /// Wraps `inner`; the returned state is what [`stalled`] watches.
    pub fn new(inner: T) -> (Self, Arc<Progress>) {
        let state = Arc::new(Progress {
            epoch: Instant::now(),
            blocked_since: AtomicU64::new(0),
        });
        (
            WriteWatch {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

/// Resolves when writes have been blocked for `limit` without a byte getting through.
pub async fn stalled(progress: &Progress, limit: Duration) {
    let step = (limit / 4).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(step).await;
        if progress
            .blocked_for()
            .is_some_and(|blocked| blocked >= limit)
        {
            return;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteWatch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if polled.is_pending() {
            self.state.blocked();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T> WriteWatch<T> {
    fn note(&self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Pending => self.state.blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.state.progressed(),
            Poll::Ready(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_reader_that_stops_is_caught_and_one_that_reads_is_not() {
        let (near, mut far) = tokio::io::duplex(64);
        let (mut watched, progress) = WriteWatch::new(near);
        let limit = Duration::from_millis(200);
        // Fill the pipe: the writer blocks, nobody reads.
        let writer = tokio::spawn(async move {
            let _ = watched.write_all(&[0u8; 4096]).await;
        });
        tokio::time::timeout(Duration::from_secs(5), stalled(&progress, limit))
            .await
            .expect("a blocked writer is reported");
        // Reading lets the writer progress: the block is forgotten.
        let mut sink = vec![0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut far, &mut sink).await;
        writer.abort();
        let (near, _far) = tokio::io::duplex(1 << 20);
        let (mut watched, progress) = WriteWatch::new(near);
        watched.write_all(&[0u8; 1024]).await.unwrap();
        assert!(progress.blocked_for().is_none());
        assert!(
            tokio::time::timeout(limit * 2, stalled(&progress, limit))
                .await
                .is_err(),
            "a writer that is never blocked is not reported"
        );
    }
}
