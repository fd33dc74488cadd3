//! Complete RTMP messages and the protocol control messages (types 1-6).

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// Message type ids (the `type_id` of [`Message`]).
pub mod types {
    /// Set Chunk Size (protocol control).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (protocol control).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (protocol control).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (protocol control).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (protocol control).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data.
    pub const AUDIO: u8 = 8;
    /// Video data.
    pub const VIDEO: u8 = 9;
    /// Data message in AMF3 (one format byte, then AMF0 in practice).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object message in AMF3.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message in AMF3 (one format byte, then AMF0 in practice).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message in AMF0 (`@setDataFrame`, `onMetaData`...).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object message in AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message in AMF0 (`connect`, `publish`, `_result`...).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message.
    pub const AGGREGATE: u8 = 22;
}

/// Conventional chunk stream ids, as ffmpeg and SRS use them.
pub mod csid {
    /// Protocol control and user control messages (the spec requires 2).
    pub const CONTROL: u32 = 2;
    /// Commands.
    pub const COMMAND: u32 = 3;
    /// Audio.
    pub const AUDIO: u32 = 4;
    /// Commands and data on a created stream (ffmpeg's "source" channel).
    pub const STREAM: u32 = 5;
    /// Video.
    pub const VIDEO: u32 = 6;
}

/// One complete RTMP message, as the chunk reader emits it and the chunk writer takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream the message arrived on, or is to be sent on (2..=65599).
    pub csid: u32,
    /// Message type id (see [`types`]).
    pub type_id: u8,
    /// Message stream id: 0 for the connection, otherwise the id `createStream` returned.
    pub stream_id: u32,
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// The message body.
    pub payload: Bytes,
}

impl Message {
    /// A message on chunk stream `csid`.
    pub fn new(csid: u32, type_id: u8, stream_id: u32, timestamp: u32, payload: Bytes) -> Self {
        Message {
            csid,
            type_id,
            stream_id,
            timestamp,
            payload,
        }
    }

    /// Whether this is a command message (AMF0 or AMF3 flavour).
    pub fn is_command(&self) -> bool {
        matches!(self.type_id, types::COMMAND_AMF0 | types::COMMAND_AMF3)
    }

    /// Whether this is a protocol control or user control message (types 1 to 6).
    pub fn is_control(&self) -> bool {
        (types::SET_CHUNK_SIZE..=types::SET_PEER_BANDWIDTH).contains(&self.type_id)
    }

    /// The same message on another message stream.
    pub fn with_stream_id(mut self, stream_id: u32) -> Self {
        self.stream_id = stream_id;
        self
    }
}

/// Protocol control and user control messages: the types the chunk layer and sessions act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The sender's chunk size from now on.
    SetChunkSize(u32),
    /// Discard the partial message on this chunk stream.
    Abort(u32),
    /// Total bytes received so far (mod 2^32).
    Acknowledgement(u32),
    /// Send an Acknowledgement every this many bytes.
    WindowAckSize(u32),
    /// Limit the receiver's output bandwidth.
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// 0 hard, 1 soft, 2 dynamic.
        limit_type: u8,
    },
    /// A User Control event.
    UserControl(UserControl),
}

/// User Control events (message type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// Event 0: the stream is ready for data.
    StreamBegin(u32),
    /// Event 1: playback of the stream ended.
    StreamEof(u32),
    /// Event 2: no more data on the stream.
    StreamDry(u32),
    /// Event 3: the client's buffer length in milliseconds.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// Event 4: the stream is recorded.
    StreamIsRecorded(u32),
    /// Event 6: ping with the sender's timestamp; answer with [`UserControl::PingResponse`].
    PingRequest(u32),
    /// Event 7: answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// Any other event, kept for forwarding (e.g. 31/32 buffer empty/ready).
    Other {
        /// Event type.
        event: u16,
        /// First four bytes of the event data (zero-padded); the rest is dropped.
        data: u32,
    },
}

impl UserControl {
    /// The message stream id this event is about, if it names one.
    pub fn stream_id(&self) -> Option<u32> {
        match *self {
            UserControl::StreamBegin(id)
            | UserControl::StreamEof(id)
            | UserControl::StreamDry(id)
            | UserControl::StreamIsRecorded(id)
            | UserControl::SetBufferLength { stream_id: id, .. } => Some(id),
            _ => None,
        }
    }

