//! Several datagrams per system call on the UDP ports (WebRTC, SRT).
//!
//! A relay's cost per datagram is mostly system calls: one `recvfrom` and one `sendto`
//! each, plus the loop's wake-up. Here [`Batch`] reads up to [`BATCH`] queued datagrams
//! with one `recvmmsg`, and [`Run`] gathers consecutive equal-sized datagrams to one
//! address so that they leave in one `sendmsg` with `UDP_SEGMENT` (GSO), where the kernel
//! has it. The system calls are quinn-udp's: this crate forbids unsafe code, and that
//! crate keeps the `mmsghdr` and `cmsg` handling (and the fallback when a driver refuses
//! GSO) in one audited place.
//!
//! The proxy's own sockets keep their options. quinn-udp's `UdpSocketState::new` turns on
//! GRO, `IP_PKTINFO`, `IP_RECVTOS`, `SO_TIMESTAMPNS` (which has the kernel stamp every
//! packet it receives, host-wide) and don't-fragment on the socket it is given; none of
//! it is needed to call `recvmmsg` or to send with `UDP_SEGMENT`, and on the SRT relay
//! the control messages cost more than batching saved (about 10 % more CPU per MB). So
//! the state comes from a probe socket ([`state`]) and only makes the calls.

use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Buffers read per `recvmmsg`.
pub const BATCH: usize = quinn_udp::BATCH_SIZE;
/// The most bytes one GSO send carries (the 64 KiB IP limit, headers deducted).
pub const MAX_RUN_BYTES: usize = 65_000;

/// The state that makes the batched reads and segmented sends on sockets of `local`'s
/// address family: it learns from a probe socket whether the kernel has GSO, and sets no
/// option on the proxy's sockets (see the module's documentation).
pub fn state(local: SocketAddr) -> io::Result<UdpSocketState> {
    let loopback: SocketAddr = match local {
        SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
    };
    // A host without IPv6 loopback still has IPv4's; GSO is the kernel's either way.
    let probe = std::net::UdpSocket::bind(loopback)
        .or_else(|_| std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))?;
    UdpSocketState::new(UdpSockRef::from(&probe))
}

/// Receive buffers for [`BATCH`] datagrams. The memory is reserved, not touched: a page
/// is used only once a datagram lands in it.
pub struct Batch {
    buf: Vec<u8>,
    slot: usize,
    meta: [RecvMeta; BATCH],
    count: usize,
}

impl Batch {
    /// Empty buffers of `slot` bytes each: a longer datagram is cut to it, as `recvfrom`
    /// into a buffer of that size would.
    pub fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        Batch {
            buf: vec![0; slot * BATCH],
            slot,
            meta: [RecvMeta::default(); BATCH],
            count: 0,
        }
    }

    /// Reads what is queued on `socket` without waiting: how many datagrams, or
    /// `WouldBlock` when there was nothing (which re-arms the socket's readiness).
    ///
    /// Fewer than [`BATCH`] datagrams means the queue was empty when `recvmmsg` returned
    /// (a non-blocking `recvmmsg` stops early only at `EAGAIN` or an error, and an error
    /// wakes the socket again): the readiness is re-armed then, as an `EAGAIN` would,
    /// which spares the caller the one more system call that would only say so. It is
    /// cleared under the readiness event seen before the read, so a datagram landing
    /// after it still wakes the socket.
    pub fn try_recv(&mut self, socket: &UdpSocket, state: &UdpSocketState) -> io::Result<usize> {
        self.count = 0;
        let (buf, meta, slot, count) = (&mut self.buf, &mut self.meta, self.slot, &mut self.count);
        let drained = socket.try_io(Interest::READABLE, || {
            let mut slices: [IoSliceMut<'_>; BATCH] = {
                let mut chunks = buf.chunks_mut(slot);
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()))
            };
            let n = state.recv(UdpSockRef::from(socket), &mut slices, meta)?;
            *count = n.min(BATCH);
            if *count < BATCH {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match drained {
            Ok(()) => Ok(self.count),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.count > 0 => Ok(self.count),
            Err(e) => Err(e),
        }
    }

    /// The datagrams read, in order, each with its sender. (Should GRO be on for the
    /// socket, a coalesced run is split at its stride.)
    pub fn datagrams(&mut self) -> impl Iterator<Item = (SocketAddr, &mut [u8])> {
        let meta = &self.meta[..self.count];
        self.buf
            .chunks_mut(self.slot)
            .zip(meta)
            .flat_map(|(slot, m)| {
                let (addr, len) = (m.addr, m.len.min(slot.len()));
                let stride = if m.stride == 0 { len.max(1) } else { m.stride };
                slot[..len].chunks_mut(stride).map(move |d| (addr, d))
            })
    }
}

