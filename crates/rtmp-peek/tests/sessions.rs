//! Whole-crate tests: sessions against each other in memory (a publisher or player, the
//! proxy's two legs, an origin), an independent implementation (rml_rtmp) as oracle, real
//! ffmpeg bytes, and the fuzz corpus replayed through the fuzz targets' code.

#[path = "../fuzz/common.rs"]
mod fuzz_common;

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rtmp_peek::handshake::{ClientHandshake, HandshakeForm, ServerHandshake};
use rtmp_peek::message::types;
use rtmp_peek::*;

// ---------------------------------------------------------------- helpers

fn publisher(stream: &str) -> ClientSession {
    let req =
        OriginRequest::new(StreamKind::Publish, "live", "rtmp://127.0.0.1/live", stream).unwrap();
    ClientSession::with_handshake(
        req,
        ClientConfig::default(),
        ClientHandshake::with_seed(false, 1),
    )
    .unwrap()
}

fn player(stream: &str) -> ClientSession {
    let req =
        OriginRequest::new(StreamKind::Play, "live", "rtmp://127.0.0.1/live", stream).unwrap();
    ClientSession::with_handshake(
        req,
        ClientConfig::default(),
        ClientHandshake::with_seed(true, 2),
    )
    .unwrap()
}

fn server(stream_id: u32) -> ServerSession {
    let config = ServerConfig {
        stream_id,
        ..ServerConfig::default()
    };
    ServerSession::with_handshake(config, ServerHandshake::with_seed(3))
}

/// Shuttles bytes between a client and a server session until both are quiet. Returns the
/// events of each side and every byte the client sent.
fn pump(
    client: &mut ClientSession,
    server: &mut ServerSession,
) -> (Vec<ClientEvent>, Vec<ServerEvent>, Vec<u8>) {
    let (mut ce, mut se, mut sent) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let c = client.take_output();
        let s = server.take_output();
        if c.is_empty() && s.is_empty() {
            return (ce, se, sent);
        }
        sent.extend_from_slice(&c);
        server.feed(&c).unwrap();
        client.feed(&s).unwrap();
        ce.extend(std::iter::from_fn(|| client.poll_event()));
        se.extend(std::iter::from_fn(|| server.poll_event()));
    }
}

fn identified(events: Vec<ServerEvent>) -> Identified {
    events
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::Identified(id) => Some(*id),
            _ => None,
        })
        .expect("identified")
}

fn read_all(leg: &mut Leg) -> Vec<Message> {
    std::iter::from_fn(|| leg.next_message().unwrap()).collect()
}

fn commands(msgs: &[Message]) -> Vec<Command> {
    msgs.iter()
        .filter(|m| m.is_command())
        .map(|m| Command::from_message(m, &Amf0Limits::default()).unwrap())
        .collect()
}

/// Client -> proxy front (ServerSession) -> proxy origin leg (ClientSession) -> origin.
struct Chain {
    client: ClientSession,
    front: ServerSession,
    leg: ClientSession,
    origin: ServerSession,
    id: Identified,
}

fn chain(client: ClientSession, origin_stream_id: u32) -> Chain {
    let mut client = client;
    let mut front = server(1);
    let (_, events, _) = pump(&mut client, &mut front);
    let id = identified(events);
    let leg = ClientSession::new(id.origin_request(), ClientConfig::default()).unwrap();
    Chain {
        client,
        front,
        leg,
        origin: server(origin_stream_id),
        id,
    }
}

impl Chain {
    /// Runs the origin leg; forwards what it says to the client. Returns the leg's events.
    fn run_origin_leg(&mut self, answer: impl FnOnce(&mut ServerSession)) -> Vec<ClientEvent> {
        let (mut events, origin_events, _) = pump(&mut self.leg, &mut self.origin);
        let origin_id = identified(origin_events);
        // The origin sees the client's own messages, moved to the stream the origin created.
        let moved: Vec<Message> = self
            .id
            .replay
            .iter()
            .cloned()
            .map(|m| {
                if m.stream_id == 1 {
                    m.with_stream_id(origin_id.stream_id)
                } else {
                    m
                }
            })
            .collect();
        assert_eq!(origin_id.replay, moved);
        answer(&mut self.origin);
        let out = self.origin.take_output();
        self.leg.feed(&out).unwrap();
        events.extend(std::iter::from_fn(|| self.leg.poll_event()));
        for ev in &events {
            if let ClientEvent::Forward(msg) = ev {
                self.front.send(msg).unwrap();
            }
        }
        events
    }

