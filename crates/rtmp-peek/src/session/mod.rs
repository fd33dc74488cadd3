//! Connection state machines built on the lower layers: [`ServerSession`] (a client's leg,
//! up to knowing its stream), [`ClientSession`] (the proxy's leg to an origin, up to the
//! origin's verdict) and [`Relay`] (both legs, after setup).

mod client;
mod relay;
mod server;

pub use client::{ClientConfig, ClientEvent, ClientSession, OriginRequest, SetupStage};
pub use relay::{rewrite_stream_id, Relay, MAX_FOLLOWED_CHUNK_SIZE};
pub use server::{split_query, Identified, ServerConfig, ServerEvent, ServerSession, StreamKind};

use bytes::{Bytes, BytesMut};

use crate::message::{Control, UserControl};
use crate::{ChunkReader, ChunkWriter, Error, Message, MessagePiece, PassOn, Piece};

/// One side of a connection once set up: its chunk reader (with the peer's chunk size,
/// per-chunk-stream header state and any unparsed bytes), its chunk writer, the output not
/// yet sent, and the message stream id the media stream has on this side.
///
/// Sessions hand their leg over with `into_leg`, so nothing buffered or negotiated is lost
/// between setup and relay.
#[derive(Debug)]
pub struct Leg {
    reader: ChunkReader,
    writer: ChunkWriter,
    /// A span of the other leg's input passed on as it is, to go out before `out` (one
    /// at most: see [`push_passed`](Self::push_passed)).
    span: Option<Bytes>,
    out: BytesMut,
    /// The last span passed on ended inside a chunk: what the writer writes waits in
    /// `deferred` for the chunk's end, so it cannot land inside the chunk.
    mid_chunk: bool,
    deferred: BytesMut,
    passed_total: u64,
    stream_id: u32,
}

impl Leg {
    /// A leg from its parts (for owners that drive the chunk layer themselves).
    pub fn new(reader: ChunkReader, writer: ChunkWriter, stream_id: u32) -> Self {
        Leg {
            reader,
            writer,
            span: None,
            out: BytesMut::new(),
            mid_chunk: false,
            deferred: BytesMut::new(),
            passed_total: 0,
            stream_id,
        }
    }

    /// Message stream id of the media stream on this leg.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The chunk reader.
    pub fn reader(&self) -> &ChunkReader {
        &self.reader
    }

    /// The chunk writer.
    pub fn writer(&self) -> &ChunkWriter {
        &self.writer
    }

    /// Appends bytes received from this leg's peer.
    pub fn feed(&mut self, data: &[u8]) {
        self.reader.feed(data);
    }

    /// The input buffer, to read from a socket straight into it.
    pub fn input_buffer(&mut self) -> &mut BytesMut {
        self.reader.buffer_mut()
    }