/// Consecutive datagrams to one address, all of one size but the last (which may be
/// shorter), gathered for one segmented send.
pub struct Run {
    buf: Vec<u8>,
    /// The most bytes it gathers: its buffer stays allocated at up to this size.
    limit: usize,
    to: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// A shorter datagram ended the run: nothing may follow it.
    closed: bool,
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

impl Run {
    /// An empty run, of up to [`MAX_RUN_BYTES`].
    pub fn new() -> Self {
        Self::with_limit(MAX_RUN_BYTES)
    }

    /// An empty run of at most `limit` bytes (at least one datagram): a smaller buffer for
    /// what many of them are kept at once.
    pub fn with_limit(limit: usize) -> Self {
        Run {
            buf: Vec::new(),
            limit: limit.min(MAX_RUN_BYTES),
            to: None,
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    /// Adds `datagram` to the run if it can join it (same address, room, not longer than
    /// the segments so far); false if the run must be sent first.
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8], max_segments: usize) -> bool {
        if self.count > 0 {
            let fits = self.to == Some(to)
                && !self.closed
                && self.count < max_segments
                && datagram.len() <= self.segment
                && self.buf.len() + datagram.len() <= self.limit;
            if !fits {
                return false;
            }
            self.closed = datagram.len() < self.segment;
        } else {
            self.to = Some(to);
            self.segment = datagram.len();
            self.closed = false;
        }
        self.buf.extend_from_slice(datagram);
        self.count += 1;
        true
    }

    /// Where the run goes, if it holds anything.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.to.filter(|_| self.count > 0)
    }

    /// How many datagrams are waiting.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes waiting (every datagram, back to back).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The run as one send, if any.
    pub fn transmit(&self) -> Option<Transmit<'_>> {
        let to = self.destination()?;
        Some(Transmit {
            destination: to,
            ecn: None,
            contents: &self.buf,
            segment_size: (self.count > 1).then_some(self.segment),
            src_ip: None,
        })
    }

    /// Empties the run (its buffer kept).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.to = None;
        self.closed = false;
    }
}

/// Sends `transmit` on `socket` without waiting (`WouldBlock` if its buffer is full).
pub fn try_send(
    state: &UdpSocketState,
    socket: &impl AsFd,
    transmit: &Transmit<'_>,
) -> io::Result<()> {
    state.try_send(UdpSockRef::from(socket), transmit)
}