    fn client_events(&mut self) -> Vec<ClientEvent> {
        let out = self.front.take_output();
        self.client.feed(&out).unwrap();
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

// ---------------------------------------------------------------- sessions

#[test]
fn publisher_meets_server() {
    let mut client = publisher("stream?token=abc");
    let mut srv = server(1);
    let (events, server_events, _) = pump(&mut client, &mut srv);
    assert!(matches!(events[0], ClientEvent::Connected { .. }));
    assert_eq!(events[1], ClientEvent::StreamCreated { stream_id: 1 });
    assert!(matches!(server_events[0], ServerEvent::Connected { ref app, .. } if app == "live"));
    let id = identified(server_events);
    assert_eq!(id.kind, StreamKind::Publish);
    assert_eq!(
        (id.app.as_str(), id.tc_url.as_str()),
        ("live", "rtmp://127.0.0.1/live")
    );
    assert_eq!(
        (id.stream.as_str(), id.stream_name(), id.stream_query()),
        ("stream?token=abc", "stream", Some("token=abc"))
    );
    let names: Vec<String> = commands(&id.replay)
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish"
        ]
    );
    // Nothing said Publish.Start yet.
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClientEvent::Accepted { .. })));
    srv.accept().unwrap();
    let out = srv.take_output();
    client.feed(&out).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(
        matches!(events.last(), Some(ClientEvent::Accepted { stream_id: 1, status: Some(s) }) if s.code() == Some("NetStream.Publish.Start"))
    );
}

#[test]
fn publish_through_the_proxy_and_relay() {
    let mut c = chain(publisher("cam?token=1"), 7);
    let leg_events = c.run_origin_leg(|o| o.accept().unwrap());
    assert!(
        matches!(&leg_events[0], ClientEvent::Connected { result } if result.code() == Some("NetConnection.Connect.Success"))
    );
    assert!(leg_events.contains(&ClientEvent::StreamCreated { stream_id: 7 }));
    assert!(matches!(
        leg_events.last(),
        Some(ClientEvent::Accepted { stream_id: 7, .. })
    ));
    // onFCPublish and onStatus reach the client, on the client's stream id.
    let forwarded: Vec<&Message> = leg_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Forward(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(forwarded.len(), 2);
    assert_eq!(forwarded[1].stream_id, 1);
    let client_events = c.client_events();
    assert!(matches!(
        client_events.last(),
        Some(ClientEvent::Accepted { stream_id: 1, .. })
    ));

    // Relay: client stream 1 <-> origin stream 7.
    let mut relay = Relay::new(c.front.into_leg(), c.leg.into_leg());
    relay.process().unwrap();
    let mut client_leg = c.client.into_leg();
    let mut origin_leg = c.origin.into_leg();
    let video = Message::new(6, types::VIDEO, 1, 40, Bytes::from(vec![0x17; 10_000]));
    client_leg.send(&video).unwrap();
    client_leg
        .send(&Control::UserControl(UserControl::PingRequest(5)).to_message())
        .unwrap();
    relay.feed_client(&client_leg.take_output()).unwrap();
    // The ping was answered on the client leg, not forwarded.
    client_leg.feed(&relay.take_for_client());
    let back = read_all(&mut client_leg);
    assert_eq!(
        Control::decode(&back[0]).unwrap(),
        Some(Control::UserControl(UserControl::PingResponse(5)))
    );
    origin_leg.feed(&relay.take_for_origin());
    let got = read_all(&mut origin_leg);
    assert_eq!(got, vec![video.clone().with_stream_id(7)]);

    // Origin -> client: stream events are rewritten too.
    origin_leg
        .send(&Control::UserControl(UserControl::StreamEof(7)).to_message())
        .unwrap();
    origin_leg
        .send(
            &Command::on_status("status", "NetStream.Unpublish.Success", "bye")
                .to_message(7)
                .unwrap(),
        )
        .unwrap();
    relay.feed_origin(&origin_leg.take_output()).unwrap();
    client_leg.feed(&relay.take_for_client());
    let got = read_all(&mut client_leg);
    assert_eq!(
        Control::decode(&got[0]).unwrap(),
        Some(Control::UserControl(UserControl::StreamEof(1)))
    );
    assert_eq!(got[1].stream_id, 1);

    // deleteStream's argument follows the mapping.
    client_leg
        .send(
            &Command::DeleteStream {
                transaction_id: 9.0,
                stream_id: 1.0,
            }
            .to_message(0)
            .unwrap(),
        )
        .unwrap();
    relay.feed_client(&client_leg.take_output()).unwrap();
    origin_leg.feed(&relay.take_for_origin());
    let got = commands(&read_all(&mut origin_leg));
    assert_eq!(
        got,
        vec![Command::DeleteStream {
            transaction_id: 9.0,
            stream_id: 7.0
        }]
    );
}

#[test]
fn origin_rejection_reaches_the_client() {
    let mut c = chain(publisher("taken"), 1);
    let leg_events = c.run_origin_leg(|o| {
        o.reject("NetStream.Publish.BadName", "stream taken")
            .unwrap()
    });
    assert!(
        matches!(leg_events.last(), Some(ClientEvent::Rejected { stage: SetupStage::Start, reply }) if reply.code() == Some("NetStream.Publish.BadName"))
    );
    let client_events = c.client_events();
    assert!(!client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Accepted { .. })));
    assert!(
        matches!(client_events.last(), Some(ClientEvent::Rejected { reply, .. }) if reply.description() == Some("stream taken"))
    );
}

