//! Sans-IO RTMP for proxies: the handshake (simple and digest forms, server and client
//! side), the chunk stream reader and writer, AMF0, and the command messages, enough to
//! learn which app and stream a connection is about, replay its setup to an origin, and
//! relay it.
//!
//! No sockets, no runtime, no global state: bytes go in, parsed values, events and bytes to
//! send come out. Every length, count and nesting depth read from the wire is bounded
//! ([`ReaderLimits`], [`Amf0Limits`], [`ServerConfig`]), and nothing a peer sends can make
//! the crate panic (the fuzz targets in `fuzz/` check that).
//!
//! # Layers
//!
//! - [`handshake`]: C0 C1 C2 / S0 S1 S2, answered in the form the client used.
//! - [`chunk`]: [`ChunkReader`] (bytes to [`Message`]s) and [`ChunkWriter`] (the reverse).
//! - [`message`]: [`Message`] and the protocol control messages ([`Control`]).
//! - [`amf0`]: [`Value`] and bounded decoding.
//! - [`command`]: [`Command`] (`connect`, `publish`, `_result`, `onStatus`, ...) and the
//!   standard server replies.
//! - [`session`]: [`ServerSession`] (client leg up to `publish`/`play`), [`ClientSession`]
//!   (the proxy's leg to an origin, up to its verdict) and [`Relay`] (both legs after).
//!
//! # A proxy, step by step
//!
//! A proxy cannot pick an origin before it sees `publish` or `play`, which a client sends
//! only after `connect` and `createStream` were answered. So:
//!
//! 1. **Client leg.** Feed the client's bytes to a [`ServerSession`] and send what
//!    [`take_output`](ServerSession::take_output) returns. It answers the handshake,
//!    `connect`, `releaseStream`, `FCPublish` and `createStream` itself, and reports
//!    [`ServerEvent::Identified`] with tcUrl, app, the stream name with its `?query`,
//!    publish or play, the whole `connect` object and the client's messages to replay.
//!    It does not answer `publish`/`play`, and from then on it only buffers client bytes.
//! 2. **Origin leg.** Pick the origin, connect, and drive a [`ClientSession`] made from
//!    [`Identified::origin_request`]: it sends C0 C1 at once, replays the client's own
//!    `connect` (so Enhanced RTMP capabilities reach the origin), `releaseStream`,
//!    `FCPublish`, `createStream`, and `publish`/`play` with the name and query intact on
//!    the stream id the origin assigned. Send every [`ClientEvent::Forward`] message to the
//!    client with [`ServerSession::send`]: that is how the origin's `onStatus` (or its
//!    refusal) reaches the client, which is never told `Publish.Start` before the origin
//!    said it.
//! 3. **Verdict.** [`ClientEvent::Accepted`]: build a [`Relay`] from both sessions'
//!    [`into_leg`](ServerSession::into_leg). [`ClientEvent::Rejected`]: flush the client's
//!    output (it holds the origin's error status) and close. If the origin cannot be
//!    reached or closes first, call [`ServerSession::fail`].
//! 4. **Relay.** Feed each side's bytes to the relay and send what it queues for the other.
//!
//! # Why the relay works on messages
//!
//! After setup the legs differ in what raw chunks depend on: the client's media stream id
//! is the one the proxy returned from `createStream`, the origin's is its own; and fmt 1-3
//! chunk headers are relative to the previous header on the same chunk stream, which on the
//! origin leg the proxy wrote, not the client. Copying bytes would be correct only if both
//! legs' chunk-stream states matched from the switch point on, which neither end controls.
//! So the [`Relay`] parses messages on one leg and re-chunks them on the other with that
//! leg's stream id (also rewriting User Control stream events and `deleteStream`),
//! answering pings and acknowledgements per leg. The cost is one header parse per chunk and
//! about two copies of each payload; the `rtmp_chunks` bench measures it at well over a
//! gigabyte per second, far above any stream's bitrate.
//!
//! # Example
//!
//! A publisher (here a [`ClientSession`], as ffmpeg would be), the proxy's client leg, and
//! the origin answering:
//!
//! ```
//! use rtmp_peek::{
//!     ClientConfig, ClientEvent, ClientSession, OriginRequest, ServerConfig, ServerEvent,
//!     ServerSession, StreamKind,
//! };
//!
//! let request = OriginRequest::new(StreamKind::Publish, "live", "rtmp://h/live", "cam?token=1")?;
//! let mut publisher = ClientSession::new(request, ClientConfig::default())?;
//! let mut front = ServerSession::new(ServerConfig::default());
//!
//! // Shuttle bytes until the front end knows the stream.
//! let identified = loop {
//!     front.feed(&publisher.take_output())?;
//!     publisher.feed(&front.take_output())?;
//!     if let Some(ServerEvent::Identified(id)) = front.poll_event() {
//!         break id;
//!     }
//! };
//! assert_eq!((identified.app.as_str(), identified.stream.as_str()), ("live", "cam?token=1"));
//!
//! // The proxy's leg to the origin replays the publisher's own commands.
//! let mut leg = ClientSession::new(identified.origin_request(), ClientConfig::default())?;
//! let mut origin = ServerSession::new(ServerConfig::default());
//! loop {
//!     origin.feed(&leg.take_output())?;
//!     if origin.is_identified() {
//!         origin.accept()?; // the origin says NetStream.Publish.Start
//!     }
//!     leg.feed(&origin.take_output())?;
//!     while let Some(event) = leg.poll_event() {
//!         if let ClientEvent::Forward(msg) = &event {
//!             front.send(msg)?; // the origin's onStatus, on the publisher's stream id
//!         }
//!     }
//!     if leg.is_done() {
//!         break;
//!     }
//! }
//! let mut relay = rtmp_peek::Relay::new(front.into_leg(), leg.into_leg());
//! relay.process()?;
//! // From here: relay.feed_client(..) / relay.take_for_origin(), and the reverse.
//! # publisher.feed(&relay.take_for_client())?;
//! # assert!(std::iter::from_fn(|| publisher.poll_event()).any(|e| matches!(e, ClientEvent::Accepted { .. })));
//! # Ok::<(), rtmp_peek::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amf0;
pub mod chunk;
pub mod command;
mod error;
pub mod handshake;
pub mod message;
pub mod session;

pub use amf0::{Amf0Limits, Object, Value};
pub use chunk::{ChunkReader, ChunkWriter, ReaderLimits};
pub use command::{Command, PublishType};
pub use error::Error;
pub use message::{Control, Message, UserControl};
pub use session::{
    split_query, ClientConfig, ClientEvent, ClientSession, Identified, Leg, OriginRequest, Relay,
    ServerConfig, ServerEvent, ServerSession, SetupStage, StreamKind,
};
