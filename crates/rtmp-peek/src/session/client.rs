//! The proxy's leg towards an origin: handshake as a client, replay the client's setup,
//! report the origin's verdict.

use std::collections::VecDeque;

use bytes::Bytes;

use super::relay::rewrite_stream_id;
use super::{Leg, StreamKind};
use crate::command::{Command, PublishType};
use crate::handshake::ClientHandshake;
use crate::message::{types, Control};
use crate::{Amf0Limits, ChunkReader, ChunkWriter, Error, Message, ReaderLimits, Value};

/// Settings of a [`ClientSession`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Chunk size announced to the origin before `connect` (default 4096).
    pub chunk_size: u32,
    /// Whether to use the digest handshake (default false: SRS and nginx-rtmp accept the
    /// simple one, and it costs nothing).
    pub digest_handshake: bool,
    /// Chunk reader limits for the origin's input.
    pub reader_limits: ReaderLimits,
    /// AMF0 limits for the origin's replies.
    pub amf0_limits: Amf0Limits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            chunk_size: 4096,
            digest_handshake: false,
            reader_limits: ReaderLimits::default(),
            amf0_limits: Amf0Limits::default(),
        }
    }
}

/// What to ask of the origin: the client's own messages, replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginRequest {
    /// Publish or play.
    pub kind: StreamKind,
    /// Stream name with its query (for logs).
    pub stream: String,
    /// The message stream id the client uses; origin replies are rewritten to it.
    pub client_stream_id: u32,
    /// Messages to send, in order: `connect` first, `publish`/`play` last.
    pub replay: Vec<Message>,
}

impl OriginRequest {
    /// A request built from scratch, as ffmpeg would send it, for a proxy that opens an
    /// origin leg of its own accord (e.g. to pull a stream).
    pub fn new(kind: StreamKind, app: &str, tc_url: &str, stream: &str) -> Result<Self, Error> {
        let mut cmds = vec![Command::connect(app, tc_url)];
        let mut txn = 2.0;
        if kind == StreamKind::Publish {
            cmds.push(Command::ReleaseStream {
                transaction_id: 2.0,
                name: stream.into(),
            });
            cmds.push(Command::FcPublish {
                transaction_id: 3.0,
                name: stream.into(),
            });
            txn = 4.0;
        }
        cmds.push(Command::CreateStream {
            transaction_id: txn,
            object: Value::Null,
        });
        let mut replay = cmds
            .iter()
            .map(|c| c.to_message(0))
            .collect::<Result<Vec<_>, _>>()?;
        let start = match kind {
            StreamKind::Publish => Command::Publish {
                transaction_id: txn + 1.0,
                name: stream.into(),
                publish_type: Some(PublishType::Live),
            },
            StreamKind::Play => Command::Play {
                transaction_id: txn + 1.0,
                name: stream.into(),
                start: Some(-2.0),
                duration: None,
                reset: None,
            },
        };
        replay.push(start.to_message(1)?);
        Ok(OriginRequest {
            kind,
            stream: stream.into(),
            client_stream_id: 1,
            replay,
        })
    }
}

/// Where in the setup the origin said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStage {
    /// Answering `connect`.
    Connect,
    /// Answering `createStream`.
    CreateStream,
    /// Answering `publish` or `play`.
    Start,
}

/// What a [`ClientSession`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The origin accepted `connect`; `result` is its `_result` (its capabilities included).
    Connected {
        /// The origin's `_result`.
        result: Command,
    },
    /// The origin created the stream with this message stream id.
    StreamCreated {
        /// The origin's message stream id.
        stream_id: u32,
    },
    /// A message for the client, already on the client's message stream id: send it with
    /// [`ServerSession::send`](super::ServerSession::send), in order.
    Forward(Message),
    /// The origin accepted `publish`/`play`. `status` is its `onStatus` (already forwarded),
    /// or `None` when a player's media arrived first. Switch to the relay now.
    Accepted {
        /// The origin's `onStatus`.
        status: Option<Command>,
        /// The origin's message stream id.
        stream_id: u32,
    },
    /// The origin refused. An `onStatus` carrying the origin's information object (its
    /// `code`, `description` and anything else, such as a redirect) was forwarded just
    /// before; flush it to the client and close both connections.
    Rejected {
        /// Which step failed.
        stage: SetupStage,
        /// The origin's `_error` or `onStatus`.
        reply: Command,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Connecting,
    Creating,
    Starting,
    Done,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Connect,
    CreateStream,
    AnsweredLocally,
    Start,
    Other,
}

