//! The system-call side of the UDP relays (WebRTC, SRT): moving a burst of 32 RTP-sized
//! datagrams (1200 bytes) from the proxy's client socket to one origin socket on loopback,
//! the way the shells did it (a `recvfrom` and a `sendto` per datagram) against the way
//! they do it now (one `recvmmsg` for the burst, one `sendmsg` with `UDP_SEGMENT` for a
//! run to one address, through quinn-udp), and a burst spread over 32 destinations (one
//! send each, as when every datagram is another session's).
//!
//! Each iteration includes the client's sends and the origin's reads, the same in every
//! case: the differences between the cases are the relay's. "no relay" is that fixed part
//! alone (the client sending straight to the origin), so a case's time less its time is
//! what the relay's system calls cost, without any wake-up.
//!
//! A second group has the SRT relay's shape: the bursts libsrt publishes in (about six
//! 1332-byte packets per `recvmmsg` at 40 Mbit/s), relayed to one origin. Its floor is
//! what the proxy's SRT relay cannot go below on loopback, where a send also pays for the
//! origin's receive path.
//!
//! A third group has the WebRTC router's shape: several sessions' datagrams interleaved in
//! one batch, sent per datagram against gathered per session.

use std::hint::black_box;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState, BATCH_SIZE};

const BURST: usize = 32;
const PACKET: usize = 1200;
const SLOT: usize = 2048;
/// An SRT data packet of 7 TS packets: 16 bytes of header, 1316 of payload.
const SRT_PACKET: usize = 1332;
/// Packets per read the SRT relay sees at 40 Mbit/s (perf stat: sendmsg / packets).
const SRT_BURST: usize = 6;

struct Sockets {
    client: UdpSocket,
    relay: UdpSocket,
    origins: Vec<UdpSocket>,
    relay_addr: SocketAddr,
}

fn sockets(origins: usize) -> Sockets {
    let bind = || UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (client, relay) = (bind(), bind());
    let origins: Vec<UdpSocket> = (0..origins).map(|_| bind()).collect();
    for s in &origins {
        s.set_nonblocking(false).expect("blocking");
    }
    let relay_addr = relay.local_addr().expect("addr");
    Sockets {
        client,
        relay,
        origins,
        relay_addr,
    }
}

/// quinn-udp's state from a probe socket, as the proxy makes it: the relay socket keeps
/// its options (no GRO, no control messages to parse).
fn probe_state() -> UdpSocketState {
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    UdpSocketState::new(UdpSockRef::from(&probe)).expect("state")
}

fn burst(s: &Sockets, packet: &[u8], count: usize) {
    for _ in 0..count {
        s.client.send_to(packet, s.relay_addr).expect("send");
    }
}

fn drain(origins: &[UdpSocket], per_origin: usize) {
    let mut buf = [0u8; 2048];
    for o in origins {
        for _ in 0..per_origin {
            o.recv_from(&mut buf).expect("recv");
        }
    }
}

/// Relaying `count` copies of `packet` to one origin with a `recvfrom` and a `sendto`
/// each.
fn per_datagram(group: &mut BenchmarkGroup<'_, WallTime>, packet: &[u8], count: usize) {
    let s = sockets(1);
    let to = s.origins[0].local_addr().expect("addr");
    let mut buf = vec![0u8; 65_536];
    group.bench_function("recvfrom + sendto each", |b| {
        b.iter(|| {
            burst(&s, packet, count);
            for _ in 0..count {
                let (n, _) = s.relay.recv_from(&mut buf).expect("recv");
                s.relay.send_to(black_box(&buf[..n]), to).expect("send");
            }
            drain(&s.origins, count);
        })
    });
}

