//! The shared part of both fan-outs: one ring of units per stream, read by many cursors.

use std::collections::VecDeque;

/// What a ring holds: something with a size and, maybe, a place where a viewer can start.
pub(crate) trait Unit: Clone {
    /// Bytes this unit costs (what a lag is measured in).
    fn cost(&self) -> usize;
    /// A video unit where decoding can start (a keyframe, a TS random-access point).
    fn is_key(&self) -> bool;
    /// A video unit that needs an earlier keyframe to decode.
    fn needs_key(&self) -> bool;
}

/// Bounds of a fan-out buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOutConfig {
    /// Most bytes a viewer may be behind the live edge before it skips ahead (default
    /// 1 MiB: over ten seconds of a 700 kbit/s stream). Also what the buffer keeps
    /// beyond the last GOP for viewers that are a little behind.
    pub max_lag_bytes: usize,
    /// Most bytes the last GOP may take (default 8 MiB); a longer GOP is not kept, and a
    /// late joiner then waits for the next keyframe.
    pub max_gop_bytes: usize,
    /// A viewer that has to skip ahead this many times without catching up once is cut
    /// (default 3).
    pub max_skips: u32,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        FanOutConfig {
            max_lag_bytes: 1024 * 1024,
            max_gop_bytes: 8 * 1024 * 1024,
            max_skips: 3,
        }
    }
}

/// One viewer's place in a fan-out: a position, not a copy of anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) next: u64,
    pub(crate) prelude: bool,
    pub(crate) need_key: bool,
    pub(crate) skips: u32,
    pub(crate) cut: bool,
}

impl Cursor {
    /// Whether the viewer was cut for staying behind.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// What [`read`](crate::FanOut::read) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Units were handed out (maybe none: the viewer is at the live edge).
    Read,
    /// The viewer was too far behind and skipped ahead (to the last keyframe, or to the
    /// live edge waiting for the next); units were then handed out.
    Skipped,
    /// The viewer stayed behind through `max_skips` skips and is cut: close it.
    Cut,
}

#[derive(Debug)]
pub(crate) struct Ring<T> {
    config: FanOutConfig,
    units: VecDeque<(u64, T)>,
    /// Sequence number of `units[0]`.
    first: u64,
    /// Bytes pushed before each unit ([`Self::pos`]) and in all.
    end_pos: u64,
    /// Sequence number of the last keyframe, while its GOP is kept.
    gop: Option<u64>,
    skipped: u64,
    cut: u64,
}

impl<T: Unit> Ring<T> {
    pub(crate) fn new(config: FanOutConfig) -> Self {
        Ring {
            config,
            units: VecDeque::new(),
            first: 0,
            end_pos: 0,
            gop: None,
            skipped: 0,
            cut: 0,
        }
    }

    pub(crate) fn config(&self) -> &FanOutConfig {
        &self.config
    }

    /// Sequence number the next unit gets.
    pub(crate) fn head(&self) -> u64 {
        self.first + self.units.len() as u64
    }

    pub(crate) fn push(&mut self, unit: T) {
        let seq = self.head();
        if unit.is_key() {
            self.gop = Some(seq);
        }
        let cost = unit.cost() as u64;
        self.units.push_back((self.end_pos, unit));
        self.end_pos += cost;
        if let Some(gop) = self.gop {
            if self.end_pos - self.pos(gop).unwrap_or(0) > self.config.max_gop_bytes as u64 {
                self.gop = None;
            }
        }
        let lag = self.config.max_lag_bytes as u64;
        while let Some(&(pos, _)) = self.units.front() {
            let in_gop = self.gop.is_some_and(|g| self.first >= g);
            if in_gop || self.end_pos - pos <= lag || self.units.len() == 1 {
                break;
            }
            self.units.pop_front();
            self.first += 1;
        }
    }

    /// Forgets the last GOP (the upstream starts a new part: its frames must not follow
    /// the new sequence headers).
    pub(crate) fn drop_gop(&mut self) {
        self.gop = None;
    }

    fn pos(&self, seq: u64) -> Option<u64> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        match self.units.get(i) {
            Some(&(pos, _)) => Some(pos),
            None if seq == self.head() => Some(self.end_pos),
            None => None,
        }
    }

    /// A cursor at the last keyframe, or at the live edge waiting for one (only video
    /// that needs a keyframe waits: audio flows at once).
    pub(crate) fn join(&self) -> Cursor {
        let (next, need_key) = match self.gop {
            Some(gop) => (gop, false),
            None => (self.head(), true),
        };
        Cursor {
            next,
            prelude: true,
            need_key,
            skips: 0,
            cut: false,
        }
    }

    /// Hands the viewer the units after its cursor, up to about `max_bytes`, applying the
    /// lag bound first. `prelude` is called when the viewer needs the stream's headers
    /// before what follows (on joining and after a skip).
    pub(crate) fn read(
        &mut self,
        cursor: &mut Cursor,
        max_bytes: usize,
        out: &mut Vec<T>,
        mut prelude: impl FnMut(&mut Vec<T>),
    ) -> ReadOutcome {
        if cursor.cut {
            return ReadOutcome::Cut;
        }
        let mut outcome = ReadOutcome::Read;
        let lag = self.pos(cursor.next).map(|p| self.end_pos - p);
        if lag.is_none_or(|lag| lag > self.config.max_lag_bytes as u64) {
            cursor.skips += 1;
            if cursor.skips > self.config.max_skips {
                cursor.cut = true;
                self.cut += 1;
                return ReadOutcome::Cut;
            }
            self.skipped += 1;
            outcome = ReadOutcome::Skipped;
            match self.gop.filter(|&g| g > cursor.next || lag.is_none()) {
                Some(gop) => {
                    cursor.next = gop;
                    cursor.need_key = false;
                }
                None => {
                    cursor.next = self.head();
                    cursor.need_key = true;
                }
            }
            cursor.prelude = true;
        }
        if cursor.prelude {
            cursor.prelude = false;
            prelude(out);
        }
        let mut budget = max_bytes;
        let start = usize::try_from(cursor.next.saturating_sub(self.first)).unwrap_or(usize::MAX);
        for (_, unit) in self.units.iter().skip(start) {
            if budget == 0 {
                break;
            }
            cursor.next += 1;
            if cursor.need_key {
                if unit.is_key() {
                    cursor.need_key = false;
                } else if unit.needs_key() {
                    continue;
                }
            }
            budget = budget.saturating_sub(unit.cost());
            out.push(unit.clone());
        }
        if cursor.next == self.head() {
            cursor.skips = 0;
        }
        outcome
    }

    /// Bytes the viewer is behind the live edge (`None`: beyond what is kept).
    pub(crate) fn lag(&self, cursor: &Cursor) -> Option<u64> {
        self.pos(cursor.next).map(|p| self.end_pos - p)
    }

    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.units.front().map_or(0, |&(pos, _)| self.end_pos - pos)
    }

    pub(crate) fn len(&self) -> usize {
        self.units.len()
    }

    pub(crate) fn has_gop(&self) -> bool {
        self.gop.is_some()
    }

    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    pub(crate) fn cut_count(&self) -> u64 {
        self.cut
    }
}
