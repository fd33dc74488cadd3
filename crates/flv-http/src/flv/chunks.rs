//! A queue of received `Bytes` chunks that hands out byte ranges without copying when a
//! range lies inside one chunk (the usual case: HTTP body frames are larger than tags).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
pub(crate) struct Chunks {
    queue: VecDeque<Bytes>,
    len: usize,
}

impl Chunks {
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.queue.push_back(chunk);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `out.len()` bytes starting `offset` bytes in; false if not all are buffered.
    pub(crate) fn peek(&self, offset: usize, out: &mut [u8]) -> bool {
        if offset.saturating_add(out.len()) > self.len {
            return false;
        }
        let mut skip = offset;
        let mut filled = 0;
        for chunk in &self.queue {
            if filled == out.len() {
                break;
            }
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            let available = chunk.get(skip..).unwrap_or_default();
            let n = available.len().min(out.len() - filled);
            if let (Some(dst), Some(src)) = (out.get_mut(filled..filled + n), available.get(..n)) {
                dst.copy_from_slice(src);
            }
            filled += n;
            skip = 0;
        }
        filled == out.len()
    }

    /// Removes and returns the first `n` bytes, or `None` (nothing removed) if fewer are
    /// buffered. Zero-copy when they lie in the first chunk.
    pub(crate) fn take(&mut self, n: usize) -> Option<Bytes> {
        if n > self.len {
            return None;
        }
        self.len -= n;
        let front_len = self.queue.front().map_or(0, Bytes::len);
        if n <= front_len {
            let front = self.queue.front_mut()?;
            let out = front.split_to(n);
            if front.is_empty() {
                self.queue.pop_front();
            }
            return Some(out);
        }
        // `n` bytes are buffered, so this allocation is bounded by data actually received.
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let mut front = self.queue.pop_front()?;
            let want = n - out.len();
            if front.len() > want {
                out.extend_from_slice(&front.split_to(want));
                self.queue.push_front(front);
            } else {
                out.extend_from_slice(&front);
            }
        }
        Some(out.freeze())
    }

    /// Drops the first `n` bytes; false (nothing dropped) if fewer are buffered.
    pub(crate) fn skip(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.len -= n;
        let mut left = n;
        while left > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            if front.len() > left {
                let _ = front.split_to(left);
                break;
            }
            left -= front.len();
            self.queue.pop_front();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&[u8]]) -> Chunks {
        let mut c = Chunks::default();
        for p in parts {
            c.push(Bytes::copy_from_slice(p));
        }
        c
    }

    #[test]
    fn peek_across_chunks() {
        let c = chunks(&[b"ab", b"", b"c", b"def"]);
        assert_eq!(c.len(), 6);
        let mut out = [0u8; 4];
        assert!(c.peek(1, &mut out));
        assert_eq!(&out, b"bcde");
        assert!(!c.peek(3, &mut out));
        assert!(c.peek(6, &mut []));
    }

    #[test]
    fn take_zero_copy_and_spanning() {
        let mut c = chunks(&[b"abcd", b"efgh"]);
        let first = c.take(2);
        assert_eq!(first.as_deref(), Some(&b"ab"[..]));
        assert_eq!(c.take(4).as_deref(), Some(&b"cdef"[..]));
        assert_eq!(c.take(3), None);
        assert_eq!(c.len(), 2);
        assert!(c.skip(1));
        assert!(!c.skip(2));
        assert_eq!(c.take(1).as_deref(), Some(&b"h"[..]));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn skip_across_chunks() {
        let mut c = chunks(&[b"ab", b"cd", b"ef"]);
        assert!(c.skip(3));
        assert_eq!(c.take(3).as_deref(), Some(&b"def"[..]));
    }
}