fn bench(c: &mut Criterion) {
    let packet = [0x80u8; PACKET];
    let mut group = c.benchmark_group("udp relay, 32 x 1200 B");
    group.throughput(Throughput::Elements(BURST as u64));

    // The old shells: recvfrom / sendto per datagram.
    per_datagram(&mut group, &packet, BURST);

    // Now: recvmmsg, then the run to one origin in one segmented send.
    let s = sockets(1);
    let state = probe_state();
    let to = s.origins[0].local_addr().expect("addr");
    let mut slots = vec![0u8; SLOT * BATCH_SIZE];
    let mut meta = [RecvMeta::default(); BATCH_SIZE];
    let mut run = Vec::with_capacity(BURST * PACKET);
    group.bench_function("recvmmsg + one GSO send", |b| {
        b.iter(|| {
            burst(&s, &packet, BURST);
            let mut got = 0;
            while got < BURST {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    slots.chunks_mut(SLOT).map(IoSliceMut::new).collect();
                let n = state
                    .recv(UdpSockRef::from(&s.relay), &mut bufs, &mut meta)
                    .expect("recv");
                drop(bufs);
                run.clear();
                let mut count = 0;
                for (slot, m) in slots.chunks(SLOT).zip(&meta[..n]) {
                    for d in slot[..m.len].chunks(m.stride.max(1)) {
                        run.extend_from_slice(d);
                        count += 1;
                    }
                }
                got += count;
                // Sent in runs of at most what the kernel takes at once.
                let step = state.max_gso_segments().max(1) * PACKET;
                for part in run.chunks(step) {
                    let t = Transmit {
                        destination: to,
                        ecn: None,
                        contents: part,
                        segment_size: (part.len() > PACKET).then_some(PACKET),
                        src_ip: None,
                    };
                    state
                        .try_send(UdpSockRef::from(&s.relay), &t)
                        .expect("send");
                }
            }
            drain(&s.origins, BURST);
        })
    });

    // recvmmsg, each datagram to another origin (one send each: nothing to gather).
    let s = sockets(BURST);
    let state = probe_state();
    let targets: Vec<SocketAddr> = s
        .origins
        .iter()
        .map(|o| o.local_addr().expect("addr"))
        .collect();
    group.bench_function("recvmmsg + sendto each, 32 origins", |b| {
        b.iter(|| {
            burst(&s, &packet, BURST);
            let mut got = 0;
            while got < BURST {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    slots.chunks_mut(SLOT).map(IoSliceMut::new).collect();
                let n = state
                    .recv(UdpSockRef::from(&s.relay), &mut bufs, &mut meta)
                    .expect("recv");
                drop(bufs);
                for (slot, m) in slots.chunks(SLOT).zip(&meta[..n]) {
                    s.relay
                        .send_to(black_box(&slot[..m.len]), targets[got % BURST])
                        .expect("send");
                    got += 1;
                }
            }
            drain(&s.origins, 1);
        })
    });
    group.finish();
}

/// The SRT relay's shape: a burst of `SRT_BURST` to one origin, each way of relaying it.
fn srt_shape(c: &mut Criterion) {
    let packet = [0x11u8; SRT_PACKET];
    let mut group = c.benchmark_group("udp relay, SRT bursts of 6 x 1332 B");
    group.throughput(Throughput::Elements(SRT_BURST as u64));

    // The fixed part: the client's sends and the origin's reads, with no relay between.
    let s = sockets(1);
    let to = s.origins[0].local_addr().expect("addr");
    group.bench_function("no relay", |b| {
        b.iter(|| {
            for _ in 0..SRT_BURST {
                s.client.send_to(black_box(&packet), to).expect("send");
            }
            drain(&s.origins, SRT_BURST);
        })
    });

    per_datagram(&mut group, &packet, SRT_BURST);

    let s = sockets(1);
    // A blocking recvmmsg would wait for a whole batch; the proxy's sockets never block.
    s.relay.set_nonblocking(true).expect("non-blocking");
    let state = probe_state();
    let to = s.origins[0].local_addr().expect("addr");
    let mut slots = vec![0u8; SLOT * BATCH_SIZE];
    let mut meta = [RecvMeta::default(); BATCH_SIZE];
    let mut run = Vec::with_capacity(SRT_BURST * SRT_PACKET);
    group.bench_function("recvmmsg + one GSO send", |b| {
        b.iter(|| {
            burst(&s, &packet, SRT_BURST);
            let mut bufs: Vec<IoSliceMut<'_>> =
                slots.chunks_mut(SLOT).map(IoSliceMut::new).collect();
            let n = state
                .recv(UdpSockRef::from(&s.relay), &mut bufs, &mut meta)
                .expect("recv");
            drop(bufs);
            assert_eq!(n, SRT_BURST, "the burst is queued before the read");
            run.clear();
            for (slot, m) in slots.chunks(SLOT).zip(&meta[..n]) {
                run.extend_from_slice(&slot[..m.len]);
            }
            let t = Transmit {
                destination: to,
                ecn: None,
                contents: &run,
                segment_size: Some(SRT_PACKET),
                src_ip: None,
            };
            state
                .try_send(UdpSockRef::from(&s.relay), &t)
                .expect("send");
            drain(&s.origins, SRT_BURST);
        })
    });
    group.finish();
}

/// Sessions in the WebRTC shape.
const SESSIONS: usize = 8;

