//! Health and failover end to end: nginx-rtmp origins listed statically, probed by the
//! proxy, killed and restarted under live ffmpeg sessions; draining with live sessions.
//!
//! Times are printed (kill to re-publish), never asserted: speed is the benches' business.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_play, ffmpeg_publish, http, wait_for, NginxRtmp, Process, Proxy,
};

/// Probes every second, so that tests do not wait long for `fall` and `rise`.
const FAST_PROBES: &[(&str, &str)] = &[
    ("health-check-interval", "1s"),
    ("health-check-timeout", "500ms"),
    ("health-check-fall", "2"),
    ("health-check-rise", "2"),
];

fn servers(proxy: &Proxy) -> Vec<Value> {
    let r = http("GET", proxy.addr("system-api"), "/api/v1/servers", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].as_array().cloned().unwrap_or_default()
}

fn server(proxy: &Proxy, id: &str) -> Value {
    servers(proxy)
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("origin {id} is not listed"))
}

/// The `/api/v1/streams` entry of `stream` (`vhost/app/name`), if listed.
fn stream_entry(proxy: &Proxy, stream: &str) -> Option<Value> {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()["data"]
        .as_array()?
        .iter()
        .find(|s| s["stream"] == stream)
        .cloned()
}

/// The origin of `stream` once it has a publisher through this proxy that has sent media.
fn publishing_on(proxy: &Proxy, stream: &str) -> Option<String> {
    stream_entry(proxy, stream)
        .filter(|s| {
            s["sessions"]["publishers"] == 1
                && s["sessions"]["bytes_to_origin"].as_u64() > Some(10_000)
        })
        .and_then(|s| s["origin"].as_str().map(str::to_owned))
}

fn wait_publishing(proxy: &Proxy, stream: &str) -> String {
    wait_for(Duration::from_secs(20), || publishing_on(proxy, stream)).unwrap_or_else(|| {
        panic!(
            "{stream} is not being published through the proxy: {:?}\nproxy log:\n{}",
            stream_entry(proxy, stream),
            proxy.log_text()
        )
    })
}

fn exited(process: &mut Process) -> Option<ExitStatus> {
    process.child.try_wait().ok().flatten()
}

fn two_origins(flags: &[(&str, &str)]) -> (NginxRtmp, NginxRtmp, Proxy) {
    let (a, b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let toml = format!("{}{}", a.origin_toml("a"), b.origin_toml("b"));
    let proxy = Proxy::start(flags, &[], Some(&toml));
    (a, b, proxy)
}

#[test]
fn a_publisher_is_cut_when_its_origin_dies_and_its_republish_lands_on_the_other() {
    let (mut a, mut b, proxy) = two_origins(FAST_PROBES);
    let url = format!("rtmp://{}/live/failover", proxy.addr("rtmp"));
    let stream = "__defaultVhost__/live/failover";
    let mut publisher = ffmpeg_publish(&url, 600, true, "flv");
    let first = wait_publishing(&proxy, stream);
    let survivor = if first == "a" { "b" } else { "a" };

    let killed_at = Instant::now();
    match first.as_str() {
        "a" => a.kill(),
        _ => b.kill(),
    }
    let status = wait_for(Duration::from_secs(30), || exited(&mut publisher))
        .unwrap_or_else(|| panic!("the publisher outlived its origin:\n{}", proxy.log_text()));
    let cut = killed_at.elapsed();
    assert!(
        !status.success(),
        "ffmpeg should fail when its connection is cut: {status}"
    );

    // What an encoder with reconnect does: publish again, and again if refused.
    let mut attempts = 0;
    let (mut republisher, landed) = loop {
        attempts += 1;
        let mut p = ffmpeg_publish(&url, 600, true, "flv");
        let outcome = wait_for(Duration::from_secs(20), || {
            if exited(&mut p).is_some() {
                return Some(None);
            }
            publishing_on(&proxy, stream).map(Some)
        });
        match outcome {
            Some(Some(origin)) => break (p, origin),
            Some(None) if attempts < 30 => std::thread::sleep(Duration::from_millis(200)),
            _ => panic!(
                "no re-publish got through after {attempts} attempts:\n{}",
                proxy.log_text()
            ),
        }
    };
    let recovered = killed_at.elapsed();
    assert_eq!(landed, survivor, "the stream moved to the live origin");
    println!(
        "failover: publisher cut {} ms after its origin was killed; re-published on {landed} \
         {} ms after the kill ({attempts} attempt(s))",
        cut.as_millis(),
        recovered.as_millis()
    );

    let (frames, log) = ffmpeg_count_frames(&url, 3);
    assert!(frames > 0, "a player gets the re-published stream: {log}");
    assert!(exited(&mut republisher).is_none(), "the re-publish goes on");

    let dead = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, &first);
        (s["alive"] == false).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the killed origin still shows alive: {}",
            server(&proxy, &first)
        )
    });
    assert_eq!(server(&proxy, survivor)["alive"], true, "{dead}");
}