    /// The same event about another message stream (events without a stream are unchanged).
    pub fn with_stream_id(self, new: u32) -> Self {
        match self {
            UserControl::StreamBegin(_) => UserControl::StreamBegin(new),
            UserControl::StreamEof(_) => UserControl::StreamEof(new),
            UserControl::StreamDry(_) => UserControl::StreamDry(new),
            UserControl::StreamIsRecorded(_) => UserControl::StreamIsRecorded(new),
            UserControl::SetBufferLength { millis, .. } => UserControl::SetBufferLength {
                stream_id: new,
                millis,
            },
            other => other,
        }
    }
}

fn be32(p: &[u8], what: &'static str) -> Result<u32, Error> {
    let b: [u8; 4] = p
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::MalformedMessage(what))?;
    Ok(u32::from_be_bytes(b))
}

impl Control {
    /// Decodes a message of type 1 to 6; `Ok(None)` for any other type.
    pub fn decode(msg: &Message) -> Result<Option<Control>, Error> {
        let p = &msg.payload[..];
        Ok(Some(match msg.type_id {
            types::SET_CHUNK_SIZE => {
                let size = be32(p, "Set Chunk Size")?;
                if size == 0 || size > 0x7fff_ffff {
                    return Err(Error::InvalidChunkSize(size));
                }
                Control::SetChunkSize(size)
            }
            types::ABORT => Control::Abort(be32(p, "Abort")?),
            types::ACKNOWLEDGEMENT => Control::Acknowledgement(be32(p, "Acknowledgement")?),
            types::WINDOW_ACK_SIZE => {
                Control::WindowAckSize(be32(p, "Window Acknowledgement Size")?)
            }
            types::SET_PEER_BANDWIDTH => Control::SetPeerBandwidth {
                size: be32(p, "Set Peer Bandwidth")?,
                limit_type: *p
                    .get(4)
                    .ok_or(Error::MalformedMessage("Set Peer Bandwidth"))?,
            },
            types::USER_CONTROL => Control::UserControl(decode_user_control(p)?),
            _ => return Ok(None),
        }))
    }

    /// Encodes as a message on chunk stream 2, message stream 0, timestamp 0.
    pub fn to_message(&self) -> Message {
        let mut p = BytesMut::with_capacity(10);
        let type_id = match *self {
            Control::SetChunkSize(v) => {
                p.put_u32(v);
                types::SET_CHUNK_SIZE
            }
            Control::Abort(v) => {
                p.put_u32(v);
                types::ABORT
            }
            Control::Acknowledgement(v) => {
                p.put_u32(v);
                types::ACKNOWLEDGEMENT
            }
            Control::WindowAckSize(v) => {
                p.put_u32(v);
                types::WINDOW_ACK_SIZE
            }
            Control::SetPeerBandwidth { size, limit_type } => {
                p.put_u32(size);
                p.put_u8(limit_type);
                types::SET_PEER_BANDWIDTH
            }
            Control::UserControl(ev) => {
                encode_user_control(&ev, &mut p);
                types::USER_CONTROL
            }
        };
        Message::new(csid::CONTROL, type_id, 0, 0, p.freeze())
    }
}

fn decode_user_control(p: &[u8]) -> Result<UserControl, Error> {
    const WHAT: &str = "User Control";
    let event = p.get(..2).ok_or(Error::MalformedMessage(WHAT))?;
    let event = u16::from_be_bytes([event[0], event[1]]);
    let data = p.get(2..).unwrap_or_default();
    let first = || be32(data, WHAT);
    Ok(match event {
        0 => UserControl::StreamBegin(first()?),
        1 => UserControl::StreamEof(first()?),
        2 => UserControl::StreamDry(first()?),
        3 => UserControl::SetBufferLength {
            stream_id: first()?,
            millis: be32(data.get(4..).unwrap_or_default(), WHAT)?,
        },
        4 => UserControl::StreamIsRecorded(first()?),
        6 => UserControl::PingRequest(first()?),
        7 => UserControl::PingResponse(first()?),
        event => {
            let mut padded = [0u8; 4];
            for (dst, src) in padded.iter_mut().zip(data) {
                *dst = *src;
            }
            UserControl::Other {
                event,
                data: u32::from_be_bytes(padded),
            }
        }
    })
}

