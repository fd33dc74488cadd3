//! The raw HTTP-FLV/TS relay loop (`media_raw::pump`) on loopback: an origin writing a
//! live stream's arrivals (25 000 bytes each, as a 2 Mbit/s stream sends every 100 ms,
//! and 1400-byte ones, a packet each) to one viewer, through the proxy's loop. Time per
//! MiB is the loop's cost per wake-up plus the two syscalls' (`load/flv_fanout.rs`
//! measures the whole against HAProxy).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: usize = 1 << 20;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let near = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (far, _) = listener.accept().await.expect("accept");
    (near, far)
}

/// One MiB relayed, `arrival` bytes per origin write, each write waiting for the viewer
/// to have read the one before (one arrival per wake-up, as live arrivals come).
async fn relay_one_mib(arrival: usize) {
    let (proxy_origin_end, mut origin) = pair().await;
    let (mut proxy_viewer_end, mut viewer) = pair().await;
    let (took, mut taken) = tokio::sync::mpsc::channel::<()>(1);
    let origin = tokio::spawn(async move {
        let chunk = vec![7u8; arrival];
        let mut sent = 0;
        while sent < TOTAL {
            let n = arrival.min(TOTAL - sent);
            origin.write_all(&chunk[..n]).await.expect("origin write");
            sent += n;
            let _ = taken.recv().await;
        }
    });
    let viewer = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let mut since = 0;
        while got < TOTAL {
            let n = viewer.read(&mut buf).await.expect("viewer read");
            assert!(n > 0, "the relay ended early");
            got += n;
            since += n;
            if since >= arrival || got == TOTAL {
                since = 0;
                let _ = took.send(()).await;
            }
        }
    });
    let relay = proxy_server::bench_pump(
        &mut proxy_viewer_end,
        proxy_origin_end,
        Duration::from_secs(10),
    );
    // The origin closes after its last arrival is taken: the relay ends with it.
    let (ended, done) = tokio::join!(relay, viewer);
    ended.expect("the relay");
    done.expect("viewer");
    origin.await.expect("origin");
}

fn raw_pump(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("raw_pump");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(20);
    for arrival in [25_000, 1400] {
        group.bench_function(format!("arrivals_of_{arrival}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(relay_one_mib(arrival));
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, raw_pump);
criterion_main!(benches);