/// The WebRTC router's shape: many clients sending at once, so a `recvmmsg` batch holds
/// their datagrams interleaved (here 8 sessions x 4, round-robin), each session relayed
/// on its own socket to its own origin. Sending per consecutive stretch is one `sendto`
/// per datagram, since no two neighbours belong to one session; gathering each session's
/// datagrams over the batch (in their order) is one GSO send per session.
fn webrtc_shape(c: &mut Criterion) {
    let packet = [0x80u8; PACKET];
    let mut group = c.benchmark_group("udp relay, 8 sessions x 4 x 1200 B interleaved");
    group.throughput(Throughput::Elements(BURST as u64));
    let bind = || UdpSocket::bind("127.0.0.1:0").expect("bind");
    let clients: Vec<UdpSocket> = (0..SESSIONS).map(|_| bind()).collect();
    let from: Vec<SocketAddr> = clients
        .iter()
        .map(|c| c.local_addr().expect("addr"))
        .collect();
    let relay = bind();
    let relay_addr = relay.local_addr().expect("addr");
    let origins: Vec<UdpSocket> = (0..SESSIONS).map(|_| bind()).collect();
    // One connected socket per session towards its origin, as the proxy has.
    let legs: Vec<UdpSocket> = origins
        .iter()
        .map(|o| {
            let leg = bind();
            leg.connect(o.local_addr().expect("addr")).expect("connect");
            leg
        })
        .collect();
    let state = probe_state();
    let mut slots = vec![0u8; SLOT * BATCH_SIZE];
    let mut meta = [RecvMeta::default(); BATCH_SIZE];
    group.bench_function(
        "recvmmsg + send each (runs of consecutive datagrams)",
        |b| {
            b.iter(|| {
                interleaved(&clients, relay_addr, &packet);
                receive_burst(
                    &state,
                    &relay,
                    &from,
                    &mut slots,
                    &mut meta,
                    |session, d| {
                        legs[session].send(black_box(d)).expect("send");
                    },
                );
                drain(&origins, BURST / SESSIONS);
            })
        },
    );
    let mut runs: Vec<Vec<u8>> = (0..SESSIONS)
        .map(|_| Vec::with_capacity(16 * 1024))
        .collect();
    group.bench_function("recvmmsg + one GSO send per session", |b| {
        b.iter(|| {
            interleaved(&clients, relay_addr, &packet);
            receive_burst(
                &state,
                &relay,
                &from,
                &mut slots,
                &mut meta,
                |session, d| {
                    runs[session].extend_from_slice(d);
                },
            );
            for (run, leg) in runs.iter_mut().zip(&legs) {
                let t = Transmit {
                    destination: leg.peer_addr().expect("connected"),
                    ecn: None,
                    contents: run,
                    segment_size: (run.len() > PACKET).then_some(PACKET),
                    src_ip: None,
                };
                state.try_send(UdpSockRef::from(leg), &t).expect("send");
                run.clear();
            }
            drain(&origins, BURST / SESSIONS);
        })
    });
    group.finish();
}

/// Reads `BURST` datagrams with `recvmmsg`, handing each to `relay` with its session (the
/// index of its sender in `from`).
fn receive_burst(
    state: &UdpSocketState,
    socket: &UdpSocket,
    from: &[SocketAddr],
    slots: &mut [u8],
    meta: &mut [RecvMeta; BATCH_SIZE],
    mut relay: impl FnMut(usize, &[u8]),
) {
    let mut got = 0;
    while got < BURST {
        let mut bufs: Vec<IoSliceMut<'_>> = slots.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        let n = relay_recv(state, socket, &mut bufs, meta);
        drop(bufs);
        for (slot, m) in slots.chunks(SLOT).zip(&meta[..n]) {
            let session = from.iter().position(|f| *f == m.addr).expect("a client");
            relay(session, &slot[..m.len]);
            got += 1;
        }
    }
}

/// Every client sends `BURST / SESSIONS` datagrams, round-robin, as clients sending at
/// once interleave in the relay's queue.
fn interleaved(clients: &[UdpSocket], to: SocketAddr, packet: &[u8]) {
    for _ in 0..BURST / SESSIONS {
        for c in clients {
            c.send_to(packet, to).expect("send");
        }
    }
}

fn relay_recv(
    state: &UdpSocketState,
    relay: &UdpSocket,
    bufs: &mut [IoSliceMut<'_>],
    meta: &mut [RecvMeta],
) -> usize {
    state
        .recv(UdpSockRef::from(relay), bufs, meta)
        .expect("recv")
}

criterion_group!(benches, bench, srt_shape, webrtc_shape);
criterion_main!(benches);
