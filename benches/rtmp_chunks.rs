//! Chunk stream throughput of `rtmp-peek`: parsing, serializing, and the message-level relay
//! (parse on one leg, re-chunk with the other leg's stream id), over a 1 MiB stream of 4 KiB
//! video messages at chunk sizes 128 and 4096, and over 48 KiB video frames (many chunks
//! each) at 4096. Throughput is in payload-plus-header bytes of the input.
//!
//! The relay passes media on as the publisher's own chunks where the legs line up
//! (`pass_through`: the input's bytes handed on in place, one span per read, only fmt 0
//! headers' stream ids rewritten); `relay` is the re-chunking it falls back to, media in
//! pieces (`ChunkReader::next_piece` into `ChunkWriter::write_piece`); `whole` is what it
//! did before that, for comparison: reassemble each message, then re-chunk it. A counting
//! allocator prints, for the frames, the allocations and bytes allocated per MB relayed by
//! each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rtmp_peek::{ChunkReader, ChunkWriter, Leg, Message, Relay};

/// The system allocator, counting.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes allocated by `f`, per MB of `bytes`.
fn per_mb(bytes: usize, f: impl FnOnce()) -> (f64, f64) {
    let (calls, size) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
    );
    f();
    let mb = bytes as f64 / 1e6;
    (
        (ALLOCATIONS.load(Ordering::Relaxed) - calls) as f64 / mb,
        (ALLOCATED.load(Ordering::Relaxed) - size) as f64 / mb,
    )
}

const MESSAGE: usize = 4096;
const STREAM: usize = 1024 * 1024;
const FRAME: usize = 48 * 1024;

fn messages() -> Vec<Message> {
    (0..STREAM / MESSAGE)
        .map(|i| Message::new(6, 9, 1, i as u32 * 40, Bytes::from(vec![i as u8; MESSAGE])))
        .collect()
}

fn wire(msgs: &[Message], chunk_size: u32) -> Bytes {
    let mut writer = ChunkWriter::with_chunk_size(chunk_size).unwrap();
    let mut out = BytesMut::new();
    for m in msgs {
        writer.write(m, &mut out).unwrap();
    }
    out.freeze()
}

