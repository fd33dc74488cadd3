//! Sans-IO RTMP for proxies: the handshake (simple and digest forms, server and client
//! side), the chunk stream reader and writer, AMF0, and the command messages, enough to
//! learn which app and stream a connection is about and to replay its commands elsewhere.
//!
//! No sockets and no runtime: bytes go in, parsed values and bytes to send come out.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amf0;
pub mod chunk;
pub mod command;
mod error;
pub mod handshake;
pub mod message;

pub use amf0::{Amf0Limits, Object, Value};
pub use chunk::{ChunkReader, ChunkWriter, ReaderLimits};
pub use command::{Command, PublishType};
pub use error::Error;
pub use message::{Control, Message, UserControl};
pub mod session;

pub use session::{
    ClientConfig, ClientEvent, ClientSession, Identified, Leg, OriginRequest, Relay, ServerConfig,
    ServerEvent, ServerSession, SetupStage, StreamKind,
};
