//! The relay loop: one task, both connections, readiness-driven.
//!
//! Bytes are read straight into the [`Relay`]'s input buffers and written straight from
//! its output, so a message is copied only by the relay's re-chunking. Memory is bounded
//! per direction: a side is read only while the output pending for the other side is
//! below [`HIGH_WATER`], so a peer that reads slowly holds back its counterpart through TCP
//! (backpressure) instead of growing the proxy's buffers. What the session holds
//! (partial messages, output) is kept charged to the [`BufferBudget`](super::budget::BufferBudget)
//! after every step; the session ends when the budget cannot cover it.
//!
//! Each side is any `AsyncRead + AsyncWrite` (the socket, or TLS over it), polled in one
//! future: for a socket, a poll is the readiness check and the non-blocking call in one,
//! so the plain path does what it would with `readable()` / `try_read`. A side that
//! buffers what it is given (TLS) is flushed once nothing more is pending for it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes};
use rtmp_peek::Relay;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;

use super::budget::Charge;
use super::Fault;
use crate::lifecycle::Lifecycle;
use crate::sessions::Traffic;

/// Output pending for one side above which the other side is no longer read. The kernel's
/// socket buffers (megabytes on a fast path) do the smoothing; this only needs to keep a
/// write going while the next read is processed. Pending output can pass it by the
/// messages one read completes.
pub const HIGH_WATER: usize = 256 * 1024;
/// Most bytes read from a connection at once.
const READ_SIZE: usize = 64 * 1024;
/// How long the pending output may take to drain once the session ends.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// Relays until one side closes or fails, nothing moves for `idle`, or the session holds
/// more than `charge` can cover. Counts the bytes written to each side into `traffic`.
/// Flushes what is pending (briefly) before returning.
pub async fn run<C, O>(
    client: &mut C,
    origin: &mut O,
    relay: &mut Relay,
    traffic: &Traffic,
    idle: Duration,
    lifecycle: &Lifecycle,
    charge: &mut Charge,
) -> Fault
where
    C: AsyncRead + AsyncWrite + Unpin,
    O: AsyncRead + AsyncWrite + Unpin,
{
    let mut state = Pending::default();
    let fault = relay_loop(
        client, origin, relay, traffic, idle, lifecycle, charge, &mut state,
    )
    .await;
    state.report(traffic);
    let flush = async {
        // Whatever fails here, the session is over: best effort within the grace.
        while state.refill(relay) {
            if !state.to_client.is_empty() {
                let piece = std::mem::take(&mut state.to_client);
                if client.write_all(&piece).await.is_err() {
                    break;
                }
                traffic.add_to_client(piece.len());
            } else if !state.to_origin.is_empty() {
                let piece = std::mem::take(&mut state.to_origin);
                if origin.write_all(&piece).await.is_err() {
                    break;
                }
                traffic.add_to_origin(piece.len());
            }
        }
        let _ = client.flush().await;
        let _ = origin.flush().await;
    };
    let _ = tokio::time::timeout(FLUSH_GRACE, flush).await;
    fault
}

/// Output taken from the relay and being written.
#[derive(Default)]
struct Pending {
    to_client: Bytes,
    to_origin: Bytes,
    /// Written to a side that may hold it (TLS) and not flushed since.
    client_unflushed: bool,
    origin_unflushed: bool,
    /// Written and not yet added to the session's counters: they are updated once per
    /// wake-up (before the task sleeps, and at the end), not once per write.
    unreported_to_client: usize,
    unreported_to_origin: usize,
}

impl Pending {
    /// Takes more output from the relay where the current piece is done. Whether anything
    /// is left to write.
    fn refill(&mut self, relay: &mut Relay) -> bool {
        if self.to_client.is_empty() && relay.pending_for_client() > 0 {
            self.to_client = relay.take_for_client();
        }
        if self.to_origin.is_empty() && relay.pending_for_origin() > 0 {
            self.to_origin = relay.take_for_origin();
        }
        !self.to_client.is_empty() || !self.to_origin.is_empty()
    }

    fn sent_to_client(&mut self, n: usize) {
        self.to_client.advance(n);
        if self.to_client.is_empty() {
            // Let go of the relay's output buffer at once: while a piece of it is held,
            // the relay cannot reuse it and allocates (and copies into) a new one.
            self.to_client = Bytes::new();
        }
        self.client_unflushed = true;
        self.unreported_to_client += n;
    }

