//! The relay phase: messages from one leg re-chunked onto the other.
//!
//! Why messages and not raw bytes: after setup the two legs disagree on things raw chunks
//! depend on. The message stream id differs (the proxy answered `createStream` itself, the
//! origin picked its own), and fmt 1-3 headers refer to the previous header on the same
//! chunk stream, which on the origin leg was written by the proxy, not by the client. A raw
//! copy would need both chunk-stream states to match byte for byte from the switch point on,
//! which neither side controls.
//!
//! Media messages (audio, video, data, aggregates on chunk streams 3 and up) are not
//! reassembled, though: their bytes are handed over in pieces as they arrive and re-chunked
//! at once, with a fmt 0 header carrying the translated stream id and fmt 3 continuations,
//! so a byte of media is copied once, from the input into the other leg's output. (Bytes
//! short of a whole outgoing chunk wait in the writer, a chunk's worth at most.) The other
//! messages are few and small and go through whole, as the translation of commands and
//! user control events needs. The proxy's own messages (acknowledgements, ping responses,
//! aborts) use chunk stream 2, which is never streamed, so they cannot fall inside a
//! streamed message's chunks. The `rtmp_chunks` bench measures it.

use bytes::{Bytes, BytesMut};

use super::Leg;
use crate::command::Command;
use crate::message::{types, Control, UserControl};
use crate::{Amf0Limits, Error, Message, Piece};

/// Moves `msg` from message stream `from` to `to`: its header, the stream id inside User
/// Control stream events, and `deleteStream`/`closeStream`'s argument. Messages about other
/// streams (connection-level ones with id 0 among them) are returned unchanged.
pub fn rewrite_stream_id(
    mut msg: Message,
    from: u32,
    to: u32,
    limits: &Amf0Limits,
) -> Result<Message, Error> {
    if from == to {
        return Ok(msg);
    }
    match msg.type_id {
        types::USER_CONTROL => {
            if let Some(Control::UserControl(ev)) = Control::decode(&msg)? {
                if ev.stream_id() == Some(from) {
                    let mut rewritten = Control::UserControl(ev.with_stream_id(to)).to_message();
                    rewritten.csid = msg.csid;
                    rewritten.timestamp = msg.timestamp;
                    rewritten.stream_id = msg.stream_id;
                    msg = rewritten;
                }
            }
        }
        types::COMMAND_AMF0 => {
            if let Ok(Command::DeleteStream {
                transaction_id,
                stream_id,
            }) = Command::decode(&msg.payload, limits)
            {
                if stream_id == f64::from(from) {
                    let cmd = Command::DeleteStream {
                        transaction_id,
                        stream_id: f64::from(to),
                    };
                    let mut body = BytesMut::new();
                    cmd.encode(&mut body)?;
                    msg.payload = body.freeze();
                }
            }
        }
        _ => {}
    }
    if msg.stream_id == from {
        msg.stream_id = to;
    }
    Ok(msg)
}

/// Both legs after setup, relaying messages between them.
///
/// Per leg, the relay answers pings and sends acknowledgements itself, and drops the
/// peer's protocol control messages (chunk size, window, bandwidth, acknowledgements):
/// each leg negotiates those on its own. Everything else crosses over, on the same chunk
/// stream id and timestamp, with the media stream's message stream id translated.
///
/// The relay keeps one stream mapping (the one set up); a client that creates more streams
/// on the same connection gets them relayed with their ids unchanged.
#[derive(Debug)]
pub struct Relay {
    client: Leg,
    origin: Leg,
    limits: Amf0Limits,
}

#[derive(Clone, Copy)]
enum Dir {
    ToOrigin,
    ToClient,
}

impl Relay {
    /// A relay between the client's leg (from
    /// [`ServerSession::into_leg`](super::ServerSession::into_leg)) and the origin's (from
    /// [`ClientSession::into_leg`](super::ClientSession::into_leg)). Call
    /// [`process`](Self::process) once at the start: the legs may hold bytes already.
    pub fn new(client: Leg, origin: Leg) -> Self {
        Relay {
            client,
            origin,
            limits: Amf0Limits::default(),
        }
    }