    /// The next message from the peer. Answers Ping requests and sends Acknowledgements
    /// when the peer's window is crossed, as every RTMP endpoint must, and still returns
    /// the message.
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        let Some(msg) = self.reader.next_message()? else {
            return Ok(None);
        };
        if let Some(seq) = self.reader.ack_due() {
            self.send_control(Control::Acknowledgement(seq))?;
        }
        if msg.type_id == crate::message::types::USER_CONTROL {
            if let Some(Control::UserControl(UserControl::PingRequest(t))) = Control::decode(&msg)?
            {
                self.send_control(Control::UserControl(UserControl::PingResponse(t)))?;
            }
        }
        Ok(Some(msg))
    }

    /// Like [`next_message`](Self::next_message), but messages that `stream(csid, type_id)`
    /// chooses come in pieces as they arrive (see [`ChunkReader::next_piece`]).
    pub fn next_piece<F>(&mut self, stream: F) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        self.next_inner(&stream, None)
    }

    /// Like [`next_piece`](Self::next_piece), with chunks passed on as they are where
    /// `pass` allows (see [`ChunkReader::next_passing`]); take them with
    /// [`take_passed`](Self::take_passed).
    pub fn next_passing<F>(&mut self, stream: F, pass: &PassOn) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        self.next_inner(&stream, Some(pass))
    }

    fn next_inner<F>(
        &mut self,
        stream: &F,
        pass: Option<&PassOn>,
    ) -> Result<Option<Piece<'_>>, Error>
    where
        F: Fn(u32, u8) -> bool,
    {
        // For the bytes the previous calls consumed: a piece borrows the reader, so the
        // acknowledgement a piece makes due goes out at the next call (the owner calls
        // until `None`, so none is left behind).
        if let Some(seq) = self.reader.ack_due() {
            self.send_control(Control::Acknowledgement(seq))?;
        }
        let piece = match pass {
            Some(pass) => self.reader.next_passing(stream, pass)?,
            None => self.reader.next_piece(stream)?,
        };
        if let Some(Piece::Message(msg)) = &piece {
            if msg.type_id == crate::message::types::USER_CONTROL {
                if let Some(Control::UserControl(UserControl::PingRequest(t))) =
                    Control::decode(msg)?
                {
                    let pong = Control::UserControl(UserControl::PingResponse(t)).to_message();
                    let sink = writer_sink(self.mid_chunk, &mut self.out, &mut self.deferred);
                    self.writer.write(&pong, sink)?;
                }
            }
        }
        Ok(piece)
    }

    /// Takes the bytes [`next_passing`](Self::next_passing) gathered, and whether they end
    /// at a chunk boundary (see [`ChunkReader::take_passed`]).
    pub fn take_passed(&mut self) -> (BytesMut, bool) {
        self.reader.take_passed()
    }

    /// Queues bytes passed on from the other leg. Without a copy when nothing is waiting
    /// before them (the usual case: the output was taken and written before the read
    /// that brought them); `at_boundary` tells whether they end a chunk, which is where
    /// what the writer writes meanwhile may go.
    ///
    /// A span keeps the whole input buffer it was split from alive, and the next read
    /// then goes to a new one: so at most one span waits here (the owner may hold the one
    /// before, being written), and the next are copied, or a peer that drips small reads
    /// while the other side does not read would pin a buffer per read.
    pub fn push_passed(&mut self, span: BytesMut, at_boundary: bool) {
        self.passed_total += span.len() as u64;
        if self.out.is_empty() && self.span.is_none() {
            self.span = Some(span.freeze());
        } else {
            self.out.extend_from_slice(&span);
        }
        self.mid_chunk = !at_boundary;
        if at_boundary && !self.deferred.is_empty() {
            if self.out.is_empty() {
                // `out` is empty here, and the deferred bytes are what the writer wrote.
                std::mem::swap(&mut self.out, &mut self.deferred);
            } else {
                self.out.extend_from_slice(&self.deferred);
                self.deferred.clear();
            }
        }
    }

    /// Bytes passed on to this leg as the other leg's peer sent them, so far.
    pub fn bytes_passed(&self) -> u64 {
        self.passed_total
    }

    /// Whether output waits for the end of a chunk passed on (see
    /// [`PassOn::want_boundary`]).
    pub fn wants_boundary(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Chunks `msg` into the output.
    pub fn send(&mut self, msg: &Message) -> Result<(), Error> {
        let sink = writer_sink(self.mid_chunk, &mut self.out, &mut self.deferred);
        self.writer.write(msg, sink)
    }

    /// Chunks what can be chunked of a message given in pieces into the output (see
    /// [`ChunkWriter::write_piece`]).
    pub fn send_piece(&mut self, piece: &MessagePiece<'_>) -> Result<(), Error> {
        self.writer.write_piece(piece, &mut self.out)
    }

    /// Like [`send_piece`](Self::send_piece), continuing a message whose start was passed
    /// on (see [`ChunkWriter::resume_piece`]).
    pub fn resume_piece(&mut self, piece: &MessagePiece<'_>) -> Result<(), Error> {
        self.writer.resume_piece(piece, &mut self.out)
    }

    /// Ends the message being sent in pieces on `csid`, telling the peer with an Abort
    /// if part of it went out.
    pub fn abort_piece(&mut self, csid: u32) -> Result<(), Error> {
        if self.writer.abort(csid) {
            self.send_control(Control::Abort(csid))?;
        }
        Ok(())
    }

    /// Chunks a protocol control message into the output.
    pub fn send_control(&mut self, control: Control) -> Result<(), Error> {
        self.send(&control.to_message())
    }

    /// Bytes waiting to be sent (what waits for the end of a chunk passed on not
    /// included).
    pub fn output_len(&self) -> usize {
        self.span_len() + self.out.len()
    }

    /// Bytes this leg holds: what its reader holds
    /// ([`ChunkReader::buffered_bytes`]), what its writer holds of messages sent in
    /// pieces ([`ChunkWriter::buffered_bytes`]) and the output not taken yet.
    pub fn buffered_bytes(&self) -> usize {
        self.reader.buffered_bytes()
            + self.writer.buffered_bytes()
            + self.span_len()
            + self.out.len()
            + self.deferred.len()
    }

    /// Takes the next bytes to send to the peer: all of them, unless a span was passed on
    /// (the span first then; call until [`output_len`](Self::output_len) is 0).
    pub fn take_output(&mut self) -> Bytes {
        self.span
            .take()
            .unwrap_or_else(|| self.out.split().freeze())
    }

    fn span_len(&self) -> usize {
        self.span.as_ref().map_or(0, Bytes::len)
    }
}

/// Where a leg's writer writes: the output, or, while the last span passed on ended inside
/// a chunk, the deferred bytes that follow the chunk's end. (A function of the fields, not
/// a method, so that it can be called while a piece borrows the reader.)
fn writer_sink<'a>(
    mid_chunk: bool,
    out: &'a mut BytesMut,
    deferred: &'a mut BytesMut,
) -> &'a mut BytesMut {
    if mid_chunk {
        deferred
    } else {
        out
    }
}
