//! The incremental reader: push bytes as they arrive, pull whole tags.

use bytes::Bytes;

use super::chunks::Chunks;
use super::header::{FlvHeader, HEADER_LEN};
use super::tag::{FlvTag, PREV_SIZE_LEN, TAG_HEADER_LEN};
use crate::Error;

/// Default limit on a tag's DataSize: 16 MiB. The 24-bit field cannot exceed it, so the
/// default accepts every tag the format can express (memory is only taken once a tag's
/// bytes have arrived); set a lower [`ReaderConfig::max_tag_size`] to refuse big tags
/// as soon as their header is seen.
pub const DEFAULT_MAX_TAG_SIZE: u32 = 16 * 1024 * 1024;
/// Largest FLV header DataOffset accepted (real files use 9).
pub const MAX_DATA_OFFSET: u32 = 9 + 1024;

/// Reader settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Tags whose DataSize is larger are an error (the stream is broken or hostile).
    pub max_tag_size: u32,
    /// Treat a PreviousTagSize that disagrees with its tag as an error. Off by default:
    /// some muxers write wrong values, and the tag sizes alone keep the reader in sync.
    pub strict_previous_tag_size: bool,
    /// Expect the 9-byte file header and PreviousTagSize0 first. Off for a bare sequence
    /// of tags (each followed by its PreviousTagSize).
    pub expect_header: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_tag_size: DEFAULT_MAX_TAG_SIZE,
            strict_previous_tag_size: false,
            expect_header: true,
        }
    }
}

#[derive(Debug)]
enum State {
    Header,
    /// Header bytes past the fixed nine, then PreviousTagSize0.
    Preamble(usize),
    Tags,
    Failed(Error),
}

/// Incremental FLV reader over a byte stream split anywhere.
///
/// Push bytes with [`push`](Self::push) as they arrive, then call
/// [`next_tag`](Self::next_tag) until it returns `Ok(None)` (more bytes needed). A tag is
/// returned once it and its trailing PreviousTagSize are complete; its bytes share the
/// pushed buffer when they lie inside one pushed chunk. After an error the stream is out of
/// sync and every later call returns the same error.
#[derive(Debug)]
pub struct FlvReader {
    config: ReaderConfig,
    chunks: Chunks,
    state: State,
    header: Option<FlvHeader>,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvReader {
    /// A reader with [`ReaderConfig::default`].
    pub fn new() -> Self {
        Self::with_config(ReaderConfig::default())
    }

    /// A reader with the given settings.
    pub fn with_config(config: ReaderConfig) -> Self {
        let state = if config.expect_header {
            State::Header
        } else {
            State::Tags
        };
        FlvReader {
            config,
            chunks: Chunks::default(),
            state,
            header: None,
        }
    }

    /// Appends received bytes without copying them.
    pub fn push(&mut self, chunk: Bytes) {
        self.chunks.push(chunk);
    }

    /// Appends received bytes (copied).
    pub fn push_slice(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.chunks.push(Bytes::copy_from_slice(chunk));
        }
    }

    /// Bytes pushed but not yet returned in a tag.
    pub fn buffered(&self) -> usize {
        self.chunks.len()
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<&FlvHeader> {
        self.header.as_ref()
    }

    /// The next complete tag, `Ok(None)` if more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, Error> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Header => match self.read_header() {
                    Ok(Some(skip)) => self.state = State::Preamble(skip),
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(self.fail(e)),
                },
                State::Preamble(skip) => {
                    if !self.chunks.skip(skip) {
                        return Ok(None);
                    }
                    self.state = State::Tags;
                }
                State::Tags => return self.read_tag().map_err(|e| self.fail(e)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed(e.clone());
        e
    }

    /// Parses the fixed header; returns how many bytes to skip after it.
    fn read_header(&mut self) -> Result<Option<usize>, Error> {
        let mut fixed = [0u8; HEADER_LEN];
        if !self.chunks.peek(0, &mut fixed) {
            // Refuse a non-FLV body (an HTML error page) without waiting for nine bytes.
            let have = self.chunks.len().min(3);
            let mut prefix = [0u8; 3];
            if let Some(p) = prefix.get_mut(..have) {
                if self.chunks.peek(0, p) && !b"FLV".starts_with(p) {
                    return Err(Error::NotFlv);
                }
            }
            return Ok(None);
        }
        let header = FlvHeader::parse(&fixed).ok_or(Error::NotFlv)?;
        if header.version != 1 {
            return Err(Error::UnsupportedVersion(header.version));
        }
        if !(9..=MAX_DATA_OFFSET).contains(&header.data_offset) {
            return Err(Error::BadDataOffset(header.data_offset));
        }
        self.chunks.skip(HEADER_LEN);
        self.header = Some(header);
        let extra = usize::try_from(header.data_offset - 9)
            .map_err(|_| Error::BadDataOffset(header.data_offset))?;
        Ok(Some(extra + PREV_SIZE_LEN))
    }

    fn read_tag(&mut self) -> Result<Option<FlvTag>, Error> {
        let mut size = [0u8; 3];
        if !self.chunks.peek(1, &mut size) {
            return Ok(None);
        }
        let [s0, s1, s2] = size;
        let data_size = u32::from_be_bytes([0, s0, s1, s2]);
        if data_size > self.config.max_tag_size {
            return Err(Error::TagTooLarge {
                size: data_size,
                max: self.config.max_tag_size,
            });
        }
        let body_len = usize::try_from(data_size).map_err(|_| Error::TagTooLarge {
            size: data_size,
            max: self.config.max_tag_size,
        })?;
        let Some(raw) = self.chunks.take(TAG_HEADER_LEN + body_len + PREV_SIZE_LEN) else {
            return Ok(None);
        };
        let tag = FlvTag::from_raw(raw).ok_or(Error::TagTooLarge {
            size: data_size,
            max: self.config.max_tag_size,
        })?;
        let expected = data_size + 11;
        if self.config.strict_previous_tag_size && tag.previous_tag_size != expected {
            return Err(Error::PreviousTagSizeMismatch {
                expected,
                found: tag.previous_tag_size,
            });
        }
        Ok(Some(tag))
    }
}

#[cfg(test)]
mod tests;
