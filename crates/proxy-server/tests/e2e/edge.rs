//! End-to-end tests of edge mode (`--edge on`): ffmpeg publishes to nginx-rtmp; many
//! ffmpeg/ffprobe players over RTMP, HTTP-FLV and HTTP-TS play through the edge while the
//! origin holds one connection for them (counted in the kernel's TCP table).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_port, http, require_program, wait_for,
    wait_listening, NginxRtmp, Proxy,
};

/// Established TCP connections whose local end is 127.0.0.1:`port`: the server side of
/// every client of the process listening there.
fn established_to(port: u16) -> usize {
    let needle = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == needle && f[3] == "01"
        })
        .count()
}

fn streams(proxy: &Proxy) -> serde_json::Value {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()
}

fn edge_of(proxy: &Proxy, stream: &str) -> Option<serde_json::Value> {
    streams(proxy)["data"]
        .as_array()?
        .iter()
        .find(|s| s["stream"] == stream)
        .and_then(|s| s.get("edge").cloned())
}

fn edge_proxy(origins_toml: &str) -> Proxy {
    edge_proxy_with(origins_toml, &[])
}

fn edge_proxy_with(origins_toml: &str, extra: &[(&str, &str)]) -> Proxy {
    let mut flags = vec![
        ("edge", "on"),
        ("edge-linger", "2s"),
        // Probes would add connections to the origin's port while they are counted.
        ("health-check-interval", "off"),
    ];
    flags.extend_from_slice(extra);
    Proxy::start(&flags, &[], Some(origins_toml))
}

