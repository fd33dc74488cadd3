//! Command messages (AMF0 command and data messages) and the standard server replies.
//!
//! Decoding is by name. `connect`, `publish` and `play` must have the shape the protocol
//! gives them, since a session cannot go on without their fields; any other known name
//! whose arguments do not fit is kept as [`Command::Other`], and unknown names always are,
//! so nothing a peer sends is lost for forwarding.

use bytes::{BufMut, BytesMut};

use crate::amf0::{self, Amf0Limits, Object, Value};
use crate::message::{csid, types};
use crate::{Control, Error, Message, UserControl};

/// What `publish` asks the server to do with the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishType {
    /// `live`: do not record.
    Live,
    /// `record`: record, replacing an existing recording.
    Record,
    /// `append`: record, appending.
    Append,
    /// Anything else, kept verbatim.
    Other(String),
}

impl PublishType {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            PublishType::Live => "live",
            PublishType::Record => "record",
            PublishType::Append => "append",
            PublishType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "live" => PublishType::Live,
            "record" => PublishType::Record,
            "append" => PublishType::Append,
            other => PublishType::Other(other.to_owned()),
        }
    }
}

/// A command (or data) message body.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `connect`: the whole command object, unknown keys (Enhanced RTMP's `fourCcList`,
    /// `capsEx`, ...) included, and any optional arguments after it.
    Connect {
        /// Transaction id (1 by convention).
        transaction_id: f64,
        /// The command object (`app`, `tcUrl`, `flashVer`, `objectEncoding`, ...).
        object: Object,
        /// Optional user arguments after the command object.
        args: Vec<Value>,
    },
    /// `createStream`.
    CreateStream {
        /// Transaction id.
        transaction_id: f64,
        /// Command object, normally null.
        object: Value,
    },
    /// `releaseStream` (FMLE-style publishers send it before publishing).
    ReleaseStream {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name, query included.
        name: String,
    },
    /// `FCPublish`.
    FcPublish {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name, query included.
        name: String,
    },
    /// `FCUnpublish`.
    FcUnpublish {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name, query included.
        name: String,
    },
    /// `publish`.
    Publish {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name with its `?query` intact.
        name: String,
        /// `live`, `record` or `append`; `None` when the client sent none.
        publish_type: Option<PublishType>,
    },
    /// `play`.
    Play {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name with its `?query` intact.
        name: String,
        /// Start position (-2 live or recorded, -1 live only, >= 0 recorded from there).
        start: Option<f64>,
        /// Duration (-1 until the end).
        duration: Option<f64>,
        /// Whether to flush previous playlists.
        reset: Option<bool>,
    },
    /// `deleteStream`.
    DeleteStream {
        /// Transaction id.
        transaction_id: f64,
        /// The message stream to delete.
        stream_id: f64,
    },
    /// `_result`.
    Result {
        /// Transaction id of the command answered.
        transaction_id: f64,
        /// Command object (properties for `connect`, null otherwise).
        object: Value,
        /// The rest: the information object for `connect`, the stream id for `createStream`.
        args: Vec<Value>,
    },
    /// `_error`.
    Error {
        /// Transaction id of the command refused.
        transaction_id: f64,
        /// Command object, normally null.
        object: Value,
        /// The rest, normally one information object (`level`, `code`, `description`).
        args: Vec<Value>,
    },
    /// `onStatus`.
    OnStatus {
        /// Transaction id, normally 0.
        transaction_id: f64,
        /// The whole information object (`level`, `code`, `description`, and anything else).
        info: Object,
    },
    /// Any other command or data message: its name and every value after it.
    Other {
        /// Command name (`onFCPublish`, `@setDataFrame`, `getStreamLength`, ...).
        name: String,
        /// The values after the name, transaction id included for commands.
        args: Vec<Value>,
    },
}

fn bad(command: &str, reason: &'static str) -> Error {
    Error::BadCommand {
        command: command.to_owned(),
        reason,
    }
}

fn object_of(value: Value) -> Option<Object> {
    match value {
        Value::Object(o) | Value::EcmaArray(o) => Some(o),
        _ => None,
    }
}

