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
//! streamed message's chunks.
//!
//! Where the two legs' chunking agrees (the same chunk size, no extended timestamp), even
//! that copy goes: [`Relay::process_client_passing`] takes runs of whole chunks out of the
//! input as they are ([`ChunkReader::next_run`](crate::ChunkReader::next_run)), writes only
//! the header before each run, and hands the run's bytes on in the output's pieces. The
//! client's fmt 3 headers between the chunks are the ones the writer would have written,
//! so the peer gets the same bytes as from re-chunking. The `rtmp_chunks` bench measures
//! both.

use std::collections::VecDeque;

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
        self.pump(Dir::ToOrigin, false)
    }

    /// Relays every complete message the origin leg has buffered.
    pub fn process_origin(&mut self) -> Result<(), Error> {
        self.pump(Dir::ToClient, false)
    }

    /// Like [`process_client`](Self::process_client), passing media on as the client's
    /// chunks without a copy where they line up with the origin leg's (see
    /// [`Leg::send_run`]). The output then shares the input buffer's storage until it is
    /// dropped: an owner bounding memory does this only while no earlier output is still
    /// held, and takes the output with [`take_for_origin_into`](Self::take_for_origin_into).
    /// The bytes sent are the same either way.
    pub fn process_client_passing(&mut self) -> Result<(), Error> {
        self.pump(Dir::ToOrigin, true)
    }

    /// [`process_client_passing`](Self::process_client_passing) the other way.
    pub fn process_origin_passing(&mut self) -> Result<(), Error> {
        self.pump(Dir::ToClient, true)
    }

    /// Moves the bytes to send to the client to the end of `into`, as pieces.
    pub fn take_for_client_into(&mut self, into: &mut VecDeque<Bytes>) {
        self.client.take_output_into(into)
    }

    /// Moves the bytes to send to the origin to the end of `into`, as pieces.
    pub fn take_for_origin_into(&mut self, into: &mut VecDeque<Bytes>) {
        self.origin.take_output_into(into)
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

    fn pump(&mut self, dir: Dir, passing: bool) -> Result<(), Error> {
        let (from, to) = match dir {
            Dir::ToOrigin => (&mut self.client, &mut self.origin),
            Dir::ToClient => (&mut self.origin, &mut self.client),
        };
        let (from_id, to_id) = (from.stream_id, to.stream_id);
        let run_chunk_size = passing.then(|| to.writer.chunk_size());
        while let Some(piece) = from.next_run(streamed, run_chunk_size)? {
            match piece {
                Piece::Run(mut run) => {
                    if run.stream_id == from_id {
                        run.stream_id = to_id;
                    }
                    to.send_run(&run)?;
                }
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

    /// A client stream as an encoder writes it: fmt 0 or fmt 1 headers (ffmpeg's), fmt 3
    /// continuations with the extended timestamp repeated, two messages' chunks
    /// interleaved at times, Set Chunk Size and Abort on chunk stream 2.
    #[derive(Debug, Clone)]
    enum Op {
        Msg {
            csid: u32,
            type_id: u8,
            stream_id: u32,
            ts: u32,
            len: usize,
            fmt1: bool,
            interleave: bool,
        },
        ChunkSize(u32),
        /// The next message is cut after its first chunk and aborted.
        AbortNext,
    }

    fn basic(out: &mut Vec<u8>, fmt: u8, csid: u32) {
        let mut b = [0u8; 3];
        let n = crate::chunk::reader_basic_header(&mut b, fmt, csid);
        out.extend_from_slice(&b[..n]);
    }

    /// The wire bytes of `ops`, chunked as an encoder would.
    fn encoder_wire(ops: &[Op]) -> Vec<u8> {
        use std::collections::HashMap;
        let mut out = Vec::new();
        let mut size = 128usize;
        // Per chunk stream: (timestamp, stream id).
        let mut last: HashMap<u32, (u32, u32)> = HashMap::new();
        let mut abort_next = false;
        // Chunks (header bytes, payload) of a message held back to interleave.
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
                    ts,
                    len,
                    fmt1,
                    interleave,
                } => {
                    let (csid, ts) = (*csid, *ts);
                    let mut header = Vec::new();
                    let prev = last.get(&csid).copied();
                    let field = match prev {
                        Some((prev_ts, prev_sid)) if *fmt1 && prev_sid == *stream_id => {
                            let delta = ts.wrapping_sub(prev_ts);
                            basic(&mut header, 1, csid);
                            let f = delta.min(EXT);
                            header.extend_from_slice(&f.to_be_bytes()[1..]);
                            header.extend_from_slice(&(*len as u32).to_be_bytes()[1..]);
                            header.push(*type_id);
                            delta
                        }
                        _ => {
                            basic(&mut header, 0, csid);
                            header.extend_from_slice(&ts.min(EXT).to_be_bytes()[1..]);
                            header.extend_from_slice(&(*len as u32).to_be_bytes()[1..]);
                            header.push(*type_id);
                            header.extend_from_slice(&stream_id.to_le_bytes());
                            ts
                        }
                    };
                    if field >= EXT {
                        header.extend_from_slice(&field.to_be_bytes());
                    }
                    last.insert(csid, (ts, *stream_id));
                    let payload: Vec<u8> = (0..*len).map(|i| (i % 251) as u8).collect();
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
                        if *len > size {
                            let abort = Control::Abort(csid).to_message();
                            let mut w = ChunkWriter::with_chunk_size(size as u32).unwrap();
                            chunks.push(w.to_bytes(&abort).unwrap().to_vec());
                        }
                    }
                    match held.take() {
                        // Interleave with the held message, chunk by chunk.
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

    const EXT: u32 = 0x00ff_ffff;

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (
                prop::sample::select(vec![3u32, 4, 6, 70, 400]),
                prop::sample::select(vec![types::AUDIO, types::VIDEO, types::DATA_AMF0, types::COMMAND_AMF0]),
                1u32..3,
                prop_oneof![0u32..100_000, (EXT - 50)..(EXT + 50)],
                prop_oneof![0usize..300, 0usize..20_000],
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(csid, type_id, stream_id, ts, len, fmt1, interleave)| Op::Msg {
                    csid,
                    type_id,
                    stream_id,
                    ts,
                    len,
                    fmt1,
                    interleave,
                }),
            1 => prop::sample::select(vec![128u32, 1000, 4096, 100_000]).prop_map(Op::ChunkSize),
            1 => Just(Op::AbortNext),
        ]
    }

    /// Relays `wire` from the client, fed in pieces of the `cuts` sizes (cycled), to an
    /// origin leg at `chunk_size`; with `passing`, the way the proxy does while its output
    /// keeps up. The origin's bytes, up to the error that ended the relay if one did.
    fn relayed(
        wire: &[u8],
        cuts: &[usize],
        chunk_size: u32,
        passing: bool,
    ) -> (Vec<u8>, Option<Error>) {
        let client = Leg::new(ChunkReader::new(), ChunkWriter::new(), 1);
        let origin = Leg::new(
            ChunkReader::new(),
            ChunkWriter::with_chunk_size(chunk_size).unwrap(),
            7,
        );
        let mut relay = Relay::new(client, origin);
        let mut out = Vec::new();
        let mut rest = wire;
        let mut segments = VecDeque::new();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*cut).clamp(1, rest.len()));
            rest = tail;
            relay.client_input().extend_from_slice(piece);
            let done = if passing {
                let done = relay.process_client_passing();
                relay.take_for_origin_into(&mut segments);
                segments.drain(..).for_each(|s| out.extend_from_slice(&s));
                done
            } else {
                let done = relay.process_client();
                out.extend_from_slice(&relay.take_for_origin());
                done
            };
            if let Err(e) = done {
                return (out, Some(e));
            }
        }
        (out, None)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Passing whole chunks on untouched makes the origin's bytes exactly those of
        /// re-chunking piece by piece, whatever the stream and however reads cut it.
        #[test]
        fn passing_runs_on_sends_the_same_bytes(
            ops in proptest::collection::vec(op(), 1..40),
            cuts in proptest::collection::vec(1usize..70_000, 1..8),
            chunk_size in proptest::sample::select(vec![128u32, 4096]),
        ) {
            let wire = encoder_wire(&ops);
            let plain = relayed(&wire, &cuts, chunk_size, false);
            let passed = relayed(&wire, &cuts, chunk_size, true);
            proptest::prop_assert_eq!(plain, passed);
        }
    }

    /// An encoder's stream at the origin leg's chunk size goes out mostly as the client's
    /// own bytes: few pieces, and the messages arrive whole on the origin's stream id.
    #[test]
    fn lined_up_media_is_passed_on_without_a_copy() {
        let mut ops = vec![Op::ChunkSize(4096)];
        for i in 0..20u32 {
            ops.push(Op::Msg {
                csid: 6,
                type_id: types::VIDEO,
                stream_id: 1,
                ts: i * 33,
                len: 48 * 1024,
                fmt1: true,
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
        relay.client_input().extend_from_slice(&wire);
        let input_at = relay.client_input().as_ptr() as usize;
        relay.process_client_passing().unwrap();
        let mut segments = VecDeque::new();
        relay.take_for_origin_into(&mut segments);
        // A fmt 0 header and one run per frame (the Set Chunk Size is not relayed).
        assert_eq!(segments.len(), 40);
        let shared = segments
            .iter()
            .filter(|s| {
                let at = s.as_ptr() as usize;
                at >= input_at && at < input_at + wire.len()
            })
            .map(|s| s.len())
            .sum::<usize>();
        assert!(
            shared > 20 * 48 * 1024,
            "{shared} bytes passed on without a copy"
        );
        let mut reader = ChunkReader::new();
        reader.set_chunk_size(4096).unwrap();
        let all: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
        let got = read_all(&mut reader, &all);
        assert_eq!(got.len(), 20);
        for (i, msg) in got.iter().enumerate() {
            assert_eq!(
                (msg.stream_id, msg.timestamp, msg.payload.len()),
                (7, i as u32 * 33, 48 * 1024)
            );
        }
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
