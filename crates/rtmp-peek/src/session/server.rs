//! The server side of a client's connection, up to the point where its stream is known.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{client::OriginRequest, Leg};
use crate::command::Command;
use crate::handshake::{HandshakeForm, ServerHandshake};
use crate::message::{types, Control, UserControl};
use crate::{Amf0Limits, ChunkReader, ChunkWriter, Error, Message, Object, ReaderLimits, Value};

/// Connect properties of Enhanced RTMP that a local connect answer echoes back.
const ENHANCED_RTMP_KEYS: [&str; 4] = [
    "fourCcList",
    "videoFourCcInfoMap",
    "audioFourCcInfoMap",
    "capsEx",
];

/// Settings of a [`ServerSession`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Chunk size announced to the client right after `connect` (default 4096).
    pub chunk_size: u32,
    /// Window Acknowledgement Size announced to the client (default 2 500 000, as SRS).
    pub window_ack_size: u32,
    /// Set Peer Bandwidth announced to the client (default 2 500 000, dynamic).
    pub peer_bandwidth: u32,
    /// Message stream id returned for `createStream` (default 1).
    pub stream_id: u32,
    /// Chunk reader limits for the client's input.
    pub reader_limits: ReaderLimits,
    /// AMF0 limits for the client's commands.
    pub amf0_limits: Amf0Limits,
    /// Most messages kept for replay before identification (default 32).
    pub max_setup_messages: usize,
    /// Most payload bytes kept for replay before identification (default 256 KiB).
    pub max_setup_bytes: usize,
    /// Most client bytes buffered between identification and the relay (default 2 MiB):
    /// clients normally wait for `NetStream.Publish.Start`, so this only bounds the odd one.
    pub max_pending_bytes: usize,
    /// Whether the local `connect` answer echoes the client's Enhanced RTMP properties
    /// (`fourCcList`, `videoFourCcInfoMap`, `audioFourCcInfoMap`, `capsEx`) in its
    /// properties object (default true). The proxy is codec-agnostic and the origin is not
    /// known yet when `connect` must be answered, so it claims what the client offers and
    /// leaves the final word to the origin's answer to `publish`.
    pub echo_enhanced_rtmp: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            stream_id: 1,
            reader_limits: ReaderLimits::default(),
            amf0_limits: Amf0Limits::default(),
            max_setup_messages: 32,
            max_setup_bytes: 256 * 1024,
            max_pending_bytes: 2 * 1024 * 1024,
            echo_enhanced_rtmp: true,
        }
    }
}

/// Whether the client publishes or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `publish`.
    Publish,
    /// `play`.
    Play,
}

/// What a client connection is about, and what it sent to say so.
#[derive(Debug, Clone, PartialEq)]
pub struct Identified {
    /// Publish or play.
    pub kind: StreamKind,
    /// `tcUrl` from `connect`, verbatim (its query is auth data); empty if absent.
    pub tc_url: String,
    /// `app` from `connect`, verbatim; taken from `tcUrl`'s path when `app` is absent.
    pub app: String,
    /// Stream name from `publish`/`play`, with its `?query` intact.
    pub stream: String,
    /// The client's message stream id for this stream.
    pub stream_id: u32,
    /// The client's `connect`, whole (a [`Command::Connect`]).
    pub connect: Command,
    /// The `publish` or `play` command.
    pub request: Command,
    /// The client's messages to replay to an origin, in order, as received (raw payloads,
    /// so the origin sees exactly what the client sent): `connect`, `releaseStream`,
    /// `FCPublish`, `createStream`, any other command or data message, and `publish`/`play`
    /// last.
    pub replay: Vec<Message>,
}

impl Identified {
    /// The stream name without its query.
    pub fn stream_name(&self) -> &str {
        split_query(&self.stream).0
    }

    /// The stream name's query (after `?`), if any.
    pub fn stream_query(&self) -> Option<&str> {
        split_query(&self.stream).1
    }

    /// The `connect` command object.
    pub fn connect_object(&self) -> Option<&Object> {
        match &self.connect {
            Command::Connect { object, .. } => Some(object),
            _ => None,
        }
    }

    /// What a [`ClientSession`](super::ClientSession) needs to replay this setup to an origin.
    pub fn origin_request(&self) -> OriginRequest {
        OriginRequest {
            kind: self.kind,
            stream: self.stream.clone(),
            client_stream_id: self.stream_id,
            replay: self.replay.clone(),
        }
    }
}

/// Splits `name?query` at the first `?`.
pub fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (s, None),
    }
}

fn app_from_tc_url(tc_url: &str) -> String {
    let rest = tc_url.split_once("://").map_or(tc_url, |(_, r)| r);
    rest.split_once('/')
        .map(|(_, path)| path.to_owned())
        .unwrap_or_default()
}

