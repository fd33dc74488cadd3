//! The chunk stream reader, modelled on mini-redis's `frame.rs`: check that a whole header is
//! buffered, parse it, then advance. Payload bytes are taken as they arrive rather than per
//! whole chunk, so a peer announcing a 2 GiB chunk size cannot make us buffer 2 GiB.

use bytes::{Buf, Bytes, BytesMut};

use super::{check_chunk_size, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP};
use crate::message::{types, Control};
use crate::{Error, Message};

/// Bounds on what a peer can make the reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest message accepted. Default 4 MiB: a few times the largest keyframes seen from
    /// 4K encoders, a quarter of what the 24-bit length field allows. Raise it for unusual
    /// high-bitrate sources.
    pub max_message_size: u32,
    /// Most chunk streams tracked at once. Default 64 (encoders use about five).
    pub max_chunk_streams: usize,
    /// Most bytes held for partially received messages, over all chunk streams: the memory
    /// reserved for them, which follows the bytes received (see
    /// [`ChunkReader::buffered_bytes`]), not the lengths their headers declare. Default
    /// 4.25 MiB: one message of the largest size, and the audio and data messages
    /// interleaved with it. A real publisher has one video frame in progress at a time; a
    /// peer opening many large messages at once is refused here.
    pub max_in_progress: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_message_size: 4 * 1024 * 1024,
            max_chunk_streams: 64,
            max_in_progress: 4 * 1024 * 1024 + 256 * 1024,
        }
    }
}

/// Smallest capacity reserved for a message that spans chunks. Growth after that doubles
/// with the bytes received (so copying stays linear in the message size) and stops at the
/// declared length, so a peer declaring large messages and sending little of them makes
/// the reader hold little.
const MIN_PAYLOAD_CAPACITY: usize = 4 * 1024;

/// What the last header on one chunk stream said.
#[derive(Debug)]
struct StreamState {
    csid: u32,
    timestamp: u32,
    /// The last timestamp field (delta, or absolute for fmt 0) after extension; a fmt 3
    /// chunk that starts a message adds it again.
    ts_field: u32,
    /// Whether the last fmt 0-2 header used an extended timestamp: fmt 3 chunks then carry
    /// one as well.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    in_progress: bool,
    /// The message in progress is handed out in pieces (see [`ChunkReader::next_piece`])
    /// rather than reassembled.
    streamed: bool,
    /// Bytes of a streamed or passed-on message handed out so far.
    streamed_len: usize,
    /// The message in progress is passed on as the peer's own chunks (see
    /// [`ChunkReader::next_passing`]).
    passing: bool,
    /// The other leg's peer has the same header state for this chunk stream as this
    /// reader: a fmt 0 header was passed on, and every chunk since.
    synced: bool,
    /// The message received so far; a `Vec` so that its capacity is exactly what was
    /// reserved for it (and accounted in `ChunkReader::held`).
    payload: Vec<u8>,
}

impl StreamState {
    fn new(csid: u32) -> Self {
        StreamState {
            csid,
            timestamp: 0,
            ts_field: 0,
            extended: false,
            length: 0,
            type_id: 0,
            stream_id: 0,
            in_progress: false,
            streamed: false,
            streamed_len: 0,
            passing: false,
            synced: false,
            payload: Vec::new(),
        }
    }
}

/// Part of a message's payload, handed out as it arrives, with the message's header.
///
/// A message's pieces come in order (`offset` growing by each piece's length, from 0 to
/// `length`); pieces of messages on other chunk streams, and whole messages, may come in
/// between, as the peer interleaved them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePiece<'a> {
    /// Chunk stream id.
    pub csid: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The message's timestamp.
    pub timestamp: u32,
    /// The whole message's length.
    pub length: u32,
    /// Bytes of the message before this piece.
    pub offset: u32,
    /// The piece's bytes, lent from the reader's input until its next call.
    pub data: &'a [u8],
}

impl MessagePiece<'_> {
    /// Whether this piece ends its message.
    pub fn is_last(&self) -> bool {
        self.offset as usize + self.data.len() == self.length as usize
    }
}