#[test]
fn a_hung_origin_is_found_by_the_rtmp_probe_and_its_streams_move() {
    let (mut a, mut b, proxy) = two_origins(FAST_PROBES);
    let url = format!("rtmp://{}/live/hung", proxy.addr("rtmp"));
    let stream = "__defaultVhost__/live/hung";
    let mut publisher = ffmpeg_publish(&url, 600, true, "flv");
    let first = wait_publishing(&proxy, stream);
    let survivor = if first == "a" { "b" } else { "a" };
    let hung = if first == "a" { &mut a } else { &mut b };
    hung.pause();
    let port = hung.rtmp_port;

    // Its ports still accept connections; only the RTMP handshake tells it is gone.
    let down = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, &first);
        (s["alive"] == false).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "a hung origin still shows alive: {}\nproxy log:\n{}",
            server(&proxy, &first),
            proxy.log_text()
        )
    });
    let reason = down["down"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("rtmp 127.0.0.1:{port}")) && reason.contains("no answer"),
        "{down}"
    );

    // Its live sessions are ended by the proxy (their bytes would otherwise fill socket
    // buffers for minutes before anything looks idle), so the publisher reconnects.
    let cut = wait_for(Duration::from_secs(20), || exited(&mut publisher));
    assert!(
        cut.is_some(),
        "the publisher on the hung origin was not cut:\n{}",
        proxy.log_text()
    );
    assert!(
        proxy
            .log_text()
            .contains("ended the sessions on an origin marked down"),
        "{}",
        proxy.log_text()
    );
    let _again = ffmpeg_publish(&url, 600, true, "flv");
    assert_eq!(wait_publishing(&proxy, stream), survivor);
    hung.resume();
}

#[test]
fn probes_take_a_stopped_origin_down_and_bring_it_back_after_rise() {
    let mut nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(FAST_PROBES, &[], Some(&nginx.origin_toml("probed")));
    assert_eq!(
        server(&proxy, "probed")["alive"],
        true,
        "an origin starts up"
    );

    nginx.kill();
    // fall (2) x interval (1 s) plus slack; waited for, not asserted as a time.
    let down = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, "probed");
        (s["alive"] == false).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "a stopped origin still shows alive: {}\nproxy log:\n{}",
            server(&proxy, "probed"),
            proxy.log_text()
        )
    });
    let reason = down["down"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("probe: ") && reason.contains(&format!(":{}", nginx.rtmp_port)),
        "the reason names the probe and the endpoint: {down}"
    );
    assert!(
        proxy.log_text().contains("origin down"),
        "the change is logged:\n{}",
        proxy.log_text()
    );

    // Down for the balancer: a new stream has nowhere to go.
    let mut refused = ffmpeg_publish(
        &format!("rtmp://{}/live/nowhere", proxy.addr("rtmp")),
        60,
        true,
        "flv",
    );
    let status = wait_for(Duration::from_secs(20), || exited(&mut refused))
        .expect("a publish with no live origin should be refused");
    assert!(!status.success());
    assert!(
        proxy.log_text().contains("refused publish"),
        "{}",
        proxy.log_text()
    );

    nginx.restart();
    let up = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, "probed");
        (s["alive"] == true).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "a restarted origin stays down: {}\nproxy log:\n{}",
            server(&proxy, "probed"),
            proxy.log_text()
        )
    });
    assert!(up["down"].is_null(), "the mark is cleared: {up}");
    assert!(proxy.log_text().contains("origin up"));

    let url = format!("rtmp://{}/live/back", proxy.addr("rtmp"));
    let _publisher = ffmpeg_publish(&url, 60, true, "flv");
    assert_eq!(
        wait_publishing(&proxy, "__defaultVhost__/live/back"),
        "probed"
    );
}

