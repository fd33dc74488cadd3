//! The relay loop of a raw viewer: one hand-written poll per wake-up, in the shape of the
//! RTMP relay's. A live viewer wakes its task ten or more times a second for one read and
//! one write; a `select!` over four futures (origin, viewer, cut, timer) on each of them
//! cost more than the two syscalls' share of user time. Here a wake-up moves what it can,
//! then does what is left with plain comparisons against one clock reading:
//! - the idle and stalled-viewer timeouts are one timer, re-armed only when it fires
//!   (never on each read): the last progress is an instant kept beside it;
//! - the session's cut is watched through a waker that raises a flag, so a wake-up reads
//!   one atomic instead of locking the token's waiter list;
//! - byte counters (the session's and `proxy_bytes_total`, shared by every viewer) are
//!   published at most every [`REPORT_EVERY`], and when the relay ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::RELAY_BUFFER;
use crate::sessions::{SessionGuard, Traffic};

/// How stale a flowing relay's byte counters may be. A stream that pauses is counted when
/// it flows again or ends.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Why a relay ended.
#[derive(Debug)]
pub enum Ended {
    /// The viewer closed its side or went away.
    ViewerClosed,
    /// Reading from the origin or writing to the viewer failed.
    Io(std::io::Error),
    /// The origin sent nothing for the idle timeout.
    OriginIdle,
    /// The viewer read nothing for the idle timeout.
    ViewerStalled,
    /// The session was cut: its origin was marked down.
    Cut,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::ViewerClosed => f.write_str("the viewer closed"),
            Ended::Io(e) => write!(f, "{e}"),
            Ended::OriginIdle => f.write_str("the origin sent nothing for the idle timeout"),
            Ended::ViewerStalled => f.write_str("the viewer read nothing for the idle timeout"),
            Ended::Cut => f.write_str("the origin was marked down"),
        }
    }
}

/// Relays `origin` to `viewer`, `first` (the response head and the body's start) first,
/// until either side ends: one buffer, the origin read again as soon as what it gave is
/// written. The viewer's own bytes after its request are read and dropped (its close ends
/// the relay). An origin silent for `idle`, or a viewer that takes nothing for `idle`,
/// ends it; so does the session's cut.
pub async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    viewer: &mut S,
    origin: TcpStream,
    first: Vec<u8>,
    session: Option<&SessionGuard>,
    idle: Duration,
) -> Result<(), Ended> {
    let mut relay = Pump::new(viewer, origin, first, session, idle);
    std::future::poll_fn(|cx| relay.poll(cx)).await
}

/// [`pump`] without a session, its end as text: what `benches/raw_pump.rs` drives.
pub async fn bench_pump<S: AsyncRead + AsyncWrite + Unpin>(
    viewer: &mut S,
    origin: TcpStream,
    idle: Duration,
) -> Result<(), String> {
    pump(viewer, origin, Vec::new(), None, idle)
        .await
        .map_err(|e| e.to_string())
}

struct Pump<'a, S> {
    viewer: &'a mut S,
    origin: TcpStream,
    /// What the origin gave; `buf[at..len]` is still to be written.
    buf: Vec<u8>,
    at: usize,
    len: usize,
    sink: [u8; 256],
    idle: Duration,
    /// The last time bytes moved either way.
    since: Instant,
    /// Fires at or before `since + idle`; moved on only when it fires.
    timer: Pin<Box<Sleep>>,
    /// The waker the timer and the cut were last registered with.
    registered: Option<Waker>,
    cut: Option<Cut>,
    traffic: Option<Arc<Traffic>>,
    unreported: usize,
    report_at: Instant,
}

/// A session's cut, and a flag its waker raises.
struct Cut {
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    flag: Arc<Flag>,
}