/// Sends `transmit` on a tokio socket, waiting for room in its buffer if it is full.
pub async fn send(
    state: &UdpSocketState,
    socket: &UdpSocket,
    transmit: &Transmit<'_>,
) -> io::Result<()> {
    loop {
        socket.writable().await?;
        match socket.try_io(Interest::WRITABLE, || {
            state.try_send(UdpSockRef::from(socket), transmit)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_run_takes_equal_datagrams_to_one_address_and_one_shorter_last() {
        let mut run = Run::new();
        assert!(run.push(addr(1), &[1; 100], 64));
        assert!(run.push(addr(1), &[2; 100], 64));
        assert!(!run.push(addr(2), &[3; 100], 64), "another address");
        assert!(!run.push(addr(1), &[4; 101], 64), "a longer datagram");
        assert!(run.push(addr(1), &[5; 40], 64), "a shorter one ends it");
        assert!(
            !run.push(addr(1), &[6; 40], 64),
            "nothing after the shorter one"
        );
        let t = run.transmit().expect("a run");
        assert_eq!(t.contents.len(), 240);
        assert_eq!(t.segment_size, Some(100));
        assert_eq!(t.destination, addr(1));
        run.clear();
        assert!(run.transmit().is_none());
        assert!(run.push(addr(2), &[7; 10], 64));
        let t = run.transmit().expect("one datagram");
        assert_eq!(t.segment_size, None, "a single datagram is not segmented");
    }

    #[test]
    fn a_run_stops_at_the_segment_limit_and_the_size_limit() {
        let mut run = Run::new();
        assert!(run.push(addr(1), &[0; 10], 2));
        assert!(run.push(addr(1), &[0; 10], 2));
        assert!(!run.push(addr(1), &[0; 10], 2));
        let mut big = Run::new();
        let mut n = 0;
        while big.push(addr(1), &[0; 9000], 64) {
            n += 1;
        }
        assert_eq!(n, MAX_RUN_BYTES / 9000);
        let mut small = Run::with_limit(2500);
        assert!(small.push(addr(1), &[0; 1200], 64));
        assert!(small.push(addr(1), &[0; 1200], 64));
        assert!(!small.push(addr(1), &[0; 1200], 64), "over its limit");
        let mut tiny = Run::with_limit(100);
        assert!(
            tiny.push(addr(1), &[0; 1200], 64),
            "one datagram always fits"
        );
    }

    #[tokio::test]
    async fn a_batch_reads_several_datagrams_and_a_run_sends_them_in_one_call() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let state = state(rx.local_addr().expect("addr")).expect("state");
        let tx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = rx.local_addr().expect("addr");
        // In as few sends as the kernel allows: one where it has GSO.
        let mut run = Run::new();
        let max = state.max_gso_segments();
        let datagrams: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 300])
            .chain([vec![9; 20]])
            .collect();
        for d in &datagrams {
            if !run.push(to, d, max) {
                send(&state, &tx, &run.transmit().expect("run"))
                    .await
                    .expect("send");
                run.clear();
                assert!(run.push(to, d, max));
            }
        }
        assert!(!run.is_empty());
        send(&state, &tx, &run.transmit().expect("run"))
            .await
            .expect("send");
        let mut batch = Batch::new(2048);
        let mut got = Vec::new();
        while got.len() < 6 {
            rx.readable().await.expect("readable");
            match batch.try_recv(&rx, &state) {
                Ok(_) => got.extend(batch.datagrams().map(|(from, d)| (from, d.to_vec()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        let from = tx.local_addr().expect("addr");
        assert!(got.iter().all(|(f, _)| *f == from));
        let sizes: Vec<usize> = got.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(sizes, [300, 300, 300, 300, 300, 20]);
        assert_eq!(got[3].1[0], 3, "in order, each datagram whole");
        assert_eq!(got[5].1[0], 9);
    }

    #[tokio::test]
    async fn a_short_batch_re_arms_the_socket_and_the_next_datagram_wakes_it() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let state = state(rx.local_addr().expect("addr")).expect("state");
        let tx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = rx.local_addr().expect("addr");
        let mut batch = Batch::new(64);
        for round in 0..3u8 {
            tx.send_to(&[round; 10], to).await.expect("send");
            tx.send_to(&[round; 20], to).await.expect("send");
            // Both queued before the read: loopback delivers within the send.
            let mut got = Vec::new();
            while got.len() < 2 {
                let wait = tokio::time::timeout(Duration::from_secs(5), rx.readable());
                wait.await
                    .expect("woken by the datagrams")
                    .expect("readable");
                match batch.try_recv(&rx, &state) {
                    Ok(n) => {
                        assert!(n < BATCH);
                        got.extend(batch.datagrams().map(|(_, d)| d.to_vec()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("recv: {e}"),
                }
            }
            assert_eq!(got, [vec![round; 10], vec![round; 20]]);
            // Drained: the next read says so without waiting, and without a datagram lost.
            let again = batch.try_recv(&rx, &state).expect_err("nothing is queued");
            assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
        }
    }

    #[tokio::test]
    async fn a_full_batch_leaves_the_socket_readable_for_the_rest() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let state = state(rx.local_addr().expect("addr")).expect("state");
        let tx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = rx.local_addr().expect("addr");
        let total = BATCH + 3;
        for i in 0..total {
            tx.send_to(&[i as u8; 8], to).await.expect("send");
        }
        let mut batch = Batch::new(64);
        let mut got = Vec::new();
        while got.iter().sum::<usize>() < total {
            let wait = tokio::time::timeout(Duration::from_secs(5), rx.readable());
            wait.await.expect("readable in time").expect("readable");
            if let Ok(n) = batch.try_recv(&rx, &state) {
                got.push(n);
            }
        }
        assert_eq!(got, [BATCH, 3], "a full batch, then the rest");
    }
}