/// An origin that refuses `connect`, written with the chunk layer directly.
#[test]
fn connect_rejection_reaches_the_client() {
    let mut c = chain(publisher("s"), 1);
    let mut hs = ServerHandshake::with_seed(4);
    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
    let mut reader = ChunkReader::new();
    let mut writer = ChunkWriter::new();
    let mut leg_events = Vec::new();
    for _ in 0..4 {
        input.extend_from_slice(&c.leg.take_output());
        if hs.process(&mut input, &mut out).unwrap() {
            reader.feed(&input.split());
            while let Some(msg) = reader.next_message().unwrap() {
                if let Ok(Command::Connect { transaction_id, .. }) =
                    Command::from_message(&msg, &Amf0Limits::default())
                {
                    let mut reply = Command::connect_rejected(transaction_id, "bad token")
                        .to_message(0)
                        .unwrap();
                    reply.csid = 3;
                    writer.write(&reply, &mut out).unwrap();
                }
            }
        }
        c.leg.feed(&out.split()).unwrap();
        leg_events.extend(std::iter::from_fn(|| c.leg.poll_event()));
    }
    assert!(matches!(
        leg_events.last(),
        Some(ClientEvent::Rejected {
            stage: SetupStage::Connect,
            ..
        })
    ));
    let ClientEvent::Forward(status) = &leg_events[leg_events.len() - 2] else {
        panic!("no forward")
    };
    let status = Command::from_message(status, &Amf0Limits::default()).unwrap();
    assert_eq!(status.code(), Some("NetConnection.Connect.Rejected"));
    assert_eq!(status.description(), Some("bad token"));
}

#[test]
fn play_through_the_proxy() {
    let mut c = chain(player("movie?k=v"), 5);
    assert_eq!(c.id.kind, StreamKind::Play);
    assert_eq!(
        c.front.handshake_form(),
        Some(HandshakeForm::Digest(rtmp_peek::handshake::Schema::Schema1))
    );
    let leg_events = c.run_origin_leg(|o| o.accept().unwrap());
    let forwarded: Vec<&Message> = leg_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Forward(m) => Some(m),
            _ => None,
        })
        .collect();
    // Stream Begin (rewritten from 5 to 1), Play.Reset, Play.Start.
    assert_eq!(
        Control::decode(forwarded[0]).unwrap(),
        Some(Control::UserControl(UserControl::StreamBegin(1)))
    );
    assert!(forwarded[1..].iter().all(|m| m.stream_id == 1));
    assert!(matches!(
        leg_events.last(),
        Some(ClientEvent::Accepted { stream_id: 5, .. })
    ));
    assert!(matches!(
        c.client_events().last(),
        Some(ClientEvent::Accepted { .. })
    ));
}

#[test]
fn connect_keeps_enhanced_rtmp_fields_and_echoes_them() {
    let object = Object::new()
        .with("app", Value::string("live"))
        .with("tcUrl", Value::string("rtmp://h/live"))
        .with(
            "fourCcList",
            Value::StrictArray(vec![Value::string("hvc1")]),
        )
        .with("capsEx", Value::Number(2.0));
    let mut req = OriginRequest::new(StreamKind::Publish, "live", "rtmp://h/live", "s").unwrap();
    let connect = Command::Connect {
        transaction_id: 1.0,
        object: object.clone(),
        args: vec![],
    };
    req.replay[0] = connect.to_message(0).unwrap();
    let mut client = ClientSession::new(req, ClientConfig::default()).unwrap();
    let mut srv = server(1);
    let (events, server_events, _) = pump(&mut client, &mut srv);
    let id = identified(server_events);
    assert_eq!(id.connect_object(), Some(&object));
    let ClientEvent::Connected {
        result: Command::Result {
            object: Value::Object(props),
            ..
        },
    } = &events[0]
    else {
        panic!()
    };
    assert_eq!(props.get("fourCcList"), object.get("fourCcList"));
    assert_eq!(props.get("capsEx"), Some(&Value::Number(2.0)));
}

