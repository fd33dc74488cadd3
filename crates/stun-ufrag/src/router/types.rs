//! What goes in and out of the [`Router`](super::Router): its configuration, what it is
//! told of sessions, and what it answers.

use std::net::SocketAddr;
use std::time::Duration;

use super::Downlink;
use crate::consent::Destination;

/// Limits and lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A session that has heard nothing from its client this long closes (at least
    /// [`TICK`](super::TICK)).
    pub idle_timeout: Duration,
    /// How long a primed ufrag waits for its first check.
    pub known_ttl: Duration,
    /// How often [`Event::Renew`] names the live sessions (at least [`TICK`](super::TICK)).
    pub renew_every: Duration,
    /// Most sessions at once.
    pub max_sessions: usize,
}

/// A session the router may open: its ICE credentials and the caller's data for it (where
/// its origin is, what to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known<T> {
    /// The server's (origin's) `ice-ufrag`: the first half of the checks' USERNAME.
    pub server_ufrag: String,
    /// The server's `ice-pwd`, which keys the checks' MESSAGE-INTEGRITY.
    pub server_pwd: String,
    /// The client's `ice-ufrag` from its offer.
    pub client_ufrag: String,
    /// The client's `ice-pwd` from its offer, which keys the answers to consent requests.
    pub client_pwd: String,
    /// The caller's.
    pub data: T,
}

/// A session, valid while it is open; the slot is reused after it closes, the serial never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId {
    pub(super) slot: u32,
    pub(super) serial: u64,
}

impl SessionId {
    /// A small index, unique among open sessions: a caller keeps its own per-session state
    /// in a vector at this index.
    pub fn slot(self) -> usize {
        self.slot as usize
    }

    /// Unique for the router's life (for logs).
    pub fn serial(self) -> u64 {
        self.serial
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.serial)
    }
}

/// What to do with the datagram just handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send it to the session's origin.
    ToOrigin(SessionId),
    /// A new session: set up its path to the origin (its data is [`Router::session`](super::Router::session)), then
    /// send the datagram there. If that fails, [`Router::abort`](super::Router::abort) it.
    Open(SessionId),
    /// Send it to this client address (a datagram from an origin).
    ToClient(SocketAddr),
    /// Look this server ufrag up and answer with [`Router::handle_lookup`](super::Router::handle_lookup); the check is
    /// kept until then.
    Lookup(String),
    /// The router took it; nothing to send now.
    Consumed,
    /// Drop it.
    Drop(DropReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a binding request, from an address no session has; or not a kind RFC 7983 lets
    /// share the port.
    UnknownSender,
    /// Malformed STUN, or a binding request without an ICE USERNAME.
    BadStun,
    /// A check failing MESSAGE-INTEGRITY, or naming another client ufrag.
    FailedIntegrity,
    /// A check for a ufrag nobody knows, or one that cannot be looked up now.
    UnknownUfrag,
    /// A check that would open a session while the router no longer accepts new ones.
    NotAccepting,
    /// A check that would open a session beyond [`Config::max_sessions`].
    TooManySessions,
    /// A check whose ufrags cannot make a consent request's USERNAME.
    UnusableUfrags,
    /// The caller could not send it to the origin ([`Router::count_drop`](super::Router::count_drop)).
    OriginSendFailed,
    /// Media from the origin while the client's address has not consented.
    HeldForConsent,
}

/// Datagrams dropped since the last [`Event::Report`], by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::UnknownSender`].
    pub unknown_sender: u64,
    /// [`DropReason::BadStun`].
    pub bad_stun: u64,
    /// [`DropReason::FailedIntegrity`].
    pub failed_integrity: u64,
    /// [`DropReason::UnknownUfrag`].
    pub unknown_ufrag: u64,
    /// [`DropReason::NotAccepting`], [`DropReason::TooManySessions`],
    /// [`DropReason::UnusableUfrags`].
    pub refused: u64,
    /// [`DropReason::OriginSendFailed`].
    pub origin_send_failed: u64,
    /// [`DropReason::HeldForConsent`].
    pub held_for_consent: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        let n = match reason {
            DropReason::UnknownSender => &mut self.unknown_sender,
            DropReason::BadStun => &mut self.bad_stun,
            DropReason::FailedIntegrity => &mut self.failed_integrity,
            DropReason::UnknownUfrag => &mut self.unknown_ufrag,
            DropReason::NotAccepting | DropReason::TooManySessions | DropReason::UnusableUfrags => {
                &mut self.refused
            }
            DropReason::OriginSendFailed => &mut self.origin_send_failed,
            DropReason::HeldForConsent => &mut self.held_for_consent,
        };
        *n += 1;
    }

    /// Whether anything was dropped.
    pub fn any(&self) -> bool {
        *self != DropCounts::default()
    }
}

/// Why a session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Nothing from the client for [`Config::idle_timeout`].
    Idle,
    /// [`Router::forget`](super::Router::forget): its resource was deleted.
    Deleted,
    /// The caller's [`Router::close`](super::Router::close) (its origin went down, say).
    Closed(&'static str),
}

impl CloseReason {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::Deleted => "deleted",
            CloseReason::Closed(why) => why,
        }
    }
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A client address (on the shared port).
    Client(SocketAddr),
    /// The session's origin (on its own path).
    Origin,
}

/// A datagram the router wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The session it belongs to.
    pub session: SessionId,
    /// Where it goes.
    pub to: Target,
    /// The bytes.
    pub datagram: Vec<u8>,
}

/// Something the caller acts on, from [`Router::poll_event`](super::Router::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// Where a session's origin datagrams go changed: hand the new [`Downlink`] to the code
    /// reading the origin, before sending the datagram just handled.
    Downlink {
        /// The session.
        session: SessionId,
        /// The new route.
        downlink: Box<Downlink>,
        /// The destination before.
        previous: Destination,
    },
    /// A session closed: release its path to the origin.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
        /// The caller's data from [`Known::data`].
        data: T,
    },
    /// The server ufrags of the live sessions, every [`Config::renew_every`]: keep their
    /// records from expiring wherever the lookups find them.
    Renew(Vec<String>),
    /// What was dropped in the last [`REPORT_EVERY`](super::REPORT_EVERY).
    Report(DropCounts),
}
