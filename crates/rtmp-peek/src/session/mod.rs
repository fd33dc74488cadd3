//! Connection state machines built on the lower layers: [`ServerSession`] (a client's leg,
//! up to knowing its stream), [`ClientSession`] (the proxy's leg to an origin, up to the
//! origin's verdict) and [`Relay`] (both legs, after setup).

mod client;
mod relay;
mod server;

pub use client::{ClientConfig, ClientEvent, ClientSession, OriginRequest, SetupStage};
pub use relay::{rewrite_stream_id, Relay};
pub use server::{split_query, Identified, ServerConfig, ServerEvent, ServerSession, StreamKind};

use bytes::{Bytes, BytesMut};

use crate::message::{Control, UserControl};
use crate::{ChunkReader, ChunkWriter, Error, Message, MessagePiece, Piece};

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
    out: BytesMut,
    stream_id: u32,
}

impl Leg {
    /// A leg from its parts (for owners that drive the chunk layer themselves).
    pub fn new(reader: ChunkReader, writer: ChunkWriter, stream_id: u32) -> Self {
        Leg {
            reader,
            writer,
            out: BytesMut::new(),
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
        // For the bytes the previous calls consumed: a piece borrows the reader, so the
        // acknowledgement a piece makes due goes out at the next call (the owner calls
        // until `None`, so none is left behind).
        if let Some(seq) = self.reader.ack_due() {
            self.writer
                .write(&Control::Acknowledgement(seq).to_message(), &mut self.out)?;
        }
        let piece = self.reader.next_piece(stream)?;
        if let Some(Piece::Message(msg)) = &piece {
            if msg.type_id == crate::message::types::USER_CONTROL {
                if let Some(Control::UserControl(UserControl::PingRequest(t))) =
                    Control::decode(msg)?
                {
                    let pong = Control::UserControl(UserControl::PingResponse(t)).to_message();
                    self.writer.write(&pong, &mut self.out)?;
                }
            }
        }
        Ok(piece)
    }

    /// Chunks `msg` into the output.
    pub fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.writer.write(msg, &mut self.out)
    }

    /// Chunks what can be chunked of a message given in pieces into the output (see
    /// [`ChunkWriter::write_piece`]).
    pub fn send_piece(&mut self, piece: &MessagePiece<'_>) -> Result<(), Error> {
        self.writer.write_piece(piece, &mut self.out)
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

    /// Bytes waiting to be sent.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Bytes this leg holds: what its reader holds
    /// ([`ChunkReader::buffered_bytes`]), what its writer holds of messages sent in
    /// pieces ([`ChunkWriter::buffered_bytes`]) and the output not taken yet.
    pub fn buffered_bytes(&self) -> usize {
        self.reader.buffered_bytes() + self.writer.buffered_bytes() + self.out.len()
    }

    /// Takes the bytes to send to the peer.
    pub fn take_output(&mut self) -> Bytes {
        self.out.split().freeze()
    }
}