impl Command {
    /// Decodes a command from a message of type 20 (AMF0), 17 (AMF3 command carrying AMF0),
    /// 18 or 15 (data).
    pub fn from_message(msg: &Message, limits: &Amf0Limits) -> Result<Command, Error> {
        let body = match msg.type_id {
            // AMF3 flavours start with a format byte; what follows is AMF0 in practice.
            types::COMMAND_AMF3 | types::DATA_AMF3 => msg.payload.get(1..).unwrap_or_default(),
            _ => &msg.payload[..],
        };
        Command::decode(body, limits)
    }

    /// Decodes an AMF0 command body.
    pub fn decode(body: &[u8], limits: &Amf0Limits) -> Result<Command, Error> {
        let values = amf0::decode_all(body, limits)?;
        let mut it = values.into_iter();
        let name = match it.next() {
            Some(Value::String(name)) => name,
            _ => return Err(bad("?", "does not start with a name")),
        };
        let args: Vec<Value> = it.collect();
        Command::from_parts(name, args)
    }

    fn from_parts(name: String, args: Vec<Value>) -> Result<Command, Error> {
        let txn = args.first().and_then(Value::as_number);
        let strict = matches!(name.as_str(), "connect" | "publish" | "play");
        let Some(transaction_id) = txn else {
            if strict {
                return Err(bad(&name, "missing transaction id"));
            }
            return Ok(Command::Other { name, args });
        };
        let mut rest = args.iter().skip(1).cloned();
        let string_at = |i: usize| args.get(i).and_then(Value::as_str).map(str::to_owned);
        let number_at = |i: usize| args.get(i).and_then(Value::as_number);
        let typed = match name.as_str() {
            "connect" => {
                let object = rest
                    .next()
                    .and_then(object_of)
                    .ok_or_else(|| bad("connect", "no command object"))?;
                Some(Command::Connect {
                    transaction_id,
                    object,
                    args: rest.collect(),
                })
            }
            "publish" => {
                let name = string_at(2).ok_or_else(|| bad("publish", "no stream name"))?;
                let publish_type = args.get(3).and_then(Value::as_str).map(PublishType::parse);
                Some(Command::Publish {
                    transaction_id,
                    name,
                    publish_type,
                })
            }
            "play" => {
                let name = string_at(2).ok_or_else(|| bad("play", "no stream name"))?;
                let reset = match args.get(5) {
                    Some(Value::Boolean(b)) => Some(*b),
                    _ => None,
                };
                Some(Command::Play {
                    transaction_id,
                    name,
                    start: number_at(3),
                    duration: number_at(4),
                    reset,
                })
            }
            "createStream" => Some(Command::CreateStream {
                transaction_id,
                object: rest.next().unwrap_or(Value::Null),
            }),
            "releaseStream" => string_at(2).map(|name| Command::ReleaseStream {
                transaction_id,
                name,
            }),
            "FCPublish" => string_at(2).map(|name| Command::FcPublish {
                transaction_id,
                name,
            }),
            "FCUnpublish" => string_at(2).map(|name| Command::FcUnpublish {
                transaction_id,
                name,
            }),
            "deleteStream" => number_at(2).map(|stream_id| Command::DeleteStream {
                transaction_id,
                stream_id,
            }),
            "_result" => Some(Command::Result {
                transaction_id,
                object: rest.next().unwrap_or(Value::Null),
                args: rest.collect(),
            }),
            "_error" => Some(Command::Error {
                transaction_id,
                object: rest.next().unwrap_or(Value::Null),
                args: rest.collect(),
            }),
            "onStatus" => args
                .get(2)
                .cloned()
                .and_then(object_of)
                .map(|info| Command::OnStatus {
                    transaction_id,
                    info,
                }),
            _ => None,
        };
        Ok(typed.unwrap_or(Command::Other { name, args }))
    }

    /// The command name as sent on the wire.
    pub fn name(&self) -> &str {
        match self {
            Command::Connect { .. } => "connect",
            Command::CreateStream { .. } => "createStream",
            Command::ReleaseStream { .. } => "releaseStream",
            Command::FcPublish { .. } => "FCPublish",
            Command::FcUnpublish { .. } => "FCUnpublish",
            Command::Publish { .. } => "publish",
            Command::Play { .. } => "play",
            Command::DeleteStream { .. } => "deleteStream",
            Command::Result { .. } => "_result",
            Command::Error { .. } => "_error",
            Command::OnStatus { .. } => "onStatus",
            Command::Other { name, .. } => name,
        }
    }