/// What [`ChunkReader::next_piece`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole message (one the filter did not choose to stream).
    Message(Message),
    /// Part of a message the filter chose to stream.
    Part(MessagePiece<'a>),
}

/// How [`ChunkReader::next_passing`] passes chunks on: the other leg's side of the
/// conditions under which the peer's own chunk bytes mean the same thing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOn {
    /// The media stream's message stream id on this reader's side; fmt 0 headers passed on
    /// that carry it get `to_stream_id` instead, in place.
    pub from_stream_id: u32,
    /// The media stream's message stream id on the other side.
    pub to_stream_id: u32,
    /// The chunk size the other leg's peer reads with. Chunks are passed on only while it
    /// equals this reader's: chunk boundaries follow from it.
    pub chunk_size: u32,
    /// The other leg has output waiting for a chunk boundary of the passed-on bytes: the
    /// span then ends at the next one.
    pub want_boundary: bool,
}

/// What reading a chunk header gave.
enum Header {
    Parsed,
    /// More bytes are needed.
    More,
    /// The chunk is not passed on and bytes passed on come before it: they must be taken
    /// first (the header is parsed again at the next call).
    Flush,
}

/// What consuming a chunk's payload gave.
enum Taken {
    Message(Message),
    /// Bytes of a passed-on chunk, added to the span at the front of the input.
    Passed,
    /// A piece of a streamed message: its header (no data), with its bytes the first
    /// `lent` of the input.
    Part(MessagePiece<'static>),
}

/// The chunk whose payload is being consumed.
#[derive(Debug, Clone, Copy)]
struct Current {
    idx: usize,
    remaining: usize,
}

/// Reassembles RTMP messages from a byte stream.
///
/// Feed bytes with [`feed`](Self::feed) (or append to [`buffer_mut`](Self::buffer_mut)),
/// then call [`next_message`](Self::next_message) until it returns `Ok(None)`. Every
/// message is returned, protocol control ones included, after the reader applied those that
/// concern it (Set Chunk Size, Abort, Window Acknowledgement Size).
///
/// ```
/// use rtmp_peek::{ChunkReader, ChunkWriter, Message};
/// let msg = Message::new(6, 9, 1, 40, vec![7u8; 300].into());
/// let mut wire = bytes::BytesMut::new();
/// ChunkWriter::new().write(&msg, &mut wire)?;
///
/// let mut reader = ChunkReader::new();
/// for byte in wire.iter() {
///     reader.feed(&[*byte]); // any split gives the same result
/// }
/// assert_eq!(reader.next_message()?, Some(msg));
/// assert_eq!(reader.next_message()?, None);
/// # Ok::<(), rtmp_peek::Error>(())
/// ```
#[derive(Debug)]
pub struct ChunkReader {
    buf: BytesMut,
    streams: Vec<StreamState>,
    chunk_size: u32,
    limits: ReaderLimits,
    current: Option<Current>,
    /// Capacity of every partial message's payload, summed.
    held: usize,
    /// Bytes at the front of `buf` lent out with the last piece, consumed already: they
    /// are dropped at the next call, so that a piece needs neither a copy nor a reference
    /// count.
    lent: usize,
    /// Bytes at the front of `buf` parsed and to be passed on as they are (see
    /// [`next_passing`](Self::next_passing)).
    passed: usize,
    /// An Abort ended a message that was being passed on.
    passing_aborted: bool,
    consumed: u64,
    window: u32,
    last_ack: u64,
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkReader {
    /// A reader with the default limits and the initial chunk size of 128.
    pub fn new() -> Self {
        Self::with_limits(ReaderLimits::default())
    }

    /// A reader with the given limits.
    pub fn with_limits(limits: ReaderLimits) -> Self {
        ChunkReader {
            buf: BytesMut::new(),
            streams: Vec::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            current: None,
            held: 0,
            lent: 0,
            passed: 0,
            passing_aborted: false,
            consumed: 0,
            window: 0,
            last_ack: 0,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.settle();
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, for reading from a socket straight into it (e.g. tokio's
    /// `read_buf`). Bytes appended here count as fed.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        self.settle();
        &mut self.buf
    }

    /// Frees the input buffer's storage if every byte fed has been parsed, for owners that
    /// keep many mostly idle readers. The next [`feed`](Self::feed) allocates again.
    pub fn release_empty_buffer(&mut self) {
        self.settle();
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes fed but not parsed yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.lent
    }

    /// Bytes the reader holds for the peer: the input not parsed yet, and the memory
    /// reserved for partially received messages. The latter grows with what arrived, not
    /// with what the headers declared: a message declared at 4 MiB of which 1 KiB arrived
    /// holds a few KiB. Cheap (two fields), for owners that account memory per read.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.lent + self.held
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the peer's chunk size, as if it had sent Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.chunk_size = check_chunk_size(size)?;
        Ok(())
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReaderLimits {
        &self.limits
    }

    /// Bytes parsed so far (headers and payloads); what Acknowledgements report.
    pub fn bytes_received(&self) -> u64 {
        self.consumed
    }

    /// The acknowledgement window the peer asked for (0 until it sent one).
    pub fn window_ack_size(&self) -> u32 {
        self.window
    }

    /// Sets the acknowledgement window, as if the peer had sent Window Acknowledgement Size.
    pub fn set_window_ack_size(&mut self, size: u32) {
        self.window = size;
    }

    /// When at least one window of bytes arrived since the last call that returned `Some`,
    /// the sequence number to send in an Acknowledgement (bytes received, mod 2^32).
    pub fn ack_due(&mut self) -> Option<u32> {
        if self.window == 0 || self.consumed - self.last_ack < u64::from(self.window) {
            return None;
        }
        self.last_ack = self.consumed;
        Some(self.consumed as u32)
    }

    /// The next complete message, or `Ok(None)` when more bytes are needed.
    ///
    /// After an error the reader's state is unspecified: drop the connection. Do not mix
    /// with [`next_piece`](Self::next_piece) while a streamed message is in progress: its
    /// remaining pieces are refused with [`Error::PieceOfStreamedMessage`].
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        match self.next_piece(|_, _| false)? {
            Some(Piece::Message(msg)) => Ok(Some(msg)),
            Some(Piece::Part(piece)) => Err(Error::PieceOfStreamedMessage(piece.csid)),
            None => Ok(None),
        }
    }

    /// The next whole message, or the next piece of a message that `stream(csid, type_id)`
    /// chose, at its first chunk, to stream: such a message is handed out as its bytes
    /// arrive instead of being reassembled, so the reader holds nothing for it. `Ok(None)`
    /// when more bytes are needed.
    ///
    /// Messages that change how the stream is read (Set Chunk Size, Abort, Window
    /// Acknowledgement Size) take effect whatever the filter says; an Abort ends a streamed
    /// message as it ends a reassembled one (the owner sees the Abort message).
    ///
    /// After an error the reader's state is unspecified: drop the connection.
    pub fn next_piece<F>(&mut self, stream: F) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        self.next_inner(&stream, None)
    }

    /// Like [`next_piece`](Self::next_piece), but chunks of messages `stream` chooses are
    /// passed on as the peer's own bytes where the other leg's peer reads them the same
    /// way: they are not returned but gathered, contiguous, at the front of the input, to
    /// be taken with [`take_passed`](Self::take_passed) whenever this returns `Ok(None)`
    /// with [`passed`](Self::passed) non-zero (before anything else is written to the other
    /// leg: a piece or message is returned only once the span before it was taken).
    ///
    /// A chunk stream's chunks are passed on from a fmt 0 header on (its message stream id
    /// translated in place), while every message on it is one `stream` chooses, without an
    /// extended timestamp, and the chunk sizes agree; anything else on it goes the way
    /// [`next_piece`](Self::next_piece) goes and the chunk stream waits for the next fmt 0
    /// header. A passed-on message interrupted by a chunk size change is continued in
    /// pieces from where it was (the writer resumes it: see
    /// [`ChunkWriter::resume_piece`](crate::ChunkWriter::resume_piece)).
    pub fn next_passing<F>(&mut self, stream: F, pass: &PassOn) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        self.next_inner(&stream, Some(pass))
    }

