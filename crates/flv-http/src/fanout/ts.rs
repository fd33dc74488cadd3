//! MPEG-TS random-access points, and the fan-out of a TS stream.

use bytes::{Buf, Bytes, BytesMut};

use super::ring::{Cursor, FanOutConfig, ReadOutcome, Ring, Unit};

/// Length of a TS packet.
pub const TS_PACKET_LEN: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0;

/// Video codecs a TS stream may carry, as far as finding keyframes goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoStream {
    /// H.264 (stream type 0x1B): IDR slices are NAL type 5.
    Avc,
    /// HEVC (0x24): IRAP pictures are NAL types 16 to 23.
    Hevc,
    /// Another video codec (MPEG-1/2/4...): only the random_access_indicator tells.
    Other,
}

/// What a packet is, to [`TsAccess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    /// The start of a PAT section.
    Pat,
    /// The start of the PMT section of the program.
    Pmt,
    /// The first packet of a video PES where decoding can start: its
    /// `random_access_indicator` is set, or its payload holds an H.264 IDR or HEVC IRAP
    /// picture (or the parameter sets that precede one).
    RandomAccess,
    /// A packet of the video stream that is not a random-access point.
    Video,
    /// Anything else (audio, other tables, a packet without sync byte).
    Other,
}

/// Finds the PAT, the PMT and the random-access points of a TS stream, one packet at a
/// time. It learns the PMT's PID from the PAT and the video PID from the PMT (the first
/// video elementary stream of the first program).
#[derive(Debug, Default, Clone)]
pub struct TsAccess {
    pmt_pid: Option<u16>,
    video: Option<(u16, VideoStream)>,
}

struct Packet<'a> {
    pid: u16,
    pusi: bool,
    rai: bool,
    payload: &'a [u8],
}

fn parse_packet(p: &[u8]) -> Option<Packet<'_>> {
    let [sync, b1, b2, b3, rest @ ..] = p else {
        return None;
    };
    if *sync != SYNC {
        return None;
    }
    let pid = u16::from(b1 & 0x1F) << 8 | u16::from(*b2);
    let pusi = b1 & 0x40 != 0;
    let afc = (b3 >> 4) & 0x03;
    let mut rai = false;
    let mut payload = rest;
    if afc & 0x02 != 0 {
        let (&len, after) = payload.split_first()?;
        let field = after.get(..usize::from(len))?;
        rai = field.first().is_some_and(|flags| flags & 0x40 != 0);
        payload = after.get(usize::from(len)..)?;
    }
    if afc & 0x01 == 0 {
        payload = &[];
    }
    Some(Packet {
        pid,
        pusi,
        rai,
        payload,
    })
}

/// The section a PSI packet starts (after its pointer field), up to its CRC.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let (&pointer, rest) = payload.split_first()?;
    let s = rest.get(usize::from(pointer)..)?;
    let len = usize::from(u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0FFF);
    // Header (3) + section_length, less the 4-byte CRC; a section cut by the packet end
    // is read as far as it goes.
    let end = (3 + len).saturating_sub(4).min(s.len());
    s.get(..end)
}

impl TsAccess {
    /// A finder that knows nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the PMT named a video stream.
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// Classifies one packet (188 bytes; anything else is [`PacketClass::Other`]),
    /// learning the PIDs from the tables it sees.
    pub fn classify(&mut self, packet: &[u8]) -> PacketClass {
        if packet.len() != TS_PACKET_LEN {
            return PacketClass::Other;
        }
        let Some(p) = parse_packet(packet) else {
            return PacketClass::Other;
        };
        if p.pid == PAT_PID {
            if !p.pusi {
                return PacketClass::Other;
            }
            if let Some(pmt) = section(p.payload).and_then(pat_pmt_pid) {
                if self.pmt_pid != Some(pmt) {
                    self.pmt_pid = Some(pmt);
                    self.video = None;
                }
            }
            return PacketClass::Pat;
        }
        if Some(p.pid) == self.pmt_pid {
            if !p.pusi {
                return PacketClass::Other;
            }
            if let Some(video) = section(p.payload).and_then(pmt_video) {
                self.video = Some(video);
            }
            return PacketClass::Pmt;
        }
        match self.video {
            Some((pid, codec)) if pid == p.pid => {
                if p.pusi && (p.rai || pes_has_keyframe(p.payload, codec)) {
                    PacketClass::RandomAccess
                } else {
                    PacketClass::Video
                }
            }
            _ => PacketClass::Other,
        }
    }
}

