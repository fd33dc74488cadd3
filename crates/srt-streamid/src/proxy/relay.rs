//! Both legs up: packets are readdressed by socket id, a SHUTDOWN from either side ends the
//! connection, and so does silence from either side.

use std::time::Duration;

use super::SessionIds;
use crate::packet::{classify, control_type, dest_socket_id, set_dest_socket_id};
use crate::packet::{ControlHeader, PacketKind, HEADER_LEN};
use crate::Error;

/// Bytes of a SHUTDOWN as libsrt sends it: the header and a 4-byte empty body.
pub const SHUTDOWN_LEN: usize = HEADER_LEN + 4;

/// What to do with a datagram after [`Relay::from_client`] or [`Relay::from_origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Readdressed in place: send it on.
    Forward,
    /// A SHUTDOWN, readdressed: send it on; the connection is over.
    Last,
    /// Not for the other side (a stray or late handshake, a runt): drop it.
    Drop,
}

/// How to rewrite packets once both legs are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relay {
    /// The client's own socket id.
    pub client_socket_id: u32,
    /// The origin's socket id for this connection.
    pub origin_socket_id: u32,
    /// The proxy's ids.
    pub ids: SessionIds,
}

impl Relay {
    /// Readdresses a client packet (sent to `ids.toward_client`) to the origin.
    #[inline]
    pub fn client_to_origin(&self, datagram: &mut [u8]) -> Result<(), Error> {
        set_dest_socket_id(datagram, self.origin_socket_id)
    }

    /// Readdresses an origin packet (sent to `ids.toward_origin`) to the client.
    #[inline]
    pub fn origin_to_client(&self, datagram: &mut [u8]) -> Result<(), Error> {
        set_dest_socket_id(datagram, self.client_socket_id)
    }

    /// A client packet, already routed by its destination id: readdressed to the origin.
    /// Handshakes pass too (libsrt's caller repeats its conclusion to the connected id
    /// until it hears from the peer; the origin answers or ignores it).
    #[inline]
    pub fn from_client(&self, datagram: &mut [u8]) -> Verdict {
        let shutdown = classify(datagram) == Some(PacketKind::Shutdown);
        match self.client_to_origin(datagram) {
            Ok(()) if shutdown => Verdict::Last,
            Ok(()) => Verdict::Forward,
            Err(_) => Verdict::Drop,
        }
    }

    /// An origin packet: readdressed to the client if it is addressed to this connection
    /// and not a handshake (the handshake is over; a late duplicate answer is not for the
    /// client, who has the translated one).
    #[inline]
    pub fn from_origin(&self, datagram: &mut [u8]) -> Verdict {
        if dest_socket_id(datagram) != Some(self.ids.toward_origin) {
            return Verdict::Drop;
        }
        let verdict = match classify(datagram) {
            Some(PacketKind::Handshake) | None => return Verdict::Drop,
            Some(PacketKind::Shutdown) => Verdict::Last,
            Some(_) => Verdict::Forward,
        };
        match self.origin_to_client(datagram) {
            Ok(()) => verdict,
            Err(_) => Verdict::Drop,
        }
    }

    /// The SHUTDOWN the proxy sends the client when it ends the connection itself.
    pub fn shutdown_to_client(&self) -> [u8; SHUTDOWN_LEN] {
        shutdown(self.client_socket_id)
    }

    /// The SHUTDOWN the proxy sends the origin when it ends the connection itself.
    pub fn shutdown_to_origin(&self) -> [u8; SHUTDOWN_LEN] {
        shutdown(self.origin_socket_id)
    }
}

/// A SHUTDOWN control packet to `dest`, timestamp 0 (the peer takes no timing from it).
fn shutdown(dest: u32) -> [u8; SHUTDOWN_LEN] {
    let mut packet = [0u8; SHUTDOWN_LEN];
    let header = ControlHeader {
        dest_socket_id: dest,
        ..ControlHeader::new(control_type::SHUTDOWN)
    };
    for (dst, src) in packet.iter_mut().zip(header.encode()) {
        *dst = src;
    }
    packet
}

/// Which side of a connection fell silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Silent {
    /// Nothing from the client.
    Client,
    /// Nothing from the origin.
    Origin,
}

/// Fewest looks per idle limit: a silent side is noticed within a quarter of the limit
/// after it.
const LOOKS_PER_LIMIT: u32 = 4;
/// Never look more often than this, whatever the limit.
const MIN_LOOK: Duration = Duration::from_millis(100);
/// Nor less often than this.
const MAX_LOOK: Duration = Duration::from_secs(5);

/// Watches both directions of a relay for silence. SRT peers send a keep-alive every
/// second when they have nothing else to say, so a side silent for the idle limit is gone.
/// The relay counts bytes (it does anyway, for the statistics); this looks at the counts
/// on a timer, so nothing is added to the per-packet path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    limit: Duration,
    look: Duration,
    next: Duration,
    seen: (u64, u64),
    heard: (Duration, Duration),
}

impl Silence {
    /// Watches from `now` with the idle `limit`.
    pub fn new(limit: Duration, now: Duration) -> Self {
        let look = (limit / LOOKS_PER_LIMIT).clamp(MIN_LOOK, MAX_LOOK);
        Silence {
            limit,
            look,
            next: now + look,
            seen: (0, 0),
            heard: (now, now),
        }
    }