#[test]
fn server_session_limits() {
    let config = ServerConfig {
        max_pending_bytes: 10,
        ..ServerConfig::default()
    };
    let mut srv = ServerSession::with_handshake(config, ServerHandshake::with_seed(0));
    let mut client = publisher("s");
    pump(&mut client, &mut srv);
    assert!(srv.is_identified());
    assert_eq!(srv.feed(&[0u8; 11]), Err(Error::BufferFull(10)));

    let config = ServerConfig {
        max_setup_messages: 2,
        ..ServerConfig::default()
    };
    let mut srv = ServerSession::with_handshake(config, ServerHandshake::with_seed(0));
    let mut client = publisher("s");
    let mut bytes = Vec::new();
    for _ in 0..6 {
        let out = client.take_output();
        bytes.extend_from_slice(&out);
        if srv.feed(&out).is_err() {
            break;
        }
        client.feed(&srv.take_output()).unwrap();
    }
    assert_eq!(srv.feed(&[]), Err(Error::Closed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn server_session_any_split(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut client = publisher("s?t=1");
        let mut reference = server(1);
        let (_, events, sent) = pump(&mut client, &mut reference);
        let expected = identified(events);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(sent.len() + 1)).collect();
        points.sort_unstable();
        let mut srv = server(1);
        let mut start = 0;
        for p in points.into_iter().chain([sent.len()]) {
            srv.feed(&sent[start..p]).unwrap();
            start = p;
        }
        let events: Vec<_> = std::iter::from_fn(|| srv.poll_event()).collect();
        prop_assert_eq!(identified(events), expected);
    }

    #[test]
    fn server_session_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        fuzz_common::chunk_reader(&bytes);
    }
}

// ---------------------------------------------------------------- oracle: rml_rtmp

mod oracle {
    use super::*;
    use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::rml_amf0::{self, Amf0Value};
    use rml_rtmp::sessions::{
        ClientSession as RmlClient, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
        PublishRequestType,
    };
    use rml_rtmp::time::RtmpTimestamp;

    fn payload(type_id: u8, stream: u32, ts: u32, data: Vec<u8>) -> MessagePayload {
        MessagePayload {
            timestamp: RtmpTimestamp::new(ts),
            type_id,
            message_stream_id: stream,
            data: data.into(),
        }
    }

