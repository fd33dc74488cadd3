//! Chunk stream throughput of `rtmp-peek`: parsing, serializing, and the message-level relay
//! (parse on one leg, re-chunk with the other leg's stream id), over a 1 MiB stream of 4 KiB
//! video messages at chunk sizes 128 and 4096, and over 48 KiB video frames (many chunks
//! each) at 4096. Throughput is in payload-plus-header bytes of the input.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rtmp_peek::{ChunkReader, ChunkWriter, Leg, Message, Relay};

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

        group.bench_function("relay", |b| {
            b.iter_batched(
                || {
                    let client = Leg::new(reader(chunk_size), ChunkWriter::new(), 1);
                    let origin = Leg::new(
                        ChunkReader::new(),
                        ChunkWriter::with_chunk_size(4096).unwrap(),
                        7,
                    );
                    Relay::new(client, origin)
                },
                |mut relay| {
                    let mut n = 0;
                    for piece in bytes.chunks(16 * 1024) {
                        relay.feed_client(piece).unwrap();
                        n += relay.take_for_origin().len();
                    }
                    black_box(n);
                },
                BatchSize::SmallInput,
            )
        });
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
    group.bench_function("relay", |b| {
        b.iter_batched(
            || {
                let client = Leg::new(reader(4096), ChunkWriter::new(), 1);
                let origin = Leg::new(
                    ChunkReader::new(),
                    ChunkWriter::with_chunk_size(4096).unwrap(),
                    7,
                );
                Relay::new(client, origin)
            },
            |mut relay| {
                let mut n = 0;
                for piece in bytes.chunks(64 * 1024) {
                    relay.feed_client(piece).unwrap();
                    n += relay.take_for_origin().len();
                }
                black_box(n);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
