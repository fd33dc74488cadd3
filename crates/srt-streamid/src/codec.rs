//! A bounded big-endian reader: every read checks what is left, so no input can make the
//! parsers index out of range.

use crate::Error;

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Error::Truncated {
            what,
            needed: n,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<&'a [u8; N], Error> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(Error::Truncated {
            what,
            needed: N,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        self.array::<2>(what).map(|b| u16::from_be_bytes(*b))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        self.array::<4>(what).map(|b| u32::from_be_bytes(*b))
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Big-endian word `i` of a fixed-size block. Callers pass constant indices inside the
/// block, so the `get` folds away; it is there so no index can ever panic.
#[inline]
pub(crate) fn word<const N: usize>(bytes: &[u8; N], i: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(src) = bytes.get(i * 4..i * 4 + 4) {
        w.copy_from_slice(src);
    }
    u32::from_be_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[0, 1, 2, 3, 4]);
        assert_eq!(r.u32("w").unwrap(), 0x0001_0203);
        assert_eq!(
            r.u16("h"),
            Err(Error::Truncated {
                what: "h",
                needed: 2,
                available: 1
            })
        );
        assert_eq!(r.take(1, "b").unwrap(), &[4]);
        assert!(r.rest().is_empty());
        assert_eq!(word(&[1, 2, 3, 4, 5, 6, 7, 8], 1), 0x0506_0708);
        assert_eq!(word(&[1, 2, 3, 4], 1), 0);
    }
}
