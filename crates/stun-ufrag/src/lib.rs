//! Sans-IO WebRTC routing for a media proxy: STUN parsing with MESSAGE-INTEGRITY and
//! FINGERPRINT verification, RFC 7983 first-byte demultiplexing, SDP `ice-ufrag` /
//! `ice-pwd` reading and `a=candidate` rewriting, RFC 7675 consent ([`consent`]), and the
//! media router that ties them together ([`router::Router`]).
//!
//! No sockets, no runtime, no global state: bytes in, values out. The per-packet path
//! ([`demux::classify`], [`Message::parse`], [`Message::ice_username`],
//! [`Message::verify_integrity`]) borrows the datagram and never allocates.
//!
//! # The WHIP/WHEP proxy flow
//!
//! ```
//! use std::collections::HashMap;
//! use stun_ufrag::{demux, sdp, IntegrityKey, Message, PacketKind};
//! # use stun_ufrag::{BindingRequest, IceRole, TransactionId};
//!
//! // Signalling: the origin's answer names the server ufrag/pwd and the origin's candidate.
//! let answer = "v=0\r\no=SRS/6.0.0 1 2 IN IP4 0.0.0.0\r\ns=SRSPublishSession\r\nt=0 0\r\n\
//!               a=ice-lite\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\n\
//!               a=ice-ufrag:7m2q0s4x\r\na=ice-pwd:k0a83b5e7s1u13p8m2d2l4w9m6a1h96p\r\n\
//!               a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n";
//! let creds = sdp::ice_credentials(answer)?;
//! let public = sdp::CandidateAddr::new("203.0.113.10".parse().unwrap(), 8000);
//! let for_client = sdp::rewrite_candidates(answer, &public, sdp::TcpCandidates::Drop)?;
//! assert!(for_client.contains("a=candidate:0 1 udp 2130706431 203.0.113.10 8000 typ host"));
//!
//! let mut sessions = HashMap::new();
//! sessions.insert(creds.ufrag.to_owned(), IntegrityKey::new(creds.pwd.as_bytes()));
//!
//! // Media port: a client's connectivity check arrives.
//! # let mut buf = [0u8; 256];
//! # let datagram = BindingRequest {
//! #     transaction_id: TransactionId([7; 12]), server_ufrag: "7m2q0s4x", client_ufrag: "EsAw",
//! #     priority: 1, role: IceRole::Controlling(1), use_candidate: true, network_info: None,
//! # }.encode(&IntegrityKey::new(b"k0a83b5e7s1u13p8m2d2l4w9m6a1h96p"), &mut buf)?;
//! if demux::classify(datagram) == PacketKind::Stun {
//!     let msg = Message::parse(datagram)?;
//!     let user = msg.ice_username()?;
//!     let key = sessions.get(user.server).expect("known session");
//!     // Only an authentic check may move the session to the sender's address.
//!     msg.verify_integrity(key)?;
//! }
//! # Ok::<(), stun_ufrag::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consent;
pub mod demux;
mod error;
pub mod router;
pub mod sdp;
pub mod stun;

pub use demux::{classify, PacketKind};
pub use error::Error;
pub use stun::{
    attr_type, BindingRequest, Class, IceRole, IceUsername, IntegrityKey, Message, MessageBuilder,
    MessageType, Method, TransactionId,
};
