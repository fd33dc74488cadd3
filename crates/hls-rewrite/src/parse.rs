//! A typed, borrowed view of a playlist: its lines, tags, and every URI in it.

use std::ops::Range;

use crate::attr::find_uri;
use crate::{Error, Options};

const BOM: char = '\u{feff}';

/// Where a URI appears, which tells what it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriContext {
    /// A URI line in a media playlist: a media segment.
    Segment,
    /// The URI line after `#EXT-X-STREAM-INF`: a variant playlist.
    Variant,
    /// `#EXT-X-MAP`: an init segment.
    Map,
    /// `#EXT-X-KEY`: a decryption key.
    Key,
    /// `#EXT-X-SESSION-KEY`: a key announced by a master playlist.
    SessionKey,
    /// `#EXT-X-MEDIA`: a rendition playlist (audio, subtitles...).
    Media,
    /// `#EXT-X-PART`: an LL-HLS partial segment.
    Part,
    /// `#EXT-X-PRELOAD-HINT`: an LL-HLS resource to request early.
    PreloadHint,
    /// `#EXT-X-RENDITION-REPORT`: another rendition's playlist.
    RenditionReport,
    /// `#EXT-X-I-FRAME-STREAM-INF`: an I-frame playlist.
    IFrameStream,
    /// `#EXT-X-SESSION-DATA`: a JSON document.
    SessionData,
}

impl UriContext {
    /// The context of the `URI` attribute of tag `name`, if the tag has one.
    fn of_tag(name: &str) -> Option<Self> {
        Some(match name {
            "EXT-X-MAP" => UriContext::Map,
            "EXT-X-KEY" => UriContext::Key,
            "EXT-X-SESSION-KEY" => UriContext::SessionKey,
            "EXT-X-MEDIA" => UriContext::Media,
            "EXT-X-PART" => UriContext::Part,
            "EXT-X-PRELOAD-HINT" => UriContext::PreloadHint,
            "EXT-X-RENDITION-REPORT" => UriContext::RenditionReport,
            "EXT-X-I-FRAME-STREAM-INF" => UriContext::IFrameStream,
            "EXT-X-SESSION-DATA" => UriContext::SessionData,
            _ => return None,
        })
    }
}

/// A URI found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The URI as written (without quotes or surrounding blanks).
    pub value: &'a str,
    /// Its byte range within [`Line::text`].
    pub range: Range<usize>,
    /// What kind of line it came from.
    pub context: UriContext,
}

/// What a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind<'a> {
    /// Empty or only blanks.
    Blank,
    /// Starts with `#` but not `#EXT`.
    Comment,
    /// `#EXT...`: `name` without the `#`, `value` after the first `:`.
    Tag {
        /// Tag name (`EXTINF`, `EXT-X-MAP`...).
        name: &'a str,
        /// Everything after the first `:`, if there is one.
        value: Option<&'a str>,
    },
    /// A URI line.
    Uri,
}

/// One line of a playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line without its terminator (and without the BOM on the first line).
    pub text: &'a str,
    /// The terminator as found: `"\n"`, `"\r\n"`, or `""` on a last line without one.
    pub ending: &'a str,
    /// What the line is.
    pub kind: LineKind<'a>,
    /// The URI the line carries, if any.
    pub uri: Option<Uri<'a>>,
}

/// Whether a playlist lists variants or segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// Has `#EXT-X-STREAM-INF`, `#EXT-X-I-FRAME-STREAM-INF`, `#EXT-X-MEDIA` or session tags.
    Master,
    /// Has `#EXTINF`, `#EXT-X-TARGETDURATION`, `#EXT-X-MAP` or `#EXT-X-PART`.
    Media,
    /// Neither (or both, which is not a valid playlist).
    Unknown,
}

/// A parsed playlist, borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist<'a> {
    /// The input started with a UTF-8 byte order mark.
    pub bom: bool,
    /// Every line, in order.
    pub lines: Vec<Line<'a>>,
}

impl<'a> Playlist<'a> {
    /// The first line is `#EXTM3U`, as RFC 8216 requires.
    pub fn is_extm3u(&self) -> bool {
        self.lines
            .first()
            .is_some_and(|l| l.text.trim_end() == "#EXTM3U")
    }

