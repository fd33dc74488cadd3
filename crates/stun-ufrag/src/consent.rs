//! RFC 7675 consent for a relay that stands between an ICE client and its server: before
//! the relay sends a session's media to an address, that address must answer a binding
//! request of the relay's own.
//!
//! Why a relay needs it: a check authenticated with the server's `ice-pwd` proves only that
//! its sender knows that password, and the client always does (it is in the answer it was
//! given). A client can therefore send valid checks with a forged source address, and a
//! relay that followed them would aim the session's media (Mbit/s) at a victim for the
//! price of ~100 bytes of forged checks a second. A request the relay sends to the address
//! carries a random transaction id the forger never sees; only a host that really is at
//! that address can answer it, and an ICE agent answers only with the client's `ice-pwd`
//! on its MESSAGE-INTEGRITY (RFC 8445 §7.3).
//!
//! [`Consent`] is one session's address policy: the client addresses that sent valid
//! checks (at most [`MAX_PATHS`]), which of them is current (where the server's packets go),
//! and which have consented. Time is passed in; bytes go in and out. It decides:
//!
//! - the current address changes to one that has consented, on a check with USE-CANDIDATE,
//!   on media or DTLS from it, or on any valid check once the current one has been silent
//!   for [`SILENT`], or when the current one has not consented;
//! - an address that has not consented is asked ([`Transmit`]), at most one request in
//!   flight per address, retransmitted every [`RTO`] doubling, at most [`MAX_TRANSMITS`]
//!   times, and at most [`BURST`] requests at once then one per [`REFILL`] per session, so
//!   forged checks from many addresses cost the victims less than they cost the forger;
//! - the current address is asked again every [`REFRESH`]; consent ends [`LIFETIME`] after
//!   the last answer (RFC 7675 §5.1), and media stops until it is renewed.
//!
//! What may go to an address before it consents is the caller's choice; [`may_precede_consent`]
//! gives the rule a relay needs: STUN (answers to the client's own checks) and DTLS
//! handshake records, never SRTP/SRTCP or DTLS application data (the data channels).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::demux::{classify, PacketKind};
use crate::stun::{attr_type, Class, IntegrityKey, Message, MessageBuilder, MessageType};
use crate::stun::{Method, TransactionId, MAX_USERNAME_LEN};
use crate::Error;

/// Most client addresses one session keeps; a new one replaces the oldest that is not the
/// current one.
pub const MAX_PATHS: usize = 4;
/// First retransmission timeout of a consent request (RFC 8489 §6.2.1's default RTO).
pub const RTO: Duration = Duration::from_millis(500);
/// Transmissions of one request before it is given up (0, 0.5, 1.5, 3.5, 7.5 s).
pub const MAX_TRANSMITS: u8 = 5;
/// How often the current address is asked again (RFC 7675 §5.1 says 4-6 s).
pub const REFRESH: Duration = Duration::from_secs(5);
/// How long consent lasts after the last answer (RFC 7675 §5.1).
pub const LIFETIME: Duration = Duration::from_secs(30);
/// Silence of the current address after which any valid check may take its place.
pub const SILENT: Duration = Duration::from_secs(1);
/// Requests a session may send at once.
pub const BURST: u32 = 5;
/// Time that earns a session one more request, up to [`BURST`].
pub const REFILL: Duration = Duration::from_millis(200);
/// PRIORITY of the relay's requests: what a peer-reflexive host candidate gets (type
/// preference 110, local preference 65535, component 1).
pub const PRIORITY: u32 = (110 << 24) | (65_535 << 8) | 255;
/// Largest request: header, USERNAME, ICE-CONTROLLED, PRIORITY, MESSAGE-INTEGRITY,
/// FINGERPRINT.
const MAX_REQUEST: usize = 20 + 4 + MAX_USERNAME_LEN + 12 + 8 + 24 + 8;

/// A consent request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The address asked.
    pub to: SocketAddr,
    /// The STUN binding request.
    pub datagram: Vec<u8>,
}

/// Where the server's packets go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The current client address.
    pub addr: SocketAddr,
    /// Whether it has consented: media may go to it.
    pub consented: bool,
}

