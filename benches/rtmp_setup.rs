//! The setup path of every RTMP connection the proxy accepts: a [`ServerSession`] taking a
//! client from C0 C1 to `publish` (handshake, `connect`, `releaseStream`, `FCPublish`,
//! `createStream`), fed in socket-sized reads and with its output taken after each, as the
//! proxy's `identify` does. The client side is `rtmp-peek`'s own [`ClientSession`], in
//! memory. A connection storm is this path, many times over.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rtmp_peek::{
    ClientConfig, ClientSession, OriginRequest, ServerConfig, ServerEvent, ServerSession,
    StreamKind,
};

/// One setup to `publish`; the bytes the server took.
fn setup() -> usize {
    let request =
        OriginRequest::new(StreamKind::Publish, "live", "rtmp://bench/live", "stream").unwrap();
    let mut client = ClientSession::new(request, ClientConfig::default()).unwrap();
    let mut server = ServerSession::new(ServerConfig::default());
    let mut taken = 0;
    loop {
        let to_server = client.take_output();
        taken += to_server.len();
        // At most 4 KiB a read, as `identify` reads.
        for piece in to_server.chunks(4096) {
            server.feed(piece).unwrap();
        }
        while let Some(event) = server.poll_event() {
            if let ServerEvent::Identified(identified) = event {
                black_box(identified);
                return taken;
            }
        }
        let to_client = server.take_output();
        assert!(
            !to_client.is_empty() || client.has_output(),
            "the setup stalled"
        );
        client.feed(&to_client).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    c.bench_function("rtmp_setup/handshake_to_publish", |b| b.iter(setup));
}

criterion_group!(benches, bench);
criterion_main!(benches);
