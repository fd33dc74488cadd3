//! A FAKE NAT written here (no real program rebinds a NAT mapping on demand on loopback):
//! one client's UDP traffic to the proxy's WebRTC port goes out through an "outside"
//! socket, and [`FakeNat::rebind`] moves it to a new outside socket, as a NAT that loses
//! its mapping does. The client keeps talking to the NAT's inside address (the candidate
//! the proxy's answer names) and never sees the change; the proxy sees its client move.
//! What the proxy sends to an abandoned outside socket is dropped, as by a real NAT.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct FakeNat {
    pub inside: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    inside: UdpSocket,
    outside: Vec<UdpSocket>,
    /// Index of the outside socket in use.
    current: AtomicUsize,
    client: Mutex<Option<SocketAddr>>,
    proxy: Mutex<Option<SocketAddr>>,
    /// Media (not STUN) the proxy sent to each outside socket, and to a socket no longer in
    /// use (dropped).
    media_in: Vec<AtomicU64>,
    dropped: AtomicU64,
    stop: AtomicBool,
}

impl FakeNat {
    /// Binds the inside address and two outside sockets; [`FakeNat::start`] begins
    /// forwarding once the proxy's address is known.
    pub fn bind() -> Self {
        let socket = || {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind fake NAT socket");
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s
        };
        let inside = socket();
        let shared = Arc::new(Shared {
            outside: vec![socket(), socket()],
            current: AtomicUsize::new(0),
            client: Mutex::new(None),
            proxy: Mutex::new(None),
            media_in: vec![AtomicU64::new(0), AtomicU64::new(0)],
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            inside,
        });
        FakeNat {
            inside: shared.inside.local_addr().unwrap(),
            shared,
        }
    }

    /// Forwards between the client and `proxy`.
    pub fn start(&self, proxy: SocketAddr) {
        *self.shared.proxy.lock().unwrap() = Some(proxy);
        let s = self.shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.inside.recv_from(&mut buf) else {
                    continue;
                };
                *s.client.lock().unwrap() = Some(from);
                let out = &s.outside[s.current.load(Ordering::Relaxed)];
                let _ = out.send_to(&buf[..n], proxy);
            }
        });
        for i in 0..self.shared.outside.len() {
            let s = self.shared.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !s.stop.load(Ordering::Relaxed) {
                    let Ok(n) = s.outside[i].recv(&mut buf) else {
                        continue;
                    };
                    let media = buf.first().is_some_and(|b| *b > 3);
                    if media {
                        s.media_in[i].fetch_add(1, Ordering::Relaxed);
                    }
                    if s.current.load(Ordering::Relaxed) != i {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if let Some(client) = *s.client.lock().unwrap() {
                        let _ = s.inside.send_to(&buf[..n], client);
                    }
                }
            });
        }
    }

    /// The address the proxy sees the client at now.
    pub fn outside(&self) -> SocketAddr {
        self.shared.outside[self.shared.current.load(Ordering::Relaxed)]
            .local_addr()
            .unwrap()
    }

    /// Moves the client to the second outside socket.
    pub fn rebind(&self) {
        self.shared.current.store(1, Ordering::Relaxed);
    }

    /// Media datagrams the proxy sent to outside socket `i` so far.
    pub fn media_at(&self, i: usize) -> u64 {
        self.shared.media_in[i].load(Ordering::Relaxed)
    }
}

impl Drop for FakeNat {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}