    /// Every URI, in order.
    pub fn uris(&self) -> impl Iterator<Item = &Uri<'a>> {
        self.lines.iter().filter_map(|l| l.uri.as_ref())
    }

    /// Every tag as (name, value), in order.
    pub fn tags(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        self.lines.iter().filter_map(|l| match l.kind {
            LineKind::Tag { name, value } => Some((name, value)),
            _ => None,
        })
    }

    /// Master, media, or neither, from the tags present.
    pub fn kind(&self) -> PlaylistKind {
        let (mut master, mut media) = (false, false);
        for (name, _) in self.tags() {
            match name {
                "EXT-X-STREAM-INF"
                | "EXT-X-I-FRAME-STREAM-INF"
                | "EXT-X-MEDIA"
                | "EXT-X-SESSION-DATA"
                | "EXT-X-SESSION-KEY" => master = true,
                "EXTINF" | "EXT-X-TARGETDURATION" | "EXT-X-MAP" | "EXT-X-PART" => media = true,
                _ => {}
            }
        }
        match (master, media) {
            (true, false) => PlaylistKind::Master,
            (false, true) => PlaylistKind::Media,
            _ => PlaylistKind::Unknown,
        }
    }
}

/// Parses a playlist with the default [`Options`] limits.
///
/// Never fails on content, only on limits: anything that is not a tag, a comment or a blank
/// line is a URI line, and a tag whose attribute list cannot be read has no URI.
pub fn parse(input: &str) -> Result<Playlist<'_>, Error> {
    parse_with(input, &Options::default())
}

/// Parses a playlist with the limits of `options`.
pub fn parse_with<'a>(input: &'a str, options: &Options) -> Result<Playlist<'a>, Error> {
    let lines = Lines::new(input, options)?;
    let bom = lines.bom;
    let mut out = Vec::new();
    for line in lines {
        out.push(line?);
    }
    Ok(Playlist { bom, lines: out })
}

/// Lines of a playlist, parsed one at a time (the rewriter streams through them).
pub(crate) struct Lines<'a> {
    rest: &'a str,
    pub(crate) bom: bool,
    count: usize,
    max_lines: usize,
    after_stream_inf: bool,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a str, options: &Options) -> Result<Self, Error> {
        if input.len() > options.max_size {
            return Err(Error::TooLarge {
                size: input.len(),
                max: options.max_size,
            });
        }
        let (rest, bom) = match input.strip_prefix(BOM) {
            Some(rest) => (rest, true),
            None => (input, false),
        };
        Ok(Lines {
            rest,
            bom,
            count: 0,
            max_lines: options.max_lines,
            after_stream_inf: false,
        })
    }

    fn classify(&mut self, text: &'a str) -> (LineKind<'a>, Option<Uri<'a>>) {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return (LineKind::Blank, None);
        }
        let Some(tag) = trimmed.strip_prefix('#') else {
            let context = if self.after_stream_inf {
                UriContext::Variant
            } else {
                UriContext::Segment
            };
            self.after_stream_inf = false;
            let start = (trimmed.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            let uri = Uri {
                value: trimmed,
                range: start..start + trimmed.len(),
                context,
            };
            return (LineKind::Uri, Some(uri));
        };
        if !tag.starts_with("EXT") {
            return (LineKind::Comment, None);
        }
        let (name, value) = match tag.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (tag, None),
        };
        if name == "EXT-X-STREAM-INF" {
            self.after_stream_inf = true;
        }
        let kind = LineKind::Tag { name, value };
        let uri = match (UriContext::of_tag(name), value) {
            (Some(context), Some(value)) => find_uri(value).and_then(|range| {
                // `value` is a slice of `text`; the range is relative to where it starts.
                let offset = (value.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
                let range = range.start + offset..range.end + offset;
                let value = text.get(range.clone())?;
                Some(Uri {
                    value,
                    range,
                    context,
                })
            }),
            _ => None,
        };
        (kind, uri)
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        self.count += 1;
        if self.count > self.max_lines {
            self.rest = "";
            return Some(Err(Error::TooManyLines {
                max: self.max_lines,
            }));
        }
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => self.rest.split_at(i + 1),
            None => (self.rest, ""),
        };
        self.rest = rest;
        let (text, ending) = if let Some(t) = line.strip_suffix("\r\n") {
            (t, "\r\n")
        } else if let Some(t) = line.strip_suffix('\n') {
            (t, "\n")
        } else {
            (line, "")
        };
        let (kind, uri) = self.classify(text);
        Some(Ok(Line {
            text,
            ending,
            kind,
            uri,
        }))
    }
}

#[cfg(test)]
mod tests;