/// The flags of the first `n` video packets of `url`, as ffprobe reads them (`K` marks a
/// keyframe).
fn first_video_packet_flags(url: &str) -> String {
    let ffprobe = require_program("ffprobe", "ffmpeg");
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-select_streams",
            "v:0",
        ])
        .args(["-show_packets", "-read_intervals", "%+#3"])
        .args(["-show_entries", "packet=flags", "-of", "csv=p=0", url])
        .stdin(Stdio::null())
        .output()
        .expect("running ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `count` players of `url` in threads; each returns its decoded frame count and log.
fn players(url: &str, count: usize, seconds: u32) -> Vec<thread::JoinHandle<(u64, String)>> {
    (0..count)
        .map(|_| {
            let url = url.to_owned();
            thread::spawn(move || ffmpeg_count_frames(&url, seconds))
        })
        .collect()
}

#[test]
fn rtmp_and_flv_players_share_one_upstream_and_it_closes_after_the_linger() {
    let nginx = NginxRtmp::start(None);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/cam", nginx.rtmp_port),
        60,
        true,
        "flv",
    );
    assert!(
        wait_for(Duration::from_secs(10), || (established_to(
            nginx.rtmp_port
        ) == 1)
            .then_some(()))
        .is_some(),
        "the publisher did not connect to nginx"
    );
    // A viewer that takes nothing for 6 s is cut.
    let proxy = edge_proxy_with(&nginx.origin_toml("nginx"), &[("idle-timeout", "6s")]);
    let rtmp_url = format!("rtmp://{}/live/cam", proxy.addr("rtmp"));
    let flv_url = format!("http://{}/live/cam.flv", proxy.addr("http"));

    // A player that asks for the stream and then never reads: the others must not notice.
    let mut stalled = TcpStream::connect(proxy.addr("http")).unwrap();
    stalled
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    stalled.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the stalled player's answer");
    let _ = stalled.set_read_timeout(Some(Duration::from_millis(1)));

    let mut running = players(&rtmp_url, 3, 8);
    running.extend(players(&flv_url, 3, 8));

    // While they play: one connection to the origin besides the publisher's, and the API
    // shows the upstream with its viewers by protocol.
    let view = wait_for(Duration::from_secs(15), || {
        edge_of(&proxy, "__defaultVhost__/live/cam")
            .filter(|e| e["live"]["viewers"]["rtmp"] == 3 && e["live"]["viewers"]["http-flv"] == 4)
    })
    .unwrap_or_else(|| {
        panic!(
            "viewers not listed: {}\n{}",
            streams(&proxy),
            proxy.log_text()
        )
    });
    assert_eq!(view["live"]["upstream"]["origin"], "nginx", "{view}");
    assert_eq!(view["live"]["upstream"]["protocol"], "rtmp", "{view}");
    assert_eq!(
        established_to(nginx.rtmp_port),
        2,
        "nginx should see the publisher and one edge pull"
    );
    // The console's "this proxy" panel: one pull, every player counted against it.
    let summary = http("GET", proxy.addr("system-api"), "/api/v1/proxy", &[], b"").json();
    let edge = &summary["data"]["edge"];
    assert_eq!(edge["upstreams"]["rtmp"], 1, "{summary}");
    assert!(
        edge["viewers"].as_u64().is_some_and(|v| v >= 6),
        "{summary}"
    );
    assert!(
        edge["fanout_ratio"].as_f64().is_some_and(|r| r >= 6.0),
        "{summary}"
    );

    // A late joiner starts at a keyframe, over both protocols.
    for url in [&flv_url, &rtmp_url] {
        let flags = first_video_packet_flags(url);
        assert!(
            flags.lines().next().is_some_and(|f| f.starts_with('K')),
            "the first video packet of a late joiner ({url}) is not a keyframe: {flags:?}"
        );
    }
    assert_eq!(
        established_to(nginx.rtmp_port),
        2,
        "late joiners opened no pull"
    );

    for player in running {
        let (frames, log) = player.join().unwrap();
        assert!(
            frames >= 150,
            "a player decoded {frames} frames of 8 s at 25 fps; ffmpeg said:\n{log}\nproxy log:\n{}",
            proxy.log_text()
        );
    }
    let metrics = http("GET", proxy.addr("system-api"), "/metrics", &[], b"").text();
    assert!(
        metrics.contains("proxy_edge_upstream_sessions{protocol=\"rtmp\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("proxy_edge_fanout_ratio"), "{metrics}");

    // The stalled player was cut for taking nothing, without costing the others a frame.
    // (Once its socket buffers are full, the HTTP front-end's write watch closes it.)
    let cut = wait_for(Duration::from_secs(40), || {
        proxy
            .log_text()
            .contains("http client closed: it read nothing for 6s")
            .then_some(())
    });
    assert!(
        cut.is_some(),
        "the stalled player was not cut:\n{}",
        proxy.log_text()
    );
    drop(stalled);
    // The upstream closes after the 2 s linger.
    let closed = wait_for(Duration::from_secs(15), || {
        (established_to(nginx.rtmp_port) == 1).then_some(())
    });
    assert!(
        closed.is_some(),
        "the edge did not close its pull after the linger: {} connections\n{}",
        established_to(nginx.rtmp_port),
        proxy.log_text()
    );
    assert!(proxy
        .log_text()
        .contains("edge upstream closed: no viewers"));
}

#[test]
fn players_carry_on_when_the_stream_moves_to_another_origin() {
    let mut first = NginxRtmp::start(None);
    let mut second = NginxRtmp::start(None);
    let proxy = edge_proxy(&format!(
        "{}{}",
        first.origin_toml("first"),
        second.origin_toml("second")
    ));
    // Publishing through an edge goes straight to the origin, as through any proxy.
    let publish_url = format!("rtmp://{}/live/moving", proxy.addr("rtmp"));
    let mut publisher = ffmpeg_publish(&publish_url, 60, true, "flv");
    let placed = wait_for(Duration::from_secs(15), || {
        let s = streams(&proxy);
        let entry = s["data"]
            .as_array()?
            .iter()
            .find(|e| e["stream"] == "__defaultVhost__/live/moving")?
            .clone();
        (entry["sessions"]["bytes_to_origin"].as_u64()? > 20_000).then_some(entry)
    })
    .unwrap_or_else(|| panic!("not published: {}", proxy.log_text()));
    let dying = match placed["origin"].as_str() {
        Some("first") => &mut first,
        Some("second") => &mut second,
        _ => panic!("the stream is not on an origin: {placed}"),
    };
    let running = {
        let mut p = players(&format!("rtmp://{}/live/moving", proxy.addr("rtmp")), 2, 12);
        p.extend(players(
            &format!("http://{}/live/moving.flv", proxy.addr("http")),
            2,
            12,
        ));
        p
    };
    assert!(
        wait_for(Duration::from_secs(15), || {
            edge_of(&proxy, "__defaultVhost__/live/moving")
                .filter(|e| e["live"]["upstream"]["status"] == "live")
        })
        .is_some(),
        "no edge upstream: {}",
        proxy.log_text()
    );
    thread::sleep(Duration::from_secs(3));

    // The origin dies with its publisher's connection; the publisher comes back through
    // the edge and is placed on the other origin.
    dying.kill();
    let _ = publisher.terminate(Duration::from_secs(5));
    let _publisher = ffmpeg_publish(&publish_url, 60, true, "flv");

    for player in running {
        let (frames, log) = player.join().unwrap();
        // 12 s of media at 25 fps; the first origin carried at most 5 s of it.
        assert!(
            frames >= 200,
            "a player decoded {frames} frames across the move; ffmpeg said:\n{log}\nproxy log:\n{}",
            proxy.log_text()
        );
    }
    assert!(
        proxy.log_text().contains("pulling again"),
        "{}",
        proxy.log_text()
    );
    let metrics = http("GET", proxy.addr("system-api"), "/metrics", &[], b"").text();
    assert!(metrics.contains("proxy_edge_repulls_total"), "{metrics}");
}

#[test]
fn ts_players_share_one_pull() {
    // ffmpeg with `-listen 1` serves exactly one client: several players decoding through
    // the edge prove the edge pulled once.
    let origin_port = free_port();
    let _origin = ffmpeg_publish(
        &format!("http://127.0.0.1:{origin_port}/live/cam.ts"),
        60,
        true,
        "mpegts -listen 1",
    );
    assert!(
        wait_listening(origin_port, Duration::from_secs(10)),
        "ffmpeg did not start listening"
    );
    let proxy = edge_proxy(&format!(
        "[[origins]]\nname = \"ffmpeg\"\nhttp = {origin_port}\n"
    ));
    let url = format!("http://{}/live/cam.ts", proxy.addr("http"));
    let mut running = players(&url, 3, 5);
    thread::sleep(Duration::from_secs(2));
    // A late joiner.
    running.extend(players(&url, 1, 3));
    for player in running {
        let (frames, log) = player.join().unwrap();
        assert!(
            frames >= 60,
            "a TS player decoded {frames} frames; ffmpeg said:\n{log}\nproxy log:\n{}",
            proxy.log_text()
        );
    }
    let view = edge_of(&proxy, "__defaultVhost__/live/cam");
    assert!(
        proxy.log_text().matches("edge TS upstream pulling").count() == 1,
        "{view:?}\n{}",
        proxy.log_text()
    );
}

#[test]
fn players_get_a_clear_end_when_the_stream_stays_gone() {
    let nginx = NginxRtmp::start(None);
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/brief", nginx.rtmp_port),
        60,
        true,
        "flv",
    );
    let proxy = Proxy::start(
        &[
            ("edge", "on"),
            ("idle-timeout", "3s"),
            ("health-check-interval", "off"),
        ],
        &[],
        Some(&nginx.origin_toml("nginx")),
    );
    let mut running = players(&format!("rtmp://{}/live/brief", proxy.addr("rtmp")), 1, 60);
    running.extend(players(
        &format!("http://{}/live/brief.flv", proxy.addr("http")),
        1,
        60,
    ));
    assert!(
        wait_for(Duration::from_secs(15), || {
            edge_of(&proxy, "__defaultVhost__/live/brief").filter(|e| {
                e["live"]["viewers"]["rtmp"] == 1 && e["live"]["viewers"]["http-flv"] == 1
            })
        })
        .is_some(),
        "players not listed: {}",
        proxy.log_text()
    );
    thread::sleep(Duration::from_secs(2));
    // The publisher goes for good: players must end long before their 60 s of media.
    let _ = publisher.terminate(Duration::from_secs(5));
    for player in running {
        let (frames, log) = player.join().unwrap();
        assert!(
            frames > 0 && frames < 60 * 25 / 2,
            "a player decoded {frames} frames; ffmpeg said:\n{log}\nproxy log:\n{}",
            proxy.log_text()
        );
    }
    assert!(
        proxy.log_text().contains("edge upstream gone for"),
        "{}",
        proxy.log_text()
    );
}