/// What a [`ServerSession`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `connect` arrived and was answered locally.
    Connected {
        /// `app` (or `tcUrl`'s path).
        app: String,
        /// `tcUrl`.
        tc_url: String,
    },
    /// `publish` or `play` arrived: the stream is known. The session stops parsing here;
    /// later client bytes stay buffered for the relay.
    Identified(Box<Identified>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    WaitConnect,
    WaitStream,
    Identified,
    Closed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Handshake => "handshake",
            State::WaitConnect => "waiting for connect",
            State::WaitStream => "waiting for publish or play",
            State::Identified => "identified",
            State::Closed => "closed",
        }
    }
}

/// The server side of an RTMP connection, from the first byte to `publish`/`play`.
///
/// It answers the handshake (in the form the client used), `connect` (Window Ack Size, Set
/// Peer Bandwidth, Set Chunk Size, `_result` NetConnection.Connect.Success),
/// `releaseStream` and `FCPublish` (empty `_result`, as SRS does) and `createStream`
/// locally, because a client sends nothing that names its stream before those are
/// answered. It does **not** answer `publish` or `play`: that is the origin's verdict to
/// give, forwarded with [`send`](Self::send), or the owner's with [`accept`](Self::accept)
/// or [`reject`](Self::reject).
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    handshake: ServerHandshake,
    leg: Leg,
    connect: Option<Command>,
    replay: Vec<Message>,
    replay_bytes: usize,
    events: VecDeque<ServerEvent>,
    kind: Option<StreamKind>,
    stream: String,
}

impl ServerSession {
    /// A session waiting for C0 C1.
    pub fn new(config: ServerConfig) -> Self {
        Self::with_handshake(config, ServerHandshake::new())
    }

    /// As [`new`](Self::new), with a given handshake (e.g. seeded for tests).
    pub fn with_handshake(config: ServerConfig, handshake: ServerHandshake) -> Self {
        let reader = ChunkReader::with_limits(config.reader_limits);
        ServerSession {
            leg: Leg::new(reader, ChunkWriter::new(), 0),
            config,
            state: State::Handshake,
            handshake,
            connect: None,
            replay: Vec::new(),
            replay_bytes: 0,
            events: VecDeque::new(),
            kind: None,
            stream: String::new(),
        }
    }