/// The client side of the proxy's connection to an origin.
///
/// Created from an [`OriginRequest`] (see
/// [`Identified::origin_request`](super::Identified::origin_request)), it sends C0 C1 at
/// once, then after the handshake a Set Chunk Size, the client's `connect` (whole, as the
/// client sent it), waits for the answer, sends the rest up to `createStream`, waits for
/// the origin's stream id, and sends `publish`/`play` on it. Replies to the commands the
/// proxy already answered locally (`connect`, `releaseStream`, `FCPublish`, `createStream`)
/// are kept from the client; everything else the origin says is forwarded.
#[derive(Debug)]
pub struct ClientSession {
    state: State,
    handshake: ClientHandshake,
    leg: Leg,
    amf0_limits: Amf0Limits,
    chunk_size: u32,
    request: OriginRequest,
    roles: Vec<(Role, Option<f64>)>,
    next: usize,
    swallow: Vec<f64>,
    create_txn: Option<f64>,
    start_txn: Option<f64>,
    origin_stream_id: Option<u32>,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A session with C0 C1 already queued in its output.
    pub fn new(request: OriginRequest, config: ClientConfig) -> Result<Self, Error> {
        Self::with_handshake(
            request,
            config.clone(),
            ClientHandshake::new(config.digest_handshake),
        )
    }

    /// As [`new`](Self::new), with a given handshake (e.g. seeded for tests).
    pub fn with_handshake(
        request: OriginRequest,
        config: ClientConfig,
        handshake: ClientHandshake,
    ) -> Result<Self, Error> {
        let mut roles = Vec::with_capacity(request.replay.len());
        for msg in &request.replay {
            let role = if msg.is_command() {
                let cmd = Command::from_message(msg, &config.amf0_limits)?;
                let role = match cmd {
                    Command::Connect { .. } => Role::Connect,
                    Command::CreateStream { .. } => Role::CreateStream,
                    Command::ReleaseStream { .. } | Command::FcPublish { .. } => {
                        Role::AnsweredLocally
                    }
                    Command::Publish { .. } | Command::Play { .. } => Role::Start,
                    _ => Role::Other,
                };
                (role, cmd.transaction_id())
            } else {
                (Role::Other, None)
            };
            roles.push(role);
        }
        if roles.first().map(|r| r.0) != Some(Role::Connect)
            || !roles.iter().any(|r| r.0 == Role::Start)
        {
            return Err(Error::Unexpected {
                what: "replay without connect or publish/play".into(),
                state: "new",
            });
        }
        let reader = ChunkReader::with_limits(config.reader_limits);
        let mut session = ClientSession {
            state: State::Handshake,
            handshake,
            leg: Leg::new(reader, ChunkWriter::new(), 0),
            amf0_limits: config.amf0_limits,
            chunk_size: config.chunk_size,
            request,
            roles,
            next: 0,
            swallow: Vec::new(),
            create_txn: None,
            start_txn: None,
            origin_stream_id: None,
            events: VecDeque::new(),
        };
        session.handshake.start(&mut session.leg.out)?;
        Ok(session)
    }

    /// Processes bytes from the origin. After an error the session is closed.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        self.leg.feed(data);
        let result = self.process();
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Takes the bytes to send to the origin.
    pub fn take_output(&mut self) -> Bytes {
        self.leg.take_output()
    }

    /// Whether bytes are waiting in [`take_output`](Self::take_output).
    pub fn has_output(&self) -> bool {
        self.leg.output_len() > 0
    }

    /// Bytes the session holds for this connection (see [`Leg::buffered_bytes`]).
    pub fn buffered_bytes(&self) -> usize {
        self.leg.buffered_bytes()
    }

    /// The origin's message stream id, once `createStream` was answered.
    pub fn origin_stream_id(&self) -> Option<u32> {
        self.origin_stream_id
    }

