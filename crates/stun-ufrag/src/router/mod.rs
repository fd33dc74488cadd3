//! A sans-IO WebRTC media router: the decisions of a relay that shares one UDP port among
//! every client and gives each session its own path to an origin, without the sockets.
//!
//! Shaped like `quinn-proto` and `str0m`: the caller owns the sockets and the clock and
//! feeds in what happened; the router answers with an [`Action`] and queues what it wants
//! sent ([`Router::poll_transmit`]), what changed ([`Router::poll_event`]) and when it wants
//! to be woken ([`Router::poll_timeout`]). Time is passed in and never read.
//!
//! # Routing
//!
//! - A datagram from an address bound to a session goes to that session's origin, after one
//!   hash of the address: DTLS, SRTP/SRTCP, the client's checks and its answers to the
//!   origin. Answers to the router's own consent requests are consumed.
//! - From any other address only a STUN binding request may open or move a session. Its
//!   USERNAME's server ufrag names the session; the check must carry the client ufrag of
//!   the offer and pass MESSAGE-INTEGRITY keyed with the server's `ice-pwd`, or it is
//!   dropped and nothing changes. A ufrag made known with [`Router::prime`] opens at once;
//!   an unknown one is looked up ([`Action::Lookup`], answered with
//!   [`Router::handle_lookup`]), at most [`MAX_PENDING`] at a time and
//!   [`LOOKUPS_PER_WINDOW`] per [`LOOKUP_WINDOW`], and a ufrag found missing is not asked for
//!   again for [`MISSING_FOR`], so a flood of made-up ufrags costs the lookup service little.
//! - Each session's client addresses, the current one and their RFC 7675 consent are a
//!   [`Consent`] policy: media goes only to an address that answered the router's own
//!   request. Where the origin's datagrams go is a [`Downlink`], handed out in
//!   [`Event::Downlink`] for the code that reads the origin's socket.
//! - A session with no datagram from its client for [`Config::idle_timeout`] closes; so
//!   does one [`Router::forget`] names. Ufrags primed but never checked are forgotten after
//!   [`Config::known_ttl`].

mod downlink;
mod types;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use downlink::{Downlink, ASKERS};
pub use types::{
    Action, CloseReason, Config, DropCounts, DropReason, Event, Known, SessionId, Target, Transmit,
};

use crate::consent::Consent;
use crate::demux::{classify, PacketKind};
use crate::stun::{IntegrityKey, Message, TransactionId};

/// Resolution of the router's timers: idle sessions, consent retransmissions and refreshes
/// are looked at this often.
pub const TICK: Duration = Duration::from_millis(250);
/// Most lookups of new ufrags in flight; checks for further new ufrags are dropped (the
/// client retransmits).
pub const MAX_PENDING: usize = 256;
/// The window over which lookups are counted.
pub const LOOKUP_WINDOW: Duration = Duration::from_millis(250);
/// Most lookups started per [`LOOKUP_WINDOW`] (256 a second).
pub const LOOKUPS_PER_WINDOW: u32 = 64;
/// Most primed ufrags waiting for their first check.
pub const MAX_KNOWN: usize = 65_536;
/// Most ufrags remembered as missing.
pub const MAX_MISSING: usize = 4096;
/// How long a ufrag the lookup did not find is not looked up again.
pub const MISSING_FOR: Duration = Duration::from_secs(2);
/// How often expired primed and missing ufrags are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the drop counts are reported ([`Event::Report`]), when any is not zero.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);
/// Largest check kept while its ufrag is looked up (browsers' are under 200 bytes).
pub const MAX_QUEUED_CHECK: usize = 1500;

struct Entry<T> {
    known: Known<T>,
    integrity: IntegrityKey,
}

impl<T> Entry<T> {
    fn new(known: Known<T>) -> Self {
        let integrity = IntegrityKey::new(known.server_pwd.as_bytes());
        Entry { known, integrity }
    }

