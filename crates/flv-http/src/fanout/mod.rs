//! Fan-out of one live stream to many viewers: a GOP cache and a shared buffer that every
//! viewer reads through its own [`Cursor`].
//!
//! [`FanOut`] takes FLV tags, or RTMP audio, video and data messages (the same payloads,
//! see [`FlvTag::new`]), and keeps the stream's metadata, its sequence headers and its
//! last GOP. A viewer joining late gets the metadata, the sequence headers, the GOP from
//! its keyframe, then live tags. Tags are held once, in reference-counted buffers; what a
//! viewer costs is its cursor.
//!
//! [`TsFanOut`] does the same for an MPEG-TS stream: a late joiner starts at the latest PAT
//! and PMT plus a random-access point (see [`TsAccess`]).

mod ring;
mod ts;

use bytes::Bytes;

use crate::{FlvTag, TagKind};
use ring::{Ring, Unit};

pub use ring::{Cursor, FanOutConfig, ReadOutcome};
pub use ts::{PacketClass, TsAccess, TsChunk, TsFanOut, TS_PACKET_LEN};

/// A backwards step in timestamps of one kind (audio or video) larger than this starts a
/// new part, as an upstream restart does: a publisher that reconnected starts again at 0.
pub const RESTART_STEP_MS: u32 = 5_000;

impl Unit for FlvTag {
    fn cost(&self) -> usize {
        self.bytes().len()
    }

    fn is_key(&self) -> bool {
        self.is_keyframe()
    }

    fn needs_key(&self) -> bool {
        self.kind == TagKind::Video && !self.is_keyframe() && !self.is_sequence_header()
    }
}

/// What a [`FanOut`] has seen; for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOutStats {
    /// Tags held.
    pub tags: usize,
    /// Bytes held.
    pub bytes: u64,
    /// Whether a GOP is held (a late joiner starts at once).
    pub has_gop: bool,
    /// Viewers skipped ahead for being slow, in all.
    pub skipped: u64,
    /// Viewers cut for staying slow, in all.
    pub cut: u64,
    /// Parts (upstream sessions, or restarts seen in the timestamps) so far.
    pub parts: u64,
}

/// The fan-out buffer of one FLV/RTMP stream. See the [module docs](self).
///
/// Timestamps handed to viewers start at 0 and never go backwards: each part of the
/// stream (a new upstream session, see [`new_part`](Self::new_part), or a publisher's
/// restart seen as timestamps stepping back by over [`RESTART_STEP_MS`]) carries on from
/// where the last one ended.
#[derive(Debug)]
pub struct FanOut {
    ring: Ring<FlvTag>,
    metadata: Option<FlvTag>,
    video_header: Option<FlvTag>,
    audio_header: Option<FlvTag>,
    has_video: bool,
    /// Input timestamp that maps to `offset` in this part; set by its first media tag.
    base: Option<u32>,
    offset: u32,
    /// Highest output timestamp so far, of any tag and of each track.
    last_out: u32,
    last_out_audio: u32,
    last_out_video: u32,
    last_in_audio: Option<u32>,
    last_in_video: Option<u32>,
    /// Video frames are dropped until a keyframe: at the start, and at each new part
    /// (an upstream may start mid-GOP), so that no viewer gets frames it cannot decode.
    awaiting_key: bool,
    parts: u64,
}

impl FanOut {
    /// An empty fan-out.
    pub fn new(config: FanOutConfig) -> Self {
        FanOut {
            ring: Ring::new(config),
            metadata: None,
            video_header: None,
            audio_header: None,
            has_video: false,
            base: None,
            offset: 0,
            last_out: 0,
            last_out_audio: 0,
            last_out_video: 0,
            last_in_audio: None,
            last_in_video: None,
            awaiting_key: true,
            parts: 1,
        }
    }

    /// Its bounds.
    pub fn config(&self) -> &FanOutConfig {
        self.ring.config()
    }

    /// Takes an RTMP message's type, timestamp and payload. Audio (8), video (9) and data
    /// (18, 15) are kept, and the tags of an aggregate (22, [`FanOut::push_aggregate`]);
    /// anything else is ignored. Returns whether anything was kept.
    pub fn push_message(&mut self, type_id: u8, timestamp: u32, payload: &[u8]) -> bool {
        let type_id = match type_id {
            8 | 9 | 18 => type_id,
            22 => return self.push_aggregate(timestamp, payload) > 0,
            // AMF3 data: a leading 0 byte then AMF0, as FLV has no AMF3 script tag.
            15 => match payload.split_first() {
                Some((0, rest)) => return self.push_data(timestamp, rest),
                _ => return false,
            },
            _ => return false,
        };
        match FlvTag::new(type_id, timestamp, payload) {
            Some(tag) => self.push_tag(tag),
            None => false,
        }
    }

    /// Takes an RTMP aggregate message (type 22): FLV tags back to back, whose timestamps
    /// count from the first one's, placed at the message's `timestamp`. Returns how many
    /// tags were kept; a truncated tag ends the message.
    pub fn push_aggregate(&mut self, timestamp: u32, payload: &[u8]) -> usize {
        let mut rest = payload;
        let mut first = None;
        let mut kept = 0;
        while let Some((header, after)) = rest.split_first_chunk::<{ crate::TAG_HEADER_LEN }>() {
            let [t, s0, s1, s2, t0, t1, t2, ext, ..] = *header;
            let size = usize::from(s0) << 16 | usize::from(s1) << 8 | usize::from(s2);
            let Some(body) = after.get(..size) else {
                break;
            };
            let sub = u32::from_be_bytes([ext, t0, t1, t2]);
            let first = *first.get_or_insert(sub);
            let ts = timestamp.wrapping_add(sub.wrapping_sub(first));
            if self.push_message(t & 0x1F, ts, body) {
                kept += 1;
            }
            // The PreviousTagSize after each tag.
            rest = after.get(size + 4..).unwrap_or_default();
        }
        kept
    }