    /// The transaction id, if the command has one.
    pub fn transaction_id(&self) -> Option<f64> {
        match self {
            Command::Connect { transaction_id, .. }
            | Command::CreateStream { transaction_id, .. }
            | Command::ReleaseStream { transaction_id, .. }
            | Command::FcPublish { transaction_id, .. }
            | Command::FcUnpublish { transaction_id, .. }
            | Command::Publish { transaction_id, .. }
            | Command::Play { transaction_id, .. }
            | Command::DeleteStream { transaction_id, .. }
            | Command::Result { transaction_id, .. }
            | Command::Error { transaction_id, .. }
            | Command::OnStatus { transaction_id, .. } => Some(*transaction_id),
            Command::Other { args, .. } => args.first().and_then(Value::as_number),
        }
    }

    /// The information object of an `onStatus`, or of a `_result`/`_error` (its first
    /// object argument): where `level`, `code` and `description` live.
    pub fn info(&self) -> Option<&Object> {
        match self {
            Command::OnStatus { info, .. } => Some(info),
            Command::Result { args, .. } | Command::Error { args, .. } => {
                args.iter().find_map(Value::as_object)
            }
            _ => None,
        }
    }

    /// `info()`'s `level` (`status`, `warning` or `error`).
    pub fn level(&self) -> Option<&str> {
        self.info().and_then(|i| i.get_str("level"))
    }

    /// `info()`'s `code` (e.g. `NetStream.Publish.Start`).
    pub fn code(&self) -> Option<&str> {
        self.info().and_then(|i| i.get_str("code"))
    }

    /// Whether an origin's `msg`, on a play, says the stream ended: `onStatus`
    /// `NetStream.Play.UnpublishNotify` or `NetStream.Play.Stop`, or a StreamEOF user
    /// control. Anything else (media, other commands, what does not parse) does not.
    pub fn ends_play(msg: &Message, limits: &Amf0Limits) -> bool {
        match msg.type_id {
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => Command::from_message(msg, limits)
                .is_ok_and(|c| {
                    matches!(
                        c.code(),
                        Some("NetStream.Play.UnpublishNotify" | "NetStream.Play.Stop")
                    )
                }),
            types::USER_CONTROL => matches!(
                Control::decode(msg),
                Ok(Some(Control::UserControl(UserControl::StreamEof(_))))
            ),
            _ => false,
        }
    }

    /// `info()`'s `description`.
    pub fn description(&self) -> Option<&str> {
        self.info().and_then(|i| i.get_str("description"))
    }

    /// The values after the name, in wire order.
    pub fn to_values(&self) -> Vec<Value> {
        let n = |t: &f64| Value::Number(*t);
        let s = |s: &String| Value::String(s.clone());
        match self {
            Command::Connect {
                transaction_id,
                object,
                args,
            } => {
                let mut v = vec![n(transaction_id), Value::Object(object.clone())];
                v.extend(args.iter().cloned());
                v
            }
            Command::CreateStream {
                transaction_id,
                object,
            } => vec![n(transaction_id), object.clone()],
            Command::ReleaseStream {
                transaction_id,
                name,
            }
            | Command::FcPublish {
                transaction_id,
                name,
            }
            | Command::FcUnpublish {
                transaction_id,
                name,
            } => vec![n(transaction_id), Value::Null, s(name)],
            Command::Publish {
                transaction_id,
                name,
                publish_type,
            } => {
                let mut v = vec![n(transaction_id), Value::Null, s(name)];
                if let Some(t) = publish_type {
                    v.push(Value::string(t.as_str()));
                }
                v
            }
            Command::Play {
                transaction_id,
                name,
                start,
                duration,
                reset,
            } => {
                let mut v = vec![n(transaction_id), Value::Null, s(name)];
                // Optional arguments are positional: a later one forces the earlier ones.
                let start = start.or(duration.or(reset.map(|_| 0.0)).map(|_| -2.0));
                let duration = duration.or(reset.map(|_| -1.0));
                v.extend(start.map(Value::Number));
                v.extend(duration.map(Value::Number));
                v.extend(reset.map(Value::Boolean));
                v
            }
            Command::DeleteStream {
                transaction_id,
                stream_id,
            } => {
                vec![n(transaction_id), Value::Null, Value::Number(*stream_id)]
            }
            Command::Result {
                transaction_id,
                object,
                args,
            }
            | Command::Error {
                transaction_id,
                object,
                args,
            } => {
                let mut v = vec![n(transaction_id), object.clone()];
                v.extend(args.iter().cloned());
                v
            }
            Command::OnStatus {
                transaction_id,
                info,
            } => {
                vec![n(transaction_id), Value::Null, Value::Object(info.clone())]
            }
            Command::Other { args, .. } => args.clone(),
        }
    }