/// What [`Consent::on_check`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// A consent request for the checking address.
    pub transmit: Option<Transmit>,
    /// An address dropped to make room for the new one: it no longer belongs to the session.
    pub evicted: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct Pending {
    tid: TransactionId,
    transmits: u8,
    /// When it is retransmitted, or given up.
    next: Instant,
}

#[derive(Debug, Clone)]
struct Path {
    addr: SocketAddr,
    /// Order of arrival: the oldest is dropped first.
    seq: u64,
    /// Consent holds until then.
    consent_until: Option<Instant>,
    pending: Option<Pending>,
    /// The request answered last: retransmitted answers to it are swallowed too.
    answered: Option<TransactionId>,
    last_request: Option<Instant>,
    last_seen: Instant,
    /// The client wants this address (it nominated it, or sent media from it): it becomes
    /// current as soon as it consents.
    wanted: bool,
}

impl Path {
    fn new(addr: SocketAddr, seq: u64, now: Instant) -> Self {
        Path {
            addr,
            seq,
            consent_until: None,
            pending: None,
            answered: None,
            last_request: None,
            last_seen: now,
            wanted: false,
        }
    }

    fn consented(&self) -> bool {
        self.consent_until.is_some()
    }
}

/// Which path: the current one, or another by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Current,
    Other(usize),
}

/// One session's client addresses and their consent. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Consent {
    /// `<client ufrag>:<server ufrag>`: the relay asks as the server would.
    username: String,
    /// The client's `ice-pwd`.
    key: IntegrityKey,
    tie_breaker: u64,
    current: Path,
    /// At most [`MAX_PATHS`] - 1.
    others: Vec<Path>,
    next_seq: u64,
    tokens: u32,
    refilled: Instant,
}

impl Consent {
    /// A session whose first valid check came from `first`, which is current but has not
    /// consented yet: call [`Consent::on_check`] for that check to ask it.
    ///
    /// `client_pwd` is the `ice-pwd` of the client's offer; `tie_breaker` goes in the
    /// requests' ICE-CONTROLLED (the relay asks as the server, which a WHIP/WHEP client
    /// controls). Ufrags whose USERNAME would exceed 512 bytes are
    /// [`Error::InvalidValue`].
    pub fn new(
        client_ufrag: &str,
        server_ufrag: &str,
        client_pwd: &str,
        tie_breaker: u64,
        first: SocketAddr,
        now: Instant,
    ) -> Result<Self, Error> {
        if client_ufrag.len() + 1 + server_ufrag.len() > MAX_USERNAME_LEN {
            return Err(Error::InvalidValue {
                attr_type: attr_type::USERNAME,
            });
        }
        Ok(Consent {
            username: format!("{client_ufrag}:{server_ufrag}"),
            key: IntegrityKey::new(client_pwd.as_bytes()),
            tie_breaker,
            current: Path::new(first, 0, now),
            others: Vec::new(),
            next_seq: 1,
            tokens: BURST,
            refilled: now,
        })
    }

    /// Where the server's packets go now.
    pub fn destination(&self) -> Destination {
        Destination {
            addr: self.current.addr,
            consented: self.current.consented(),
        }
    }

