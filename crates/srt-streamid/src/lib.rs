//! Sans-IO SRT for proxies: the packet header and handshake (v5) codec, stateless SYN
//! cookies, the listener/caller handshake replay a proxy performs, and the streamid
//! grammar that names the stream a caller wants.
//!
//! No sockets, no clocks, no global state: bytes and the current time go in, values and
//! bytes to send come out. Parsers borrow the input, check every length against what is
//! there and a fixed limit, and never panic; the per-packet path ([`Packet`],
//! [`set_dest_socket_id`], [`Relay`], [`Router::handle_datagram`]) does not allocate.
//!
//! The streamid:
//!
//! ```
//! use srt_streamid::{StreamId, Mode};
//!
//! let sid = StreamId::parse("#!::h=a.example.com,r=live/livestream,m=publish").unwrap();
//! assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
//! assert_eq!(sid.host.as_deref(), Some("a.example.com"));
//! assert_eq!(sid.mode, Mode::Publish);
//! ```
//!
//! The whole proxy flow (see [`proxy`] for the picture; [`Router`] does steps 1, 2 and 6
//! for every client of a listening socket), with the client and the origin played by
//! hand-made packets:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use srt_streamid::extension::{encode_text, push_extension};
//! use srt_streamid::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client: SocketAddr = "192.0.2.7:40000".parse()?;
//! let origin: SocketAddr = "198.51.100.9:10080".parse()?;
//! let now = Duration::from_secs(1_700_000_000);
//! // The key comes from a CSPRNG at start; the id is the proxy's listener socket id.
//! let listener = Listener::new(SynCookies::new([42; 32]), 0x1000_0001);
//!
//! // 1. The client's INDUCTION (destination socket id 0) is answered, no state kept.
//! let induction = Handshake::caller_induction(0xC0FFEE, 77, 1500, 8192, "203.0.113.1".parse()?).to_vec();
//! assert_eq!(classify(&induction), Some(PacketKind::Handshake));
//! let answer = listener.answer_induction(&Handshake::parse(&induction)?, client, now)?;
//! let answer = Handshake::parse(&answer)?;
//!
//! // 2. The client's CONCLUSION echoes the cookie and carries its streamid.
//! let mut ext = Vec::new();
//! push_extension(&mut ext, ExtensionType::Sid, &encode_text("#!::r=live/livestream,m=publish")?)?;
//! let conclusion = Handshake {
//!     version: 5,
//!     extension_field: handshake::ext_flags::CONFIG,
//!     kind: HandshakeType::Conclusion,
//!     cookie: answer.cookie,
//!     extensions: Extensions::parse(&ext)?,
//!     ..Handshake::parse(&induction)?
//! }
//! .to_vec();
//! let accepted = listener.accept_conclusion(Handshake::parse(&conclusion)?, client, now)?;
//! let sid = accepted.parse_streamid().ok_or("no streamid")??;
//! assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
//!
//! // 3. The streamid picked `origin`; replay the handshake to it as a caller.
//! let ids = SessionIds { toward_client: 0x2000_0002, toward_origin: 0x3000_0003 };
//! let mut session = Session::new(&accepted, client, ids, now);
//! session.dial(origin, now, now + Duration::from_secs(3));
//! let ours = session.poll_transmit().ok_or("nothing to send")?;
//! let ours = Handshake::parse(&ours)?;
//! assert_eq!((ours.kind, ours.socket_id), (HandshakeType::Induction, ids.toward_origin));
//! // Unanswered, it is sent again at `session.poll_timeout()`.
//! assert_eq!(session.poll_timeout(), Some(now + proxy::RESEND_INTERVAL));
//!
//! // 4. The origin answers with its cookie; we send the client's conclusion with it.
//! let origin_answer = Handshake {
//!     header: ControlHeader { dest_socket_id: ids.toward_origin, ..ours.header },
//!     version: 5,
//!     extension_field: handshake::SRT_MAGIC,
//!     cookie: 0xABCD_1234,
//!     socket_id: 0x7777,
//!     ..ours
//! };
//! session.handle_datagram(now, &origin_answer.to_vec())?;
//! let replayed = session.poll_transmit().ok_or("no conclusion")?;
//! let replayed = Handshake::parse(&replayed)?;
//! assert_eq!(replayed.cookie, 0xABCD_1234);
//! assert_eq!(replayed.extensions.as_bytes(), ext.as_slice(), "client's extensions, byte for byte");
//!
//! // 5. The origin accepts; its answer goes back to the client with ids translated.
//! let origin_done = Handshake { kind: HandshakeType::Conclusion, socket_id: 0x8888, ..origin_answer };
//! session.handle_datagram(now, &origin_done.to_vec())?;
//! let Some(Outcome::Connected(relay)) = session.outcome() else { panic!() };
//! let to_client = Handshake::parse(session.reply().ok_or("no answer")?)?;
//! assert_eq!((to_client.header.dest_socket_id, to_client.socket_id), (0xC0FFEE, ids.toward_client));
//! assert_eq!(to_client.cookie, answer.cookie);
//!
//! // A repeated conclusion gets the same answer from the session, nothing new is sent.
//! assert!(session.answer_retransmit(&Handshake::parse(&conclusion)?).is_some());
//!
//! // 6. Relay: packets are readdressed in place.
//! let mut data = DataHeader {
//!     seq_number: 77, position: PacketPosition::Only, in_order: false, key: KeyFlags::Clear,
//!     retransmitted: false, msg_number: 1, timestamp: 0, dest_socket_id: ids.toward_client,
//! }
//! .encode()
//! .to_vec();
//! assert_eq!(relay.from_client(&mut data), Verdict::Forward);
//! assert_eq!(dest_socket_id(&data), Some(0x8888));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod codec;
pub mod cookie;
mod error;
pub mod extension;
pub mod handshake;
pub mod packet;
pub mod proxy;
pub mod reject;
mod streamid;

pub use cookie::SynCookies;
pub use error::Error;
pub use extension::{Extension, ExtensionType, Extensions};
pub use handshake::{Handshake, HandshakeType, PeerIp};
pub use packet::{
    classify, dest_socket_id, set_dest_socket_id, ControlHeader, DataHeader, Header, KeyFlags,
    Packet, PacketKind, PacketPosition, HEADER_LEN,
};
pub use proxy::{
    Accepted, Action, Limits, Listener, Opening, Outcome, Refusal, Relay, Router, Session,
    SessionIds, Silence, Silent, Transmit, Verdict,
};
pub use reject::RejectReason;
pub use streamid::{Mode, StreamId, MAX_STREAMID_LEN};