    /// Whether the origin gave its verdict (accepted or rejected).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Ends the session and returns its leg (reader with any buffered origin bytes, writer
    /// at the announced chunk size, unsent output, origin stream id) for a
    /// [`Relay`](super::Relay).
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
                    self.leg
                        .send_control(Control::SetChunkSize(self.chunk_size))?;
                    self.state = State::Connecting;
                    self.send_more()?;
                }
                State::Connecting | State::Creating | State::Starting => {
                    let Some(msg) = self.leg.next_message()? else {
                        return Ok(());
                    };
                    self.on_message(msg)?;
                }
                // Whatever follows the verdict belongs to the relay.
                State::Done | State::Closed => return Ok(()),
            }
        }
    }

    /// Sends replay messages until one whose answer must be awaited.
    fn send_more(&mut self) -> Result<(), Error> {
        while let (Some(msg), Some(&(role, txn))) = (
            self.request.replay.get(self.next),
            self.roles.get(self.next),
        ) {
            let mut msg = msg.clone();
            if let Some(origin) = self.origin_stream_id {
                msg = rewrite_stream_id(
                    msg,
                    self.request.client_stream_id,
                    origin,
                    &self.amf0_limits,
                )?;
            }
            if role == Role::Start && self.origin_stream_id.is_none() && msg.stream_id != 0 {
                return Err(Error::Unexpected {
                    what: "publish/play before createStream".into(),
                    state: "replay",
                });
            }
            self.leg.send(&msg)?;
            self.next += 1;
            match role {
                Role::Connect => return Ok(()),
                Role::CreateStream => {
                    self.swallow.extend(txn);
                    self.create_txn = txn;
                    self.state = State::Creating;
                    return Ok(());
                }
                Role::Start => {
                    self.start_txn = txn;
                    self.state = State::Starting;
                    return Ok(());
                }
                Role::AnsweredLocally => self.swallow.extend(txn),
                Role::Other => {}
            }
        }
        Ok(())
    }

    fn forward(&mut self, msg: Message) -> Result<(), Error> {
        let msg = match self.origin_stream_id {
            Some(origin) => rewrite_stream_id(
                msg,
                origin,
                self.request.client_stream_id,
                &self.amf0_limits,
            )?,
            None => msg,
        };
        self.events.push_back(ClientEvent::Forward(msg));
        Ok(())
    }

    fn reject(&mut self, stage: SetupStage, reply: Command) -> Result<(), Error> {
        let info = reply.info().cloned().unwrap_or_default();
        let status = Command::OnStatus {
            transaction_id: 0.0,
            info,
        };
        let msg = status.to_message(self.request.client_stream_id)?;
        self.events.push_back(ClientEvent::Forward(msg));
        self.events
            .push_back(ClientEvent::Rejected { stage, reply });
        self.state = State::Done;
        Ok(())
    }

    fn stage(&self) -> SetupStage {
        match self.state {
            State::Handshake | State::Connecting => SetupStage::Connect,
            State::Creating => SetupStage::CreateStream,
            _ => SetupStage::Start,
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        if msg.is_control() {
            // Protocol control was applied by the reader and pings answered by the leg: each
            // leg negotiates its own. Stream events (Stream Begin...) concern the client.
            return match Control::decode(&msg)? {
                Some(Control::UserControl(ev)) if ev.stream_id().is_some() => self.forward(msg),
                _ => Ok(()),
            };
        }
        if !msg.is_command() {
            let media = matches!(
                msg.type_id,
                types::AUDIO
                    | types::VIDEO
                    | types::DATA_AMF0
                    | types::DATA_AMF3
                    | types::AGGREGATE
            );
            self.forward(msg)?;
            if media && self.state == State::Starting && self.request.kind == StreamKind::Play {
                self.accept(None)?;
            }
            return Ok(());
        }
        let cmd = Command::from_message(&msg, &self.amf0_limits)?;
        let txn = cmd.transaction_id();
        match &cmd {
            Command::Result { .. } | Command::Error { .. } => {
                let is_error = matches!(cmd, Command::Error { .. });
                let connect_txn = self.roles.first().and_then(|r| r.1);
                if self.state == State::Connecting && txn == connect_txn {
                    if is_error {
                        return self.reject(SetupStage::Connect, cmd);
                    }
                    self.events
                        .push_back(ClientEvent::Connected { result: cmd });
                    return self.send_more();
                }
                if self.state == State::Creating && txn.is_some() && txn == self.create_txn {
                    if is_error {
                        return self.reject(SetupStage::CreateStream, cmd);
                    }
                    let id = match &cmd {
                        Command::Result { args, .. } => args.iter().find_map(Value::as_number),
                        _ => None,
                    };
                    let id = id
                        .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX))
                        .ok_or_else(|| Error::BadCommand {
                            command: "_result".into(),
                            reason: "createStream answer without a stream id",
                        })?;
                    self.origin_stream_id = Some(id as u32);
                    self.leg.stream_id = id as u32;
                    self.events.push_back(ClientEvent::StreamCreated {
                        stream_id: id as u32,
                    });
                    self.state = State::Starting;
                    return self.send_more();
                }
                if is_error && self.state == State::Starting && txn == self.start_txn {
                    return self.reject(SetupStage::Start, cmd);
                }
                match txn {
                    Some(t) if self.swallow.contains(&t) => Ok(()),
                    _ => self.forward(msg),
                }
            }
            Command::OnStatus { .. } => {
                if cmd.level() == Some("error") {
                    let stage = self.stage();
                    return self.reject(stage, cmd);
                }
                let start = matches!(
                    cmd.code(),
                    Some("NetStream.Publish.Start" | "NetStream.Play.Start")
                );
                self.forward(msg)?;
                if start && self.state == State::Starting {
                    self.accept(Some(cmd))?;
                }
                Ok(())
            }
            _ => self.forward(msg),
        }
    }

    fn accept(&mut self, status: Option<Command>) -> Result<(), Error> {
        let stream_id = self.origin_stream_id.unwrap_or(0);
        self.events
            .push_back(ClientEvent::Accepted { status, stream_id });
        self.state = State::Done;
        Ok(())
    }
}
