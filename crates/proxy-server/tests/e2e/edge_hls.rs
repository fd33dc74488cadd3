//! HLS through an edge (PROXY_EDGE): nginx-rtmp writes HLS from an ffmpeg publisher and
//! nginx serves it; HTTP clients poll playlists and fetch segments through an edge and
//! through a plain proxy, and nginx's access log counts what reached the origin.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{
    ffmpeg_publish, fleet_proxy, http, require_program, wait_for, NginxRtmp, Proxy, RedisServer,
};

const VIEWERS: usize = 50;
/// How long each viewer plays.
const PLAY_FOR: Duration = Duration::from_secs(8);
/// A player polls a live playlist about every half target duration (nginx-rtmp's is 1 s
/// here, from `hls_fragment 1s`).
const POLL_EVERY: Duration = Duration::from_millis(500);

/// nginx-rtmp writing HLS for `live/cam`, served under `/live/` with no Cache-Control,
/// and the same files under `/nostore/` with `Cache-Control: no-store` and under
/// `/cookie/` with a `Set-Cookie`; ffmpeg publishing.
fn origin() -> (NginxRtmp, crate::harness::Process) {
    origin_publishing("flv")
}

/// [`origin`], ffmpeg publishing with `format` (`flv` and its output options).
fn origin_publishing(format: &str) -> (NginxRtmp, crate::harness::Process) {
    let nginx = NginxRtmp::start_with_locations(
        None,
        "",
        "location /live/ { alias HLS/; } \
         location /nostore/ { alias HLS/; add_header Cache-Control no-store; } \
         location /cookie/ { alias HLS/; add_header Set-Cookie session=viewer-own; }",
    );
    let publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/cam", nginx.rtmp_port),
        60,
        true,
        format,
    );
    let direct: SocketAddr = ([127, 0, 0, 1], nginx.http_port).into();
    wait_for(Duration::from_secs(20), || {
        let r = http("GET", direct, "/live/cam.m3u8", &[], b"");
        (r.status == 200 && r.text().matches(".ts").count() >= 2).then_some(())
    })
    .unwrap_or_else(|| panic!("nginx-rtmp wrote no playlist; {}", nginx.error_log()));
    (nginx, publisher)
}

/// Requests nginx logged whose target starts with `prefix`.
fn origin_requests(nginx: &NginxRtmp, prefix: &str) -> usize {
    let needle = format!("\"GET {prefix}");
    nginx
        .access_log()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// The URIs of a playlist's segments, as paths under `dir`.
fn segment_paths(playlist: &str, dir: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| match l.starts_with('/') {
            true => l.to_owned(),
            false => format!("{dir}{l}"),
        })
        .collect()
}

/// `VIEWERS` players at once, each polling `/live/cam.m3u8` through `addr` and fetching
/// every segment it lists once, for `PLAY_FOR`. Returns the requests each made.
fn play(addr: SocketAddr) -> Vec<usize> {
    let players: Vec<_> = (0..VIEWERS)
        .map(|_| {
            std::thread::spawn(move || {
                let deadline = Instant::now() + PLAY_FOR;
                let mut seen = std::collections::HashSet::new();
                let mut requests = 0;
                while Instant::now() < deadline {
                    let playlist = http("GET", addr, "/live/cam.m3u8", &[], b"");
                    requests += 1;
                    assert_eq!(playlist.status, 200, "{}", playlist.text());
                    for segment in segment_paths(&playlist.text(), "/live/") {
                        let name = segment.split('?').next().unwrap_or("").to_owned();
                        if seen.insert(name) {
                            let r = http("GET", addr, &segment, &[], b"");
                            requests += 1;
                            assert_eq!(r.status, 200, "{segment}: {}", r.text());
                            assert_eq!(r.body.first(), Some(&0x47), "{segment}: not MPEG-TS");
                        }
                    }
                    std::thread::sleep(POLL_EVERY);
                }
                requests
            })
        })
        .collect();
    players
        .into_iter()
        .map(|p| p.join().expect("a player failed"))
        .collect()
}