    /// Bytes parsed and to be passed on (see [`next_passing`](Self::next_passing)).
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// Takes the bytes to pass on, and whether they end at a chunk boundary (else the
    /// rest of their last chunk comes with the next span).
    pub fn take_passed(&mut self) -> (BytesMut, bool) {
        let span = self.buf.split_to(self.passed);
        self.passed = 0;
        (span, self.current.is_none())
    }

    /// Whether an Abort ended a message being passed on since the last call: the other
    /// leg's peer has part of it and must get the Abort too.
    pub fn take_passing_aborted(&mut self) -> bool {
        std::mem::take(&mut self.passing_aborted)
    }

    fn next_inner<F>(
        &mut self,
        stream: &F,
        pass: Option<&PassOn>,
    ) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        self.settle();
        let part = loop {
            if let Some(cur) = self.current {
                match self.take_payload(cur)? {
                    Some(Taken::Message(msg)) => return Ok(Some(Piece::Message(msg))),
                    Some(Taken::Part(part)) => break part,
                    // A passed-on chunk not all here yet, or one whose end is wanted.
                    Some(Taken::Passed)
                        if self.current.is_some() || pass.is_some_and(|p| p.want_boundary) =>
                    {
                        return Ok(None)
                    }
                    Some(Taken::Passed) => {}
                    None if self.current.is_some() => return Ok(None),
                    None => {}
                }
            } else {
                match self.read_header(stream, pass)? {
                    Header::Parsed => {}
                    Header::More | Header::Flush => return Ok(None),
                }
            }
        };
        Ok(Some(Piece::Part(MessagePiece {
            data: &self.buf[..self.lent],
            ..part
        })))
    }

