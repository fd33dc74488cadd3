//! What the fuzz targets run, shared with the crate's corpus replay test
//! (`tests/sessions.rs`) so that stable CI goes through exactly the same code.

#![allow(dead_code)]

use rtmp_peek::handshake::{ServerHandshake, PACKET_SIZE};
use rtmp_peek::{
    amf0, Amf0Limits, ChunkReader, ChunkWriter, Command, Control, PassOn, Piece, ReaderLimits,
    Relay, ServerConfig, ServerEvent, ServerSession,
};

/// Chunk reader over `data` fed in two pieces, the same streaming every message on chunk
/// streams 3 and up into a writer piece by piece, the same again passing chunks on as they
/// are where they line up (`next_passing`), then a server session over a canned handshake
/// followed by `data` (so mutations reach the command logic), then, if the session
/// identified a stream, a relay fed the rest, passing chunks on and not. Nothing here may
/// panic.
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

    let mut reader = ChunkReader::with_limits(limits);
    let mut writer = ChunkWriter::new();
    let mut out = bytes::BytesMut::new();
    'pieces: for piece in [&data[..split], &data[split..]] {
        reader.feed(piece);
        loop {
            let written = match reader.next_piece(|csid, _| csid >= 3) {
                Ok(Some(Piece::Message(msg))) => writer.write(&msg, &mut out),
                Ok(Some(Piece::Part(part))) => writer.write_piece(&part, &mut out),
                Ok(None) => break,
                Err(_) => break 'pieces,
            };
            if written.is_err() {
                break 'pieces;
            }
            out.clear();
        }
    }

    let mut reader = ChunkReader::with_limits(limits);
    let mut writer = ChunkWriter::new();
    let mut out = bytes::BytesMut::new();
    let want_boundary = data.get(1).is_some_and(|b| b & 1 == 1);
    'passing: for piece in [&data[..split], &data[split..]] {
        reader.feed(piece);
        loop {
            let pass = PassOn {
                from_stream_id: 1,
                to_stream_id: 7,
                chunk_size: writer.chunk_size(),
                want_boundary,
            };
            let written = match reader.next_passing(|csid, _| csid >= 3, &pass) {
                Ok(Some(Piece::Message(msg))) => writer.write(&msg, &mut out),
                Ok(Some(Piece::Part(part))) => writer.resume_piece(&part, &mut out),
                Ok(None) => {
                    if reader.passed() == 0 {
                        break;
                    }
                    let (span, _) = reader.take_passed();
                    out.extend_from_slice(&span);
                    Ok(())
                }
                Err(_) => break 'passing,
            };
            if written.is_err() {
                break 'passing;
            }
            out.clear();
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
    let mut relay = Relay::with_pass_through(client, origin, !want_boundary);
    if relay.process().is_ok() && relay.feed_client(tail).is_ok() {
        while relay.pending_for_origin() > 0 {
            let _ = relay.take_for_origin();
        }
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

/// Server and client handshakes fed arbitrary bytes in two pieces, with the sizes and
/// echoes the handshake promises; then a server session from its very first byte.
/// Returns the form the server saw, if C1 arrived.
pub fn handshake(data: &[u8]) -> Option<rtmp_peek::handshake::HandshakeForm> {
    use bytes::BytesMut;
    use rtmp_peek::handshake::{ClientHandshake, HandshakeForm};

    const C0C1: usize = 1 + PACKET_SIZE;
    const ALL: usize = 1 + 2 * PACKET_SIZE;
    let split = data
        .get(1)
        .map_or(0, |b| usize::from(*b) * 16)
        .min(data.len());
    let (head, tail) = data.split_at(split);
    let rtmp = data.first() == Some(&3);

    let mut server = ServerHandshake::with_seed(1);
    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
    let mut result = Ok(false);
    for piece in [head, tail] {
        input.extend_from_slice(piece);
        result = server.process(&mut input, &mut out);
        if result.is_err() {
            break;
        }
    }
    match result {
        Err(_) => assert!(!rtmp && !data.is_empty(), "refused a version 3 C0"),
        Ok(done) => {
            assert!(data.is_empty() || rtmp, "accepted a C0 other than 3");
            assert_eq!(done, data.len() >= ALL, "done exactly once C2 is in");
            if data.len() >= C0C1 {
                assert_eq!(out.len(), 1 + 2 * PACKET_SIZE, "S0 S1 S2");
                assert_eq!(out[0], 3);
                if server.form() == Some(HandshakeForm::Simple) {
                    assert_eq!(&out[C0C1..], &data[1..C0C1], "S2 echoes C1");
                }
            } else {
                assert!(out.is_empty() && server.form().is_none());
            }
            if done {
                assert_eq!(
                    &input[..],
                    &data[ALL..],
                    "bytes after C2 stay for the chunks"
                );
            }
        }
    }

    let digest = data.get(1).is_some_and(|b| b & 1 == 1);
    let mut client = ClientHandshake::with_seed(digest, 2);
    let (mut input, mut out) = (BytesMut::from(data), BytesMut::new());
    match client.process(&mut input, &mut out) {
        Err(_) => assert!(!rtmp, "refused a version 3 S0"),
        Ok(done) => {
            assert_eq!(done, data.len() >= ALL);
            if done {
                assert_eq!(out.len(), C0C1 + PACKET_SIZE, "C0 C1 then C2");
                if client.form() == Some(HandshakeForm::Simple) {
                    assert_eq!(&out[C0C1..], &data[1..C0C1], "C2 echoes S1");
                }
                assert_eq!(&input[..], &data[ALL..]);
            } else {
                assert_eq!(out.len(), C0C1, "C0 C1 only");
            }
        }
    }

    let mut session = ServerSession::with_handshake(ServerConfig::default(), server_seeded());
    if session.feed(head).is_ok() {
        let _ = session.feed(tail);
    }
    while session.poll_event().is_some() {}
    let _ = session.take_output();
    server.form()
}

fn server_seeded() -> ServerHandshake {
    ServerHandshake::with_seed(3)
}

/// A client session (the proxy's leg towards an origin) after a simple S0 S1 S2, fed
/// arbitrary origin bytes in two pieces: events come in protocol order, a verdict ends the
/// setup, an error closes the session; then, after a verdict, a relay fed the rest.
/// Returns whether the origin's verdict came.
pub fn client_session(data: &[u8]) -> bool {
    use rtmp_peek::handshake::ClientHandshake;
    use rtmp_peek::{ClientConfig, ClientEvent, ClientSession, OriginRequest, StreamKind};

    let limits = ReaderLimits {
        max_message_size: 64 * 1024,
        max_chunk_streams: 8,
        max_in_progress: 128 * 1024,
    };
    let kind = match data.first() {
        Some(b) if b & 1 == 1 => StreamKind::Play,
        _ => StreamKind::Publish,
    };
    let request = OriginRequest::new(kind, "live", "rtmp://h/live", "s?k=1").expect("request");
    let config = ClientConfig {
        reader_limits: limits,
        ..ClientConfig::default()
    };
    let mut session =
        ClientSession::with_handshake(request, config, ClientHandshake::with_seed(false, 4))
            .expect("session");
    let mut s0s1s2 = vec![3u8];
    s0s1s2.resize(1 + 2 * PACKET_SIZE, 0);
    session.feed(&s0s1s2).expect("a simple S0 S1 S2");
    let _ = session.take_output();

    let body = data.get(1..).unwrap_or_default();
    let split = data.get(1).map_or(0, |b| usize::from(*b)).min(body.len());
    let (head, tail) = body.split_at(split);
    let (mut connected, mut created, mut verdict) = (false, false, false);
    let mut failed = false;
    for piece in [head, tail] {
        if session.feed(piece).is_err() {
            failed = true;
            assert_eq!(session.feed(b"x"), Err(rtmp_peek::Error::Closed));
        }
        while let Some(event) = session.poll_event() {
            assert!(!verdict, "an event after the verdict: {event:?}");
            match event {
                ClientEvent::Connected { .. } => {
                    assert!(!connected, "connected twice");
                    connected = true;
                }
                ClientEvent::StreamCreated { stream_id } => {
                    assert!(connected && !created, "createStream answered out of order");
                    assert_eq!(session.origin_stream_id(), Some(stream_id));
                    created = true;
                }
                ClientEvent::Accepted { stream_id, .. } => {
                    assert!(created, "accepted before createStream");
                    assert_eq!(session.origin_stream_id(), Some(stream_id));
                    verdict = true;
                }
                ClientEvent::Rejected { .. } => verdict = true,
                ClientEvent::Forward(_) => {}
            }
        }
        if failed {
            return verdict;
        }
        let _ = session.take_output();
    }
    assert_eq!(
        verdict,
        session.is_done(),
        "done exactly when a verdict came"
    );
    if !verdict {
        return false;
    }
    let origin = session.into_leg();
    let client = rtmp_peek::Leg::new(
        ChunkReader::with_limits(limits),
        rtmp_peek::ChunkWriter::new(),
        1,
    );
    let mut relay = Relay::new(client, origin);
    if relay.process().is_ok() && relay.feed_origin(head).is_ok() {
        let _ = relay.take_for_client();
    }
    true
}