/// A proxy in front of `nginx`, an edge if `edge`.
fn proxy(nginx: &NginxRtmp, edge: bool) -> Proxy {
    Proxy::start(
        &[("edge", if edge { "on" } else { "off" })],
        &[],
        Some(&nginx.origin_toml("nginx")),
    )
}

/// The first 32 hex digits of the SHA-256 of `bytes`, by coreutils' `sha256sum`.
fn sha256_prefix(bytes: &[u8]) -> String {
    let program = require_program("sha256sum", "coreutils");
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running sha256sum");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(bytes)
        .expect("writing to sha256sum");
    let out = child.wait_with_output().expect("sha256sum's output");
    String::from_utf8_lossy(&out.stdout)[..32].to_owned()
}

fn metric(proxy: &Proxy, series: &str) -> f64 {
    let text = http("GET", proxy.addr("system-api"), "/metrics", &[], b"").text();
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn fifty_hls_viewers_through_an_edge_cost_the_origin_about_one() {
    let (nginx, _publisher) = origin();
    let edge = proxy(&nginx, true);
    let plain = proxy(&nginx, false);
    let counts = || {
        (
            origin_requests(&nginx, "/live/cam.m3u8"),
            origin_requests(&nginx, "/live/cam-"),
        )
    };

    let before = counts();
    let through_edge = play(edge.addr("http"));
    let after_edge = counts();
    // Each segment the viewers fetched was a session; none is left once they stopped.
    wait_for(Duration::from_secs(10), || {
        let (sessions, edge_count) = hls_sessions(&edge);
        (sessions.is_empty() && edge_count == 0).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "sessions after the viewers stopped: {:?}",
            hls_sessions(&edge)
        )
    });
    let through_plain = play(plain.addr("http"));
    let after_plain = counts();

    let edge_origin = (after_edge.0 - before.0) + (after_edge.1 - before.1);
    let plain_origin = (after_plain.0 - after_edge.0) + (after_plain.1 - after_edge.1);
    let one_viewer = *through_edge.iter().max().unwrap_or(&0);
    let edge_total: usize = through_edge.iter().sum();
    let plain_total: usize = through_plain.iter().sum();
    eprintln!(
        "{VIEWERS} viewers for {PLAY_FOR:?}: through the edge {edge_total} requests, origin saw \
         {edge_origin} ({} playlists, {} segments); one viewer made at most {one_viewer}; through \
         the plain proxy {plain_total} requests, origin saw {plain_origin}; edge hits {}, \
         misses {}, coalesced {}",
        after_edge.0 - before.0,
        after_edge.1 - before.1,
        metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"playlist\",outcome=\"hit\"}"
        ) + metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"media\",outcome=\"hit\"}"
        ),
        metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"playlist\",outcome=\"miss\"}"
        ) + metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"media\",outcome=\"miss\"}"
        ),
        metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"playlist\",outcome=\"coalesced\"}"
        ) + metric(
            &edge,
            "proxy_edge_cache_requests_total{kind=\"media\",outcome=\"coalesced\"}"
        ),
    );
    // Each viewer really played: playlists and several segments.
    assert!(through_edge.iter().all(|&n| n >= 10), "{through_edge:?}");
    // The plain proxy forwards every request; the edge about one viewer's worth (twice
    // that allows for a playlist expiring just before a poll, and segments published
    // while a fetch was under way).
    assert_eq!(
        plain_origin, plain_total,
        "the plain proxy forwards everything"
    );
    assert!(
        edge_origin <= 2 * one_viewer,
        "the origin saw {edge_origin} requests through the edge for {VIEWERS} viewers; one \
         viewer makes {one_viewer}"
    );
    assert!(
        metric(&edge, "proxy_edge_cache_requests_total") >= edge_total as f64,
        "every request through the edge is counted"
    );
}