    /// Appends the AMF0 body.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), Error> {
        amf0::encode(&Value::string(self.name()), out)?;
        amf0::encode_all(&self.to_values(), out)
    }

    /// A command message (type 20) on message stream `stream_id`, on chunk stream 3 for the
    /// connection and 5 for a created stream.
    pub fn to_message(&self, stream_id: u32) -> Result<Message, Error> {
        let mut body = BytesMut::new();
        self.encode(&mut body)?;
        let cs = if stream_id == 0 {
            csid::COMMAND
        } else {
            csid::STREAM
        };
        Ok(Message::new(
            cs,
            types::COMMAND_AMF0,
            stream_id,
            0,
            body.freeze(),
        ))
    }

    /// A `connect` as a publisher would send it, with the usual minimal object.
    pub fn connect(app: &str, tc_url: &str) -> Command {
        let object = Object::new()
            .with("app", Value::string(app))
            .with("type", Value::string("nonprivate"))
            .with(
                "flashVer",
                Value::string("FMLE/3.0 (compatible; rtmp-peek)"),
            )
            .with("tcUrl", Value::string(tc_url));
        Command::Connect {
            transaction_id: 1.0,
            object,
            args: Vec::new(),
        }
    }

    /// `_result` for `connect`: success, with the server properties SRS sends.
    pub fn connect_result(transaction_id: f64, object_encoding: f64) -> Command {
        Command::connect_result_with(transaction_id, object_encoding, Object::new())
    }

    /// As [`connect_result`](Self::connect_result), with `extra` appended to the properties
    /// (e.g. Enhanced RTMP's `fourCcList` echoed back).
    pub fn connect_result_with(
        transaction_id: f64,
        object_encoding: f64,
        extra: Object,
    ) -> Command {
        let mut props = Object::new()
            .with("fmsVer", Value::string("FMS/3,5,3,888"))
            .with("capabilities", Value::Number(127.0))
            .with("mode", Value::Number(1.0));
        props.0.extend(extra.0);
        let info = status_info(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        )
        .with("objectEncoding", Value::Number(object_encoding));
        Command::Result {
            transaction_id,
            object: Value::Object(props),
            args: vec![Value::Object(info)],
        }
    }

    /// `_error` for `connect`: `NetConnection.Connect.Rejected` with a description.
    pub fn connect_rejected(transaction_id: f64, description: &str) -> Command {
        let info = status_info("error", "NetConnection.Connect.Rejected", description);
        Command::Error {
            transaction_id,
            object: Value::Null,
            args: vec![Value::Object(info)],
        }
    }

    /// `_result` for `createStream`, returning `stream_id`.
    pub fn create_stream_result(transaction_id: f64, stream_id: u32) -> Command {
        Command::Result {
            transaction_id,
            object: Value::Null,
            args: vec![Value::Number(f64::from(stream_id))],
        }
    }

    /// `_result` with no content, SRS's answer to `releaseStream` and `FCPublish`.
    pub fn empty_result(transaction_id: f64) -> Command {
        Command::Result {
            transaction_id,
            object: Value::Null,
            args: vec![Value::Undefined],
        }
    }

    /// `onStatus` with the given level, code and description.
    pub fn on_status(level: &str, code: &str, description: &str) -> Command {
        Command::OnStatus {
            transaction_id: 0.0,
            info: status_info(level, code, description),
        }
    }

    /// `onStatus` `NetStream.Publish.Start`.
    pub fn publish_start(stream: &str) -> Command {
        Command::on_status(
            "status",
            "NetStream.Publish.Start",
            &format!("{stream} is now published."),
        )
    }

    /// `onStatus` `NetStream.Play.Reset`.
    pub fn play_reset(stream: &str) -> Command {
        Command::on_status(
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {stream}."),
        )
    }

    /// `onStatus` `NetStream.Play.Start`.
    pub fn play_start(stream: &str) -> Command {
        Command::on_status(
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {stream}."),
        )
    }

    /// `onStatus` at level `error` (e.g. `NetStream.Publish.BadName`,
    /// `NetStream.Play.StreamNotFound`, `NetStream.Failed`).
    pub fn error_status(code: &str, description: &str) -> Command {
        Command::on_status("error", code, description)
    }

    /// `onFCPublish` with `NetStream.Publish.Start`, as nginx-rtmp and SRS send it.
    pub fn on_fc_publish(stream: &str) -> Command {
        let info = Object::new()
            .with("code", Value::string("NetStream.Publish.Start"))
            .with("description", Value::string(stream));
        Command::Other {
            name: "onFCPublish".into(),
            args: vec![Value::Number(0.0), Value::Null, Value::Object(info)],
        }
    }
}

