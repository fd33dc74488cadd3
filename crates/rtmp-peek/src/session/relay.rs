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
//!
//! Where the two legs do line up, media is not re-chunked at all (pass-through, on unless
//! [`Relay::with_pass_through`] says otherwise): a chunk stream whose header-compression
//! state the other leg's peer shares has its chunks passed on as the peer's own bytes,
//! one contiguous span of the input per read, with only the message stream id of fmt 0
//! headers rewritten in place. The state becomes shared when the peer sends a fmt 0 header
//! on that chunk stream and the chunk is passed on; it stays so while every chunk on it
//! is; anything re-chunked on it (a command, an extended timestamp) ends it until the next
//! fmt 0 header. Chunk boundaries follow from the chunk size, so each leg's writer takes
//! the other leg's peer's chunk size: it is announced when the relay starts and each Set
//! Chunk Size is passed on where it came (up to [`MAX_FOLLOWED_CHUNK_SIZE`]; past it the
//! legs part and media is re-chunked as before). The proxy's own messages to a leg wait
//! for the end of a chunk passed on (see [`Leg::push_passed`]).

use bytes::{Bytes, BytesMut};

use super::Leg;
use crate::command::Command;
use crate::message::{types, Control, UserControl};
use crate::{Amf0Limits, Error, Message, PassOn, Piece};