fn encode_user_control(ev: &UserControl, p: &mut BytesMut) {
    let (event, a, b) = match *ev {
        UserControl::StreamBegin(id) => (0, id, None),
        UserControl::StreamEof(id) => (1, id, None),
        UserControl::StreamDry(id) => (2, id, None),
        UserControl::SetBufferLength { stream_id, millis } => (3, stream_id, Some(millis)),
        UserControl::StreamIsRecorded(id) => (4, id, None),
        UserControl::PingRequest(t) => (6, t, None),
        UserControl::PingResponse(t) => (7, t, None),
        UserControl::Other { event, data } => (event, data, None),
    };
    p.put_u16(event);
    p.put_u32(a);
    if let Some(b) = b {
        p.put_u32(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(type_id: u8, payload: &[u8]) -> Message {
        Message::new(2, type_id, 0, 0, Bytes::copy_from_slice(payload))
    }

    #[test]
    fn byte_vectors() {
        let cases: Vec<(Control, u8, Vec<u8>)> = vec![
            (Control::SetChunkSize(4096), 1, vec![0, 0, 0x10, 0]),
            (Control::Abort(3), 2, vec![0, 0, 0, 3]),
            (Control::Acknowledgement(0x01020304), 3, vec![1, 2, 3, 4]),
            (
                Control::WindowAckSize(2_500_000),
                5,
                vec![0, 0x26, 0x25, 0xa0],
            ),
            (
                Control::SetPeerBandwidth {
                    size: 2_500_000,
                    limit_type: 2,
                },
                6,
                vec![0, 0x26, 0x25, 0xa0, 2],
            ),
            (
                Control::UserControl(UserControl::StreamBegin(1)),
                4,
                vec![0, 0, 0, 0, 0, 1],
            ),
            (
                Control::UserControl(UserControl::StreamEof(1)),
                4,
                vec![0, 1, 0, 0, 0, 1],
            ),
            (
                Control::UserControl(UserControl::StreamDry(1)),
                4,
                vec![0, 2, 0, 0, 0, 1],
            ),
            (
                Control::UserControl(UserControl::SetBufferLength {
                    stream_id: 1,
                    millis: 3000,
                }),
                4,
                vec![0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8],
            ),
            (
                Control::UserControl(UserControl::StreamIsRecorded(1)),
                4,
                vec![0, 4, 0, 0, 0, 1],
            ),
            (
                Control::UserControl(UserControl::PingRequest(7)),
                4,
                vec![0, 6, 0, 0, 0, 7],
            ),
            (
                Control::UserControl(UserControl::PingResponse(7)),
                4,
                vec![0, 7, 0, 0, 0, 7],
            ),
            (
                Control::UserControl(UserControl::Other { event: 31, data: 1 }),
                4,
                vec![0, 31, 0, 0, 0, 1],
            ),
        ];
        for (control, type_id, bytes) in cases {
            let m = control.to_message();
            assert_eq!((m.csid, m.type_id, m.stream_id), (2, type_id, 0));
            assert_eq!(&m.payload[..], &bytes[..], "{control:?}");
            assert_eq!(Control::decode(&m).unwrap(), Some(control));
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            Control::decode(&msg(1, &[0, 0, 0, 0])),
            Err(Error::InvalidChunkSize(0))
        );
        assert_eq!(
            Control::decode(&msg(1, &[0x80, 0, 0, 1])),
            Err(Error::InvalidChunkSize(0x8000_0001))
        );
        assert!(Control::decode(&msg(1, &[0, 1])).is_err());
        assert!(Control::decode(&msg(6, &[0, 0, 0, 1])).is_err());
        assert!(Control::decode(&msg(4, &[0])).is_err());
        assert!(Control::decode(&msg(4, &[0, 3, 0, 0, 0, 1])).is_err());
        assert_eq!(Control::decode(&msg(9, &[])), Ok(None));
        // Short unknown events keep what they have.
        assert_eq!(
            Control::decode(&msg(4, &[0, 32, 1])),
            Ok(Some(Control::UserControl(UserControl::Other {
                event: 32,
                data: 0x0100_0000
            })))
        );
    }
}
