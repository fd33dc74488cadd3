//! The chunk stream writer.
//!
//! Every message goes out as a fmt 0 chunk followed by fmt 3 continuations. Compressing
//! headers (fmt 1 and 2) would save at most eleven bytes a message, a fraction of a percent
//! of a media stream, and would tie each chunk stream's output to state the receiver keeps;
//! full headers keep every message self-describing, which is what lets a relay re-chunk
//! messages from one leg onto another safely.
//!
//! A message can also be written in pieces as they arrive ([`ChunkWriter::write_piece`]),
//! which is how a relay moves media without reassembling it: only whole chunks are written
//! (a chunk of another chunk stream may follow any of them), and the bytes short of a
//! whole chunk wait in the writer, at most a chunk's worth per chunk stream.

use bytes::{BufMut, Bytes, BytesMut};

use super::{check_chunk_size, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CSID, MAX_MESSAGE_LEN};
use crate::chunk::MessagePiece;
use crate::message::{types, Control};
use crate::{Error, Message};

/// Splits messages into chunks for one direction of a connection.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    chunk_size: u32,
    /// Messages being written in pieces, one per chunk stream at most.
    open: Vec<Open>,
    /// Capacity of every open message's `short`, summed.
    held: usize,
}

/// A message written in pieces, not finished yet.
#[derive(Debug, Clone)]
struct Open {
    csid: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    length: u32,
    /// Payload bytes given so far.
    given: u32,
    /// Payload bytes written out as chunks.
    written: u32,
    /// Whether the fmt 0 chunk is out.
    started: bool,
    /// Whether continuation chunks repeat the timestamp as an extended one.
    extended: bool,
    /// Bytes given but short of a whole chunk.
    short: Vec<u8>,
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
            open: Vec::new(),
            held: 0,
        }
    }

    /// A writer at `chunk_size`, for when the peer has already been told that size.
    pub fn with_chunk_size(chunk_size: u32) -> Result<Self, Error> {
        Ok(ChunkWriter {
            chunk_size: check_chunk_size(chunk_size)?,
            open: Vec::new(),
            held: 0,
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
    ///
    /// A chunk stream with a message being written in pieces takes no other message until
    /// that one is finished ([`Error::InterruptedMessage`]).
    pub fn write(&mut self, msg: &Message, out: &mut BytesMut) -> Result<(), Error> {
        if !(2..=MAX_CSID).contains(&msg.csid) {
            return Err(Error::InvalidChunkStreamId(msg.csid));
        }
        if self.open.iter().any(|o| o.csid == msg.csid) {
            return Err(Error::InterruptedMessage(msg.csid));
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
        put_fmt0(
            out,
            msg.csid,
            msg.timestamp,
            len,
            msg.type_id,
            msg.stream_id,
        );
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

    /// Appends what can be written of a message given in pieces, in order: every whole
    /// chunk the bytes given so far complete, and the message's last chunk once its last
    /// piece is given. Bytes short of a whole chunk wait here for the next piece (see
    /// [`buffered_bytes`](Self::buffered_bytes)).
    ///
    /// The chunks are those [`write`](Self::write) makes of the whole message (fmt 0, then
    /// fmt 3 continuations), so the peer's reader cannot tell the difference. Chunks of
    /// other chunk streams may come in between, which every RTMP reader accepts.
    ///
    /// A piece that does not continue the message open on its chunk stream (a wrong offset
    /// or header, a new message while one is open, more bytes than the length) is refused
    /// with [`Error::PieceOfStreamedMessage`]; a bad chunk stream id or length as
    /// [`write`](Self::write) refuses them.
    pub fn write_piece(
        &mut self,
        piece: &MessagePiece<'_>,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        self.write_piece_inner(piece, out, false)
    }

    /// Like [`write_piece`](Self::write_piece), but a piece past the start of a message
    /// this writer has not seen continues it, as if its earlier bytes had been written
    /// here: for a message whose first chunks were passed on as the sender's own bytes
    /// (see [`ChunkReader::next_passing`](crate::ChunkReader::next_passing)), at this
    /// writer's chunk size, at a chunk boundary. Its continuations are fmt 3 chunks
    /// without an extended timestamp, as passed-on messages never have one.
    pub fn resume_piece(
        &mut self,
        piece: &MessagePiece<'_>,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        self.write_piece_inner(piece, out, true)
    }

    fn write_piece_inner(
        &mut self,
        piece: &MessagePiece<'_>,
        out: &mut BytesMut,
        resume: bool,
    ) -> Result<(), Error> {
        let csid = piece.csid;
        if !(2..=MAX_CSID).contains(&csid) {
            return Err(Error::InvalidChunkStreamId(csid));
        }
        if piece.length > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLarge {
                len: u64::from(piece.length),
                limit: u64::from(MAX_MESSAGE_LEN),
            });
        }
        let mismatch = Error::PieceOfStreamedMessage(csid);
        let idx = match self.open.iter().position(|o| o.csid == csid) {
            Some(i) => {
                let o = &self.open[i];
                if (o.type_id, o.stream_id, o.timestamp, o.length, o.given)
                    != (
                        piece.type_id,
                        piece.stream_id,
                        piece.timestamp,
                        piece.length,
                        piece.offset,
                    )
                {
                    return Err(mismatch);
                }
                i
            }
            None if piece.offset == 0 || resume => {
                self.open.push(Open {
                    csid,
                    type_id: piece.type_id,
                    stream_id: piece.stream_id,
                    timestamp: piece.timestamp,
                    length: piece.length,
                    given: piece.offset,
                    written: piece.offset,
                    started: piece.offset > 0,
                    // A resumed message's header had none (its timestamp may still be
                    // past the 24 bits, reached by deltas).
                    extended: piece.offset == 0 && piece.timestamp >= EXTENDED_TIMESTAMP,
                    short: Vec::new(),
                });
                self.open.len() - 1
            }
            None => return Err(mismatch),
        };
        let chunk_size = self.chunk_size as usize;
        let o = &mut self.open[idx];
        let given = u32::try_from(piece.data.len())
            .ok()
            .and_then(|n| o.given.checked_add(n))
            .filter(|g| *g <= o.length)
            .ok_or(mismatch)?;
        o.given = given;
        let mut data = piece.data;
        let extended = o.extended;
        // Headers of at most 3 + 11 + 4 bytes, one per chunk.
        let bytes = o.short.len() + data.len();
        out.reserve(bytes + (bytes / chunk_size + 1) * 18);
        loop {
            let want = chunk_size.min((o.length - o.written) as usize);
            if (want == 0 && o.started) || o.short.len() + data.len() < want {
                break;
            }
            if o.started {
                put_basic_header(out, 3, csid);
                if extended {
                    out.put_u32(o.timestamp);
                }
            } else {
                put_fmt0(out, csid, o.timestamp, o.length, o.type_id, o.stream_id);
                o.started = true;
            }
            if o.short.is_empty() {
                out.put_slice(&data[..want]);
                data = &data[want..];
            } else {
                // The chunk size may have shrunk since these bytes were kept.
                let from_short = o.short.len().min(want);
                out.put_slice(&o.short[..from_short]);
                o.short.drain(..from_short);
                let from_data = want - from_short;
                out.put_slice(&data[..from_data]);
                data = &data[from_data..];
            }
            // `want` is at most what is left of the length, a u32.
            o.written += want as u32;
        }
        if !data.is_empty() {
            let before = o.short.capacity();
            o.short.extend_from_slice(data);
            self.held += o.short.capacity() - before;
        }
        if o.started && o.written == o.length {
            self.held -= o.short.capacity();
            self.open.swap_remove(idx);
        }
        Ok(())
    }

    /// Forgets the message being written in pieces on `csid`, for when its sender aborted
    /// it. Whether any of its chunks were written: the peer then has a partial message on
    /// that chunk stream and must be sent an Abort for it.
    pub fn abort(&mut self, csid: u32) -> bool {
        match self.open.iter().position(|o| o.csid == csid) {
            Some(i) => {
                let o = self.open.swap_remove(i);
                self.held -= o.short.capacity();
                o.started
            }
            None => false,
        }
    }

    /// Bytes held for messages written in pieces: the parts short of a whole chunk.
    pub fn buffered_bytes(&self) -> usize {
        self.held
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

/// A fmt 0 chunk header, with the extended timestamp when the timestamp needs one.
fn put_fmt0(out: &mut BytesMut, csid: u32, timestamp: u32, len: u32, type_id: u8, stream_id: u32) {
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    put_basic_header(out, 0, csid);
    put_u24(
        out,
        if extended {
            EXTENDED_TIMESTAMP
        } else {
            timestamp
        },
    );
    put_u24(out, len);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
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