#[test]
fn rewritten_playlists_carry_their_own_validators_and_no_store_is_not_cached() {
    let (nginx, _publisher) = origin();
    let direct: SocketAddr = ([127, 0, 0, 1], nginx.http_port).into();
    let edge = proxy(&nginx, true);
    let plain = proxy(&nginx, false);
    let nginx_etag = http("GET", direct, "/live/cam.m3u8", &[], b"")
        .header("etag")
        .map(str::to_owned);
    assert!(nginx_etag.is_some(), "nginx sends an ETag for its files");

    for (name, proxy) in [("edge", &edge), ("plain proxy", &plain)] {
        let addr = proxy.addr("http");
        let r = http("GET", addr, "/live/cam.m3u8", &[], b"");
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let etag = r
            .header("etag")
            .unwrap_or_else(|| panic!("{name}: no ETag"));
        assert_eq!(
            etag,
            format!("\"{}\"", sha256_prefix(&r.body)),
            "{name}: the ETag is over the bytes sent"
        );
        assert_ne!(
            Some(etag),
            nginx_etag.as_deref(),
            "{name}: not the origin's"
        );
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "{name}"
        );
        let again = http(
            "GET",
            addr,
            "/live/cam.m3u8",
            &[("If-None-Match", etag)],
            b"",
        );
        // The playlist may have changed meanwhile: then a new ETag with the new bytes.
        match again.status {
            304 => assert!(again.body.is_empty(), "{name}"),
            200 => assert_ne!(again.header("etag"), Some(etag), "{name}"),
            other => panic!("{name}: {other} {}", again.text()),
        }
        let stale = http(
            "GET",
            addr,
            "/live/cam.m3u8",
            &[("If-None-Match", "\"0\"")],
            b"",
        );
        assert_eq!(
            stale.status, 200,
            "{name}: a stale validator gets the playlist"
        );
    }
    // Back to back, the edge's answer is the same bytes: 304.
    let addr = edge.addr("http");
    let first = http("GET", addr, "/live/cam.m3u8", &[], b"");
    let etag = first.header("etag").expect("ETag").to_owned();
    let second = http(
        "GET",
        addr,
        "/live/cam.m3u8",
        &[("If-None-Match", &etag)],
        b"",
    );
    let segment = &segment_paths(&first.text(), "/live/")[0];
    // A HEAD first: it must not leave an empty body in the cache for the GETs after it.
    let head = http("HEAD", addr, segment, &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let r = http("GET", addr, segment, &[], b"");
    assert_eq!(
        head.header("content-length"),
        Some(r.body.len().to_string().as_str()),
        "HEAD and GET describe the same bytes"
    );
    assert!(r.body.len() > 188, "a whole segment after a HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", sha256_prefix(&r.body)).as_str()),
        "a cached segment's ETag is over its bytes"
    );
    assert_eq!(
        http(
            "GET",
            addr,
            segment,
            &[("If-None-Match", r.header("etag").unwrap())],
            b""
        )
        .status,
        304
    );
    assert!(
        second.status == 304 || second.header("etag") != Some(etag.as_str()),
        "{}",
        second.status
    );

    // The same files with `Cache-Control: no-store`: every request reaches the origin,
    // playlists and segments alike, and the header is passed on.
    let (playlists, segments) = (
        origin_requests(&nginx, "/nostore/cam.m3u8"),
        origin_requests(&nginx, "/nostore/cam-"),
    );
    let r = http("GET", addr, "/nostore/cam.m3u8", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let segment = &segment_paths(&r.text(), "/nostore/")[0];
    for _ in 0..4 {
        assert_eq!(http("GET", addr, "/nostore/cam.m3u8", &[], b"").status, 200);
        let s = http("GET", addr, segment, &[], b"");
        assert_eq!(s.status, 200, "{segment}: {}", s.text());
        assert_eq!(s.header("cache-control"), Some("no-store"));
    }
    assert_eq!(origin_requests(&nginx, "/nostore/cam.m3u8") - playlists, 5);
    assert_eq!(origin_requests(&nginx, "/nostore/cam-") - segments, 4);
    // A response setting a cookie is one viewer's: neither cached nor handed to the
    // viewers asking at the same time.
    let before = origin_requests(&nginx, "/cookie/cam.m3u8");
    let askers: Vec<_> = (0..10)
        .map(|_| std::thread::spawn(move || http("GET", addr, "/cookie/cam.m3u8", &[], b"")))
        .collect();
    for asker in askers {
        let r = asker.join().expect("a viewer failed");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("set-cookie"), Some("session=viewer-own"));
    }
    assert_eq!(origin_requests(&nginx, "/cookie/cam.m3u8") - before, 10);

    // The cacheable one, fetched as often: once at the origin.
    let cached = segment.replace("/nostore/", "/live/");
    let before = origin_requests(&nginx, "/live/cam-");
    for _ in 0..4 {
        assert_eq!(http("GET", addr, &cached, &[], b"").status, 200);
    }
    assert!(origin_requests(&nginx, "/live/cam-") - before <= 1);
}