fn reader(chunk_size: u32) -> ChunkReader {
    let mut r = ChunkReader::new();
    r.set_chunk_size(chunk_size).unwrap();
    r
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    for chunk_size in [128u32, 4096] {
        let bytes = wire(&msgs, chunk_size);
        let mut group = c.benchmark_group(format!("rtmp_chunks/chunk_size_{chunk_size}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));

        group.bench_function("serialize", |b| {
            let mut out = BytesMut::with_capacity(bytes.len());
            b.iter(|| {
                out.clear();
                let mut writer = ChunkWriter::with_chunk_size(chunk_size).unwrap();
                for m in &msgs {
                    writer.write(m, &mut out).unwrap();
                }
                black_box(out.len());
            })
        });

        group.bench_function("parse", |b| {
            b.iter_batched(
                || reader(chunk_size),
                |mut r| {
                    // Socket-sized reads.
                    let mut n = 0;
                    for piece in bytes.chunks(16 * 1024) {
                        r.feed(piece);
                        while let Some(m) = r.next_message().unwrap() {
                            n += m.payload.len();
                        }
                    }
                    assert_eq!(n, STREAM);
                },
                BatchSize::SmallInput,
            )
        });

        for (name, pass) in [("relay", false), ("pass_through", true)] {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        let client = Leg::new(reader(chunk_size), ChunkWriter::new(), 1);
                        let origin = Leg::new(
                            ChunkReader::new(),
                            ChunkWriter::with_chunk_size(4096).unwrap(),
                            7,
                        );
                        Relay::with_pass_through(client, origin, pass)
                    },
                    |mut relay| {
                        let mut n = 0;
                        for piece in bytes.chunks(16 * 1024) {
                            relay.feed_client(piece).unwrap();
                            while relay.pending_for_origin() > 0 {
                                n += relay.take_for_origin().len();
                            }
                        }
                        black_box(n);
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }

    // Video frames span many chunks: the reader reassembles each (reserving for what one
    // read brought at once) and the relay re-chunks it. 48 KiB frames, as a 12 Mbit/s
    // 30 fps publisher sends, over 64 KiB reads as the proxy reads.
    let frames: Vec<Message> = (0..STREAM / FRAME)
        .map(|i| Message::new(6, 9, 1, i as u32 * 33, Bytes::from(vec![i as u8; FRAME])))
        .collect();
    let bytes = wire(&frames, 4096);
    let mut group = c.benchmark_group("rtmp_chunks/frames_48k_chunk_size_4096");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse", |b| {
        b.iter_batched(
            || reader(4096),
            |mut r| {
                let mut n = 0;
                for piece in bytes.chunks(64 * 1024) {
                    r.feed(piece);
                    while let Some(m) = r.next_message().unwrap() {
                        n += m.payload.len();
                    }
                }
                assert_eq!(n, frames.len() * FRAME);
            },
            BatchSize::SmallInput,
        )
    });
    // As the proxy does: each read lands in the input buffer, then is processed and its
    // output taken (and, on a socket, written) before the next read.
    let relay_with = |bytes: &[u8], pass: bool| {
        let client = Leg::new(reader(4096), ChunkWriter::new(), 1);
        let origin = Leg::new(
            ChunkReader::new(),
            ChunkWriter::with_chunk_size(4096).unwrap(),
            7,
        );
        let mut relay = Relay::with_pass_through(client, origin, pass);
        let mut n = 0;
        for piece in bytes.chunks(64 * 1024) {
            relay.client_input().extend_from_slice(piece);
            relay.process_client().unwrap();
            while relay.pending_for_origin() > 0 {
                n += relay.take_for_origin().len();
            }
        }
        n
    };
    let relay = |bytes: &[u8]| relay_with(bytes, false);
    let pass_through = |bytes: &[u8]| relay_with(bytes, true);
    // The relay before media went in pieces: each message reassembled, then re-chunked.
    let whole = |bytes: &[u8]| {
        let mut r = reader(4096);
        let mut w = ChunkWriter::with_chunk_size(4096).unwrap();
        let mut out = BytesMut::new();
        let mut n = 0;
        for piece in bytes.chunks(64 * 1024) {
            r.buffer_mut().extend_from_slice(piece);
            while let Some(m) = r.next_message().unwrap() {
                w.write(&m.with_stream_id(7), &mut out).unwrap();
            }
            n += out.split().freeze().len();
        }
        n
    };
    group.bench_function("relay", |b| b.iter(|| black_box(relay(&bytes))));
    group.bench_function("pass_through", |b| {
        b.iter(|| black_box(pass_through(&bytes)))
    });
    group.bench_function("whole", |b| b.iter(|| black_box(whole(&bytes))));
    // The frames ten times over (every message has a fmt 0 header, so the bytes repeat
    // cleanly): a relay's first allocations weigh little, as on a long publish.
    let long: Vec<u8> = bytes
        .iter()
        .copied()
        .cycle()
        .take(10 * bytes.len())
        .collect();
    let (calls, size) = per_mb(long.len(), || {
        black_box(relay(&long));
    });
    println!(
        "frames_48k relay (pieces): {calls:.1} allocations, {:.0} KB allocated per MB relayed",
        size / 1e3
    );
    let (calls, size) = per_mb(long.len(), || {
        black_box(pass_through(&long));
    });
    println!(
        "frames_48k pass_through: {calls:.1} allocations, {:.0} KB allocated per MB relayed",
        size / 1e3
    );
    let (calls, size) = per_mb(long.len(), || {
        black_box(whole(&long));
    });
    println!("frames_48k whole (reassemble + re-chunk): {calls:.1} allocations, {:.0} KB allocated per MB relayed", size / 1e3);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