    /// Processes what both legs have buffered.
    pub fn process(&mut self) -> Result<(), Error> {
        self.process_client()?;
        self.process_origin()?;
        Ok(())
    }

    /// Appends bytes from the client and relays every complete message.
    pub fn feed_client(&mut self, data: &[u8]) -> Result<(), Error> {
        self.client.feed(data);
        self.process_client()
    }

    /// Appends bytes from the origin and relays every complete message.
    pub fn feed_origin(&mut self, data: &[u8]) -> Result<(), Error> {
        self.origin.feed(data);
        self.process_origin()
    }

    /// The client leg's input buffer, to read into directly; then call
    /// [`process_client`](Self::process_client).
    pub fn client_input(&mut self) -> &mut BytesMut {
        self.client.input_buffer()
    }

    /// The origin leg's input buffer, to read into directly; then call
    /// [`process_origin`](Self::process_origin).
    pub fn origin_input(&mut self) -> &mut BytesMut {
        self.origin.input_buffer()
    }

    /// Relays every complete message the client leg has buffered.
    pub fn process_client(&mut self) -> Result<(), Error> {
        self.pump(Dir::ToOrigin)
    }

    /// Relays every complete message the origin leg has buffered.
    pub fn process_origin(&mut self) -> Result<(), Error> {
        self.pump(Dir::ToClient)
    }

    /// Takes the bytes to send to the client.
    pub fn take_for_client(&mut self) -> Bytes {
        self.client.take_output()
    }

    /// Takes the bytes to send to the origin.
    pub fn take_for_origin(&mut self) -> Bytes {
        self.origin.take_output()
    }

    /// Bytes waiting for the client: stop reading from the origin while this is large.
    pub fn pending_for_client(&self) -> usize {
        self.client.output_len()
    }

    /// Bytes waiting for the origin: stop reading from the client while this is large.
    pub fn pending_for_origin(&self) -> usize {
        self.origin.output_len()
    }

    /// Bytes both legs hold (see [`Leg::buffered_bytes`]): partial messages, input not
    /// parsed and output not taken. Cheap, for owners that account memory per read.
    pub fn buffered_bytes(&self) -> usize {
        self.client.buffered_bytes() + self.origin.buffered_bytes()
    }

    /// The client's leg.
    pub fn client(&self) -> &Leg {
        &self.client
    }

    /// The origin's leg.
    pub fn origin(&self) -> &Leg {
        &self.origin
    }