    /// Drops the bytes lent with the last piece.
    fn settle(&mut self) {
        if self.lent > 0 {
            self.buf.advance(self.lent);
            self.lent = 0;
        }
    }

    /// Consumes what is buffered of the current chunk's payload.
    fn take_payload(&mut self, cur: Current) -> Result<Option<Taken>, Error> {
        let st = &mut self.streams[cur.idx];
        if st.passing {
            let n = cur.remaining.min(self.buf.len() - self.passed);
            if n == 0 && cur.remaining > 0 {
                return Ok(None);
            }
            self.passed += n;
            if move_along(st, &mut self.current, &mut self.consumed, cur, n) {
                st.passing = false;
            }
            return Ok(Some(Taken::Passed));
        }
        // Nothing is passed on before a chunk that is not (`read_header` saw to it).
        let n = cur.remaining.min(self.buf.len());
        if st.streamed {
            // A zero-length message is one piece of nothing; otherwise wait for bytes.
            if n == 0 && cur.remaining > 0 {
                return Ok(None);
            }
            let piece = Taken::Part(MessagePiece {
                csid: st.csid,
                type_id: st.type_id,
                stream_id: st.stream_id,
                timestamp: st.timestamp,
                length: st.length,
                // At most the declared length, a u32.
                offset: st.streamed_len as u32,
                data: &[],
            });
            self.lent = n;
            if move_along(st, &mut self.current, &mut self.consumed, cur, n) {
                st.streamed = false;
            }
            return Ok(Some(piece));
        }
        let whole = st.payload.is_empty() && cur.remaining == st.length as usize;
        let fast = if whole && n == cur.remaining {
            // The whole message is one chunk and already buffered: hand out the buffer's
            // own bytes instead of copying them.
            Some(self.buf.split_to(n).freeze())
        } else {
            let need = st.payload.len() + n;
            let before = st.payload.capacity();
            if need > before {
                // `need` never exceeds the declared length: chunks stop where it ends.
                // What is buffered already may belong to this message: reserving for it
                // at once saves the copies of growing step by step (a video frame that
                // arrived in one read is reserved once), and still follows what arrived.
                let target = need
                    .max(2 * before)
                    .max(MIN_PAYLOAD_CAPACITY)
                    .max(st.payload.len() + self.buf.len())
                    .min(st.length as usize)
                    .max(need);
                st.payload.reserve_exact(target - st.payload.len());
                self.held += st.payload.capacity() - before;
                if self.held > self.limits.max_in_progress {
                    return Err(Error::TooMuchInProgress(self.limits.max_in_progress));
                }
            }
            st.payload.extend_from_slice(&self.buf[..n]);
            self.buf.advance(n);
            None
        };
        self.consumed += n as u64;
        let remaining = cur.remaining - n;
        if remaining > 0 {
            self.current = Some(Current { remaining, ..cur });
            return Ok(None);
        }
        self.current = None;
        let st = &mut self.streams[cur.idx];
        let payload = match fast {
            Some(bytes) => bytes,
            None if st.payload.len() == st.length as usize => {
                self.held -= st.payload.capacity();
                // No copy: the vector becomes the `Bytes`' storage.
                Bytes::from(std::mem::take(&mut st.payload))
            }
            None => return Ok(None),
        };
        st.in_progress = false;
        let msg = Message::new(st.csid, st.type_id, st.stream_id, st.timestamp, payload);
        self.apply(&msg)?;
        Ok(Some(Taken::Message(msg)))
    }

