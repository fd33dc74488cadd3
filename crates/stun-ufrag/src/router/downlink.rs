//! Where one session's datagrams from the origin go: the decision the task reading the
//! origin's socket makes per packet, kept apart from the [`Router`](super::Router) so that
//! task can hold a copy and decide without asking the router.

use std::net::SocketAddr;

use super::{Action, DropReason};
use crate::consent::{may_precede_consent, Destination};
use crate::demux::{classify, PacketKind};
use crate::stun::TransactionId;

/// Check transactions remembered per session, so the origin's answer to a check goes back
/// to the address that sent it. Clients check from a few addresses at once (one per
/// candidate pair, every 50 ms at most while connecting); answers come within a round
/// trip, so a handful of the latest suffices.
pub const ASKERS: usize = 8;

/// The latest check transactions and the addresses that sent them, oldest overwritten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Askers {
    entries: [Option<(TransactionId, SocketAddr)>; ASKERS],
    next: usize,
}

impl Askers {
    fn record(&mut self, tid: TransactionId, from: SocketAddr) {
        if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = Some((tid, from));
        }
        self.next = (self.next + 1) % ASKERS;
    }

    fn find(&self, tid: &[u8]) -> Option<SocketAddr> {
        self.entries
            .iter()
            .flatten()
            .find(|(t, _)| t.0.as_slice() == tid)
            .map(|(_, addr)| *addr)
    }
}

/// One session's route from its origin to its client: the current client address, whether
/// it consented, and who asked which check (when the session has several addresses).
///
/// The [`Router`](super::Router) keeps the authoritative copy and hands out a new one in
/// [`Event::Downlink`](super::Event::Downlink) whenever a decision could change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downlink {
    dest: Destination,
    /// More than one client address: answers to checks are routed by transaction.
    multi: bool,
    askers: Askers,
}

impl Downlink {
    pub(super) fn new(dest: Destination) -> Self {
        Downlink {
            dest,
            multi: false,
            askers: Askers::default(),
        }
    }

    /// Where the origin's packets go now.
    pub fn destination(&self) -> Destination {
        self.dest
    }

    /// What to do with a datagram from the origin: [`Action::ToClient`], or
    /// [`Action::Drop`] with [`DropReason::HeldForConsent`] for media (SRTP, SRTCP, DTLS
    /// application data) while the current address has not consented. STUN and DTLS
    /// handshake records pass (see [`may_precede_consent`]); the answer to a check goes to
    /// the address that sent it.
    #[inline]
    pub fn route(&self, datagram: &[u8]) -> Action {
        if !self.dest.consented && !may_precede_consent(datagram) {
            return Action::Drop(DropReason::HeldForConsent);
        }
        if self.multi && classify(datagram) == PacketKind::Stun {
            if let Some(asker) = datagram.get(8..20).and_then(|tid| self.askers.find(tid)) {
                return Action::ToClient(asker);
            }
        }
        Action::ToClient(self.dest.addr)
    }

    /// A check with transaction `tid` from `from`; true if routing depends on it (the
    /// session has several addresses).
    pub(super) fn record(&mut self, tid: TransactionId, from: SocketAddr) -> bool {
        self.askers.record(tid, from);
        self.multi
    }

    /// Takes the consent policy's state; true if anything changed.
    pub(super) fn update(&mut self, dest: Destination, multi: bool) -> bool {
        let changed = dest != self.dest || multi != self.multi;
        self.dest = dest;
        self.multi = multi;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn stun_answer(tid: u8) -> Vec<u8> {
        let mut d = vec![0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        d.extend_from_slice(&[tid; 12]);
        d
    }

    #[test]
    fn askers_remember_the_latest_transactions_only() {
        let mut askers = Askers::default();
        for i in 0..ASKERS as u8 {
            askers.record(TransactionId([i; 12]), addr(1));
        }
        askers.record(TransactionId([200; 12]), addr(2));
        assert_eq!(askers.find(&[200; 12]), Some(addr(2)));
        assert_eq!(askers.find(&[0; 12]), None, "the oldest was overwritten");
        assert_eq!(askers.find(&[1; 12]), Some(addr(1)));
        assert_eq!(
            Askers::default().find(&[0; 12]),
            None,
            "empty slots match nothing"
        );
    }

    #[test]
    fn media_waits_for_consent_but_the_handshake_does_not() {
        let mut d = Downlink::new(Destination {
            addr: addr(1),
            consented: false,
        });
        let held = Action::Drop(DropReason::HeldForConsent);
        assert_eq!(d.route(&[0x80, 0x60, 1, 2]), held, "SRTP");
        assert_eq!(d.route(&[0x81, 200, 1, 2]), held, "SRTCP");
        assert_eq!(d.route(&[23, 0xfe, 0xfd]), held, "DTLS application data");
        assert_eq!(d.route(&[0xff]), held, "anything else");
        assert_eq!(d.route(&[22, 0xfe, 0xfd]), Action::ToClient(addr(1)));
        assert_eq!(d.route(&stun_answer(1)), Action::ToClient(addr(1)));
        d.update(
            Destination {
                addr: addr(1),
                consented: true,
            },
            false,
        );
        assert_eq!(d.route(&[0x80, 0x60, 1, 2]), Action::ToClient(addr(1)));
    }

    #[test]
    fn answers_go_to_their_asker_once_there_are_several_addresses() {
        let mut d = Downlink::new(Destination {
            addr: addr(1),
            consented: true,
        });
        assert!(!d.record(TransactionId([9; 12]), addr(2)));
        assert_eq!(
            d.route(&stun_answer(9)),
            Action::ToClient(addr(1)),
            "one address: everything goes to it"
        );
        assert!(d.update(d.destination(), true));
        assert!(
            !d.update(d.destination(), true),
            "no change the second time"
        );
        assert_eq!(d.route(&stun_answer(9)), Action::ToClient(addr(2)));
        assert_eq!(
            d.route(&stun_answer(8)),
            Action::ToClient(addr(1)),
            "unknown"
        );
        assert_eq!(d.route(&[0x80, 0x60]), Action::ToClient(addr(1)), "media");
        assert_eq!(d.route(&[0x01]), Action::ToClient(addr(1)), "a stub");
    }
}
