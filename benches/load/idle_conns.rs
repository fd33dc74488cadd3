//! Idle RTMP connections: N clients connect and complete the RTMP handshake (C0 C1, S0 S1
//! S2, C2), then say nothing, as a slowloris or a connection storm would. Measures the
//! resident memory each one costs the proxy, HAProxy in `mode tcp` (which passes the
//! handshake to the origin) and the nginx-rtmp origin itself (direct), in one run: the
//! growth of each process's RSS divided by N.
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/idle-conns
//!  [--connections 1000] [--runs 3]`

#[path = "common.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use rtmp_peek::handshake::ClientHandshake;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = common::arg_num(&args, "--connections", 1000) as usize;
    let runs = common::arg_num(&args, "--runs", 3).max(1) as usize;
    let binary = common::proxy_binary(&args);
    println!("idle RTMP connections: {n} handshaked clients per target, {runs} runs");
    let names = ["direct (nginx-rtmp)", "proxy", "haproxy"];
    let mut per_conn = vec![Vec::new(); names.len()];
    for run in 0..runs {
        // Fresh processes every run: memory freed by an earlier run would be reused and
        // hide what a connection costs.
        for (i, kib) in measure_run(&binary, n, run).into_iter().enumerate() {
            per_conn[i].push(kib);
        }
    }
    for (i, name) in names.iter().enumerate() {
        let runs: Vec<String> = per_conn[i].iter().map(|k| format!("{k:.2}")).collect();
        println!(
            "{name:<20}: {:.2} KiB per connection (median); runs {}",
            median(&per_conn[i]),
            runs.join(" ")
        );
    }
    let (d, p, h) = (
        median(&per_conn[0]),
        median(&per_conn[1]),
        median(&per_conn[2]),
    );
    println!(
        "ratios: proxy/haproxy {:.2}, proxy/direct {:.2}, haproxy/direct {:.2}",
        p / h.max(1e-9),
        p / d.max(1e-9),
        h / d.max(1e-9)
    );
}

/// KiB per idle connection of nginx (direct), the proxy and HAProxy, each freshly started.
fn measure_run(binary: &std::path::Path, n: usize, run: usize) -> Vec<f64> {
    let workdir = std::env::temp_dir().join(format!("idle-conns-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let nginx = common::NginxRtmp::start(&workdir.join("nginx"));
    std::fs::write(
        workdir.join("proxy.toml"),
        format!("[[origins]]\nname = \"nginx\"\nrtmp = {}\n", nginx.port),
    )
    .expect("config");
    // The handshake timeout would close idle clients before they are counted.
    let proxy = common::ProxyProcess::start(
        binary,
        &[
            "--config",
            "proxy.toml",
            "--max-connections",
            "100000",
            "--max-connections-per-ip",
            "0",
            "--handshake-timeout",
            "300s",
        ],
        &workdir,
    );
    let haproxy = common::Haproxy::start(&workdir.join("haproxy"), nginx.port);
    let targets: [(SocketAddr, u32); 3] = [
        (([127, 0, 0, 1], nginx.port).into(), nginx.pid()),
        (proxy.addr("rtmp"), proxy.child.id()),
        (([127, 0, 0, 1], haproxy.port).into(), haproxy.child.id()),
    ];
    // A few connections each first: the first ones pay for allocator arenas and the like.
    for (addr, _) in &targets {
        drop(open(*addr, 20));
    }
    common::sleep(Duration::from_millis(300));
    let mut out = Vec::new();
    for (addr, pid) in &targets {
        let before = common::rss_kib(*pid);
        let conns = open(*addr, n);
        common::sleep(Duration::from_millis(500));
        let after = common::rss_kib(*pid);
        out.push(after.saturating_sub(before) as f64 / n as f64);
        drop(conns);
    }
    drop(proxy);
    drop(haproxy);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&workdir);
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `n` connections to `addr`, each through the RTMP handshake.
fn open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut stream = TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("connection {i} to {addr}: {e}"));
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            handshake(&mut stream).unwrap_or_else(|e| panic!("handshake {i} with {addr}: {e}"));
            stream
        })
        .collect()
}

fn handshake(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut hs = ClientHandshake::new(true);
    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
    hs.start(&mut out).map_err(std::io::Error::other)?;
    stream.write_all(&out)?;
    out.clear();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        input.extend_from_slice(&buf[..n]);
        if hs
            .process(&mut input, &mut out)
            .map_err(std::io::Error::other)?
        {
            break;
        }
    }
    stream.write_all(&out)
}