    #[test]
    fn their_chunks_our_reader() {
        let mut ser = ChunkSerializer::new();
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        // Header compression (fmt 1-3) kicks in for repeated types on one chunk stream.
        for i in 0..40u32 {
            let (t, len) = if i % 3 == 0 {
                (types::AUDIO, 50 + i as usize)
            } else {
                (types::VIDEO, 300 + 97 * i as usize)
            };
            let ts = if i > 30 { 0x00ff_fff0 + i * 40 } else { i * 40 };
            let p = payload(t, 1, ts, vec![i as u8; len]);
            expected.push((t, 1u32, ts, p.data.clone()));
            wire.extend(ser.serialize(&p, false, false).unwrap().bytes);
            if i == 20 {
                wire.extend(
                    ser.set_max_chunk_size(1000, RtmpTimestamp::new(0))
                        .unwrap()
                        .bytes,
                );
                expected.push((
                    types::SET_CHUNK_SIZE,
                    0,
                    0,
                    Bytes::from_static(&[0, 0, 0x03, 0xe8]),
                ));
            }
        }
        let mut reader = ChunkReader::new();
        for piece in wire.chunks(777) {
            reader.feed(piece);
        }
        let got: Vec<_> = std::iter::from_fn(|| reader.next_message().unwrap())
            .map(|m| (m.type_id, m.stream_id, m.timestamp, m.payload))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn our_chunks_their_reader() {
        let mut writer = ChunkWriter::new();
        let mut de = ChunkDeserializer::new();
        let mut wire = BytesMut::new();
        let msgs: Vec<Message> = (0..20u32)
            .map(|i| {
                Message::new(
                    4 + i % 3,
                    types::VIDEO,
                    1,
                    i * 0x0040_0000,
                    Bytes::from(vec![i as u8; 200 * i as usize]),
                )
            })
            .collect();
        for m in &msgs {
            writer.write(m, &mut wire).unwrap();
        }
        let mut got = Vec::new();
        let mut input: &[u8] = &wire;
        while let Some(p) = de.get_next_message(input).unwrap() {
            input = &[];
            got.push(Message::new(
                0,
                p.type_id,
                p.message_stream_id,
                p.timestamp.value,
                p.data,
            ));
        }
        let expected: Vec<Message> = msgs
            .into_iter()
            .map(|mut m| {
                m.csid = 0;
                m
            })
            .collect();
        assert_eq!(got, expected);
    }

    fn to_rml(v: &Value) -> Amf0Value {
        match v {
            Value::Number(n) => Amf0Value::Number(*n),
            Value::Boolean(b) => Amf0Value::Boolean(*b),
            Value::String(s) => Amf0Value::Utf8String(s.clone()),
            Value::Object(o) => {
                Amf0Value::Object(o.iter().map(|(k, v)| (k.clone(), to_rml(v))).collect())
            }
            Value::StrictArray(a) => Amf0Value::StrictArray(a.iter().map(to_rml).collect()),
            Value::Null => Amf0Value::Null,
            _ => Amf0Value::Undefined,
        }
    }

    #[test]
    fn amf0_both_ways() {
        let values = vec![
            Value::Number(3.5),
            Value::Boolean(true),
            Value::string("héllo"),
            Value::Null,
            Value::Undefined,
            Value::Object(Object::new().with(
                "k",
                Value::StrictArray(vec![Value::Number(1.0), Value::string("x")]),
            )),
        ];
        let theirs: Vec<Amf0Value> = values.iter().map(to_rml).collect();
        let their_bytes = rml_amf0::serialize(&theirs).unwrap();
        assert_eq!(
            amf0::decode_all(&their_bytes, &Amf0Limits::default()).unwrap(),
            values
        );
        let mut ours = Vec::new();
        amf0::encode_all(&values, &mut ours).unwrap();
        assert_eq!(ours, their_bytes);
        assert_eq!(rml_amf0::deserialize(&mut &ours[..]).unwrap(), theirs);
    }

    #[test]
    fn their_digest_handshake_our_server() {
        let mut theirs = Handshake::new(PeerType::Client);
        let c0c1 = theirs.generate_outbound_p0_and_p1().unwrap();
        let mut ours = ServerHandshake::new();
        let (mut input, mut out) = (BytesMut::from(&c0c1[..]), BytesMut::new());
        assert!(!ours.process(&mut input, &mut out).unwrap());
        assert!(matches!(ours.form(), Some(HandshakeForm::Digest(_))));
        let c2 = match theirs.process_bytes(&out).unwrap() {
            HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
            other => panic!("{other:?}"),
        };
        input.extend_from_slice(&c2);
        assert!(ours.process(&mut input, &mut out).unwrap());
    }

    /// rml_rtmp's client session publishes to our server session.
    #[test]
    fn their_publisher_our_server() {
        let mut hs = Handshake::new(PeerType::Client);
        let mut srv = server(1);
        srv.feed(&hs.generate_outbound_p0_and_p1().unwrap())
            .unwrap();
        let (c2, rest) = match hs.process_bytes(&srv.take_output()).unwrap() {
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => (response_bytes, remaining_bytes),
            other => panic!("{other:?}"),
        };
        assert!(rest.is_empty());
        srv.feed(&c2).unwrap();
        let config = ClientSessionConfig {
            tc_url: Some("rtmp://127.0.0.1/live".into()),
            ..ClientSessionConfig::new()
        };
        let (mut client, _) = RmlClient::new(config).unwrap();
        let mut to_server = Vec::new();
        let mut events = Vec::new();
        let collect = |results: Vec<ClientSessionResult>,
                       to_server: &mut Vec<u8>,
                       events: &mut Vec<ClientSessionEvent>| {
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(p) => to_server.extend(p.bytes),
                    ClientSessionResult::RaisedEvent(e) => events.push(e),
                    _ => {}
                }
            }
        };
        collect(
            vec![client.request_connection("live".into()).unwrap()],
            &mut to_server,
            &mut events,
        );
        let step = |client: &mut RmlClient,
                    srv: &mut ServerSession,
                    to_server: &mut Vec<u8>,
                    events: &mut Vec<ClientSessionEvent>| {
            srv.feed(&std::mem::take(to_server)).unwrap();
            let results = client.handle_input(&srv.take_output()).unwrap();
            collect(results, to_server, events);
        };
        step(&mut client, &mut srv, &mut to_server, &mut events);
        assert!(
            events.contains(&ClientSessionEvent::ConnectionRequestAccepted),
            "{events:?}"
        );
        collect(
            vec![client
                .request_publishing("cam?k=1".into(), PublishRequestType::Live)
                .unwrap()],
            &mut to_server,
            &mut events,
        );
        for _ in 0..3 {
            step(&mut client, &mut srv, &mut to_server, &mut events);
        }
        let id = identified(std::iter::from_fn(|| srv.poll_event()).collect());
        assert_eq!((id.app.as_str(), id.stream.as_str()), ("live", "cam?k=1"));
        srv.accept().unwrap();
        step(&mut client, &mut srv, &mut to_server, &mut events);
        assert!(
            events.contains(&ClientSessionEvent::PublishRequestAccepted),
            "{events:?}"
        );
        let data = Bytes::from(vec![0x27u8; 5000]);
        collect(
            vec![client
                .publish_video_data(data.clone(), RtmpTimestamp::new(80), false)
                .unwrap()],
            &mut to_server,
            &mut events,
        );
        let mut leg = srv.into_leg();
        leg.feed(&to_server);
        let video: Vec<Message> = read_all(&mut leg)
            .into_iter()
            .filter(|m| m.type_id == types::VIDEO)
            .collect();
        assert_eq!(video.len(), 1);
        assert_eq!(
            (video[0].stream_id, video[0].timestamp, &video[0].payload),
            (1, 80, &data)
        );
    }
}