/// The PID of the first program's PMT.
fn pat_pmt_pid(s: &[u8]) -> Option<u16> {
    if *s.first()? != 0x00 {
        return None;
    }
    s.get(8..)?.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then(|| u16::from_be_bytes([e[2], e[3]]) & 0x1FFF)
    })
}

/// The PID and codec of the PMT's first video stream.
fn pmt_video(s: &[u8]) -> Option<(u16, VideoStream)> {
    if *s.first()? != 0x02 {
        return None;
    }
    let info_len = usize::from(u16::from_be_bytes([*s.get(10)?, *s.get(11)?]) & 0x0FFF);
    let mut es = s.get(12 + info_len..)?;
    while let [stream_type, p0, p1, l0, l1, rest @ ..] = es {
        let pid = u16::from_be_bytes([*p0, *p1]) & 0x1FFF;
        let len = usize::from(u16::from_be_bytes([*l0, *l1]) & 0x0FFF);
        let codec = match stream_type {
            0x1B => Some(VideoStream::Avc),
            0x24 => Some(VideoStream::Hevc),
            0x01 | 0x02 | 0x10 | 0x33 | 0xEA => Some(VideoStream::Other),
            _ => None,
        };
        if let Some(codec) = codec {
            return Some((pid, codec));
        }
        es = rest.get(len..)?;
    }
    None
}

/// Whether the start of a video PES (in this packet) holds a keyframe's NAL units.
fn pes_has_keyframe(payload: &[u8], codec: VideoStream) -> bool {
    let Some(es) = pes_payload(payload) else {
        return false;
    };
    let mut rest = es;
    // Start codes 00 00 01 xx; a NAL type byte follows each.
    while let Some(i) = rest.windows(3).position(|w| w == [0, 0, 1]) {
        let Some(&header) = rest.get(i + 3) else {
            return false;
        };
        let key = match codec {
            // IDR slice, or the SPS that precedes one.
            VideoStream::Avc => matches!(header & 0x1F, 5 | 7),
            // IRAP pictures (BLA, IDR, CRA), or VPS/SPS.
            VideoStream::Hevc => matches!((header >> 1) & 0x3F, 16..=23 | 32 | 33),
            VideoStream::Other => false,
        };
        if key {
            return true;
        }
        rest = &rest[i + 3..];
    }
    false
}

/// The elementary stream bytes after a PES header.
fn pes_payload(p: &[u8]) -> Option<&[u8]> {
    if p.get(..3)? != [0, 0, 1] {
        return None;
    }
    let header_len = usize::from(*p.get(8)?);
    p.get(9 + header_len..)
}

/// A run of whole TS packets as one fan-out unit. A run that starts at a random-access
/// point is where a viewer can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsChunk {
    /// The packets.
    pub bytes: Bytes,
    /// It starts at a random-access point.
    pub key: bool,
    /// The stream has video: a viewer waiting for a keyframe skips this chunk unless
    /// it is `key`.
    video: bool,
}

impl Unit for TsChunk {
    fn cost(&self) -> usize {
        self.bytes.len()
    }

    fn is_key(&self) -> bool {
        self.key
    }

    fn needs_key(&self) -> bool {
        self.video && !self.key
    }
}

/// The fan-out buffer of one MPEG-TS stream: bytes in as they arrive, whole packets out,
/// a late joiner starting at the latest PAT and PMT plus a random-access point.
#[derive(Debug)]
pub struct TsFanOut {
    ring: Ring<TsChunk>,
    access: TsAccess,
    pending: BytesMut,
    run: BytesMut,
    run_key: bool,
    /// Chunks of video are dropped until a random-access point: at the start and at each
    /// new part, so that no viewer gets pictures it cannot decode.
    awaiting_key: bool,
    pat: Option<Bytes>,
    pmt: Option<Bytes>,
    resyncs: u64,
}