    /// When to call [`Silence::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Duration {
        self.next
    }

    /// Compares the byte counts relayed so far (client to origin, origin to client) with
    /// the last look; `Some` names the side that has been silent for the limit.
    pub fn handle_timeout(
        &mut self,
        now: Duration,
        to_origin: u64,
        to_client: u64,
    ) -> Option<Silent> {
        if now < self.next {
            return None;
        }
        self.next = now + self.look;
        if to_origin != self.seen.0 {
            (self.seen.0, self.heard.0) = (to_origin, now);
        }
        if to_client != self.seen.1 {
            (self.seen.1, self.heard.1) = (to_client, now);
        }
        if now.saturating_sub(self.heard.0) >= self.limit {
            Some(Silent::Client)
        } else if now.saturating_sub(self.heard.1) >= self.limit {
            Some(Silent::Origin)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = include_bytes!("../../tests/data/session_c2o_data_0.bin");
    const SHUTDOWN: &[u8] = include_bytes!("../../tests/data/session_c2o_shutdown_0.bin");
    const ORIGIN_ACK: &[u8] = include_bytes!("../../tests/data/session_o2c_ack_0.bin");
    const ORIGIN_HANDSHAKE: &[u8] = include_bytes!("../../tests/data/session_o2c_handshake_0.bin");

    fn relay() -> Relay {
        Relay {
            client_socket_id: 0x0C11_E000,
            origin_socket_id: 0x0021_6100,
            ids: SessionIds {
                toward_client: 0x0000_0A01,
                toward_origin: 0x0000_0B02,
            },
        }
    }

    fn to(id: u32, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        set_dest_socket_id(&mut b, id).unwrap();
        b
    }

    #[test]
    fn client_packets_go_to_the_origins_id() {
        let r = relay();
        let mut data = to(r.ids.toward_client, DATA);
        assert_eq!(r.from_client(&mut data), Verdict::Forward);
        assert_eq!(dest_socket_id(&data), Some(r.origin_socket_id));
        assert_eq!(
            data.get(HEADER_LEN..),
            DATA.get(HEADER_LEN..),
            "payload untouched"
        );
        let mut bye = to(r.ids.toward_client, SHUTDOWN);
        assert_eq!(r.from_client(&mut bye), Verdict::Last);
        assert_eq!(dest_socket_id(&bye), Some(r.origin_socket_id));
        assert_eq!(r.from_client(&mut [0u8; 15]), Verdict::Drop);
    }

    #[test]
    fn origin_packets_go_to_the_clients_id_unless_stray() {
        let r = relay();
        let mut ack = to(r.ids.toward_origin, ORIGIN_ACK);
        assert_eq!(r.from_origin(&mut ack), Verdict::Forward);
        assert_eq!(dest_socket_id(&ack), Some(r.client_socket_id));
        let mut bye = to(r.ids.toward_origin, SHUTDOWN);
        assert_eq!(r.from_origin(&mut bye), Verdict::Last);
        assert_eq!(dest_socket_id(&bye), Some(r.client_socket_id));

        let mut late = to(r.ids.toward_origin, ORIGIN_HANDSHAKE);
        assert_eq!(r.from_origin(&mut late), Verdict::Drop, "late handshake");
        let mut other = to(r.ids.toward_origin + 1, ORIGIN_ACK);
        assert_eq!(r.from_origin(&mut other), Verdict::Drop, "another id");
        assert_eq!(dest_socket_id(&other), Some(r.ids.toward_origin + 1));
        assert_eq!(r.from_origin(&mut [0u8; 15]), Verdict::Drop);
    }

    #[test]
    fn shutdown_packets_are_what_libsrt_sends() {
        let r = relay();
        for (ours, dest) in [
            (r.shutdown_to_client(), r.client_socket_id),
            (r.shutdown_to_origin(), r.origin_socket_id),
        ] {
            assert_eq!(classify(&ours), Some(PacketKind::Shutdown));
            assert_eq!(dest_socket_id(&ours), Some(dest));
            // The captured one apart from its timestamp and destination.
            assert_eq!(ours.get(..8), SHUTDOWN.get(..8));
            assert_eq!(ours.get(16..), SHUTDOWN.get(16..));
            assert_eq!(ours.len(), SHUTDOWN.len());
        }
    }

    #[test]
    fn silence_is_noticed_on_either_side() {
        let ms = Duration::from_millis;
        let t0 = Duration::from_secs(100);
        let mut s = Silence::new(ms(2_000), t0);
        assert_eq!(s.poll_timeout(), t0 + ms(500), "a quarter of the limit");
        assert_eq!(
            s.handle_timeout(t0 + ms(100), 5, 5),
            None,
            "not due: ignored"
        );
        assert_eq!(s.poll_timeout(), t0 + ms(500));
        let (mut up, mut down) = (0, 0);
        let mut t = t0;
        // Both sides talk for a while.
        for _ in 0..10 {
            t = s.poll_timeout();
            (up, down) = (up + 100, down + 10);
            assert_eq!(s.handle_timeout(t, up, down), None);
        }
        // The client stops; the origin goes on.
        let stopped = t;
        let silent = loop {
            t = s.poll_timeout();
            down += 10;
            if let Some(side) = s.handle_timeout(t, up, down) {
                break side;
            }
        };
        assert_eq!(silent, Silent::Client);
        assert_eq!(t - stopped, ms(2_000));

        let mut s = Silence::new(ms(2_000), t0);
        let t = t0 + ms(2_000);
        assert_eq!(s.handle_timeout(t, 1, 0), Some(Silent::Origin));

        assert_eq!(Silence::new(ms(100), t0).poll_timeout(), t0 + MIN_LOOK);
        assert_eq!(Silence::new(ms(60_000), t0).poll_timeout(), t0 + MAX_LOOK);
    }
}