    fn pump(&mut self, dir: Dir) -> Result<(), Error> {
        let (from, to) = match dir {
            Dir::ToOrigin => (&mut self.client, &mut self.origin),
            Dir::ToClient => (&mut self.origin, &mut self.client),
        };
        let (from_id, to_id) = (from.stream_id, to.stream_id);
        while let Some(piece) = from.next_piece(streamed)? {
            match piece {
                Piece::Part(mut part) => {
                    if part.stream_id == from_id {
                        part.stream_id = to_id;
                    }
                    to.send_piece(&part)?;
                }
                Piece::Message(msg) => {
                    if msg.type_id == types::ABORT && msg.stream_id == 0 {
                        // The reader dropped what it had of that chunk stream's message;
                        // the other leg's peer may have its first chunks.
                        if let Some(Control::Abort(csid)) = Control::decode(&msg)? {
                            to.abort_piece(csid)?;
                        }
                    }
                    if let Some(msg) = translate(msg, from_id, to_id, &self.limits)? {
                        to.send(&msg)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The messages relayed in pieces: media, whose translation touches only the header, on
/// chunk streams other than the one the proxy writes its own messages on.
fn streamed(csid: u32, type_id: u8) -> bool {
    csid >= 3
        && matches!(
            type_id,
            types::AUDIO | types::VIDEO | types::AGGREGATE | types::DATA_AMF0
        )
}

fn translate(
    msg: Message,
    from: u32,
    to: u32,
    limits: &Amf0Limits,
) -> Result<Option<Message>, Error> {
    match msg.type_id {
        types::SET_CHUNK_SIZE
        | types::ABORT
        | types::ACKNOWLEDGEMENT
        | types::WINDOW_ACK_SIZE
        | types::SET_PEER_BANDWIDTH => Ok(None),
        types::USER_CONTROL => match Control::decode(&msg)? {
            Some(Control::UserControl(
                UserControl::PingRequest(_) | UserControl::PingResponse(_),
            )) => Ok(None),
            _ => rewrite_stream_id(msg, from, to, limits).map(Some),
        },
        // Media is the hot path: only the header changes.
        types::AUDIO | types::VIDEO | types::AGGREGATE | types::DATA_AMF0 => {
            Ok(Some(if msg.stream_id == from {
                msg.with_stream_id(to)
            } else {
                msg
            }))
        }
        _ => rewrite_stream_id(msg, from, to, limits).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChunkReader, ChunkWriter, Leg};

    fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        reader.feed(bytes);
        let mut out = Vec::new();
        while let Some(msg) = reader.next_message().unwrap() {
            out.push(msg);
        }
        out
    }

    /// A video frame streamed across, with audio between its chunks, then aborted by the
    /// client: the origin gets the audio on its stream id, an Abort for the frame's chunk
    /// stream (part of it went out), and the next frame whole.
    #[test]
    fn an_aborted_streamed_frame_is_aborted_on_the_other_leg() {
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(
            ChunkReader::new(),
            ChunkWriter::with_chunk_size(100).unwrap(),
            7,
        );
        let mut relay = Relay::new(client, origin);
        // Chunk size 128 from the client: a 1000-byte frame's header and two chunks, an
        // audio message on csid 4 in between, an Abort of csid 6, then a new frame.
        let mut wire = vec![0x06, 0, 0, 40, 0, 0x03, 0xe8, 9, 1, 0, 0, 0];
        wire.extend([0x17; 128]);
        let audio = Message::new(4, types::AUDIO, 1, 40, Bytes::from(vec![0xaf; 50]));
        let mut audio_wire = BytesMut::new();
        ChunkWriter::new().write(&audio, &mut audio_wire).unwrap();
        wire.extend_from_slice(&audio_wire);
        wire.push(0xc6);
        wire.extend([0x17; 128]);
        let mut tail = BytesMut::new();
        let mut w = ChunkWriter::new();
        w.write(&Control::Abort(6).to_message(), &mut tail).unwrap();
        let frame = Message::new(6, types::VIDEO, 1, 80, Bytes::from(vec![0x27; 300]));
        w.write(&frame, &mut tail).unwrap();
        wire.extend_from_slice(&tail);

        let mut origin_reader = ChunkReader::new();
        origin_reader.set_chunk_size(100).unwrap();
        let mut got = Vec::new();
        for piece in wire.chunks(37) {
            relay.feed_client(piece).unwrap();
            got.extend(read_all(&mut origin_reader, &relay.take_for_origin()));
        }
        assert_eq!(
            got,
            vec![
                audio.with_stream_id(7),
                Control::Abort(6).to_message(),
                frame.with_stream_id(7),
            ]
        );
        assert_eq!(relay.buffered_bytes(), 0);
    }

    /// Media on chunk stream 2 is relayed whole, so the proxy's own messages there
    /// (acknowledgements) never land inside it.
    #[test]
    fn media_on_the_control_chunk_stream_is_relayed_whole() {
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(ChunkReader::new(), ChunkWriter::new(), 7);
        let mut relay = Relay::new(client, origin);
        let odd = Message::new(2, types::VIDEO, 1, 0, Bytes::from(vec![1; 500]));
        let wire = ChunkWriter::new().to_bytes(&odd).unwrap();
        relay.feed_client(&wire[..300]).unwrap();
        assert_eq!(relay.pending_for_origin(), 0);
        relay.feed_client(&wire[300..]).unwrap();
        let got = read_all(&mut ChunkReader::new(), &relay.take_for_origin());
        assert_eq!(got, vec![odd.with_stream_id(7)]);
    }
}