    /// The messages that change how the rest of the stream is read take effect before the
    /// next chunk is parsed, whatever the owner does with them.
    fn apply(&mut self, msg: &Message) -> Result<(), Error> {
        if msg.stream_id != 0 && msg.type_id != types::SET_CHUNK_SIZE {
            return Ok(());
        }
        match Control::decode(msg)? {
            Some(Control::SetChunkSize(size)) => self.chunk_size = size,
            Some(Control::Abort(csid)) => {
                if let Some(st) = self.streams.iter_mut().find(|s| s.csid == csid) {
                    if st.passing && st.in_progress {
                        self.passing_aborted = true;
                    }
                    st.passing = false;
                    st.synced = false;
                    self.held -= st.payload.capacity();
                    st.payload = Vec::new();
                    st.in_progress = false;
                    st.streamed = false;
                    st.streamed_len = 0;
                }
            }
            Some(Control::WindowAckSize(size)) => self.window = size,
            _ => {}
        }
        Ok(())
    }

    /// Parses one chunk header if it is wholly buffered.
    fn read_header<F>(&mut self, stream: &F, pass: Option<&PassOn>) -> Result<Header, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        let b = &self.buf[self.passed..];
        let Some(&first) = b.first() else {
            return Ok(Header::More);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(Header::More),
            },
            1 => match b.get(1..3) {
                Some(x) => (64 + u32::from(x[0]) + 256 * u32::from(x[1]), 3),
                None => return Ok(Header::More),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = b.get(pos..pos + header_len) else {
            return Ok(Header::More);
        };
        let basic_len = pos;
        pos += header_len;

        let idx = self.streams.iter().position(|s| s.csid == csid);
        // librtmp opens some chunk streams with fmt 1 (its pings); SRS accepts that too.
        if idx.is_none() && fmt > 1 {
            return Err(Error::MissingPreviousHeader { csid, fmt });
        }
        let (in_progress, extended, ts_field) = match idx {
            Some(i) => {
                let st = &self.streams[i];
                (st.in_progress, st.extended, st.ts_field)
            }
            None => (false, false, 0),
        };
        if in_progress && fmt != 3 {
            return Err(Error::InterruptedMessage(csid));
        }

        let ts24 = if fmt < 3 { be24(&h[0..3]) } else { 0 };
        let mut ext = None;
        if (fmt < 3 && ts24 == EXTENDED_TIMESTAMP) || (fmt == 3 && extended) {
            let Some(e) = b.get(pos..pos + 4) else {
                return Ok(Header::More);
            };
            let value = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            // On a continuation chunk some encoders omit the repeated extended timestamp;
            // as SRS does, take the four bytes as one only when they repeat the value.
            if fmt == 3 && in_progress && value != ts_field {
                ext = None;
            } else {
                ext = Some(value);
                pos += 4;
            }
        }

        // Whether this chunk goes on as it is. A message starts passed on only where the
        // other leg's peer holds this chunk stream's header state (synced, or a fmt 0 header
        // sets it now) and nothing in it needs translating; extended timestamps are left to
        // re-chunking, which writes them the one way every reader takes.
        let sizes_agree = pass.is_some_and(|p| p.chunk_size == self.chunk_size);
        let passes = sizes_agree
            && match idx {
                Some(i) if in_progress => self.streams[i].passing,
                _ => {
                    let st = idx.map(|i| &self.streams[i]);
                    let type_id = if fmt < 2 {
                        h[6]
                    } else {
                        st.map_or(0, |s| s.type_id)
                    };
                    let extended_after = if fmt < 3 { ext.is_some() } else { extended };
                    (fmt == 0 || st.is_some_and(|s| s.synced))
                        && !extended_after
                        && stream(csid, type_id)
                }
            };
        if !passes && self.passed > 0 {
            return Ok(Header::Flush);
        }
        let idx = match idx {
            Some(i) => i,
            None => {
                if self.streams.len() >= self.limits.max_chunk_streams {
                    return Err(Error::TooManyChunkStreams(self.limits.max_chunk_streams));
                }
                self.streams.push(StreamState::new(csid));
                self.streams.len() - 1
            }
        };
        let st = &mut self.streams[idx];
        if fmt < 3 {
            let field = ext.unwrap_or(ts24);
            st.extended = ext.is_some();
            st.ts_field = field;
            st.timestamp = if fmt == 0 {
                field
            } else {
                st.timestamp.wrapping_add(field)
            };
            if fmt < 2 {
                st.length = be24(&h[3..6]);
                st.type_id = h[6];
            }
            if fmt == 0 {
                st.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
            }
        } else if !in_progress {
            if let Some(field) = ext {
                st.ts_field = field;
            }
            st.timestamp = st.timestamp.wrapping_add(st.ts_field);
        }
        if !in_progress {
            if st.length > self.limits.max_message_size {
                return Err(Error::MessageTooLarge {
                    len: u64::from(st.length),
                    limit: u64::from(self.limits.max_message_size),
                });
            }
            st.in_progress = true;
            st.passing = passes;
            st.synced = passes;
            st.streamed = !passes && stream(csid, st.type_id);
            st.streamed_len = 0;
        } else if st.passing && !passes {
            // The chunk sizes parted mid-message: the rest goes in pieces, which the other
            // leg's writer continues with fmt 3 chunks of its own size.
            st.passing = false;
            st.synced = false;
            st.streamed = true;
        }
        let done = if st.streamed || st.passing {
            st.streamed_len
        } else {
            st.payload.len()
        };
        let left = st.length as usize - done;
        let remaining = left.min(self.chunk_size as usize);
        if passes {
            if let Some(p) = pass.filter(|p| fmt == 0 && st.stream_id == p.from_stream_id) {
                let at = self.passed + basic_len + 7;
                self.buf[at..at + 4].copy_from_slice(&p.to_stream_id.to_le_bytes());
            }
            self.passed += pos;
        } else {
            self.buf.advance(pos);
        }
        self.consumed += pos as u64;
        self.current = Some(Current { idx, remaining });
        Ok(Header::Parsed)
    }
}

fn be24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// Counts `n` bytes of the current chunk's payload as handed on, for a message streamed or
/// passed on (not reassembled): the chunk's remaining bytes, the message's and the
/// reader's counts. Whether that completed the message (its state is then reset).
fn move_along(
    st: &mut StreamState,
    current: &mut Option<Current>,
    consumed: &mut u64,
    cur: Current,
    n: usize,
) -> bool {
    st.streamed_len += n;
    *consumed += n as u64;
    let remaining = cur.remaining - n;
    *current = (remaining > 0).then_some(Current { remaining, ..cur });
    let done = st.streamed_len == st.length as usize;
    if done {
        st.in_progress = false;
        st.streamed_len = 0;
    }
    done
}

#[cfg(test)]
mod tests;