    /// Whether a check may open or move this session: the client ufrag the offer named,
    /// and MESSAGE-INTEGRITY keyed with the server's password.
    fn authentic(&self, msg: &Message<'_>, client_ufrag: &str) -> bool {
        client_ufrag == self.known.client_ufrag && msg.verify_integrity(&self.integrity).is_ok()
    }
}

struct Session<T> {
    serial: u64,
    entry: Entry<T>,
    consent: Consent,
    /// The route last handed out.
    downlink: Downlink,
    /// A check was recorded that the handed-out route lacks.
    askers_changed: bool,
    last_seen: Instant,
}

/// A check waiting for its ufrag's lookup; the latest retransmission is replayed.
struct Pending {
    from: SocketAddr,
    datagram: Vec<u8>,
}

/// Makes random bytes: consent request transaction ids must be unpredictable, as they are
/// all a forger lacks.
pub type Random = Box<dyn FnMut(&mut [u8]) + Send>;

/// The router. See the [module docs](self). `T` is the caller's per-session data.
pub struct Router<T> {
    config: Config,
    random: Random,
    slots: Vec<Option<Session<T>>>,
    free: Vec<u32>,
    live: usize,
    next_serial: u64,
    by_addr: HashMap<SocketAddr, SessionId>,
    by_ufrag: HashMap<String, SessionId>,
    known: HashMap<String, (Entry<T>, Instant)>,
    pending: HashMap<String, Pending>,
    missing: HashMap<String, Instant>,
    accepting: bool,
    lookup_window: Instant,
    lookups_in_window: u32,
    drops: DropCounts,
    next_tick: Instant,
    next_sweep: Instant,
    next_renew: Instant,
    next_report: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event<T>>,
}

impl<T> Router<T> {
    /// A router with no sessions. `random` fills buffers with unpredictable bytes (the
    /// system's CSPRNG).
    pub fn new(config: Config, random: Random, now: Instant) -> Self {
        let config = Config {
            idle_timeout: config.idle_timeout.max(TICK),
            renew_every: config.renew_every.max(TICK),
            ..config
        };
        Router {
            random,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_serial: 0,
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            known: HashMap::new(),
            pending: HashMap::new(),
            missing: HashMap::new(),
            accepting: true,
            lookup_window: now,
            lookups_in_window: 0,
            drops: DropCounts::default(),
            next_tick: now + TICK,
            next_sweep: now + SWEEP_EVERY,
            next_renew: now + config.renew_every,
            next_report: now + REPORT_EVERY,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        }
    }

    /// Makes a session known (signalled here), so its first check opens it without a lookup.
    pub fn prime(&mut self, now: Instant, known: Known<T>) {
        if self.by_ufrag.contains_key(&known.server_ufrag) {
            return;
        }
        self.missing.remove(&known.server_ufrag);
        if self.known.len() >= MAX_KNOWN {
            self.expire_known(now);
        }
        if self.known.len() < MAX_KNOWN {
            let ufrag = known.server_ufrag.clone();
            self.known.insert(ufrag, (Entry::new(known), now));
        }
    }

    /// Forgets a server ufrag (its resource was deleted): the session closes
    /// ([`CloseReason::Deleted`]).
    pub fn forget(&mut self, ufrag: &str) {
        self.known.remove(ufrag);
        self.pending.remove(ufrag);
        if let Some(&id) = self.by_ufrag.get(ufrag) {
            self.close(id, CloseReason::Deleted);
        }
    }

    /// The configuration in force (with its floors applied).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the idle timeout and the session cap while sessions run (a configuration
    /// reload). Open sessions are not closed by a lower cap: new ones are refused until
    /// the count is below it.
    pub fn set_limits(&mut self, idle_timeout: Duration, max_sessions: usize) {
        self.config.idle_timeout = idle_timeout.max(TICK);
        self.config.max_sessions = max_sessions;
    }