    fn sent_to_origin(&mut self, n: usize) {
        self.to_origin.advance(n);
        if self.to_origin.is_empty() {
            self.to_origin = Bytes::new();
        }
        self.origin_unflushed = true;
        self.unreported_to_origin += n;
    }

    /// Adds what was written since the last call to the session's counters.
    fn report(&mut self, traffic: &Traffic) {
        if self.unreported_to_client > 0 {
            traffic.add_to_client(std::mem::take(&mut self.unreported_to_client));
        }
        if self.unreported_to_origin > 0 {
            traffic.add_to_origin(std::mem::take(&mut self.unreported_to_origin));
        }
    }

    /// Bytes taken from the relay and not written yet.
    fn len(&self) -> usize {
        self.to_client.len() + self.to_origin.len()
    }
}

/// What one poll of both sides made happen.
enum Step {
    SentToClient(usize),
    SentToOrigin(usize),
    FlushedClient,
    FlushedOrigin,
    ReadClient(usize),
    ReadOrigin(usize),
    IdleTimer,
    Forced,
    Fault(Fault),
}

/// Writes what `pending` holds to `io` (`Some(bytes written)`), else flushes it if
/// `unflushed` (`None`); `Pending` when there is nothing to do or it cannot take more yet.
fn poll_output<W: AsyncWrite + Unpin>(
    io: &mut W,
    cx: &mut std::task::Context<'_>,
    pending: &[u8],
    unflushed: bool,
) -> Poll<io::Result<Option<usize>>> {
    if !pending.is_empty() {
        match Pin::new(io).poll_write(cx, pending) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the connection takes no more bytes",
            ))),
            written => written.map_ok(Some),
        }
    } else if unflushed {
        Pin::new(io).poll_flush(cx).map_ok(|()| None)
    } else {
        Poll::Pending
    }
}

