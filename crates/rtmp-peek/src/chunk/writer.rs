//! The chunk stream writer.
//!
//! Every message goes out as a fmt 0 chunk followed by fmt 3 continuations. Compressing
//! headers (fmt 1 and 2) would save at most eleven bytes a message, a fraction of a percent
//! of a media stream, and would tie each chunk stream's output to state the receiver keeps;
//! full headers keep every message self-describing, which is what lets a relay re-chunk
//! messages from one leg onto another safely.

use bytes::{BufMut, Bytes, BytesMut};

use super::{check_chunk_size, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CSID, MAX_MESSAGE_LEN};
use crate::message::{types, Control};
use crate::{Error, Message};

/// Splits messages into chunks for one direction of a connection.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// A writer at the initial chunk size of 128.
    pub fn new() -> Self {
        ChunkWriter {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// A writer at `chunk_size`, for when the peer has already been told that size.
    pub fn with_chunk_size(chunk_size: u32) -> Result<Self, Error> {
        Ok(ChunkWriter {
            chunk_size: check_chunk_size(chunk_size)?,
        })
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the chunk size without telling the peer (writing a Set Chunk Size message
    /// through [`write`](Self::write) does both).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.chunk_size = check_chunk_size(size)?;
        Ok(())
    }

    /// How many bytes [`write`](Self::write) will append for `msg`.
    pub fn encoded_len(&self, msg: &Message) -> usize {
        let len = msg.payload.len();
        let chunks = len.div_ceil(self.chunk_size as usize).max(1);
        let basic = basic_header_len(msg.csid);
        let ext = if msg.timestamp >= EXTENDED_TIMESTAMP {
            4
        } else {
            0
        };
        basic + 11 + ext + (chunks - 1) * (basic + ext) + len
    }

    /// Appends `msg` as chunks to `out`.
    ///
    /// A Set Chunk Size message written here also switches this writer to the new size for
    /// the messages after it, which is when the peer's reader switches too.
    pub fn write(&mut self, msg: &Message, out: &mut BytesMut) -> Result<(), Error> {
        if !(2..=MAX_CSID).contains(&msg.csid) {
            return Err(Error::InvalidChunkStreamId(msg.csid));
        }
        let len = u32::try_from(msg.payload.len())
            .ok()
            .filter(|len| *len <= MAX_MESSAGE_LEN)
            .ok_or(Error::MessageTooLarge {
                len: msg.payload.len() as u64,
                limit: u64::from(MAX_MESSAGE_LEN),
            })?;
        let new_size = match msg.type_id {
            types::SET_CHUNK_SIZE => match Control::decode(msg)? {
                Some(Control::SetChunkSize(size)) => Some(size),
                _ => None,
            },
            _ => None,
        };
        out.reserve(self.encoded_len(msg));

        let extended = msg.timestamp >= EXTENDED_TIMESTAMP;
        put_basic_header(out, 0, msg.csid);
        put_u24(
            out,
            if extended {
                EXTENDED_TIMESTAMP
            } else {
                msg.timestamp
            },
        );
        put_u24(out, len);
        out.put_u8(msg.type_id);
        out.put_u32_le(msg.stream_id);
        if extended {
            out.put_u32(msg.timestamp);
        }
        let mut chunks = msg.payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for chunk in chunks {
            put_basic_header(out, 3, msg.csid);
            if extended {
                out.put_u32(msg.timestamp);
            }
            out.put_slice(chunk);
        }
        if let Some(size) = new_size {
            self.chunk_size = size;
        }
        Ok(())
    }

    /// [`write`](Self::write) into a fresh buffer.
    pub fn to_bytes(&mut self, msg: &Message) -> Result<Bytes, Error> {
        let mut out = BytesMut::new();
        self.write(msg, &mut out)?;
        Ok(out.freeze())
    }
}

fn basic_header_len(csid: u32) -> usize {
    match csid {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid - 64;
            out.put_u8(fmt | 1);
            out.put_u8(v as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_vectors() {
        let mut w = ChunkWriter::new();
        let msg = Message::new(3, 20, 1, 16, Bytes::from_static(b"abc"));
        assert_eq!(
            &w.to_bytes(&msg).unwrap()[..],
            &[0x03, 0, 0, 0x10, 0, 0, 3, 0x14, 1, 0, 0, 0, b'a', b'b', b'c']
        );
        let mut w = ChunkWriter::with_chunk_size(2).unwrap();
        let msg = Message::new(320, 9, 0, 0x0100_0000, Bytes::from_static(b"xyz"));
        let expected = [
            0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0, 0, 3, 9, 0, 0, 0, 0, 1, 0, 0, 0, b'x', b'y',
            0xc1, 0x00, 0x01, 1, 0, 0, 0, b'z',
        ];
        assert_eq!(&w.to_bytes(&msg).unwrap()[..], &expected);
        assert_eq!(w.encoded_len(&msg), expected.len());
        let msg = Message::new(64, 8, 0, 0, Bytes::new());
        assert_eq!(
            &w.to_bytes(&msg).unwrap()[..],
            &[0x00, 0x00, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0]
        );
    }

    #[test]
    fn set_chunk_size_switches_after_itself() {
        let mut w = ChunkWriter::new();
        let bytes = w
            .to_bytes(&Control::SetChunkSize(4096).to_message())
            .unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(w.chunk_size(), 4096);
    }

    #[test]
    fn refuses_bad_input() {
        let mut w = ChunkWriter::new();
        let msg = Message::new(1, 8, 0, 0, Bytes::new());
        assert_eq!(w.to_bytes(&msg), Err(Error::InvalidChunkStreamId(1)));
        let msg = Message::new(3, 8, 0, 0, vec![0u8; 0x100_0000].into());
        assert!(matches!(
            w.to_bytes(&msg),
            Err(Error::MessageTooLarge { .. })
        ));
        assert_eq!(
            ChunkWriter::with_chunk_size(0).err(),
            Some(Error::InvalidChunkSize(0))
        );
        assert!(w.set_chunk_size(0x8000_0000).is_err());
    }
}