#[test]
fn blocking_reloads_and_every_hls_ctx_share_one_upstream_and_tokens_work_across_edges() {
    let (nginx, _publisher) = origin();
    let redis = RedisServer::start();
    let toml = nginx.origin_toml("nginx");
    let a = fleet_proxy(&redis, &[("edge", "on")], Some(&toml));
    let b = fleet_proxy(&redis, &[("edge", "on")], Some(&toml));

    // LL-HLS blocking reloads from many viewers at once, in either parameter order and
    // with their own hls_ctx: one upstream request per (msn, part). nginx does not block
    // (it answers with the playlist at once), which is all the edge needs to be seen
    // fetching once.
    let addr = a.addr("http");
    let viewers: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let query = match i % 4 {
                    0 => format!("_HLS_msn=7&_HLS_part=1&hls_ctx=v{i}"),
                    1 => format!("hls_ctx=v{i}&_HLS_part=1&_HLS_msn=7"),
                    2 => format!("_HLS_msn=7&_HLS_part=2&hls_ctx=v{i}"),
                    _ => format!("_HLS_part=2&_HLS_msn=7&hls_ctx=v{i}"),
                };
                http("GET", addr, &format!("/live/cam.m3u8?{query}"), &[], b"").status
            })
        })
        .collect();
    for viewer in viewers {
        assert_eq!(viewer.join().expect("a viewer failed"), 200);
    }
    let log = nginx.access_log();
    let parts: Vec<&str> = log.lines().filter(|l| l.contains("_HLS_msn=7")).collect();
    assert_eq!(parts.len(), 2, "one fetch per part:\n{}", parts.join("\n"));
    assert!(parts.iter().any(|l| l.contains("_HLS_part=1")));
    assert!(parts.iter().any(|l| l.contains("_HLS_part=2")));

    // Viewers each with their own SRS hls_ctx, asking after the playlist expired each
    // time (nginx-rtmp's target duration is 1 s: kept 500 ms): every fetch reaches the
    // origin, always with one hls_ctx (the first viewer's, above), so that an SRS origin
    // sees one HLS session for the stream.
    for i in 0..6 {
        let r = http(
            "GET",
            addr,
            &format!("/live/cam.m3u8?hls_ctx=late{i}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(600));
    }
    let log = nginx.access_log();
    let contexts: std::collections::BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.split("hls_ctx=").nth(1))
        .filter_map(|rest| rest.split(['&', ' ']).next())
        .collect();
    let fetches = log.lines().filter(|l| l.contains("hls_ctx=")).count();
    assert!(
        fetches >= 2 + 5,
        "{fetches} fetches with an hls_ctx:\n{log}"
    );
    assert_eq!(
        contexts.len(),
        1,
        "one hls_ctx upstream: {contexts:?}\n{log}"
    );

    // A fleet of edges: the playlist (and its token) from A, the next requests through B.
    let playlist = http("GET", addr, "/live/cam.m3u8", &[], b"");
    assert_eq!(playlist.status, 200);
    let text = playlist.text();
    let segment = &segment_paths(&text, "/live/")[0];
    let token = segment
        .split("spbhid=")
        .nth(1)
        .expect("a tokenised segment")
        .to_owned();
    let r = http("GET", b.addr("http"), segment, &[], b"");
    assert_eq!(r.status, 200, "A's segment through B: {}", r.text());
    assert_eq!(r.body.first(), Some(&0x47));
    let reload = http(
        "GET",
        b.addr("http"),
        &format!("/live/cam.m3u8?spbhid={token}"),
        &[],
        b"",
    );
    assert_eq!(
        reload.status,
        200,
        "A's playlist token through B: {}",
        reload.text()
    );
    assert!(
        segment_paths(&reload.text(), "/live/")
            .iter()
            .all(|s| s.contains(&format!("spbhid={token}"))),
        "B keeps the viewer's token:\n{}",
        reload.text()
    );
}