    /// Processes bytes from the client. Replies are queued for [`take_output`](Self::take_output),
    /// events for [`poll_event`](Self::poll_event). After an error the session is closed.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Closed => return Err(Error::Closed),
            State::Identified
                if self.leg.reader.buffered() + data.len() > self.config.max_pending_bytes =>
            {
                self.state = State::Closed;
                return Err(Error::BufferFull(self.config.max_pending_bytes));
            }
            _ => {}
        }
        self.leg.feed(data);
        let result = self.process();
        if result.is_err() {
            self.state = State::Closed;
        }
        // Before identification a client mostly waits (for its next command, or forever
        // in a connection storm): an input buffer parsed to the end is freed rather than
        // kept at the size of the largest read.
        if self.state != State::Identified {
            self.leg.reader.release_empty_buffer();
        }
        result
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Takes the bytes to send to the client. The output buffer goes with them: a session
    /// waiting for its client keeps no storage for replies already taken.
    pub fn take_output(&mut self) -> Bytes {
        std::mem::take(&mut self.leg.out).freeze()
    }

    /// Whether bytes are waiting in [`take_output`](Self::take_output).
    pub fn has_output(&self) -> bool {
        self.leg.output_len() > 0
    }

    /// Bytes the session holds for this connection (see [`Leg::buffered_bytes`]): client
    /// input not parsed yet (after identification, everything until the relay), partial
    /// messages, and output not taken.
    pub fn buffered_bytes(&self) -> usize {
        self.leg.buffered_bytes()
    }

    /// The handshake form the client used, once known.
    pub fn handshake_form(&self) -> Option<HandshakeForm> {
        self.handshake.form()
    }

    /// Whether `publish`/`play` has arrived.
    pub fn is_identified(&self) -> bool {
        self.state == State::Identified
    }

    /// The client's message stream id for its stream (meaningful once identified).
    pub fn stream_id(&self) -> u32 {
        self.leg.stream_id
    }

    /// Sends a message to the client as is (e.g. an origin reply from
    /// [`ClientEvent::Forward`](super::ClientEvent::Forward), already on the client's stream id).
    pub fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.leg.send(msg)
    }

    /// Sends a command on the client's stream.
    pub fn send_command(&mut self, cmd: &Command) -> Result<(), Error> {
        let msg = cmd.to_message(self.leg.stream_id)?;
        self.leg.send(&msg)
    }

    /// Tells the client its stream failed: `onStatus` level `error` with `code` and
    /// `description`. Flush the output and close the connection afterwards.
    pub fn reject(&mut self, code: &str, description: &str) -> Result<(), Error> {
        self.send_command(&Command::error_status(code, description))
    }

    /// [`reject`](Self::reject) with the code clients act on when no origin could be
    /// reached: `NetStream.Publish.Rejected` for publishers, `NetStream.Play.Failed` for
    /// players (librtmp closes on both).
    pub fn fail(&mut self, description: &str) -> Result<(), Error> {
        let code = match self.kind {
            Some(StreamKind::Play) => "NetStream.Play.Failed",
            _ => "NetStream.Publish.Rejected",
        };
        self.reject(code, description)
    }

    /// Accepts the stream locally, for tools that serve it themselves rather than relay it:
    /// `onFCPublish` and `NetStream.Publish.Start` for a publisher; Stream Begin,
    /// `NetStream.Play.Reset` and `NetStream.Play.Start` for a player.
    pub fn accept(&mut self) -> Result<(), Error> {
        let id = self.leg.stream_id;
        match self.kind {
            Some(StreamKind::Publish) => {
                self.leg
                    .send(&Command::on_fc_publish(&self.stream).to_message(0)?)?;
                self.send_command(&Command::publish_start(&self.stream))
            }
            Some(StreamKind::Play) => {
                self.leg
                    .send_control(Control::UserControl(UserControl::StreamBegin(id)))?;
                self.send_command(&Command::play_reset(&self.stream))?;
                self.send_command(&Command::play_start(&self.stream))
            }
            None => Err(Error::Unexpected {
                what: "accept".into(),
                state: self.state.name(),
            }),
        }
    }

    /// Ends the session and returns its leg (reader with any buffered client bytes, writer
    /// at the announced chunk size, unsent output, client stream id) for a
    /// [`Relay`](super::Relay), or for reading the client's media directly.
    pub fn into_leg(self) -> Leg {
        self.leg
    }

    fn process(&mut self) -> Result<(), Error> {
        loop {
            match self.state {
                State::Handshake => {
                    if !self
                        .handshake
                        .process(self.leg.reader.buffer_mut(), &mut self.leg.out)?
                    {
                        return Ok(());
                    }
                    self.state = State::WaitConnect;
                }
                State::WaitConnect | State::WaitStream => {
                    let Some(msg) = self.leg.next_message()? else {
                        return Ok(());
                    };
                    self.on_message(msg)?;
                }
                State::Identified | State::Closed => return Ok(()),
            }
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        match msg.type_id {
            types::USER_CONTROL => {
                // A player's buffer length concerns the stream: the origin should hear it.
                if let Some(Control::UserControl(UserControl::SetBufferLength { .. })) =
                    Control::decode(&msg)?
                {
                    if self.state == State::WaitStream {
                        self.record(msg)?;
                    }
                }
                Ok(())
            }
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::from_message(&msg, &self.config.amf0_limits)?;
                self.on_command(cmd, msg)
            }
            types::DATA_AMF0
            | types::DATA_AMF3
            | types::SHARED_OBJECT_AMF0
            | types::SHARED_OBJECT_AMF3
                if self.state == State::WaitStream =>
            {
                self.record(msg)
            }
            // Protocol control was applied by the reader; media before publish has no use.
            _ => Ok(()),
        }
    }

    fn on_command(&mut self, cmd: Command, msg: Message) -> Result<(), Error> {
        let unexpected = |cmd: &Command, state: State| Error::Unexpected {
            what: format!("`{}` command", cmd.name()),
            state: state.name(),
        };
        match (self.state, &cmd) {
            (
                State::WaitConnect,
                Command::Connect {
                    transaction_id,
                    object,
                    ..
                },
            ) => {
                let txn = *transaction_id;
                let encoding = object.get_number("objectEncoding").unwrap_or(0.0);
                let mut extra = Object::new();
                if self.config.echo_enhanced_rtmp {
                    for key in ENHANCED_RTMP_KEYS {
                        if let Some(v) = object.get(key) {
                            extra.0.push((key.to_owned(), v.clone()));
                        }
                    }
                }
                let (app, tc_url) = app_and_tc_url(object);
                self.record(msg)?;
                self.connect = Some(cmd);
                self.leg
                    .send_control(Control::WindowAckSize(self.config.window_ack_size))?;
                self.leg.send_control(Control::SetPeerBandwidth {
                    size: self.config.peer_bandwidth,
                    limit_type: 2,
                })?;
                self.leg
                    .send_control(Control::SetChunkSize(self.config.chunk_size))?;
                self.leg
                    .send(&Command::connect_result_with(txn, encoding, extra).to_message(0)?)?;
                self.events
                    .push_back(ServerEvent::Connected { app, tc_url });
                self.state = State::WaitStream;
                Ok(())
            }
            (State::WaitStream, Command::ReleaseStream { transaction_id, .. })
            | (State::WaitStream, Command::FcPublish { transaction_id, .. }) => {
                let txn = *transaction_id;
                self.record(msg)?;
                if txn != 0.0 {
                    self.leg.send(&Command::empty_result(txn).to_message(0)?)?;
                }
                Ok(())
            }
            (State::WaitStream, Command::CreateStream { transaction_id, .. }) => {
                let txn = *transaction_id;
                self.record(msg)?;
                let reply = Command::create_stream_result(txn, self.config.stream_id);
                self.leg.send(&reply.to_message(0)?)
            }
            (State::WaitStream, Command::Publish { name, .. }) => {
                let name = name.clone();
                self.identify(StreamKind::Publish, name, cmd, msg)
            }
            (State::WaitStream, Command::Play { name, .. }) => {
                let name = name.clone();
                self.identify(StreamKind::Play, name, cmd, msg)
            }
            // Replies, and teardown of a stream that never started, need no answer.
            (
                State::WaitStream,
                Command::Result { .. }
                | Command::Error { .. }
                | Command::OnStatus { .. }
                | Command::DeleteStream { .. }
                | Command::FcUnpublish { .. },
            ) => Ok(()),
            (State::WaitStream, Command::Other { .. }) => self.record(msg),
            (state, cmd) => Err(unexpected(cmd, state)),
        }
    }

    fn identify(
        &mut self,
        kind: StreamKind,
        stream: String,
        request: Command,
        msg: Message,
    ) -> Result<(), Error> {
        let stream_id = msg.stream_id;
        self.record(msg)?;
        let Some(connect) = self.connect.clone() else {
            return Err(Error::Unexpected {
                what: "publish or play".into(),
                state: self.state.name(),
            });
        };
        let (app, tc_url) = match &connect {
            Command::Connect { object, .. } => app_and_tc_url(object),
            _ => Default::default(),
        };
        self.leg.stream_id = stream_id;
        self.kind = Some(kind);
        self.stream = stream.clone();
        self.state = State::Identified;
        let replay = std::mem::take(&mut self.replay);
        self.events
            .push_back(ServerEvent::Identified(Box::new(Identified {
                kind,
                tc_url,
                app,
                stream,
                stream_id,
                connect,
                request,
                replay,
            })));
        Ok(())
    }

    fn record(&mut self, msg: Message) -> Result<(), Error> {
        if self.replay.len() >= self.config.max_setup_messages {
            return Err(Error::SetupTooLarge("the message count limit"));
        }
        self.replay_bytes += msg.payload.len();
        if self.replay_bytes > self.config.max_setup_bytes {
            return Err(Error::SetupTooLarge("the byte limit"));
        }
        self.replay.push(msg);
        Ok(())
    }
}