    fn push_data(&mut self, timestamp: u32, payload: &[u8]) -> bool {
        match FlvTag::new(18, timestamp, payload) {
            Some(tag) => self.push_tag(tag),
            None => false,
        }
    }

    /// Takes an FLV tag (its timestamp is rebased, see the type docs). Returns whether
    /// it was kept (audio, video and script tags are).
    pub fn push_tag(&mut self, tag: FlvTag) -> bool {
        let media = match tag.kind {
            TagKind::Audio | TagKind::Video => !tag.is_sequence_header(),
            TagKind::Script => false,
            TagKind::Other(_) => return false,
        };
        if media {
            let last = match tag.kind {
                TagKind::Audio => &mut self.last_in_audio,
                _ => &mut self.last_in_video,
            };
            if last.is_some_and(|l| tag.timestamp.saturating_add(RESTART_STEP_MS) < l) {
                self.new_part();
            }
            match tag.kind {
                TagKind::Audio => self.last_in_audio = Some(tag.timestamp),
                _ => self.last_in_video = Some(tag.timestamp),
            }
        }
        if tag.kind == TagKind::Video && self.awaiting_key {
            if tag.is_keyframe() {
                self.awaiting_key = false;
            } else if tag.needs_key() {
                return false;
            }
        }
        if media && self.base.is_none() {
            self.base = Some(tag.timestamp);
        }
        let mut out = match self.base {
            Some(base) => self
                .offset
                .saturating_add(tag.timestamp.saturating_sub(base)),
            None => self.offset,
        };
        // Within a part, a track's timestamps may step back by less than a restart (a
        // sloppy publisher): its frames are held at the last one's, so that no viewer
        // sees a track go backwards.
        let track = match tag.kind {
            TagKind::Audio => Some(&mut self.last_out_audio),
            TagKind::Video => Some(&mut self.last_out_video),
            _ => None,
        };
        if let (Some(last), true) = (track, media) {
            out = out.max(*last);
            *last = out;
        }
        self.last_out = self.last_out.max(out);
        let Some(tag) = tag.with_timestamp(out) else {
            return false;
        };
        if tag.kind == TagKind::Video {
            self.has_video = true;
        }
        if tag.is_metadata() {
            self.metadata = Some(tag.clone());
        } else if tag.is_video_sequence_header() {
            self.video_header = Some(tag.clone());
        } else if tag.is_audio_sequence_header() {
            self.audio_header = Some(tag.clone());
        }
        self.ring.push(tag);
        true
    }

    /// The upstream starts again (a new session, after the last one ended): its
    /// timestamps carry on after the last ones handed out, and the last GOP is dropped,
    /// so that late joiners wait for the new part's sequence headers and keyframe.
    pub fn new_part(&mut self) {
        self.base = None;
        // A frame's worth of gap, so that the first frame of the new part does not share a
        // timestamp with the last of the old one.
        self.offset = self.last_out.saturating_add(1);
        self.last_in_audio = None;
        self.last_in_video = None;
        self.awaiting_key = true;
        self.ring.drop_gop();
        self.parts += 1;
    }

    /// A cursor for a new viewer: metadata, sequence headers, the last GOP, then live.
    pub fn join(&self) -> Cursor {
        self.ring.join()
    }

    /// Appends to `out` the tags the viewer gets next, about `max_bytes` of them (at least
    /// one when there is one). A viewer behind by more than
    /// [`max_lag_bytes`](FanOutConfig::max_lag_bytes) skips ahead to the last keyframe,
    /// or to the live edge where it waits for the next keyframe; it is cut when it has to
    /// skip [`max_skips`](FanOutConfig::max_skips) times without catching up in between.
    pub fn read(
        &mut self,
        cursor: &mut Cursor,
        max_bytes: usize,
        out: &mut Vec<FlvTag>,
    ) -> ReadOutcome {
        let headers = [&self.metadata, &self.video_header, &self.audio_header];
        let prelude = |out: &mut Vec<FlvTag>| out.extend(headers.into_iter().flatten().cloned());
        self.ring.read(cursor, max_bytes.max(1), out, prelude)
    }

    /// Whether the viewer has tags waiting.
    pub fn has_data(&self, cursor: &Cursor) -> bool {
        cursor.cut || cursor.prelude || cursor.next < self.ring.head()
    }

    /// Bytes the viewer is behind the live edge; `None` if further than the buffer goes.
    pub fn lag(&self, cursor: &Cursor) -> Option<u64> {
        self.ring.lag(cursor)
    }

    /// Whether a video tag was seen.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// The latest sequence headers and metadata, for a viewer's prelude.
    pub fn headers(&self) -> impl Iterator<Item = &FlvTag> {
        [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> FanOutStats {
        FanOutStats {
            tags: self.ring.len(),
            bytes: self.ring.buffered_bytes(),
            has_gop: self.ring.has_gop(),
            skipped: self.ring.skipped(),
            cut: self.ring.cut_count(),
            parts: self.parts,
        }
    }
}

impl Default for FanOut {
    fn default() -> Self {
        Self::new(FanOutConfig::default())
    }
}

/// The FLV file header a viewer gets first: the audio and video flags set as the stream
/// has them (both when unknown yet, which players accept).
pub fn flv_header(has_audio: bool, has_video: bool) -> Bytes {
    crate::FlvHeader {
        version: 1,
        has_audio,
        has_video,
        data_offset: 9,
    }
    .to_bytes()
}

#[cfg(test)]
mod tests;