    /// Whether `addr` is one of the session's addresses.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.find(addr).is_some()
    }

    /// The session's addresses, the current one first.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        std::iter::once(&self.current)
            .chain(&self.others)
            .map(|p| p.addr)
    }

    /// How many addresses the session has (at least one, the current).
    pub fn len(&self) -> usize {
        1 + self.others.len()
    }

    /// Never true: a session has its current address at least.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// A valid check (the caller verified its USERNAME and MESSAGE-INTEGRITY) from `from`,
    /// nominating if `nominated`. `tid` makes a fresh random transaction id if a request is
    /// sent: it must be unpredictable, as it is all a forger lacks.
    pub fn on_check(
        &mut self,
        from: SocketAddr,
        nominated: bool,
        now: Instant,
        tid: impl FnOnce() -> TransactionId,
    ) -> CheckOutcome {
        let mut outcome = CheckOutcome::default();
        let which = match self.find(from) {
            Some(which) => which,
            None => {
                outcome.evicted = self.insert(from, now);
                Which::Other(self.others.len().saturating_sub(1))
            }
        };
        let takes_over = which != Which::Current && (nominated || self.current_gone(now));
        if let Some(p) = self.path_mut(which) {
            p.last_seen = now;
            p.wanted |= takes_over;
        }
        outcome.transmit = self.advance(which, now, tid);
        outcome
    }

    /// Media or DTLS from `from`, an address of this session (others are ignored). The
    /// client uses that address: it becomes current once it has consented.
    pub fn on_traffic(
        &mut self,
        from: SocketAddr,
        now: Instant,
        tid: impl FnOnce() -> TransactionId,
    ) -> Option<Transmit> {
        if self.current.addr == from {
            self.current.last_seen = now;
            return None;
        }
        let which = self.find(from)?;
        let p = self.path_mut(which)?;
        p.last_seen = now;
        p.wanted = true;
        self.advance(which, now, tid)
    }

    /// A STUN response from `from`. True if it answers one of the relay's requests to that
    /// address, and so is the relay's to consume (not the server's); consent is granted if
    /// it is a Binding success carrying MESSAGE-INTEGRITY made with the client's `ice-pwd`
    /// (and a valid FINGERPRINT, if any).
    pub fn on_response(&mut self, from: SocketAddr, msg: &Message<'_>, now: Instant) -> bool {
        if !matches!(msg.class(), Class::SuccessResponse | Class::ErrorResponse) {
            return false;
        }
        let Some(which) = self.find(from) else {
            return false;
        };
        let tid = msg.transaction_id();
        let granted = msg.class() == Class::SuccessResponse
            && msg.method() == Method::BINDING
            && msg.verify_integrity(&self.key).is_ok()
            && (!msg.has_fingerprint() || msg.verify_fingerprint().is_ok());
        let Some(p) = self.path_mut(which) else {
            return false;
        };
        if p.answered == Some(tid) {
            return true;
        }
        if p.pending.as_ref().map(|x| x.tid) != Some(tid) {
            return false;
        }
        p.pending = None;
        p.answered = Some(tid);
        if granted {
            p.consent_until = Some(now + LIFETIME);
            let wanted = p.wanted;
            if let Which::Other(i) = which {
                if wanted || self.current_gone(now) {
                    self.switch(i);
                }
            }
        }
        true
    }

    /// Timers: consent that ran out, retransmissions, the current address's refresh. Call
    /// it every few hundred milliseconds.
    pub fn poll(&mut self, now: Instant, mut tid: impl FnMut() -> TransactionId) -> Vec<Transmit> {
        let mut out = Vec::new();
        let all = std::iter::once(Which::Current).chain((0..self.others.len()).map(Which::Other));
        for which in all {
            let Some(p) = self.path_mut(which) else {
                break;
            };
            if p.consent_until.is_some_and(|until| now >= until) {
                p.consent_until = None;
            }
            let due = match &p.pending {
                Some(pending) if now >= pending.next => Some(pending.transmits < MAX_TRANSMITS),
                _ => None,
            };
            match due {
                Some(true) => {
                    if let Some(t) = self.retransmit(which, now) {
                        out.push(t);
                    }
                    continue;
                }
                Some(false) => p.pending = None,
                None => {}
            }
            let refresh = which == Which::Current
                && self.current.pending.is_none()
                && self
                    .current
                    .last_request
                    .is_none_or(|at| now >= at + REFRESH);
            if refresh {
                if let Some(t) = self.request(which, now, &mut tid) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// Drops `addr` (another session took it). The current address stays.
    pub fn forget(&mut self, addr: SocketAddr) {
        self.others.retain(|p| p.addr != addr);
    }

    /// The current address has not consented, or has been silent for [`SILENT`].
    fn current_gone(&self, now: Instant) -> bool {
        !self.current.consented() || now.saturating_duration_since(self.current.last_seen) >= SILENT
    }

    fn find(&self, addr: SocketAddr) -> Option<Which> {
        if self.current.addr == addr {
            return Some(Which::Current);
        }
        self.others
            .iter()
            .position(|p| p.addr == addr)
            .map(Which::Other)
    }

    fn path_mut(&mut self, which: Which) -> Option<&mut Path> {
        match which {
            Which::Current => Some(&mut self.current),
            Which::Other(i) => self.others.get_mut(i),
        }
    }

    /// Adds a path, dropping the oldest other one if full; the dropped address.
    fn insert(&mut self, addr: SocketAddr, now: Instant) -> Option<SocketAddr> {
        let mut evicted = None;
        if self.others.len() + 1 >= MAX_PATHS {
            let oldest = (0..self.others.len()).min_by_key(|&i| self.others.get(i).map(|p| p.seq));
            if let Some(i) = oldest {
                evicted = Some(self.others.remove(i).addr);
            }
        }
        self.others.push(Path::new(addr, self.next_seq, now));
        self.next_seq += 1;
        evicted
    }

    /// After a check or traffic from a path: switch to it if it has consented and is
    /// wanted, or ask it if it has not and no request is in flight.
    fn advance(
        &mut self,
        which: Which,
        now: Instant,
        tid: impl FnOnce() -> TransactionId,
    ) -> Option<Transmit> {
        let p = self.path_mut(which)?;
        if p.consented() {
            if let (Which::Other(i), true) = (which, p.wanted) {
                self.switch(i);
            }
            return None;
        }
        if p.pending.is_some() {
            return None;
        }
        let mut tid = Some(tid);
        self.request(which, now, &mut || {
            tid.take().map_or(TransactionId([0; 12]), |f| f())
        })
    }

    /// Makes other path `i` the current one.
    fn switch(&mut self, i: usize) {
        if let Some(p) = self.others.get_mut(i) {
            std::mem::swap(&mut self.current, p);
        }
        self.current.wanted = false;
        for p in &mut self.others {
            p.wanted = false;
        }
    }

    /// A new request to a path, if the budget allows.
    fn request(
        &mut self,
        which: Which,
        now: Instant,
        tid: &mut impl FnMut() -> TransactionId,
    ) -> Option<Transmit> {
        self.path_mut(which)?;
        if !self.take_token(now) {
            return None;
        }
        let tid = tid();
        let datagram = self.encode(tid).ok()?;
        let p = self.path_mut(which)?;
        p.pending = Some(Pending {
            tid,
            transmits: 1,
            next: now + RTO,
        });
        p.last_request = Some(now);
        Some(Transmit {
            to: p.addr,
            datagram,
        })
    }

    /// A path's in-flight request again, same transaction, if the budget allows.
    fn retransmit(&mut self, which: Which, now: Instant) -> Option<Transmit> {
        let tid = self.path_mut(which)?.pending.as_ref()?.tid;
        if !self.take_token(now) {
            return None;
        }
        let datagram = self.encode(tid).ok()?;
        let p = self.path_mut(which)?;
        let pending = p.pending.as_mut()?;
        pending.transmits += 1;
        // Each wait doubles; after the last transmission, the same wait again, then the
        // request is given up.
        let doublings = pending.transmits.min(MAX_TRANSMITS) - 1;
        pending.next = now + RTO * (1u32 << doublings);
        Some(Transmit {
            to: p.addr,
            datagram,
        })
    }

    fn take_token(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.refilled).as_nanos() / REFILL.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(BURST);
            self.refilled = if self.tokens == BURST {
                now
            } else {
                self.refilled + REFILL * earned
            };
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn encode(&self, tid: TransactionId) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; MAX_REQUEST];
        let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
        b.username(&self.username)?
            .ice_controlled(self.tie_breaker)?
            .priority(PRIORITY)?
            .message_integrity(&self.key)?
            .fingerprint()?;
        Ok(b.finish().to_vec())
    }
}

/// Whether a datagram from the server may go to a client address that has not consented:
/// STUN (answers to the client's checks, one for one) and DTLS handshake, change-cipher-spec
/// and alert records (a handshake cannot be driven blind, and its flights are bounded).
/// Not SRTP/SRTCP, not DTLS application data (data channels), nothing else.
pub fn may_precede_consent(datagram: &[u8]) -> bool {
    match classify(datagram) {
        PacketKind::Stun => true,
        PacketKind::Dtls => matches!(datagram.first(), Some(20..=22)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