// ---------------------------------------------------------------- real ffmpeg

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Bytes ffmpeg sent when publishing `rtmp://127.0.0.1:PORT/live/stream?token=1` to a
/// ServerSession (recorded by `ffmpeg_live` with RTMP_PEEK_CAPTURE=1).
#[test]
fn ffmpeg_capture_replays() {
    let bytes = std::fs::read(data_dir().join("ffmpeg_publish.bin")).expect("capture file");
    for split in [1usize, 13, 1000, bytes.len()] {
        let mut srv = server(1);
        let mut chunks = bytes.chunks(split);
        let mut id = None;
        for piece in chunks.by_ref() {
            srv.feed(piece).unwrap();
            if let Some(ServerEvent::Identified(i)) = std::iter::from_fn(|| srv.poll_event())
                .find(|e| matches!(e, ServerEvent::Identified(_)))
            {
                id = Some(*i);
                break;
            }
        }
        let id = id.expect("ffmpeg's publish identified");
        assert_eq!(
            srv.handshake_form(),
            Some(HandshakeForm::Digest(rtmp_peek::handshake::Schema::Schema1))
        );
        assert_eq!(
            (id.kind, id.app.as_str(), id.stream.as_str()),
            (StreamKind::Publish, "live", "stream?token=1")
        );
        assert!(id.tc_url.starts_with("rtmp://127.0.0.1:") && id.tc_url.ends_with("/live"));
        assert!(id.connect_object().unwrap().get_str("flashVer").is_some());
        let mut leg = srv.into_leg();
        for piece in chunks {
            leg.feed(piece);
        }
        let msgs = read_all(&mut leg);
        assert!(msgs.iter().any(|m| m.type_id == types::DATA_AMF0));
        assert!(
            msgs.iter()
                .filter(|m| m.type_id == types::VIDEO && m.stream_id == 1)
                .count()
                >= 5
        );
        assert!(msgs.iter().any(|m| m.type_id == types::AUDIO));
    }
}

mod live {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::process::{Command as Process, Stdio};
    use std::time::Duration;

