//! What the fuzz targets run, shared with the crate's corpus replay test
//! (`tests/sessions.rs`) so that stable CI goes through exactly the same code.

#![allow(dead_code)]

use rtmp_peek::handshake::{ServerHandshake, PACKET_SIZE};
use rtmp_peek::{
    amf0, Amf0Limits, ChunkReader, Command, Control, ReaderLimits, Relay, ServerConfig,
    ServerEvent, ServerSession,
};

/// Chunk reader over `data` fed in two pieces, then a server session over a canned
/// handshake followed by `data` (so mutations reach the command logic), then, if the
/// session identified a stream, a relay fed the rest. Nothing here may panic.
pub fn chunk_reader(data: &[u8]) {
    let limits = ReaderLimits {
        max_message_size: 64 * 1024,
        max_chunk_streams: 8,
        max_in_progress: 128 * 1024,
    };
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut reader = ChunkReader::with_limits(limits);
    'outer: for piece in [&data[..split], &data[split..]] {
        reader.feed(piece);
        loop {
            match reader.next_message() {
                Ok(Some(msg)) => {
                    let _ = Control::decode(&msg);
                    if msg.is_command() {
                        let _ = Command::from_message(&msg, &Amf0Limits::default());
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }

    let config = ServerConfig {
        reader_limits: limits,
        ..ServerConfig::default()
    };
    let mut session = ServerSession::with_handshake(config, ServerHandshake::with_seed(0));
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * PACKET_SIZE, 0);
    if session.feed(&handshake).is_err() {
        return;
    }
    let (head, tail) = data.split_at(split);
    if session.feed(head).is_err() {
        return;
    }
    let _ = session.take_output();
    let mut identified = false;
    while let Some(event) = session.poll_event() {
        identified |= matches!(event, ServerEvent::Identified(_));
    }
    if !identified {
        let _ = session.feed(tail);
        return;
    }
    let _ = session.accept();
    let client = session.into_leg();
    let origin = rtmp_peek::Leg::new(
        ChunkReader::with_limits(limits),
        rtmp_peek::ChunkWriter::new(),
        7,
    );
    let mut relay = Relay::new(client, origin);
    if relay.process().is_ok() && relay.feed_client(tail).is_ok() {
        let _ = relay.take_for_origin();
        let _ = relay.feed_origin(tail);
    }
}

/// AMF0 decode; whatever decodes must encode and decode back to the same bytes. Then the
/// same bytes as a command body.
pub fn amf0_decode(data: &[u8]) {
    let limits = Amf0Limits {
        max_string_len: 4096,
        max_depth: 16,
        max_values: 1024,
    };
    if let Ok(values) = amf0::decode_all(data, &limits) {
        let mut once = Vec::new();
        if amf0::encode_all(&values, &mut once).is_ok() {
            let again = amf0::decode_all(&once, &limits).expect("re-decoding our own encoding");
            let mut twice = Vec::new();
            amf0::encode_all(&again, &mut twice).expect("re-encoding");
            assert_eq!(once, twice, "AMF0 round trip is not stable");
        }
    }
    if let Ok(cmd) = Command::decode(data, &limits) {
        let mut body = Vec::new();
        let _ = cmd.encode(&mut body);
    }
}