/// A viewer that asks for a segment and reads it only when told: while it does not read,
/// its response stays unsent (a segment of megabytes is more than the proxy's send buffer
/// and hyper's queue hold), so its session stays open.
struct SlowViewer {
    stream: TcpStream,
    /// The response's Content-Length.
    length: usize,
    /// Body bytes read so far.
    read: usize,
}

impl SlowViewer {
    /// Sends the request and reads the response's head (and whatever body came with it).
    fn start(addr: SocketAddr, path: &str) -> Self {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("sending the request");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).expect("reading the response head");
            assert_eq!(n, 1, "the edge closed before the head ended: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("{path}: no Content-Length: {head}"));
        SlowViewer {
            stream,
            length,
            read: 0,
        }
    }

    /// Reads `n` more body bytes (fewer at its end).
    fn read(&mut self, n: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = n.min(self.length - self.read);
        while left > 0 {
            let want = left.min(buf.len());
            let got = self
                .stream
                .read(&mut buf[..want])
                .expect("reading the body");
            assert!(
                got > 0,
                "the body ended after {} of {}",
                self.read,
                self.length
            );
            self.read += got;
            left -= got;
        }
    }
}

/// The HLS play sessions `proxy` lists for `live/cam`: (origin, bytes to the client), and
/// the edge object's count of HLS viewers.
fn hls_sessions(proxy: &Proxy) -> (Vec<(String, u64)>, u64) {
    let r = http(
        "GET",
        proxy.addr("system-api"),
        "/api/v1/streams?stream=live/cam",
        &[],
        b"",
    );
    if r.status == 404 {
        // Neither placed nor with a client here.
        return (Vec::new(), 0);
    }
    assert_eq!(r.status, 200, "{}", r.text());
    let json = r.json();
    let stream = &json["data"][0];
    let clients = stream["sessions"]["clients"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let hls = clients
        .iter()
        .filter(|c| c["protocol"] == "hls")
        .map(|c| {
            assert_eq!(c["role"], "play", "{c}");
            (
                c["origin"].as_str().unwrap_or("").to_owned(),
                c["bytes_to_client"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let edge = stream["edge"]["hls"]["viewers"]["hls"]
        .as_u64()
        .unwrap_or(0);
    (hls, edge)
}

#[test]
fn hls_viewers_of_an_edge_are_sessions_until_their_segments_are_sent_or_dropped() {
    // Noise, losslessly: segments of megabytes.
    let (nginx, _publisher) = origin_publishing("flv -vf noise=alls=100:allf=t -qp 0");
    let toml = nginx.origin_toml("nginx");
    // Segments cached (the default budget), and streamed through (over an eighth of 1 MiB).
    let cached = proxy(&nginx, true);
    let through = Proxy::start(
        &[("edge", "on")],
        &[("PROXY_EDGE_CACHE_SIZE", "1MiB")],
        Some(&toml),
    );
    // A cached response costs the origin no connection; one streamed through holds one.
    for (name, edge, connections) in [("cached", &cached, 0), ("streamed through", &through, 4)] {
        let addr = edge.addr("http");
        let playlist = http("GET", addr, "/live/cam.m3u8", &[], b"");
        assert_eq!(playlist.status, 200, "{name}: {}", playlist.text());
        let segments = segment_paths(&playlist.text(), "/live/");
        // Three viewers of one segment (a miss, then hits, when cached), and one of the
        // next, each stopping after the head.
        let mut viewers: Vec<SlowViewer> = [0, 0, 0, 1]
            .iter()
            .map(|&i| SlowViewer::start(addr, &segments[i]))
            .collect();
        assert!(
            viewers.iter().all(|v| v.length > 2 << 20),
            "{name}: segments of megabytes are needed to hold a response open: {:?}",
            viewers.iter().map(|v| v.length).collect::<Vec<_>>()
        );
        let listed = wait_for(Duration::from_secs(10), || {
            let (sessions, edge_count) = hls_sessions(edge);
            (sessions.len() == viewers.len() && edge_count == viewers.len() as u64)
                .then_some(sessions)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: {} HLS viewers, listed: {:?}",
                viewers.len(),
                hls_sessions(edge)
            )
        });
        assert!(
            listed.iter().all(|(origin, _)| origin == "nginx"),
            "{name}: sessions at the origin the bytes came from: {listed:?}"
        );
        let servers = http("GET", edge.addr("system-api"), "/api/v1/servers", &[], b"").json();
        let nginx_sessions = servers["data"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == "nginx"))
            .map(|s| s["sessions"].clone());
        assert_eq!(
            nginx_sessions,
            Some(serde_json::json!(connections)),
            "{name}: connections to the origin: {servers}"
        );
        let summary = http("GET", edge.addr("system-api"), "/api/v1/proxy", &[], b"").json();
        assert_eq!(
            summary["data"]["edge"]["hls_viewers"],
            serde_json::json!(viewers.len()),
            "{name}: the console's count: {summary}"
        );
        let before: u64 = listed.iter().map(|(_, bytes)| bytes).sum();
        for viewer in &mut viewers {
            viewer.read(512 * 1024);
        }
        // What the viewers read went through their sessions: the counts grow by at least
        // that (the edge counts what it hands to the socket, ahead of the viewer).
        wait_for(Duration::from_secs(10), || {
            let (sessions, _) = hls_sessions(edge);
            let now: u64 = sessions.iter().map(|(_, bytes)| bytes).sum();
            (sessions.len() == viewers.len() && now >= before + 4 * 512 * 1024).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: bytes did not grow from {before}: {:?}",
                hls_sessions(edge)
            )
        });

        // One reads its segment to the end: its session ends, having counted it whole.
        let mut done = viewers.remove(0);
        let length = done.length;
        done.read(length);
        assert_eq!(done.read, length, "{name}");
        let left = wait_for(Duration::from_secs(10), || {
            let (sessions, _) = hls_sessions(edge);
            (sessions.len() == viewers.len()).then_some(sessions)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: a finished segment's session stays: {:?}",
                hls_sessions(edge)
            )
        });
        assert!(
            left.iter().all(|(_, bytes)| *bytes < length as u64),
            "{name}: {left:?}"
        );
        drop(done);
        // The others leave mid-body: their sessions end too.
        drop(viewers);
        wait_for(Duration::from_secs(10), || {
            let (sessions, edge_count) = hls_sessions(edge);
            (sessions.is_empty() && edge_count == 0).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: sessions of viewers that left: {:?}",
                hls_sessions(edge)
            )
        });
    }
}