/// Largest chunk size a leg's writer takes from the other leg's peer. A writer holds up
/// to a chunk per message it re-chunks in pieces; a larger Set Chunk Size is dropped, as
/// without pass-through, and the legs' chunks are then no longer passed on as they are.
/// Encoders and servers use 4096 (ffmpeg, OBS, nginx-rtmp) to 60000 (SRS).
pub const MAX_FOLLOWED_CHUNK_SIZE: u32 = 64 * 1024;

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
/// peer's protocol control messages (window, bandwidth, acknowledgements): each leg
/// negotiates those on its own. Set Chunk Size is dropped too without pass-through; with
/// it, it is passed on (up to [`MAX_FOLLOWED_CHUNK_SIZE`]) so that both legs chunk alike. Everything else crosses over, on the same chunk
/// stream id and timestamp, with the media stream's message stream id translated.
///
/// The relay keeps one stream mapping (the one set up); a client that creates more streams
/// on the same connection gets them relayed with their ids unchanged.
#[derive(Debug)]
pub struct Relay {
    client: Leg,
    origin: Leg,
    limits: Amf0Limits,
    pass_through: bool,
    /// The chunk sizes were aligned (pass-through only; done at the first processing).
    aligned: bool,
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
        Self::with_pass_through(client, origin, true)
    }

    /// Like [`new`](Self::new); with `pass_through` false, every chunk is re-chunked and
    /// each leg keeps its own chunk size (the behaviour before pass-through, kept for
    /// comparison and diagnosis).
    pub fn with_pass_through(client: Leg, origin: Leg, pass_through: bool) -> Self {
        Relay {
            client,
            origin,
            limits: Amf0Limits::default(),
            pass_through,
            aligned: false,
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

    /// Each leg's writer takes the chunk size the other leg's peer sends with, so that
    /// chunks can be passed on from the start.
    fn align(&mut self) -> Result<(), Error> {
        self.aligned = true;
        let (to_origin, to_client) = (
            self.client.reader.chunk_size(),
            self.origin.reader.chunk_size(),
        );
        for (size, to) in [(to_origin, &mut self.origin), (to_client, &mut self.client)] {
            if size != to.writer.chunk_size() && size <= MAX_FOLLOWED_CHUNK_SIZE {
                to.send_control(Control::SetChunkSize(size))?;
            }
        }
        Ok(())
    }

    fn pump(&mut self, dir: Dir) -> Result<(), Error> {
        if self.pass_through && !self.aligned {
            self.align()?;
        }
        let (from, to) = match dir {
            Dir::ToOrigin => (&mut self.client, &mut self.origin),
            Dir::ToClient => (&mut self.origin, &mut self.client),
        };
        let (from_id, to_id) = (from.stream_id, to.stream_id);
        loop {
            let piece = if self.pass_through {
                let pass = PassOn {
                    from_stream_id: from_id,
                    to_stream_id: to_id,
                    chunk_size: to.writer.chunk_size(),
                    want_boundary: to.wants_boundary(),
                };
                from.next_passing(streamed, &pass)?
            } else {
                from.next_piece(streamed)?
            };
            match piece {
                None => {
                    if from.reader.passed() == 0 {
                        break;
                    }
                    let (span, at_boundary) = from.take_passed();
                    to.push_passed(span, at_boundary);
                }
                Some(Piece::Part(mut part)) => {
                    if part.stream_id == from_id {
                        part.stream_id = to_id;
                    }
                    if self.pass_through {
                        // A piece past the start of a message the writer has not seen
                        // continues one passed on until the chunk sizes parted.
                        to.resume_piece(&part)?;
                    } else {
                        to.send_piece(&part)?;
                    }
                }
                Some(Piece::Message(msg)) => {
                    if msg.type_id == types::ABORT && msg.stream_id == 0 {
                        // The reader dropped what it had of that chunk stream's message;
                        // the other leg's peer may have its first chunks.
                        if let Some(Control::Abort(csid)) = Control::decode(&msg)? {
                            if from.reader.take_passing_aborted() {
                                to.writer.abort(csid);
                                to.send_control(Control::Abort(csid))?;
                            } else {
                                to.abort_piece(csid)?;
                            }
                        }
                    }
                    if self.pass_through && msg.type_id == types::SET_CHUNK_SIZE {
                        // Passed on where it came, so the chunks after it still line up.
                        if let Some(Control::SetChunkSize(size)) = Control::decode(&msg)? {
                            if size <= MAX_FOLLOWED_CHUNK_SIZE {
                                to.send(&msg)?;
                            }
                        }
                        continue;
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
        // Re-chunking: the legs keep their own chunk sizes.
        let mut relay = Relay::with_pass_through(client, origin, false);
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

    /// A client stream as an encoder writes it: fmt 0 to 3 headers where the previous
    /// header on the chunk stream allows them (as ffmpeg and OBS compress), fmt 3
    /// continuations with the extended timestamp repeated, two messages' chunks
    /// interleaved at times, Set Chunk Size and Abort on chunk stream 2. (From the
    /// reverted run-passing branch, with fmt 2 and 3 message starts added.)
    #[derive(Debug, Clone)]
    enum Op {
        Msg {
            csid: u32,
            type_id: u8,
            stream_id: u32,
            /// Timestamp delta from the chunk stream's previous message.
            delta: u32,
            len: usize,
            /// The header format asked for; the encoder falls back to a fuller one where
            /// the previous header does not allow it.
            fmt: u8,
            interleave: bool,
        },
        ChunkSize(u32),
        /// The next message is cut after its first chunk and aborted.
        AbortNext,
    }

    const EXT: u32 = 0x00ff_ffff;

    fn basic(out: &mut Vec<u8>, fmt: u8, csid: u32) {
        match csid {
            0..=63 => out.push(fmt << 6 | csid as u8),
            64..=319 => out.extend([fmt << 6, (csid - 64) as u8]),
            _ => out.extend([fmt << 6 | 1, (csid - 64) as u8, ((csid - 64) >> 8) as u8]),
        }
    }

    /// The wire bytes of `ops`, chunked as an encoder would.
    fn encoder_wire(ops: &[Op]) -> Vec<u8> {
        use std::collections::HashMap;
        let mut out = Vec::new();
        let mut size = 128usize;
        // Per chunk stream: (timestamp, stream id, length, type, timestamp field).
        let mut last: HashMap<u32, (u32, u32, usize, u8, u32)> = HashMap::new();
        let mut abort_next = false;
        // Chunks of a message held back to interleave.
        let mut held: Option<Vec<Vec<u8>>> = None;
        for op in ops {
            match op {
                Op::ChunkSize(n) => {
                    if let Some(h) = held.take() {
                        h.iter().for_each(|c| out.extend_from_slice(c));
                    }
                    let msg = Control::SetChunkSize(*n).to_message();
                    out.extend_from_slice(&ChunkWriter::new().to_bytes(&msg).unwrap());
                    size = *n as usize;
                }
                Op::AbortNext => abort_next = true,
                Op::Msg {
                    csid,
                    type_id,
                    stream_id,
                    delta,
                    len,
                    fmt,
                    interleave,
                } => {
                    let (csid, delta, len, type_id) = (*csid, *delta, *len, *type_id);
                    if held.as_ref().is_some_and(|_| last.contains_key(&csid)) {
                        // Never two messages of one chunk stream interleaved.
                        if let Some(h) = held.take() {
                            h.iter().for_each(|c| out.extend_from_slice(c));
                        }
                    }
                    let prev = last.get(&csid).copied();
                    let same_sid = prev.is_some_and(|p| p.1 == *stream_id);
                    let same_shape = same_sid && prev.is_some_and(|p| p.2 == len && p.3 == type_id);
                    let fmt = match *fmt {
                        3 if same_shape && prev.is_some_and(|p| p.4 == delta) => 3,
                        2 | 3 if same_shape => 2,
                        1..=3 if same_sid => 1,
                        _ => 0,
                    };
                    let ts = match prev {
                        Some(p) if fmt > 0 => p.0.wrapping_add(delta),
                        Some(p) => p.0.wrapping_add(delta) % 0x2000_0000,
                        None => delta,
                    };
                    let field = if fmt == 0 { ts } else { delta };
                    let mut header = Vec::new();
                    basic(&mut header, fmt, csid);
                    if fmt < 3 {
                        header.extend_from_slice(&field.min(EXT).to_be_bytes()[1..]);
                    }
                    if fmt < 2 {
                        header.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
                        header.push(type_id);
                    }
                    if fmt == 0 {
                        header.extend_from_slice(&stream_id.to_le_bytes());
                    }
                    if field >= EXT {
                        header.extend_from_slice(&field.to_be_bytes());
                    }
                    last.insert(csid, (ts, *stream_id, len, type_id, field));
                    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    let mut chunks = Vec::new();
                    for (i, part) in payload.chunks(size).enumerate() {
                        let mut c = if i == 0 {
                            header.clone()
                        } else {
                            let mut c = Vec::new();
                            basic(&mut c, 3, csid);
                            if field >= EXT {
                                c.extend_from_slice(&field.to_be_bytes());
                            }
                            c
                        };
                        c.extend_from_slice(part);
                        chunks.push(c);
                    }
                    if chunks.is_empty() {
                        chunks.push(header);
                    }
                    if std::mem::take(&mut abort_next) {
                        chunks.truncate(1);
                        if len > size {
                            let abort = Control::Abort(csid).to_message();
                            let mut w = ChunkWriter::with_chunk_size(size as u32).unwrap();
                            chunks.push(w.to_bytes(&abort).unwrap().to_vec());
                        }
                    }
                    match held.take() {
                        Some(h) => {
                            let n = h.len().max(chunks.len());
                            for i in 0..n {
                                if let Some(c) = h.get(i) {
                                    out.extend_from_slice(c);
                                }
                                if let Some(c) = chunks.get(i) {
                                    out.extend_from_slice(c);
                                }
                            }
                        }
                        None if *interleave => held = Some(chunks),
                        None => chunks.iter().for_each(|c| out.extend_from_slice(c)),
                    }
                }
            }
        }
        if let Some(h) = held.take() {
            h.iter().for_each(|c| out.extend_from_slice(c));
        }
        out
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (
                prop::sample::select(vec![3u32, 4, 6, 70, 400]),
                prop::sample::select(vec![
                    types::AUDIO,
                    types::VIDEO,
                    types::DATA_AMF0,
                    types::COMMAND_AMF0,
                ]),
                1u32..3,
                prop_oneof![Just(0u32), Just(33), 0u32..100_000, (EXT - 50)..(EXT + 50)],
                prop_oneof![0usize..300, 0usize..20_000],
                0u8..4,
                any::<bool>(),
            )
                .prop_map(|(csid, type_id, stream_id, delta, len, fmt, interleave)| Op::Msg {
                    csid,
                    type_id,
                    stream_id,
                    delta,
                    len,
                    fmt,
                    interleave,
                }),
            1 => prop::sample::select(vec![128u32, 1000, 4096, 100_000]).prop_map(Op::ChunkSize),
            1 => Just(Op::AbortNext),
        ]
    }

    /// What the origin's peer gets when the relay reads `wire` from the client in pieces
    /// of the `cuts` sizes (cycled), towards an origin leg at `chunk_size`, with the
    /// origin pinging the proxy after every `ping_every`th read: the messages it reads
    /// (protocol control and ping responses left out: they differ by design), the pongs
    /// it got, and whether the relay failed. Each read's output is checked to go out in
    /// one piece when nothing else waits.
    fn relayed(
        wire: &[u8],
        cuts: &[usize],
        chunk_size: u32,
        mode: Mode,
        ping_every: usize,
    ) -> (Vec<Message>, usize, bool, u64) {
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(
            ChunkReader::new(),
            ChunkWriter::with_chunk_size(chunk_size).unwrap(),
            7,
        );
        let mut relay = Relay::with_pass_through(client, origin, mode == Mode::Passing);
        let mut peer = ChunkReader::new();
        peer.set_chunk_size(chunk_size).unwrap();
        let mut pinger = ChunkWriter::new();
        let (mut got, mut pongs) = (Vec::new(), 0);
        let mut rest = wire;
        let mut failed = false;
        for (i, cut) in cuts.iter().cycle().enumerate() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*cut).clamp(1, rest.len()));
            rest = tail;
            relay.client_input().extend_from_slice(piece);
            if relay.process_client().is_err() {
                failed = true;
                break;
            }
            if ping_every > 0 && i % ping_every == 0 {
                let ping = Control::UserControl(UserControl::PingRequest(i as u32)).to_message();
                let bytes = pinger.to_bytes(&ping).unwrap();
                relay.feed_origin(&bytes).unwrap();
            }
            while relay.pending_for_origin() > 0 {
                let out = relay.take_for_origin();
                peer.feed(&out);
            }
            while let Some(msg) = peer
                .next_message()
                .expect("the origin's peer reads the relay's bytes")
            {
                match msg.type_id {
                    types::SET_CHUNK_SIZE
                    | types::ABORT
                    | types::ACKNOWLEDGEMENT
                    | types::WINDOW_ACK_SIZE
                    | types::SET_PEER_BANDWIDTH => {}
                    types::USER_CONTROL => pongs += 1,
                    _ => got.push(msg),
                }
            }
        }
        (got, pongs, failed, relay.origin().bytes_passed())
    }

    /// How `relayed` relays.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Rechunk,
        /// Pass-through (the default).
        Passing,
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Passing chunks on as they are gives the origin's peer exactly the messages
        /// re-chunking gives it, whatever the stream and however reads cut it, with the
        /// proxy's pongs to the origin landing between chunks (a pong inside a chunk would
        /// make the peer's reader fail or read other messages).
        #[test]
        fn passing_chunks_on_delivers_what_rechunking_does(
            ops in proptest::collection::vec(op(), 1..40),
            cuts in proptest::collection::vec(1usize..70_000, 1..8),
            chunk_size in proptest::sample::select(vec![128u32, 4096]),
            ping_every in 0usize..3,
        ) {
            let wire = encoder_wire(&ops);
            let plain = relayed(&wire, &cuts, chunk_size, Mode::Rechunk, ping_every);
            let passed = relayed(&wire, &cuts, chunk_size, Mode::Passing, ping_every);
            proptest::prop_assert!(plain.0 == passed.0, "the messages differ");
            proptest::prop_assert_eq!((plain.1, plain.2), (passed.1, passed.2));
        }
    }

    /// A small stream with every kind of header, an abort, a chunk size change past the
    /// followed limit mid-message and an extended timestamp, split into two reads at every
    /// offset: the same messages as re-chunking in one read.
    #[test]
    fn passing_on_survives_a_read_split_at_every_offset() {
        let msg = |csid, type_id, delta, len, fmt, interleave| Op::Msg {
            csid,
            type_id,
            stream_id: 1,
            delta,
            len,
            fmt,
            interleave,
        };
        let ops = vec![
            Op::ChunkSize(200),
            msg(6, types::VIDEO, 0, 700, 0, false),
            msg(6, types::VIDEO, 33, 700, 3, true),
            msg(4, types::AUDIO, 21, 90, 0, false),
            msg(6, types::VIDEO, 33, 500, 1, false),
            msg(6, types::VIDEO, 33, 500, 2, false),
            Op::AbortNext,
            msg(6, types::VIDEO, 33, 500, 3, false),
            msg(6, types::VIDEO, 33, 300, 1, true),
            Op::ChunkSize(100_000),
            msg(6, types::VIDEO, EXT + 5, 300, 1, false),
            msg(6, types::VIDEO, 40, 300, 3, false),
            msg(4, types::COMMAND_AMF0, 0, 40, 1, false),
            msg(4, types::AUDIO, 21, 90, 0, false),
            Op::ChunkSize(150),
            msg(6, types::VIDEO, 0, 400, 0, false),
        ];
        let wire = encoder_wire(&ops);
        let (want, _, failed, none) = relayed(&wire, &[wire.len()], 4096, Mode::Rechunk, 0);
        assert!(!failed);
        assert_eq!(none, 0);
        assert_eq!(want.len(), 11);
        for at in 1..wire.len() {
            let got = relayed(&wire, &[at, wire.len()], 4096, Mode::Passing, 1);
            assert!((&got.0, got.2) == (&want, false), "split at {at}");
            // The video and audio before the chunk size outgrew the followed limit.
            assert!(got.3 > 2000, "split at {at}: {} passed on", got.3);
        }
    }

    /// An encoder's stream at the origin leg's chunk size goes out as the client's own
    /// bytes, one span per read taken straight from the input buffer, on the origin's
    /// stream id.
    #[test]
    fn lined_up_media_is_passed_on_in_place_one_span_per_read() {
        let mut ops = vec![Op::ChunkSize(4096)];
        for i in 0..20u32 {
            ops.push(Op::Msg {
                csid: 6,
                type_id: types::VIDEO,
                stream_id: 1,
                delta: if i == 0 { 0 } else { 33 },
                len: 48 * 1024,
                fmt: 3,
                interleave: false,
            });
        }
        let wire = encoder_wire(&ops);
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(
            ChunkReader::new(),
            ChunkWriter::with_chunk_size(4096).unwrap(),
            7,
        );
        let mut relay = Relay::new(client, origin);
        // The relay's start aligns the origin's chunk size with the client's (128 until
        // the client's Set Chunk Size, 16 bytes, which goes through the writer).
        relay.feed_client(&wire[..16]).unwrap();
        let mut all = Vec::new();
        while relay.pending_for_origin() > 0 {
            all.extend_from_slice(&relay.take_for_origin());
        }
        let align = ChunkWriter::new()
            .to_bytes(&Control::SetChunkSize(128).to_message())
            .unwrap();
        assert!(
            all.starts_with(&align),
            "the relay announces the client's chunk size"
        );
        let mut all = all.split_off(align.len());
        let mut spans = 0;
        for read in wire[16..].chunks(64 * 1024) {
            let input = relay.client_input();
            input.extend_from_slice(read);
            let at = input.as_ptr();
            relay.process_client().unwrap();
            let span = relay.take_for_origin();
            assert_eq!(
                span.as_ptr(),
                at,
                "the span is the input buffer's own bytes"
            );
            assert_eq!(relay.pending_for_origin(), 0, "one span per read");
            spans += 1;
            all.extend_from_slice(&span);
        }
        assert_eq!(spans, wire[16..].len().div_ceil(64 * 1024));
        // The bytes are the client's, but for the stream id of the fmt 0 header.
        let mut expected = wire.clone();
        expected[16 + 8..16 + 12].copy_from_slice(&7u32.to_le_bytes());
        assert!(all == expected, "the client's bytes, but for the stream id");
        assert_eq!(relay.origin().bytes_passed(), wire.len() as u64 - 16);
        let mut reader = ChunkReader::new();
        let got = read_all(&mut reader, &all);
        assert_eq!(got.len(), 21);
        for (i, msg) in got[1..].iter().enumerate() {
            assert_eq!(
                (msg.stream_id, msg.timestamp, msg.payload.len()),
                (7, i as u32 * 33, 48 * 1024)
            );
        }
        assert_eq!(relay.buffered_bytes(), 0);
    }

    /// Small reads while nothing is taken (an origin that does not read): one span waits
    /// as it was split off the input, the rest is copied behind it, so the input buffers
    /// pinned stay at one; the bytes are the same.
    #[test]
    fn spans_waiting_for_a_stalled_peer_pin_one_input_buffer() {
        let mut ops = Vec::new();
        for i in 0..4u32 {
            ops.push(Op::Msg {
                csid: 6,
                type_id: types::VIDEO,
                stream_id: 1,
                delta: if i == 0 { 0 } else { 40 },
                len: 1000,
                fmt: 1,
                interleave: false,
            });
        }
        let wire = encoder_wire(&ops);
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(ChunkReader::new(), ChunkWriter::new(), 7);
        let mut relay = Relay::new(client, origin);
        for read in wire.chunks(50) {
            relay.feed_client(read).unwrap();
        }
        assert_eq!(relay.origin().bytes_passed(), wire.len() as u64);
        let first = relay.take_for_origin();
        let rest = relay.take_for_origin();
        assert_eq!(relay.pending_for_origin(), 0, "one span and one copied run");
        assert_eq!(first.len(), 50);
        let mut all = first.to_vec();
        all.extend_from_slice(&rest);
        let mut expected = wire.clone();
        expected[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert!(all == expected, "the client's bytes, but for the stream id");
    }
}
