//! HTTP media benches: HLS playlist rewrites per second (a live 10-segment media playlist
//! and an LL-HLS one), FLV tag reading throughput, request classification, the edge's
//! HLS cache hot path (key, lookup, insert with eviction, freshness of a playlist), and
//! what the raw HTTP-FLV/TS path parses per viewer: a player's request head and the
//! origin's response head, and the viewer's head written back (after that the bytes are
//! moved by the kernel: `load/flv_fanout.rs` measures that part against HAProxy).

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// SRS-style media playlist: 10 segments carrying `hls_ctx`.
fn media_playlist() -> String {
    let mut p = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:1200\n#EXT-X-TARGETDURATION:10\n",
    );
    for seq in 1200..1210 {
        p.push_str(&format!(
            "#EXTINF:10.000, no desc\nlivestream-{seq}.ts?hls_ctx=0u6c1xr3\n"
        ));
    }
    p
}

/// LL-HLS media playlist: fMP4 init, 4 full segments, parts of the last 2, a preload
/// hint and rendition reports.
fn ll_hls_playlist() -> String {
    let mut p = String::from(concat!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:9\n",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n",
        "#EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:266\n",
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T00:00:00.000Z\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    ));
    for seq in 266..270 {
        if seq >= 268 {
            for part in 0..12 {
                let independent = if part % 4 == 0 {
                    ",INDEPENDENT=YES"
                } else {
                    ""
                };
                p.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.33334,URI=\"filePart{seq}.{part}.mp4\"{independent}\n"
                ));
            }
        }
        p.push_str(&format!("#EXTINF:4.00008,\nfileSequence{seq}.mp4\n"));
    }
    for part in 0..2 {
        p.push_str(&format!(
            "#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.{part}.mp4\"\n"
        ));
    }
    p.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart270.2.mp4\"\n");
    p.push_str("#EXT-X-RENDITION-REPORT:URI=\"../1M/live.m3u8\",LAST-MSN=270,LAST-PART=1\n");
    p.push_str("#EXT-X-RENDITION-REPORT:URI=\"../4M/live.m3u8\",LAST-MSN=270,LAST-PART=1\n");
    p
}

fn tag(out: &mut Vec<u8>, kind: u8, ts: u32, body: &[u8]) {
    let size = u32::try_from(body.len()).unwrap_or(0);
    let [_, s0, s1, s2] = size.to_be_bytes();
    let [e, t0, t1, t2] = ts.to_be_bytes();
    out.extend_from_slice(&[kind, s0, s1, s2, t0, t1, t2, e, 0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(size + 11).to_be_bytes());
}

/// About 20 s of a 2 Mbit/s, 25 fps H.264 + AAC stream with a keyframe every second.
fn flv_stream() -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    tag(
        &mut out,
        18,
        0,
        b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09",
    );
    tag(&mut out, 9, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]);
    tag(&mut out, 8, 0, &[0xAF, 0, 0x12, 0x10]);
    let mut audio_ts = 0;
    for frame in 0..500u32 {
        let ts = frame * 40;
        let key = frame % 25 == 0;
        let size = if key {
            40_000
        } else {
            8_000 + (frame as usize * 37) % 4_000
        };
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(size, 0x55);
        tag(&mut out, 9, ts, &body);
        while audio_ts <= ts {
            tag(
                &mut out,
                8,
                audio_ts,
                &[0xAF, 1, 0x21, 0x10, 0x04, 0x60].repeat(60),
            );
            audio_ts += 23;
        }
    }
    out
}

fn rewrites(c: &mut Criterion) {
    let mut group = c.benchmark_group("hls_rewrite");
    for (name, playlist) in [
        ("media_10_segments", media_playlist()),
        ("ll_hls", ll_hls_playlist()),
    ] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                hls_rewrite::rewrite(
                    black_box(&playlist),
                    "spbhid",
                    "k2x9c7q1",
                    "/live/livestream.m3u8",
                )
            })
        });
    }
    let query = "hls_ctx=0u6c1xr3&spbhid=k2x9c7q1&_HLS_msn=270&_HLS_part=2";
    group.bench_function("extract_and_strip_token", |b| {
        b.iter(|| {
            let token = hls_rewrite::extract_token(black_box(query), "spbhid");
            (token, hls_rewrite::strip_token(black_box(query), "spbhid"))
        })
    });
    group.finish();
}