#[test]
fn a_drained_origin_keeps_its_live_sessions_while_new_streams_go_elsewhere() {
    let (_a, _b, proxy) = two_origins(FAST_PROBES);
    let rtmp = proxy.addr("rtmp");
    let url = format!("rtmp://{rtmp}/live/keep");
    let stream = "__defaultVhost__/live/keep";
    let mut publisher = ffmpeg_publish(&url, 600, true, "flv");
    let drained = wait_publishing(&proxy, stream);
    let other = if drained == "a" { "b" } else { "a" };
    let mut player = ffmpeg_play(&url);
    wait_for(Duration::from_secs(20), || {
        let e = stream_entry(&proxy, stream)?;
        (e["sessions"]["players"] == 1 && e["sessions"]["bytes_to_client"].as_u64() > Some(10_000))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the player did not start: {:?}",
            stream_entry(&proxy, stream)
        )
    });

    let api = proxy.addr("system-api");
    let r = http(
        "POST",
        api,
        &format!("/api/v1/servers/{drained}/drain"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = server(&proxy, &drained);
    assert_eq!(s["draining"], true, "{s}");
    assert_eq!(
        s["sessions"], 2,
        "publisher and player are still there: {s}"
    );
    // The proxy's connection reports reach the balancer's count.
    let reported = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, &drained);
        (s["connections"] == 2).then_some(s)
    });
    assert!(
        reported.is_some(),
        "connections are not reported: {}",
        server(&proxy, &drained)
    );

    // A new stream goes to the other origin.
    let mut fresh = ffmpeg_publish(&format!("rtmp://{rtmp}/live/fresh"), 600, true, "flv");
    assert_eq!(
        wait_publishing(&proxy, "__defaultVhost__/live/fresh"),
        other
    );

    // The drained origin's sessions go on relaying.
    let sent = |proxy: &Proxy| {
        let e = stream_entry(proxy, stream).expect("still listed");
        (
            e["sessions"]["bytes_to_origin"].as_u64().unwrap_or(0),
            e["sessions"]["bytes_to_client"].as_u64().unwrap_or(0),
        )
    };
    let before = sent(&proxy);
    let grew = wait_for(Duration::from_secs(20), || {
        let now = sent(&proxy);
        (now.0 > before.0 + 10_000 && now.1 > before.1 + 10_000).then_some(now)
    });
    assert!(
        grew.is_some(),
        "the drained origin's publisher and player stalled: {before:?} then {:?}",
        sent(&proxy)
    );
    assert!(exited(&mut publisher).is_none() && exited(&mut player).is_none());

    // The clients leave; a script waiting for zero sees it.
    drop(player);
    drop(publisher);
    let left = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, &drained);
        (s["sessions"] == 0).then_some(s)
    });
    assert!(
        left.is_some(),
        "sessions on the drained origin did not drop to zero: {}",
        server(&proxy, &drained)
    );
    let unreported = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, &drained);
        (s["connections"] == 0).then_some(s)
    });
    assert!(
        unreported.is_some(),
        "the balancer still counts connections: {}",
        server(&proxy, &drained)
    );
    assert_eq!(server(&proxy, other)["sessions"], 1, "the fresh publisher");
    assert!(exited(&mut fresh).is_none());
}

#[test]
fn registered_origins_are_probed_when_asked() {
    let mut flags = FAST_PROBES.to_vec();
    flags.push(("health-check-registered", "on"));
    let proxy = Proxy::start(&flags, &[], None);
    // Nothing listens on this port: the heartbeat says alive, the probes say otherwise.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let body = format!(
        r#"{{"ip":"127.0.0.1","server":"srs","service":"s1","pid":"1","rtmp":["{dead}"]}}"#
    );
    let r = http(
        "POST",
        proxy.addr("system-api"),
        "/api/v1/srs/register",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let down = wait_for(Duration::from_secs(20), || {
        let s = server(&proxy, "srs-s1-1");
        (s["alive"] == false).then_some(s)
    })
    .unwrap_or_else(|| panic!("probes ignored a registered origin:\n{}", proxy.log_text()));
    assert!(
        down["down"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("rtmp 127.0.0.1:{dead}"))),
        "{down}"
    );
}

#[test]
fn the_rtmp_probe_speaks_the_proxy_protocol_when_the_leg_does() {
    // Debian's nginx-rtmp reads the v1 header only; without it the handshake would fail.
    let mut nginx = NginxRtmp::start_with(None, "proxy_protocol");
    let mut flags = FAST_PROBES.to_vec();
    flags.extend([
        ("origin-proxy-protocol", "rtmp"),
        ("origin-proxy-protocol-version", "1"),
    ]);
    let proxy = Proxy::start(&flags, &[], Some(&nginx.origin_toml("pp")));
    // Down while hung, then up again: only handshakes that nginx accepts bring it back.
    nginx.pause();
    wait_for(Duration::from_secs(20), || {
        (server(&proxy, "pp")["alive"] == false).then_some(())
    })
    .unwrap_or_else(|| panic!("a hung origin still shows alive:\n{}", proxy.log_text()));
    nginx.resume();
    wait_for(Duration::from_secs(20), || {
        (server(&proxy, "pp")["alive"] == true).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "probes with a PROXY header did not pass: {}\n{}",
            server(&proxy, "pp"),
            proxy.log_text()
        )
    });
}