impl TsFanOut {
    /// An empty fan-out.
    pub fn new(config: FanOutConfig) -> Self {
        TsFanOut {
            ring: Ring::new(config),
            access: TsAccess::new(),
            pending: BytesMut::new(),
            run: BytesMut::new(),
            run_key: false,
            awaiting_key: true,
            pat: None,
            pmt: None,
            resyncs: 0,
        }
    }

    /// Takes bytes of the stream as they arrive (any split). Bytes that are not in step
    /// with the 188-byte packets are dropped up to the next sync byte.
    pub fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        loop {
            match self.pending.first() {
                None => break,
                Some(&SYNC) => {}
                Some(_) => {
                    let skip = self
                        .pending
                        .iter()
                        .position(|&b| b == SYNC)
                        .unwrap_or(self.pending.len());
                    self.pending.advance(skip);
                    self.resyncs += 1;
                    continue;
                }
            }
            if self.pending.len() < TS_PACKET_LEN {
                break;
            }
            let packet = self.pending.split_to(TS_PACKET_LEN);
            match self.access.classify(&packet) {
                PacketClass::Pat => self.pat = Some(Bytes::copy_from_slice(&packet)),
                PacketClass::Pmt => self.pmt = Some(Bytes::copy_from_slice(&packet)),
                PacketClass::RandomAccess => {
                    self.flush();
                    self.run_key = true;
                }
                PacketClass::Video | PacketClass::Other => {}
            }
            self.run.extend_from_slice(&packet);
        }
        self.flush();
    }

    fn flush(&mut self) {
        if self.run.is_empty() {
            return;
        }
        let chunk = TsChunk {
            bytes: self.run.split().freeze(),
            key: std::mem::take(&mut self.run_key),
            video: self.access.has_video(),
        };
        if self.awaiting_key {
            if chunk.key {
                self.awaiting_key = false;
            } else if chunk.needs_key() {
                return;
            }
        }
        self.ring.push(chunk);
    }

    /// The upstream starts again: a late joiner waits for the new stream's tables and
    /// random-access point; bytes of a packet cut short are dropped.
    pub fn new_part(&mut self) {
        self.pending.clear();
        self.run.clear();
        self.run_key = false;
        self.awaiting_key = true;
        self.ring.drop_gop();
    }

    /// A cursor for a new viewer: PAT, PMT, the packets from the last random-access point,
    /// then live.
    pub fn join(&self) -> Cursor {
        self.ring.join()
    }

    /// Appends to `out` what the viewer gets next; see [`super::FanOut::read`].
    pub fn read(
        &mut self,
        cursor: &mut Cursor,
        max_bytes: usize,
        out: &mut Vec<TsChunk>,
    ) -> ReadOutcome {
        let tables = [&self.pat, &self.pmt];
        let prelude = |out: &mut Vec<TsChunk>| {
            out.extend(tables.into_iter().flatten().map(|bytes| TsChunk {
                bytes: bytes.clone(),
                key: false,
                video: false,
            }))
        };
        self.ring.read(cursor, max_bytes.max(1), out, prelude)
    }

    /// Whether the viewer has bytes waiting.
    pub fn has_data(&self, cursor: &Cursor) -> bool {
        cursor.cut || cursor.prelude || cursor.next < self.ring.head()
    }

    /// Viewers skipped ahead and cut for being slow, in all.
    pub fn slow_counts(&self) -> (u64, u64) {
        (self.ring.skipped(), self.ring.cut_count())
    }

    /// Times the input lost packet sync.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Bytes held.
    pub fn buffered_bytes(&self) -> u64 {
        self.ring.buffered_bytes()
    }

    /// Whether a random-access point is held (a late joiner starts at once).
    pub fn has_gop(&self) -> bool {
        self.ring.has_gop()
    }
}

impl Default for TsFanOut {
    fn default() -> Self {
        Self::new(FanOutConfig::default())
    }
}
