//! Edge fan-out benches: tags pushed into a [`flv_http::FanOut`] per second (the upstream's
//! cost, paid once per stream), tags handed to 1000 viewers' cursors (the per-viewer cost),
//! late joins, and TS bytes through a [`flv_http::TsFanOut`].

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use flv_http::{FanOut, FanOutConfig, TsFanOut};

/// One second of a ~700 kbit/s stream: 25 video frames (a keyframe first) and 43 AAC
/// frames, as RTMP (type, timestamp, payload).
fn one_second(start: u32) -> Vec<(u8, u32, Vec<u8>)> {
    let mut msgs = Vec::new();
    for f in 0..25u32 {
        let key = f == 0;
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(if key { 20_000 } else { 2_600 }, 0xAB);
        msgs.push((9, start + f * 40, body));
    }
    for a in 0..43u32 {
        let mut body = vec![0xAF, 1];
        body.resize(190, 0xCD);
        msgs.push((8, start + a * 23, body));
    }
    msgs.sort_by_key(|m| m.1);
    msgs
}

fn primed() -> FanOut {
    let mut f = FanOut::new(FanOutConfig::default());
    f.push_message(9, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]);
    f.push_message(8, 0, &[0xAF, 0, 0x12, 0x10]);
    for (t, ts, body) in one_second(0) {
        f.push_message(t, ts, &body);
    }
    f
}

fn push(c: &mut Criterion) {
    let second = one_second(1000);
    let bytes: usize = second.iter().map(|m| m.2.len()).sum();
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("push_one_second", |b| {
        let mut f = primed();
        let mut ts = 1000;
        b.iter(|| {
            for (t, offset, body) in &second {
                f.push_message(*t, ts + offset - 1000, body);
            }
            ts += 1000;
        })
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Elements(1000));
    // One tag arrives; 1000 live viewers each take it: the per-viewer cost of a tag.
    group.bench_function("one_tag_to_1000_viewers", |b| {
        let mut f = primed();
        let mut cursors: Vec<_> = (0..1000).map(|_| f.join()).collect();
        let mut out = Vec::new();
        for c in &mut cursors {
            f.read(c, usize::MAX, &mut out);
            out.clear();
        }
        let body = vec![0x27u8; 2600];
        let mut ts = 2000;
        b.iter(|| {
            f.push_message(9, ts, &body);
            ts += 40;
            for c in &mut cursors {
                f.read(c, 256 * 1024, &mut out);
                black_box(&out);
                out.clear();
            }
        })
    });
    group.finish();
    c.bench_function("edge/late_join_gop", |b| {
        let mut f = primed();
        let mut out = Vec::new();
        b.iter(|| {
            let mut c = f.join();
            f.read(&mut c, usize::MAX, &mut out);
            black_box(out.len());
            out.clear();
        })
    });
}

/// TS packets: PAT, PMT, then video PES packets with a random-access point every 100.
fn ts_stream() -> Vec<u8> {
    fn packet(pid: u16, pusi: bool, rai: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, (u8::from(pusi) << 6) | (pid >> 8) as u8, pid as u8];
        let room = 184 - payload.len();
        p.push(0x30);
        p.push((room - 1) as u8);
        if room > 1 {
            p.push(if rai { 0x40 } else { 0 });
            p.extend(std::iter::repeat_n(0xFF, room - 2));
        }
        p.extend_from_slice(payload);
        p
    }
    let mut out = packet(
        0,
        true,
        false,
        &[
            0, 0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0, 1, 2, 3, 4,
        ],
    );
    out.extend(packet(
        0x1000,
        true,
        false,
        &[
            0, 0x02, 0xB0, 18, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0, 0x1B, 0xE1, 0x00, 0xF0, 0, 1,
            2, 3, 4,
        ],
    ));
    for i in 0..2000 {
        let pes = [0u8, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 0, 0, 0, 1, 0x41];
        out.extend(packet(0x100, i % 10 == 0, i % 100 == 0, &pes));
    }
    out
}

fn ts(c: &mut Criterion) {
    let stream = ts_stream();
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("ts_push", |b| {
        let mut f = TsFanOut::new(FanOutConfig::default());
        b.iter(|| {
            for chunk in stream.chunks(16 * 1024) {
                f.push(black_box(chunk));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, push, fan_out, ts);
criterion_main!(benches);