#[allow(clippy::too_many_arguments)]
async fn relay_loop<C, O>(
    client: &mut C,
    origin: &mut O,
    relay: &mut Relay,
    traffic: &Traffic,
    idle: Duration,
    lifecycle: &Lifecycle,
    charge: &mut Charge,
    out: &mut Pending,
) -> Fault
where
    C: AsyncRead + AsyncWrite + Unpin,
    O: AsyncRead + AsyncWrite + Unpin,
{
    // The legs may hold bytes already (a client that did not wait for the origin's answer,
    // media an origin sent with its verdict).
    if let Err(e) = relay.process_client() {
        return Fault::ClientProtocol(e);
    }
    if let Err(e) = relay.process_origin() {
        return Fault::OriginProtocol(e);
    }
    // The idle timer is re-armed only when it fires, not on every byte; the clock is read
    // once per wake-up that moved bytes (as the task goes back to sleep), not per step:
    // the steps of one wake-up happen within microseconds of each other.
    let mut last_activity = Instant::now();
    let mut moved = false;
    let idle_timer = tokio::time::sleep(idle);
    let forced = lifecycle.forced();
    tokio::pin!(idle_timer, forced);
    loop {
        out.refill(relay);
        // A few loads and compares; the shared counter moves only when a step is crossed.
        if let Err(over) = charge.update(relay.buffered_bytes() + out.len()) {
            return Fault::OverBudget(over);
        }
        let read_client = out.to_origin.len() + relay.pending_for_origin() < HIGH_WATER;
        let read_origin = out.to_client.len() + relay.pending_for_client() < HIGH_WATER;
        // Writes first, as a biased select would: output drains before more is read.
        let step = poll_fn(|cx| {
            match poll_output(&mut *client, cx, &out.to_client, out.client_unflushed) {
                Poll::Ready(Ok(Some(n))) => return Poll::Ready(Step::SentToClient(n)),
                Poll::Ready(Ok(None)) => return Poll::Ready(Step::FlushedClient),
                Poll::Ready(Err(e)) => return Poll::Ready(Step::Fault(Fault::ClientIo(e))),
                Poll::Pending => {}
            }
            match poll_output(&mut *origin, cx, &out.to_origin, out.origin_unflushed) {
                Poll::Ready(Ok(Some(n))) => return Poll::Ready(Step::SentToOrigin(n)),
                Poll::Ready(Ok(None)) => return Poll::Ready(Step::FlushedOrigin),
                Poll::Ready(Err(e)) => return Poll::Ready(Step::Fault(Fault::OriginIo(e))),
                Poll::Pending => {}
            }
            if read_client {
                let input = relay.client_input();
                input.reserve(READ_SIZE);
                match poll_read_buf(Pin::new(&mut *client), cx, input) {
                    Poll::Ready(Ok(n)) => return Poll::Ready(Step::ReadClient(n)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Step::Fault(Fault::ClientIo(e))),
                    Poll::Pending => {}
                }
            }
            if read_origin {
                let input = relay.origin_input();
                input.reserve(READ_SIZE);
                match poll_read_buf(Pin::new(&mut *origin), cx, input) {
                    Poll::Ready(Ok(n)) => return Poll::Ready(Step::ReadOrigin(n)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Step::Fault(Fault::OriginIo(e))),
                    Poll::Pending => {}
                }
            }
            // Nothing more to do at once: what this wake-up moved happened about now.
            if moved {
                moved = false;
                last_activity = Instant::now();
            }
            if idle_timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::IdleTimer);
            }
            if forced.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Forced);
            }
            // Going to sleep: whatever this wake-up did is accounted for now, so a session
            // dropped while it waits (cut, forced) has reported every byte it wrote.
            out.report(traffic);
            Poll::Pending
        })
        .await;
        match step {
            Step::SentToClient(n) => {
                out.sent_to_client(n);
                moved = true;
            }
            Step::SentToOrigin(n) => {
                out.sent_to_origin(n);
                moved = true;
            }
            Step::FlushedClient => out.client_unflushed = false,
            Step::FlushedOrigin => out.origin_unflushed = false,
            Step::ReadClient(0) => return Fault::ClientClosed,
            Step::ReadClient(_) => {
                moved = true;
                if let Err(e) = relay.process_client() {
                    return Fault::ClientProtocol(e);
                }
            }
            Step::ReadOrigin(0) => return Fault::OriginClosed,
            Step::ReadOrigin(_) => {
                moved = true;
                if let Err(e) = relay.process_origin() {
                    return Fault::OriginProtocol(e);
                }
            }
            Step::IdleTimer => {
                let quiet = last_activity.elapsed();
                if quiet >= idle {
                    return Fault::Idle(idle);
                }
                match last_activity.checked_add(idle) {
                    Some(deadline) => idle_timer.as_mut().reset(deadline),
                    None => return Fault::Idle(idle),
                }
            }
            Step::Forced => return Fault::Shutdown,
            Step::Fault(fault) => return fault,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::budget::{BufferBudget, FREE_PER_CONNECTION};
    use rtmp_peek::message::types;
    use rtmp_peek::{ChunkReader, ChunkWriter, Leg, Message};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: (the proxy's end, the peer's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        (ours, peer)
    }

    fn leg(stream_id: u32) -> Leg {
        Leg::new(ChunkReader::new(), ChunkWriter::new(), stream_id)
    }

    struct Rig {
        client: TcpStream,
        origin: TcpStream,
        traffic: std::sync::Arc<Traffic>,
        done: tokio::task::JoinHandle<Fault>,
    }

    /// How the relay ended, within `secs` seconds.
    async fn ended(done: tokio::task::JoinHandle<Fault>, secs: u64) -> Fault {
        tokio::time::timeout(Duration::from_secs(secs), done)
            .await
            .expect("the relay ends in time")
            .expect("the relay task")
    }

    async fn rig(idle: Duration) -> Rig {
        rig_with_budget(idle, BufferBudget::new(None)).await
    }

    async fn rig_with_budget(idle: Duration, budget: Arc<BufferBudget>) -> Rig {
        let (client_ours, client) = pair().await;
        let (origin_ours, origin) = pair().await;
        let traffic = std::sync::Arc::new(Traffic::default());
        let counters = traffic.clone();
        let done = tokio::spawn(async move {
            let mut relay = Relay::new(leg(1), leg(7));
            let life = Lifecycle::new();
            let mut charge = budget.charge();
            let (mut client_ours, mut origin_ours) = (client_ours, origin_ours);
            run(
                &mut client_ours,
                &mut origin_ours,
                &mut relay,
                &counters,
                idle,
                &life,
                &mut charge,
            )
            .await
        });
        Rig {
            client,
            origin,
            traffic,
            done,
        }
    }

    fn video(ts: u32, size: usize) -> Message {
        Message::new(6, types::VIDEO, 7, ts, Bytes::from(vec![0x17; size]))
    }

    /// An origin sends as fast as it can to a player that does not read: the proxy stops
    /// reading the origin instead of buffering, so the origin's writes block; once the
    /// player reads, everything flows again, in order and on the player's stream id.
    #[tokio::test]
    async fn a_stalled_player_holds_the_origin_back() {
        let mut rig = rig(Duration::from_secs(30)).await;
        let mut writer = ChunkWriter::new();
        let mut sent = 0usize;
        let mut messages = 0u32;
        let limit = 64 * 1024 * 1024;
        loop {
            let mut wire = bytes::BytesMut::new();
            writer.write(&video(messages, 60_000), &mut wire).unwrap();
            let write = rig.origin.write_all(&wire);
            match tokio::time::timeout(Duration::from_millis(500), write).await {
                Ok(result) => result.unwrap(),
                Err(_) => break,
            }
            sent += wire.len();
            messages += 1;
            assert!(
                sent < limit,
                "the origin wrote {sent} bytes to a stalled player unhindered"
            );
        }
        let relayed = rig.traffic.to_client.load(Ordering::Relaxed);
        // What is in flight: the socket buffers on both hops and the relay's bounded share.
        assert!(
            sent < 32 * 1024 * 1024,
            "{sent} bytes accepted from the origin"
        );
        assert!(relayed as usize <= sent);

        // The player reads now: every message arrives.
        let reading = tokio::spawn(async move {
            let mut reader = ChunkReader::new();
            let mut got = 0u32;
            let mut buf = vec![0u8; 256 * 1024];
            while got < messages {
                let n = rig.client.read(&mut buf).await.unwrap();
                assert!(n > 0, "the proxy closed the player after {got} messages");
                reader.feed(&buf[..n]);
                while let Some(msg) = reader.next_message().unwrap() {
                    assert_eq!(
                        (msg.type_id, msg.stream_id, msg.timestamp),
                        (types::VIDEO, 1, got)
                    );
                    assert_eq!(msg.payload.len(), 60_000);
                    got += 1;
                }
            }
            (got, rig.client)
        });
        let (got, _client) = tokio::time::timeout(Duration::from_secs(20), reading)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, messages);
        drop(rig.origin);
        let fault = ended(rig.done, 5).await;
        assert!(matches!(fault, Fault::OriginClosed), "{fault}");
    }

    #[tokio::test]
    async fn a_dead_origin_ends_the_relay_at_once() {
        let rig = rig(Duration::from_secs(30)).await;
        drop(rig.origin);
        let fault = ended(rig.done, 3).await;
        assert!(matches!(fault, Fault::OriginClosed), "{fault}");
        drop(rig.client);
    }

    #[tokio::test]
    async fn a_dead_client_ends_the_relay_at_once() {
        let mut rig = rig(Duration::from_secs(30)).await;
        drop(rig.client);
        let fault = ended(rig.done, 3).await;
        assert!(matches!(fault, Fault::ClientClosed), "{fault}");
        // The proxy closed its origin connection too.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(3), rig.origin.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    }

    #[tokio::test]
    async fn silence_both_ways_ends_the_relay_after_the_idle_timeout() {
        let mut rig = rig(Duration::from_millis(300)).await;
        let start = Instant::now();
        // Traffic keeps it alive...
        let mut writer = ChunkWriter::new();
        for ts in 0..6 {
            let mut wire = bytes::BytesMut::new();
            writer.write(&video(ts, 100), &mut wire).unwrap();
            rig.origin.write_all(&wire).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!rig.done.is_finished());
        // ...silence ends it.
        let fault = ended(rig.done, 3).await;
        assert!(matches!(fault, Fault::Idle(_)), "{fault}");
        assert!(start.elapsed() >= Duration::from_millis(800));
        assert!(rig.traffic.to_client.load(Ordering::Relaxed) > 600);
    }

    /// Three messages of 1 MiB declared, 300 KiB of each sent, on chunk streams 4 to 6,
    /// in 128-byte chunks.
    fn three_partial_messages(type_id: u8) -> Vec<u8> {
        let mut wire = Vec::new();
        for csid in [4u8, 5, 6] {
            wire.extend([csid, 0, 0, 0, 0x10, 0, 0, type_id, 1, 0, 0, 0]);
            for (i, piece) in vec![0x17u8; 300 * 1024].chunks(128).enumerate() {
                if i > 0 {
                    wire.push(0xc0 | csid);
                }
                wire.extend_from_slice(piece);
            }
            // The next csid's fmt 0 header may follow: each message ended on a chunk
            // boundary (300 KiB is a multiple of 128).
        }
        wire
    }

    /// Media is relayed as it arrives: a client opening large video messages makes the
    /// proxy hold none of them, and the origin gets their chunks at once.
    #[tokio::test]
    async fn partial_media_messages_flow_through_and_hold_nothing() {
        let budget = BufferBudget::new(Some(512 * 1024));
        let mut rig = rig_with_budget(Duration::from_secs(30), budget.clone()).await;
        rig.client
            .write_all(&three_partial_messages(types::VIDEO))
            .await
            .unwrap();
        // What the origin reads: the three messages' chunks, re-chunked at 128.
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        let want = 3 * (12 + 300 * 1024 + (300 * 1024 / 128 - 1));
        while got < want {
            let n = tokio::time::timeout(Duration::from_secs(5), rig.origin.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the relay closed the origin after {got} bytes");
            got += n;
        }
        assert_eq!(got, want);
        assert!(!rig.done.is_finished());
        assert_eq!(budget.used(), 0);
        drop(rig.client);
        let fault = ended(rig.done, 5).await;
        assert!(matches!(fault, Fault::ClientClosed), "{fault}");
    }

    /// A client holding partial messages beyond its free share and what the budget has
    /// left is cut; its charge goes back to the budget. (Messages the relay reassembles:
    /// not media, see above.)
    #[tokio::test]
    async fn a_client_hoarding_partial_messages_past_the_budget_is_cut() {
        let budget = BufferBudget::new(Some(512 * 1024));
        let mut rig = rig_with_budget(Duration::from_secs(30), budget.clone()).await;
        // Three 1 MiB AMF3 commands, 300 KiB of each sent: 900 KiB held, 256 KiB free,
        // 512 KiB of budget.
        let wire = three_partial_messages(types::COMMAND_AMF3);
        rig.client.write_all(&wire).await.unwrap();
        let fault = ended(rig.done, 5).await;
        match fault {
            Fault::OverBudget(over) => {
                assert_eq!(over.budget, 512 * 1024);
                assert!(over.held > FREE_PER_CONNECTION + 512 * 1024, "{over}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(budget.used(), 0);
        // Nothing of the partial messages reached the origin.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(3), rig.origin.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    }

    /// Within the budget, the same client's messages are relayed whole.
    #[tokio::test]
    async fn messages_completed_within_the_budget_flow_and_the_charge_goes_back() {
        let budget = BufferBudget::new(Some(512 * 1024));
        let mut rig = rig_with_budget(Duration::from_secs(30), budget.clone()).await;
        let mut writer = ChunkWriter::new();
        let mut wire = bytes::BytesMut::new();
        // 600 KiB: above the free share, within it plus the budget.
        let frame = Message::new(6, types::VIDEO, 1, 0, Bytes::from(vec![0x17; 600 * 1024]));
        writer.write(&frame, &mut wire).unwrap();
        rig.client.write_all(&wire).await.unwrap();
        let mut reader = ChunkReader::new();
        let mut buf = vec![0u8; 64 * 1024];
        let got = loop {
            let n = tokio::time::timeout(Duration::from_secs(5), rig.origin.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the relay closed the origin");
            reader.feed(&buf[..n]);
            if let Some(msg) = reader.next_message().unwrap() {
                break msg;
            }
        };
        assert_eq!((got.stream_id, got.payload.len()), (7, 600 * 1024));
        drop(rig.client);
        let fault = ended(rig.done, 5).await;
        assert!(matches!(fault, Fault::ClientClosed), "{fault}");
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn garbage_from_the_origin_ends_the_relay() {
        let mut rig = rig(Duration::from_secs(30)).await;
        // fmt 2 on a chunk stream that never had a full header.
        rig.origin.write_all(&[0x85, 0, 0, 0]).await.unwrap();
        let fault = ended(rig.done, 3).await;
        assert!(matches!(fault, Fault::OriginProtocol(_)), "{fault}");
    }
}
