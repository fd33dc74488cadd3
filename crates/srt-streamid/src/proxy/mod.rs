//! The handshake as a proxy plays it: listener towards the client, caller towards the
//! origin, then relay by socket id.
//!
//! ```text
//! client                      proxy                                origin
//!   INDUCTION (dest 0) ----->  Router::handle_datagram
//!                              Listener::answer_induction (no state)
//!   <----- INDUCTION v5, SYN cookie, proxy's listener id
//!   CONCLUSION (cookie, SID) > Router::handle_datagram
//!                              Listener::accept_conclusion: cookie ok, streamid
//!                              Action::Open(Session): pick origin; Session::dial
//!                              Session::poll_transmit ---------->  INDUCTION (dest 0)
//!                              Session::handle_datagram  <------  INDUCTION v5 + origin cookie
//!                              Session::poll_transmit ---------->  CONCLUSION: client's
//!                                                                  fields and extensions,
//!                                                                  origin cookie, our id
//!                              Session::handle_datagram  <------  CONCLUSION (HSRSP, KMRSP)
//!                              Router::answered                    or a rejection
//!   <----- the origin's answer, ids/cookie/peer address translated (Router::poll_transmit)
//!   data/control (dest = toward_client) -> Router::handle_datagram -> Relay::from_client
//!                                                              -> (dest = origin's id)
//!   (dest = client's id) <- Relay::from_origin <- data/control (dest = toward_origin)
//! ```
//!
//! Time is always passed in, never read: every `now` is a [`Duration`] on one clock of the
//! caller's choosing. The proxy repeats a handshake the origin has not answered every
//! [`RESEND_INTERVAL`] ([`Session::poll_timeout`]) until the deadline it was dialed with.
//!
//! A repeated client conclusion (its answer was lost) arrives again with destination 0:
//! the router answers it from the session it keeps ([`Session::answer_retransmit`]), and
//! nothing is sent to the origin twice. A repeated induction is answered again by the
//! stateless listener.
//!
//! The handshakes replayed to the origin carry the client's clock: the timestamp of the
//! client's conclusion plus the time since it arrived, as the client itself would have
//! stamped them. The origin takes the timestamp of the packet carrying HSREQ as the
//! caller's age and sets its TSBPD time base (when each data packet is due) to its own
//! "now" minus that age. Any other value shifts every packet's due time: too large and
//! data is released at once, without the latency buffer, or, once the age exceeds the
//! origin's monotonic clock (its host's uptime, for libsrt), never.

use std::time::Duration;

mod listener;
mod relay;
mod router;
mod session;

pub use listener::{Accepted, Listener};
pub use relay::{Relay, Silence, Silent, Verdict, SHUTDOWN_LEN};
pub use router::{Action, Limits, Opening, Refusal, Router, Transmit};
pub use session::{Outcome, Session, SessionIds, RESEND_INTERVAL};

/// SRT timestamps are microseconds modulo 2^32.
fn micros(t: Duration) -> u32 {
    (t.as_micros() & 0xFFFF_FFFF) as u32
}

/// The timestamp of the proxy's own answers (inductions, rejections). A caller takes no
/// timing from them (its TSBPD base comes from the HSRSP, which is the origin's), so any
/// clock does.
fn timestamp(now: Duration) -> u32 {
    micros(now)
}