fn flv_reading(c: &mut Criterion) {
    let stream = Bytes::from(flv_stream());
    let mut group = c.benchmark_group("flv_read");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for (name, chunk) in [("bytes_64k_chunks", 65_536), ("bytes_1400_chunks", 1_400)] {
        let chunks: Vec<Bytes> = (0..stream.len())
            .step_by(chunk)
            .map(|start| stream.slice(start..(start + chunk).min(stream.len())))
            .collect();
        group.bench_function(name, |b| {
            b.iter_batched(
                || chunks.clone(),
                |chunks| {
                    let mut reader = flv_http::FlvReader::new();
                    let mut keyframes = 0;
                    for chunk in chunks {
                        reader.push(chunk);
                        while let Ok(Some(tag)) = reader.next_tag() {
                            keyframes += usize::from(tag.is_keyframe());
                        }
                    }
                    keyframes
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("slices_4096_copied", |b| {
        b.iter(|| {
            let mut reader = flv_http::FlvReader::new();
            let mut tags = 0;
            for piece in stream.chunks(4096) {
                reader.push_slice(piece);
                while let Ok(Some(_)) = reader.next_tag() {
                    tags += 1;
                }
            }
            tags
        })
    });
    group.finish();
}

fn classification(c: &mut Criterion) {
    c.bench_function("classify/hls_segment", |b| {
        b.iter(|| {
            flv_http::classify(
                "GET",
                black_box("/live/livestream-1203.ts"),
                Some("hls_ctx=0u6c1xr3&spbhid=k2x9c7q1"),
                Some("live.example.com:8080"),
            )
        })
    });
}

/// The edge's per-request work before any I/O: the cache key of a viewer's request and
/// an LRU lookup among 4096 entries (a hit), an insert that evicts, and the freshness of a
/// fetched playlist.
fn edge_cache(c: &mut Criterion) {
    use hls_rewrite::cache::{cache_query, CacheControl, Lru, PlaylistTiming, Policy, Resource};
    use std::sync::Arc;
    use std::time::Duration;

    let mut lru: Lru<Arc<str>, Arc<Bytes>> = Lru::new(256 << 20, 32 << 20);
    let segment = Arc::new(Bytes::from(vec![0x47u8; 188 * 400]));
    for seq in 0..4096 {
        let key: Arc<str> = format!("origin-1 /live/cam-{seq}.ts?").into();
        lru.insert(
            key,
            segment.clone(),
            segment.len(),
            Duration::from_secs(3600),
        )
        .expect("fits");
    }
    let mut group = c.benchmark_group("edge_cache");
    group.bench_function("key_and_hit", |b| {
        b.iter(|| {
            let query = cache_query(black_box("hls_ctx=0u6c1xr3&spbhid=k2x9c7q1"), "spbhid");
            let key = format!("origin-1 {}?{query}", black_box("/live/cam-2048.ts"));
            lru.get(key.as_str(), Duration::from_secs(1))
                .map(|b| b.len())
        })
    });
    group.bench_function("blocking_reload_key", |b| {
        b.iter(|| {
            cache_query(
                black_box("_HLS_part=3&spbhid=k2x9c7q1&_HLS_msn=1203"),
                "spbhid",
            )
        })
    });
    let mut next = 4096u64;
    group.bench_function("insert_evicting", |b| {
        b.iter(|| {
            next += 1;
            let key: Arc<str> = format!("origin-1 /live/cam-{next}.ts?").into();
            lru.insert(key, segment.clone(), 64 << 10, Duration::from_secs(3600))
        })
    });
    let playlist = media_playlist();
    let policy = Policy::default();
    group.throughput(Throughput::Bytes(playlist.len() as u64));
    group.bench_function("playlist_freshness", |b| {
        b.iter(|| {
            let timing = PlaylistTiming::of(black_box(playlist.as_bytes()));
            let cc = CacheControl::parse(black_box("public, max-age=5"));
            policy.freshness(Resource::Playlist(timing), &cc)
        })
    });
    group.finish();
}

/// The raw path's setup per viewer: the request head a browser player (mpegts.js) sends,
/// classified, and the head of SRS's HTTP-FLV answer parsed and written back.
fn raw_heads(c: &mut Criterion) {
    use flv_http::head;
    let request = b"GET /live/livestream.flv?token=abc HTTP/1.1\r\nHost: live.example.com:8080\r\n\
        Connection: keep-alive\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n\
        Accept: */*\r\nOrigin: https://player.example.com\r\nReferer: https://player.example.com/\r\n\
        Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Type: video/x-flv\r\n\
        Server: SRS/7.0.0(Kai)\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut group = c.benchmark_group("raw_heads");
    group.bench_function("parse_and_classify_request", |b| {
        b.iter(|| {
            let parsed = head::parse_request(black_box(request), 64 * 1024)
                .ok()
                .flatten()?;
            let (path, query) = parsed
                .target
                .split_once('?')
                .unwrap_or((parsed.target.as_str(), ""));
            flv_http::classify(&parsed.method, path, Some(query), Some("live.example.com")).ok()
        })
    });
    group.bench_function("parse_response_and_write_back", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            let parsed = head::parse_response(black_box(response), 64 * 1024)
                .ok()
                .flatten()?;
            out.clear();
            head::write_response(
                &mut out,
                parsed.status,
                &parsed.reason,
                parsed
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice())),
            );
            Some(out.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    rewrites,
    flv_reading,
    classification,
    edge_cache,
    raw_heads
);
criterion_main!(benches);
