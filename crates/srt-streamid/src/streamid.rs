//! The SRT streamid: Haivision's access-control syntax (`#!::r=live/livestream,m=publish`)
//! and the plain form SRS also accepts (`live/livestream`).

use nom::{
    bytes::complete::{tag, take_while, take_while1},
    character::complete::char,
    combinator::{all_consuming, opt},
    multi::separated_list1,
    sequence::{preceded, separated_pair},
    IResult,
};

use crate::Error;

/// SRT carries at most 512 bytes of streamid.
pub const MAX_STREAMID_LEN: usize = 512;

/// What the caller wants to do with the stream (`m=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Play (`m=request`, the default).
    #[default]
    Request,
    /// Publish (`m=publish`).
    Publish,
    /// Both directions (`m=bidirectional`).
    Bidirectional,
}

/// A parsed streamid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamId {
    /// `r=`: the resource, `app/stream`, possibly with a `?query`.
    pub resource: Option<String>,
    /// `m=`: the mode.
    pub mode: Mode,
    /// `h=`: the host (vhost).
    pub host: Option<String>,
    /// `u=`: the user.
    pub user: Option<String>,
    /// `s=`: the session id.
    pub session: Option<String>,
    /// `t=`: the type (`stream`, `file`, `auth`).
    pub kind: Option<String>,
    /// Every other `key=value`, in order (`secret=...`).
    pub custom: Vec<(String, String)>,
}

impl StreamId {
    /// Parses a streamid in either form. The plain form is taken whole as the resource,
    /// with mode `request`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        if input.len() > MAX_STREAMID_LEN {
            return Err(Error::StreamIdTooLong {
                len: input.len(),
                max: MAX_STREAMID_LEN,
            });
        }
        let Some(body) = input.strip_prefix("#!::") else {
            let resource = (!input.is_empty()).then(|| input.to_owned());
            return Ok(StreamId {
                resource,
                ..StreamId::default()
            });
        };
        let (_, pairs) = all_consuming(key_values)(body).map_err(|_| {
            Error::StreamIdSyntax(format!("expected key=value[,key=value...] in {input:?}"))
        })?;
        let mut sid = StreamId::default();
        for (key, value) in pairs {
            let value = value.to_owned();
            match key {
                "r" => sid.resource = Some(value),
                "m" => sid.mode = Mode::parse(&value)?,
                "h" => sid.host = Some(value),
                "u" => sid.user = Some(value),
                "s" => sid.session = Some(value),
                "t" => sid.kind = Some(value),
                _ => sid.custom.push((key.to_owned(), value)),
            }
        }
        Ok(sid)
    }

    /// The value of a custom key, if present.
    pub fn custom(&self, key: &str) -> Option<&str> {
        self.custom
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Mode {
    fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "request" => Ok(Mode::Request),
            "publish" => Ok(Mode::Publish),
            "bidirectional" => Ok(Mode::Bidirectional),
            other => Err(Error::UnknownMode(other.to_owned())),
        }
    }
}

fn key_values(input: &str) -> IResult<&str, Vec<(&str, &str)>> {
    // A trailing comma is common in hand-written streamids; accept it.
    let (rest, pairs) = separated_list1(char(','), key_value)(input)?;
    let (rest, _) = opt(tag(","))(rest)?;
    Ok((rest, pairs))
}

fn key_value(input: &str) -> IResult<&str, (&str, &str)> {
    separated_pair(
        preceded(
            take_while(|c: char| c == ' '),
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        ),
        char('='),
        take_while(|c: char| c != ','),
    )(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haivision_form_with_all_standard_keys() {
        let sid = StreamId::parse(
            "#!::r=live/livestream,m=publish,h=a.example.com,u=alice,s=42,t=stream",
        )
        .unwrap();
        assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
        assert_eq!(sid.mode, Mode::Publish);
        assert_eq!(sid.host.as_deref(), Some("a.example.com"));
        assert_eq!(sid.user.as_deref(), Some("alice"));
        assert_eq!(sid.session.as_deref(), Some("42"));
        assert_eq!(sid.kind.as_deref(), Some("stream"));
    }

    #[test]
    fn custom_keys_and_default_mode() {
        let sid = StreamId::parse("#!::r=live/a,secret=xyz,").unwrap();
        assert_eq!(sid.mode, Mode::Request);
        assert_eq!(sid.custom("secret"), Some("xyz"));
    }

    #[test]
    fn value_may_contain_equals_and_query() {
        let sid = StreamId::parse("#!::r=live/a?token=a=b").unwrap();
        assert_eq!(sid.resource.as_deref(), Some("live/a?token=a=b"));
    }

    #[test]
    fn plain_form_is_the_resource() {
        let sid = StreamId::parse("live/livestream").unwrap();
        assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
        assert_eq!(sid.mode, Mode::Request);
        assert_eq!(StreamId::parse("").unwrap().resource, None);
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(
            StreamId::parse("#!::m=sideways").unwrap_err(),
            Error::UnknownMode("sideways".into())
        );
        assert!(matches!(
            StreamId::parse("#!::novalue"),
            Err(Error::StreamIdSyntax(_))
        ));
        assert!(matches!(
            StreamId::parse("#!::"),
            Err(Error::StreamIdSyntax(_))
        ));
        let long = format!("#!::r={}", "a".repeat(600));
        assert!(matches!(
            StreamId::parse(&long),
            Err(Error::StreamIdTooLong { len: 606, max: 512 })
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,600}") {
            let _ = StreamId::parse(&s);
        }
    }
}