/// An information object: `level`, `code`, `description`.
pub fn status_info(level: &str, code: &str, description: &str) -> Object {
    Object::new()
        .with("level", Value::string(level))
        .with("code", Value::string(code))
        .with("description", Value::string(description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Amf0Limits {
        Amf0Limits::default()
    }

    fn body(cmd: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        cmd.encode(&mut out).unwrap();
        out
    }

    fn amf(values: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        amf0::encode_all(values, &mut out).unwrap();
        out
    }

    #[test]
    fn a_play_ends_with_unpublish_notify_stop_or_stream_eof() {
        let status = |code: &str| {
            Command::on_status("status", code, "")
                .to_message(1)
                .unwrap()
        };
        assert!(Command::ends_play(
            &status("NetStream.Play.UnpublishNotify"),
            &lim()
        ));
        assert!(Command::ends_play(&status("NetStream.Play.Stop"), &lim()));
        assert!(!Command::ends_play(&status("NetStream.Play.Start"), &lim()));
        let eof = Control::UserControl(UserControl::StreamEof(1)).to_message();
        assert!(Command::ends_play(&eof, &lim()));
        let begin = Control::UserControl(UserControl::StreamBegin(1)).to_message();
        assert!(!Command::ends_play(&begin, &lim()));
        let audio = Message::new(
            csid::AUDIO,
            types::AUDIO,
            1,
            0,
            bytes::Bytes::from_static(&[0xaf, 1]),
        );
        assert!(!Command::ends_play(&audio, &lim()));
    }

    #[test]
    fn connect_keeps_unknown_fields_and_args() {
        let object = Object::new()
            .with("app", Value::string("live"))
            .with("tcUrl", Value::string("rtmp://h/live"))
            .with(
                "fourCcList",
                Value::StrictArray(vec![Value::string("hvc1"), Value::string("av01")]),
            )
            .with("capsEx", Value::Number(1.0));
        let bytes = amf(&[
            Value::string("connect"),
            Value::Number(1.0),
            Value::Object(object.clone()),
            Value::string("extra"),
        ]);
        let cmd = Command::decode(&bytes, &lim()).unwrap();
        assert_eq!(
            cmd,
            Command::Connect {
                transaction_id: 1.0,
                object,
                args: vec![Value::string("extra")]
            }
        );
        assert_eq!(body(&cmd), bytes);
    }

    #[test]
    fn byte_vector_publish() {
        // "publish", 5, null, "s?k=1", "live"
        let bytes = [
            2, 0, 7, b'p', b'u', b'b', b'l', b'i', b's', b'h', 0, 0x40, 0x14, 0, 0, 0, 0, 0, 0, 5,
            2, 0, 5, b's', b'?', b'k', b'=', b'1', 2, 0, 4, b'l', b'i', b'v', b'e',
        ];
        let cmd = Command::decode(&bytes, &lim()).unwrap();
        assert_eq!(
            cmd,
            Command::Publish {
                transaction_id: 5.0,
                name: "s?k=1".into(),
                publish_type: Some(PublishType::Live)
            }
        );
        assert_eq!(body(&cmd), bytes);
    }

    #[test]
    fn round_trips_every_variant() {
        let cmds = vec![
            Command::connect("live", "rtmp://127.0.0.1/live"),
            Command::CreateStream {
                transaction_id: 4.0,
                object: Value::Null,
            },
            Command::ReleaseStream {
                transaction_id: 2.0,
                name: "s".into(),
            },
            Command::FcPublish {
                transaction_id: 3.0,
                name: "s?t=1".into(),
            },
            Command::FcUnpublish {
                transaction_id: 6.0,
                name: "s".into(),
            },
            Command::Publish {
                transaction_id: 5.0,
                name: "s".into(),
                publish_type: Some(PublishType::Record),
            },
            Command::Publish {
                transaction_id: 5.0,
                name: "s".into(),
                publish_type: None,
            },
            Command::Publish {
                transaction_id: 5.0,
                name: "s".into(),
                publish_type: Some(PublishType::Other("x".into())),
            },
            Command::Play {
                transaction_id: 0.0,
                name: "s".into(),
                start: None,
                duration: None,
                reset: None,
            },
            Command::Play {
                transaction_id: 0.0,
                name: "s".into(),
                start: Some(-2.0),
                duration: Some(-1.0),
                reset: Some(true),
            },
            Command::DeleteStream {
                transaction_id: 7.0,
                stream_id: 1.0,
            },
            Command::connect_result(1.0, 0.0),
            Command::connect_rejected(1.0, "no"),
            Command::create_stream_result(4.0, 1),
            Command::empty_result(2.0),
            Command::publish_start("s"),
            Command::error_status("NetStream.Publish.BadName", "taken"),
            Command::on_fc_publish("s"),
            Command::Other {
                name: "@setDataFrame".into(),
                args: vec![Value::string("onMetaData")],
            },
        ];
        for cmd in cmds {
            let msg = cmd.to_message(1).unwrap();
            assert_eq!((msg.type_id, msg.stream_id), (20, 1));
            assert_eq!(
                Command::from_message(&msg, &lim()).unwrap(),
                cmd,
                "{}",
                cmd.name()
            );
        }
    }

    #[test]
    fn status_accessors() {
        let cmd = Command::error_status("NetStream.Publish.BadName", "taken");
        assert_eq!(cmd.level(), Some("error"));
        assert_eq!(cmd.code(), Some("NetStream.Publish.BadName"));
        assert_eq!(cmd.description(), Some("taken"));
        let cmd = Command::connect_result(1.0, 3.0);
        assert_eq!(cmd.code(), Some("NetConnection.Connect.Success"));
        assert_eq!(cmd.info().unwrap().get_number("objectEncoding"), Some(3.0));
        assert_eq!(Command::connect_rejected(1.0, "x").level(), Some("error"));
    }

    #[test]
    fn shapes() {
        let publish_without_name =
            amf(&[Value::string("publish"), Value::Number(0.0), Value::Null]);
        assert!(matches!(
            Command::decode(&publish_without_name, &lim()),
            Err(Error::BadCommand { .. })
        ));
        let connect_without_txn = amf(&[Value::string("connect")]);
        assert!(matches!(
            Command::decode(&connect_without_txn, &lim()),
            Err(Error::BadCommand { .. })
        ));
        assert!(Command::decode(&amf(&[Value::Null]), &lim()).is_err());
        assert!(Command::decode(&[], &lim()).is_err());
        let odd_status = amf(&[
            Value::string("onStatus"),
            Value::Number(0.0),
            Value::Null,
            Value::Null,
        ]);
        assert!(matches!(
            Command::decode(&odd_status, &lim()).unwrap(),
            Command::Other { .. }
        ));
        let amf3 = Message::new(
            3,
            types::COMMAND_AMF3,
            0,
            0,
            [&[0u8][..], &body(&Command::empty_result(2.0))]
                .concat()
                .into(),
        );
        assert_eq!(
            Command::from_message(&amf3, &lim()).unwrap(),
            Command::empty_result(2.0)
        );
    }
}