fn app_and_tc_url(object: &Object) -> (String, String) {
    let tc_url = object.get_str("tcUrl").unwrap_or_default().to_owned();
    let app = match object.get("app") {
        Some(Value::String(app)) if !app.is_empty() => app.clone(),
        _ => app_from_tc_url(&tc_url),
    };
    (app, tc_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_falls_back_to_tc_url() {
        assert_eq!(app_from_tc_url("rtmp://h:1935/live?t=1"), "live?t=1");
        assert_eq!(app_from_tc_url("rtmp://h/a/b"), "a/b");
        assert_eq!(app_from_tc_url("rtmp://h"), "");
        let o = Object::new().with("tcUrl", Value::string("rtmp://h/live"));
        assert_eq!(app_and_tc_url(&o), ("live".into(), "rtmp://h/live".into()));
        let o = o.with("app", Value::string("other"));
        assert_eq!(app_and_tc_url(&o).0, "other");
    }

    #[test]
    fn split_query_keeps_everything_after_the_first_mark() {
        assert_eq!(split_query("s?a=1?b"), ("s", Some("a=1?b")));
        assert_eq!(split_query("s"), ("s", None));
    }

    #[test]
    fn refuses_non_rtmp_and_commands_before_connect() {
        let mut s = ServerSession::new(ServerConfig::default());
        assert_eq!(
            s.feed(b"GET / HTTP/1.1\r\n"),
            Err(Error::UnsupportedVersion(b'G'))
        );
        assert_eq!(s.feed(&[3]), Err(Error::Closed));
    }
}