    /// No new session opens from now on (shutdown); open ones go on.
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
        self.pending.clear();
    }

    /// A datagram from a client address on the shared port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Action {
        let kind = classify(datagram);
        if let Some(&id) = self.by_addr.get(&from) {
            return self.bound_datagram(now, id, from, kind, datagram);
        }
        // An unknown sender: only a binding request may introduce it.
        if kind != PacketKind::Stun {
            return self.drop(DropReason::UnknownSender);
        }
        match Message::parse(datagram) {
            Ok(msg) if msg.is_binding_request() => self.by_ufrag(now, &msg, from),
            _ => self.drop(DropReason::BadStun),
        }
    }

    /// A datagram from a session's origin: [`Action::ToClient`] or [`Action::Drop`]. The
    /// same decision as the session's [`Downlink::route`].
    pub fn handle_origin_datagram(&mut self, session: SessionId, datagram: &[u8]) -> Action {
        let action = match self.get(session) {
            Some(s) => s.downlink.route(datagram),
            None => Action::Drop(DropReason::UnknownSender),
        };
        if let Action::Drop(reason) = action {
            self.drops.add(reason);
        }
        action
    }

    /// What a lookup [`Action::Lookup`] asked for found (`None`: no such session). A found
    /// session is primed and the kept check replayed: it may open the session
    /// ([`Action::Open`]); the check itself then comes out of [`Router::poll_transmit`].
    pub fn handle_lookup(&mut self, now: Instant, ufrag: &str, found: Option<Known<T>>) -> Action {
        let Some(pending) = self.pending.remove(ufrag) else {
            return Action::Consumed;
        };
        let Some(known) = found else {
            if self.missing.len() >= MAX_MISSING {
                self.missing
                    .retain(|_, at| now.saturating_duration_since(*at) < MISSING_FOR);
            }
            if self.missing.len() < MAX_MISSING {
                self.missing.insert(ufrag.to_owned(), now);
            }
            return self.drop(DropReason::UnknownUfrag);
        };
        self.prime(now, known);
        let action = self.handle_datagram(now, pending.from, &pending.datagram);
        match action {
            Action::Open(session) | Action::ToOrigin(session) => {
                self.transmits.push_back(Transmit {
                    session,
                    to: Target::Origin,
                    datagram: pending.datagram,
                });
                match action {
                    Action::Open(_) => action,
                    _ => Action::Consumed,
                }
            }
            other => other,
        }
    }

    /// Timers: idle sessions, consent retransmissions, refreshes and expiry, sweeps,
    /// [`Event::Renew`] and [`Event::Report`]. Call it at [`Router::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            let idle = self.config.idle_timeout;
            let ending: Vec<SessionId> = self
                .sessions()
                .filter(|(_, s)| now.saturating_duration_since(s.last_seen) >= idle)
                .map(|(id, _)| id)
                .collect();
            for id in ending {
                self.close(id, CloseReason::Idle);
            }
            let ids: Vec<SessionId> = self.sessions().map(|(id, _)| id).collect();
            for id in ids {
                let Router { slots, random, .. } = self;
                let Some(s) = slots.get_mut(id.slot()).and_then(Option::as_mut) else {
                    continue;
                };
                for t in s.consent.poll(now, || random_tid(random)) {
                    self.transmits.push_back(Transmit {
                        session: id,
                        to: Target::Client(t.to),
                        datagram: t.datagram,
                    });
                }
                self.publish(id);
            }
        }
        if now >= self.next_sweep {
            self.next_sweep = now + SWEEP_EVERY;
            self.expire_known(now);
            self.missing
                .retain(|_, at| now.saturating_duration_since(*at) < MISSING_FOR);
        }
        if now >= self.next_renew {
            self.next_renew = now + self.config.renew_every;
            if self.live > 0 {
                let ufrags = self
                    .sessions()
                    .map(|(_, s)| s.entry.known.server_ufrag.clone());
                self.events.push_back(Event::Renew(ufrags.collect()));
            }
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_EVERY;
            if self.drops.any() {
                self.events
                    .push_back(Event::Report(std::mem::take(&mut self.drops)));
            }
        }
    }

    /// When [`Router::handle_timeout`] wants to run next: `None` while it has nothing to
    /// do (no session, no primed or missing ufrag to expire, no drop to report), so an
    /// idle relay is not woken; a session opening, a ufrag primed or a datagram dropped
    /// brings a deadline back.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = (self.live > 0).then(|| self.next_tick.min(self.next_renew));
        let sweep = (!self.known.is_empty() || !self.missing.is_empty()).then_some(self.next_sweep);
        let report = self.drops.any().then_some(self.next_report);
        [sessions, sweep, report].into_iter().flatten().min()
    }

    /// The next datagram to send: a consent request to a client address, or a check kept
    /// during a lookup for the origin.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    /// Closes a session: [`Event::Closed`] follows. False if it was not open.
    pub fn close(&mut self, id: SessionId, reason: CloseReason) -> bool {
        match self.remove(id) {
            Some(data) => {
                self.events.push_back(Event::Closed {
                    session: id,
                    reason,
                    data,
                });
                true
            }
            None => false,
        }
    }

    /// Removes a session the caller could not set up after [`Action::Open`], without an
    /// event; its data back.
    pub fn abort(&mut self, id: SessionId) -> Option<T> {
        self.remove(id)
    }

    /// The caller's data of an open session.
    pub fn session(&self, id: SessionId) -> Option<&T> {
        self.get(id).map(|s| &s.entry.known.data)
    }

    /// An open session's server ufrag.
    pub fn ufrag(&self, id: SessionId) -> Option<&str> {
        self.get(id).map(|s| s.entry.known.server_ufrag.as_str())
    }

    /// An open session's current route from its origin.
    pub fn downlink(&self, id: SessionId) -> Option<&Downlink> {
        self.get(id).map(|s| &s.downlink)
    }

    /// An open session's client addresses, the current one first.
    pub fn addrs(&self, id: SessionId) -> impl Iterator<Item = SocketAddr> + '_ {
        self.get(id).into_iter().flat_map(|s| s.consent.addrs())
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Counts a drop the caller made (in the next [`Event::Report`]).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops.add(reason);
    }

    fn drop(&mut self, reason: DropReason) -> Action {
        self.drops.add(reason);
        Action::Drop(reason)
    }

    fn get(&self, id: SessionId) -> Option<&Session<T>> {
        self.slots
            .get(id.slot())
            .and_then(Option::as_ref)
            .filter(|s| s.serial == id.serial)
    }

    fn get_mut(&mut self, id: SessionId) -> Option<&mut Session<T>> {
        self.slots
            .get_mut(id.slot())
            .and_then(Option::as_mut)
            .filter(|s| s.serial == id.serial)
    }

    fn sessions(&self) -> impl Iterator<Item = (SessionId, &Session<T>)> {
        self.slots.iter().enumerate().filter_map(|(slot, s)| {
            let s = s.as_ref()?;
            let slot = u32::try_from(slot).ok()?;
            Some((
                SessionId {
                    slot,
                    serial: s.serial,
                },
                s,
            ))
        })
    }

    /// A datagram from an address bound to session `id`.
    fn bound_datagram(
        &mut self,
        now: Instant,
        id: SessionId,
        from: SocketAddr,
        kind: PacketKind,
        datagram: &[u8],
    ) -> Action {
        let Router { slots, random, .. } = self;
        let Some(s) = slots.get_mut(id.slot()).and_then(Option::as_mut) else {
            return self.drop(DropReason::UnknownSender);
        };
        match kind {
            PacketKind::Stun => {
                let Ok(msg) = Message::parse(datagram) else {
                    return self.drop(DropReason::BadStun);
                };
                if msg.is_binding_request() {
                    match msg.ice_username() {
                        // A check of this session from one of its own addresses.
                        Ok(user) if user.server == s.entry.known.server_ufrag => {
                            self.check(now, id, &msg, from);
                        }
                        // Another session's check (an ICE restart, or the address moved
                        // between sessions): routed, and verified, by its ufrag.
                        Ok(_) => return self.by_ufrag(now, &msg, from),
                        Err(_) => return self.drop(DropReason::BadStun),
                    }
                } else if s.consent.on_response(from, &msg, now) {
                    // The answer to the router's own consent request: not the origin's.
                    s.last_seen = now;
                    self.publish(id);
                    return Action::Consumed;
                }
            }
            PacketKind::Dtls | PacketKind::Rtp => {
                let ask = s.consent.on_traffic(from, now, || random_tid(random));
                if ask.is_some() || s.downlink.destination() != s.consent.destination() {
                    self.after_consent(id, ask, None);
                }
            }
            _ => return self.drop(DropReason::UnknownSender),
        }
        match self.get_mut(id) {
            Some(s) => {
                s.last_seen = now;
                Action::ToOrigin(id)
            }
            None => Action::Drop(DropReason::UnknownSender),
        }
    }

    /// A binding request routed by the server ufrag of its USERNAME.
    fn by_ufrag(&mut self, now: Instant, msg: &Message<'_>, from: SocketAddr) -> Action {
        let Ok(user) = msg.ice_username() else {
            return self.drop(DropReason::BadStun);
        };
        if let Some(&id) = self.by_ufrag.get(user.server) {
            let authentic = self
                .get(id)
                .is_some_and(|s| s.entry.authentic(msg, user.client));
            if !authentic {
                return self.drop(DropReason::FailedIntegrity);
            }
            self.bind(id, from);
            self.check(now, id, msg, from);
            if let Some(s) = self.get_mut(id) {
                s.last_seen = now;
            }
            return Action::ToOrigin(id);
        }
        if let Some((entry, _)) = self.known.get(user.server) {
            if !entry.authentic(msg, user.client) {
                return self.drop(DropReason::FailedIntegrity);
            }
            if !self.accepting {
                return self.drop(DropReason::NotAccepting);
            }
            return match self.open(now, user.server, from) {
                Ok(id) => {
                    self.check(now, id, msg, from);
                    Action::Open(id)
                }
                Err(reason) => self.drop(reason),
            };
        }
        if !self.accepting || self.missing.contains_key(user.server) {
            return self.drop(DropReason::UnknownUfrag);
        }
        let datagram = msg.as_bytes();
        if datagram.len() > MAX_QUEUED_CHECK {
            return self.drop(DropReason::BadStun);
        }
        if let Some(pending) = self.pending.get_mut(user.server) {
            // A retransmission while the lookup runs: keep the latest.
            pending.from = from;
            pending.datagram.clear();
            pending.datagram.extend_from_slice(datagram);
            return Action::Consumed;
        }
        if now.saturating_duration_since(self.lookup_window) >= LOOKUP_WINDOW {
            self.lookup_window = now;
            self.lookups_in_window = 0;
        }
        if self.pending.len() >= MAX_PENDING || self.lookups_in_window >= LOOKUPS_PER_WINDOW {
            return self.drop(DropReason::UnknownUfrag);
        }
        self.lookups_in_window += 1;
        let ufrag = user.server.to_owned();
        let pending = Pending {
            from,
            datagram: datagram.to_vec(),
        };
        self.pending.insert(ufrag.clone(), pending);
        Action::Lookup(ufrag)
    }

    /// Opens the primed session `ufrag` for a verified first check from `from`.
    fn open(
        &mut self,
        now: Instant,
        ufrag: &str,
        from: SocketAddr,
    ) -> Result<SessionId, DropReason> {
        if self.live >= self.config.max_sessions {
            return Err(DropReason::TooManySessions);
        }
        let (entry, _) = self.known.remove(ufrag).ok_or(DropReason::UnknownUfrag)?;
        let mut tie_breaker = [0u8; 8];
        (self.random)(&mut tie_breaker);
        let k = &entry.known;
        let consent = Consent::new(
            &k.client_ufrag,
            &k.server_ufrag,
            &k.client_pwd,
            u64::from_be_bytes(tie_breaker),
            from,
            now,
        )
        .map_err(|_| DropReason::UnusableUfrags)?;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).map_err(|_| DropReason::TooManySessions)?
            }
        };
        let id = SessionId {
            slot,
            serial: self.next_serial,
        };
        self.next_serial += 1;
        self.by_ufrag.insert(entry.known.server_ufrag.clone(), id);
        let session = Session {
            serial: id.serial,
            downlink: Downlink::new(consent.destination()),
            entry,
            consent,
            askers_changed: false,
            last_seen: now,
        };
        if let Some(s) = self.slots.get_mut(id.slot()) {
            *s = Some(session);
        }
        if self.live == 0 {
            // The timers of an idle router were not run (nothing was due): the first
            // session's count from its opening, not from when the last one closed.
            self.next_tick = self.next_tick.max(now + TICK);
            self.next_renew = self.next_renew.max(now + self.config.renew_every);
        }
        self.live += 1;
        self.bind(id, from);
        Ok(id)
    }

    /// Binds a verified address to a session, taking it from any other session; the
    /// session's consent policy then decides whether media may go there.
    fn bind(&mut self, id: SessionId, from: SocketAddr) {
        if let Some(previous) = self.by_addr.insert(from, id) {
            if previous != id {
                if let Some(other) = self.get_mut(previous) {
                    other.consent.forget(from);
                    self.publish(previous);
                }
            }
        }
    }

    /// A verified check from `from`, an address bound to session `id`: the consent policy
    /// may ask the address or move the session to it; the origin's answer will go back to
    /// `from`.
    fn check(&mut self, now: Instant, id: SessionId, msg: &Message<'_>, from: SocketAddr) {
        let Router { slots, random, .. } = self;
        let Some(s) = slots.get_mut(id.slot()).and_then(Option::as_mut) else {
            return;
        };
        let out = s
            .consent
            .on_check(from, msg.use_candidate(), now, || random_tid(random));
        s.askers_changed |= s.downlink.record(msg.transaction_id(), from);
        self.after_consent(id, out.transmit, out.evicted);
    }

    /// After session `id`'s consent policy ran: its request is queued, an address it
    /// dropped is unbound, and a changed route handed out.
    fn after_consent(
        &mut self,
        id: SessionId,
        transmit: Option<crate::consent::Transmit>,
        evicted: Option<SocketAddr>,
    ) {
        if let Some(gone) = evicted {
            if self.by_addr.get(&gone) == Some(&id) {
                self.by_addr.remove(&gone);
            }
        }
        self.publish(id);
        if let Some(t) = transmit {
            self.transmits.push_back(Transmit {
                session: id,
                to: Target::Client(t.to),
                datagram: t.datagram,
            });
        }
    }

    /// Hands out session `id`'s route if it changed.
    fn publish(&mut self, id: SessionId) {
        let Some(s) = self.get_mut(id) else { return };
        let previous = s.downlink.destination();
        let changed = s
            .downlink
            .update(s.consent.destination(), s.consent.len() > 1);
        if changed || std::mem::take(&mut s.askers_changed) {
            let downlink = Box::new(s.downlink.clone());
            self.events.push_back(Event::Downlink {
                session: id,
                downlink,
                previous,
            });
        }
    }

    fn remove(&mut self, id: SessionId) -> Option<T> {
        self.get(id)?;
        let s = self.slots.get_mut(id.slot()).and_then(Option::take)?;
        self.free.push(id.slot);
        self.live -= 1;
        for addr in s.consent.addrs() {
            if self.by_addr.get(&addr) == Some(&id) {
                self.by_addr.remove(&addr);
            }
        }
        if self.by_ufrag.get(&s.entry.known.server_ufrag) == Some(&id) {
            self.by_ufrag.remove(&s.entry.known.server_ufrag);
        }
        self.transmits.retain(|t| t.session != id);
        self.events
            .retain(|e| !matches!(e, Event::Downlink { session, .. } if *session == id));
        Some(s.entry.known.data)
    }

    fn expire_known(&mut self, now: Instant) {
        let ttl = self.config.known_ttl;
        self.known
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
    }
}

fn random_tid(random: &mut Random) -> TransactionId {
    let mut tid = [0u8; 12];
    random(&mut tid);
    TransactionId(tid)
}

#[cfg(test)]
mod tests;