/// Wakes the relay's task, noting that it was the cut that woke it.
struct Flag {
    raised: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.raised.store(true, Ordering::Release);
        let task = self.task.lock().ok().and_then(|t| t.clone());
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Pump<'a, S> {
    fn new(
        viewer: &'a mut S,
        origin: TcpStream,
        first: Vec<u8>,
        session: Option<&SessionGuard>,
        idle: Duration,
    ) -> Self {
        let now = Instant::now();
        let len = first.len();
        let mut buf = first;
        if buf.len() < RELAY_BUFFER {
            buf.resize(RELAY_BUFFER, 0);
        }
        Pump {
            viewer,
            origin,
            buf,
            at: 0,
            len,
            sink: [0; 256],
            idle,
            since: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            registered: None,
            cut: session.map(|s| Cut {
                wait: Box::pin(s.cut().clone().cancelled_owned()),
                flag: Arc::new(Flag {
                    raised: AtomicBool::new(true),
                    task: Mutex::new(None),
                }),
            }),
            traffic: session.map(|s| s.traffic().clone()),
            unreported: 0,
            report_at: now + REPORT_EVERY,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Ended>> {
        let moved = match self.relay(cx) {
            Ok(moved) => moved,
            Err(ended) => return Poll::Ready(ended),
        };
        let now = Instant::now();
        if moved {
            self.since = now;
            if now >= self.report_at {
                self.report();
                self.report_at = now + REPORT_EVERY;
            }
        }
        let rewake = !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if rewake {
            self.registered = Some(cx.waker().clone());
        }
        if let Some(cut) = &mut self.cut {
            if rewake {
                if let Ok(mut task) = cut.flag.task.lock() {
                    *task = Some(cx.waker().clone());
                }
                cut.flag.raised.store(true, Ordering::Relaxed);
            }
            // Polled (a lock on the token's waiters) only when its waker fired, or the
            // first time to register it.
            if cut.flag.raised.swap(false, Ordering::Acquire) {
                let waker = Waker::from(cut.flag.clone());
                let mut flagged = Context::from_waker(&waker);
                if cut.wait.as_mut().poll(&mut flagged).is_ready() {
                    return Poll::Ready(Err(Ended::Cut));
                }
            }
        }
        let due = self.since + self.idle;
        if now >= due {
            return Poll::Ready(Err(if self.len > 0 {
                Ended::ViewerStalled
            } else {
                Ended::OriginIdle
            }));
        }
        if rewake || now >= self.timer.deadline() {
            self.timer.as_mut().reset(due);
            // Registers the task's waker: `due` is ahead, so this is pending.
            if self.timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }

    /// Moves bytes until neither side can take or give more: whether any moved, or how
    /// the relay ended.
    fn relay(&mut self, cx: &mut Context<'_>) -> Result<bool, Result<(), Ended>> {
        let mut moved = false;
        loop {
            while self.at < self.len {
                match Pin::new(&mut *self.viewer).poll_write(cx, &self.buf[self.at..self.len]) {
                    Poll::Ready(Ok(0)) => return Err(Err(Ended::ViewerClosed)),
                    Poll::Ready(Ok(n)) => {
                        self.at += n;
                        moved = true;
                    }
                    Poll::Ready(Err(e)) => return Err(Err(Ended::Io(e))),
                    Poll::Pending => return Ok(moved),
                }
            }
            if self.len > 0 {
                // TLS holds records until flushed; a plain socket returns at once.
                match Pin::new(&mut *self.viewer).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Err(Err(Ended::Io(e))),
                    Poll::Pending => return Ok(moved),
                }
                self.unreported += self.len;
                self.at = 0;
                self.len = 0;
                if self.buf.len() > RELAY_BUFFER {
                    self.buf.truncate(RELAY_BUFFER);
                    self.buf.shrink_to_fit();
                }
            }
            let mut read = ReadBuf::new(&mut self.buf);
            match Pin::new(&mut self.origin).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Err(Ok(())),
                Poll::Ready(Ok(())) => {
                    self.len = read.filled().len();
                    moved = true;
                }
                Poll::Ready(Err(e)) => return Err(Err(Ended::Io(e))),
                Poll::Pending => break,
            }
        }
        // Waiting on the origin: the viewer's read side tells when it leaves.
        loop {
            let mut sink = ReadBuf::new(&mut self.sink);
            match Pin::new(&mut *self.viewer).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(())) if sink.filled().is_empty() => {
                    return Err(Err(Ended::ViewerClosed))
                }
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(Err(Ended::Io(e))),
                Poll::Pending => return Ok(moved),
            }
        }
    }
}

impl<S> Pump<'_, S> {
    fn report(&mut self) {
        if let (Some(traffic), n @ 1..) = (&self.traffic, self.unreported) {
            traffic.add_to_client(n);
        }
        self.unreported = 0;
    }
}

/// However the relay ends, what it moved is counted.
impl<S> Drop for Pump<'_, S> {
    fn drop(&mut self) {
        self.report();
    }
}