    /// These tests need ffmpeg and fail without it: a test that skips itself passes while
    /// testing nothing.
    fn require_ffmpeg() {
        let found = Process::new("ffmpeg")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "this test needs `ffmpeg`, which is not installed: run `apt-get install -y ffmpeg` \
             (or `scripts/test.sh`, which installs it)"
        );
    }

    /// Serves one ffmpeg connection with a ServerSession until `stop` says so; returns the
    /// identification and every byte ffmpeg sent.
    fn serve(
        args: &[&str],
        url_path: &str,
        accept_and_read: bool,
    ) -> (Identified, Vec<u8>, Vec<Message>) {
        require_ffmpeg();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "rtmp://127.0.0.1:{}{}",
            listener.local_addr().unwrap().port(),
            url_path
        );
        let mut child = Process::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(
                args.iter()
                    .map(|a| if *a == "URL" { url.as_str() } else { a }),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // ffmpeg may exit at once (a missing encoder): never wait on accept forever.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut sock = loop {
            match listener.accept() {
                Ok((sock, _)) => break sock,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let exited = child.try_wait().unwrap();
                    assert!(
                        exited.is_none() && std::time::Instant::now() < deadline,
                        "ffmpeg did not connect: {exited:?}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut srv = server(1);
        let mut sent = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut id = None;
        while id.is_none() {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "ffmpeg closed before identification");
            sent.extend_from_slice(&buf[..n]);
            srv.feed(&buf[..n]).unwrap();
            sock.write_all(&srv.take_output()).unwrap();
            id = std::iter::from_fn(|| srv.poll_event()).find_map(|e| match e {
                ServerEvent::Identified(i) => Some(*i),
                _ => None,
            });
        }
        let mut media = Vec::new();
        if accept_and_read {
            srv.accept().unwrap();
            let mut leg = srv.into_leg();
            sock.write_all(&leg.take_output()).unwrap();
            while media
                .iter()
                .filter(|m: &&Message| m.type_id == types::VIDEO)
                .count()
                < 8
            {
                let n = sock.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                sent.extend_from_slice(&buf[..n]);
                leg.feed(&buf[..n]);
                media.extend(read_all(&mut leg));
                sock.write_all(&leg.take_output()).unwrap();
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        (id.expect("identified"), sent, media)
    }

    #[test]
    fn ffmpeg_publishes() {
        let args = [
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "5",
            "-c:a",
            "aac",
            "-t",
            "2",
            "-f",
            "flv",
            "URL",
        ];
        let (id, sent, media) = serve(&args, "/live/stream?token=1", true);
        assert_eq!(
            (id.kind, id.app.as_str(), id.stream.as_str()),
            (StreamKind::Publish, "live", "stream?token=1")
        );
        assert!(
            media
                .iter()
                .filter(|m| m.type_id == types::VIDEO && m.stream_id == id.stream_id)
                .count()
                >= 8
        );
        if std::env::var_os("RTMP_PEEK_CAPTURE").is_some() {
            std::fs::write(data_dir().join("ffmpeg_publish.bin"), &sent).unwrap();
        }
    }

    /// ffmpeg checks a digest S1 and S2 when it plays: identification proves it accepted ours.
    #[test]
    fn ffmpeg_plays_with_digest_handshake() {
        let args = [
            "-rw_timeout",
            "5000000",
            "-i",
            "URL",
            "-t",
            "1",
            "-f",
            "null",
            "-",
        ];
        let (id, _, _) = serve(&args, "/live/movie?k=2", false);
        assert_eq!(
            (id.kind, id.app.as_str(), id.stream.as_str()),
            (StreamKind::Play, "live", "movie?k=2")
        );
    }
}

// ---------------------------------------------------------------- fuzz corpus

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn fuzz_corpus_replays() {
    let chunks = corpus("chunk_reader");
    let amf = corpus("amf0_decode");
    let handshakes = corpus("handshake");
    let origins = corpus("client_session");
    for set in [&chunks, &amf, &handshakes, &origins] {
        assert!(!set.is_empty(), "seed corpus missing");
    }
    for (_, bytes) in &chunks {
        fuzz_common::chunk_reader(bytes);
    }
    for (_, bytes) in &amf {
        fuzz_common::amf0_decode(bytes);
    }
    let forms: Vec<_> = handshakes
        .iter()
        .filter_map(|(_, bytes)| fuzz_common::handshake(bytes))
        .collect();
    assert!(
        forms.contains(&HandshakeForm::Simple) && forms.iter().any(|f| *f != HandshakeForm::Simple),
        "the handshake corpus reaches both forms: {forms:?}"
    );
    let verdicts = origins
        .iter()
        .filter(|(_, bytes)| fuzz_common::client_session(bytes))
        .count();
    assert!(
        verdicts > 0,
        "some client_session input reaches the origin's verdict"
    );
}

/// Writes the seed corpus (run with RTMP_PEEK_WRITE_SEEDS=1 to refresh it).
#[test]
fn write_seed_corpus() {
    if std::env::var_os("RTMP_PEEK_WRITE_SEEDS").is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    // chunk_reader: the client's messages after the handshake, from a publisher and a player,
    // with a zero first byte so the whole input goes to the session in one piece.
    for (name, mut client) in [("publish", publisher("s?t=1")), ("play", player("m"))] {
        let mut srv = server(1);
        let (_, _, sent) = pump(&mut client, &mut srv);
        let mut seed = vec![0u8];
        seed.extend_from_slice(&sent[1 + 2 * 1536..]);
        std::fs::write(root.join("chunk_reader").join(format!("seed-{name}")), seed).unwrap();
    }
    let mut w = ChunkWriter::with_chunk_size(64).unwrap();
    let mut seed = BytesMut::from(&[0u8][..]);
    w.write(
        &Message::new(6, 9, 1, 0x0100_0000, vec![1u8; 200].into()),
        &mut seed,
    )
    .unwrap();
    w.write(&Control::Abort(4).to_message(), &mut seed).unwrap();
    std::fs::write(root.join("chunk_reader/seed-extended"), &seed).unwrap();
    // Headers as encoders compress them (fmt 0, 1, 2, 3 starting messages on one chunk
    // stream), at a chunk size set first: what pass-through passes on.
    let mut seed = vec![0u8];
    seed.extend_from_slice(
        &ChunkWriter::new()
            .to_bytes(&Control::SetChunkSize(100).to_message())
            .unwrap(),
    );
    seed.extend_from_slice(&[0x06, 0, 0, 0, 0, 0, 150, 9, 1, 0, 0, 0]);
    seed.extend_from_slice(&[7u8; 100]);
    seed.extend_from_slice(&[0xc6]);
    seed.extend_from_slice(&[7u8; 50]);
    seed.extend_from_slice(&[0x46, 0, 0, 33, 0, 0, 20, 9]);
    seed.extend_from_slice(&[8u8; 20]);
    seed.extend_from_slice(&[0x86, 0, 0, 33]);
    seed.extend_from_slice(&[9u8; 20]);
    seed.extend_from_slice(&[0xc6]);
    seed.extend_from_slice(&[10u8; 20]);
    std::fs::write(root.join("chunk_reader/seed-compressed"), &seed).unwrap();
    let mut values = Vec::new();
    Command::connect("live", "rtmp://h/live")
        .encode(&mut values)
        .unwrap();
    std::fs::write(root.join("amf0_decode/seed-connect"), &values).unwrap();
    let mut values = Vec::new();
    amf0::encode_all(
        &[
            Value::EcmaArray(Object::new().with(
                "d",
                Value::Date {
                    millis: 1.0,
                    timezone: 0,
                },
            )),
            Value::StrictArray(vec![Value::Null]),
        ],
        &mut values,
    )
    .unwrap();
    std::fs::write(root.join("amf0_decode/seed-arrays"), &values).unwrap();

    // handshake: C0 C1 C2 of both forms, then the first chunks of a publisher.
    for digest in [false, true] {
        let mut client = publisher_with_handshake(digest);
        let mut srv = server(1);
        let (_, _, sent) = pump(&mut client, &mut srv);
        let name = if digest { "seed-digest" } else { "seed-simple" };
        std::fs::create_dir_all(root.join("handshake")).unwrap();
        std::fs::write(
            root.join("handshake").join(name),
            &sent[..sent.len().min(4000)],
        )
        .unwrap();
    }

    // client_session: an origin's answers to a publisher (first byte 0) and a player (1),
    // and a refusal of connect.
    std::fs::create_dir_all(root.join("client_session")).unwrap();
    let origin_replies = |first: u8, cmds: &[(Command, u32)]| {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::from(&[first][..]);
        for (cmd, stream_id) in cmds {
            w.write(&cmd.to_message(*stream_id).unwrap(), &mut out)
                .unwrap();
        }
        out.to_vec()
    };
    let publish = origin_replies(
        0,
        &[
            (Command::connect_result(1.0, 0.0), 0),
            (Command::create_stream_result(4.0, 7), 0),
            (Command::publish_start("s"), 7),
        ],
    );
    let play = origin_replies(
        1,
        &[
            (Command::connect_result(1.0, 0.0), 0),
            (Command::create_stream_result(2.0, 5), 0),
            (Command::play_reset("s"), 5),
            (Command::play_start("s"), 5),
        ],
    );
    let refused = origin_replies(0, &[(Command::connect_rejected(1.0, "no"), 0)]);
    for (name, bytes) in [
        ("seed-publish", publish),
        ("seed-play", play),
        ("seed-refused", refused),
    ] {
        std::fs::write(root.join("client_session").join(name), bytes).unwrap();
    }
}

/// A publisher whose handshake takes the given form.
fn publisher_with_handshake(digest: bool) -> ClientSession {
    let request = OriginRequest::new(StreamKind::Publish, "live", "rtmp://h/live", "s").unwrap();
    ClientSession::with_handshake(
        request,
        ClientConfig::default(),
        ClientHandshake::with_seed(digest, 11),
    )
    .unwrap()
}
