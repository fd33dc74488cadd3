//! MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT (CRC-32), both computed over the message
//! prefix with the header length rewritten as if the attribute were the last one
//! (RFC 5389 §15.4, §15.5). The rewritten length is fed to the hash separately so the
//! datagram is never copied.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{be32, HEADER_LEN};
use crate::Error;

pub(crate) const HMAC_SHA1_LEN: usize = 20;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// A short-term credential (the ICE `ice-pwd`) made ready for HMAC-SHA1.
///
/// Building the key hashes the inner and outer pads once; verifying a packet then costs
/// only the message blocks. Store one per session next to its ufrag.
#[derive(Clone)]
pub struct IntegrityKey(Hmac<Sha1>);

impl IntegrityKey {
    /// A key from the password bytes. ICE passwords are ASCII, so RFC 5389's SASLprep is the
    /// identity and the bytes are used as they are.
    pub fn new(password: &[u8]) -> Self {
        // HMAC accepts keys of any length (long ones are hashed first); the fallback is
        // unreachable but keeps this path free of panics.
        let mac = <Hmac<Sha1> as Mac>::new_from_slice(password)
            .unwrap_or_else(|_| <Hmac<Sha1> as Mac>::new(&Default::default()));
        IntegrityKey(mac)
    }

    /// HMAC of `msg[..at]` with the header length set to end after a MESSAGE-INTEGRITY at
    /// `at`.
    fn mac_prefix(&self, msg: &[u8], at: usize) -> Option<Hmac<Sha1>> {
        let adjusted = u16::try_from(at + 4 + HMAC_SHA1_LEN - HEADER_LEN).ok()?;
        let mut mac = self.0.clone();
        mac.update(msg.get(..2)?);
        mac.update(&adjusted.to_be_bytes());
        mac.update(msg.get(4..at)?);
        Some(mac)
    }
}

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// Verifies the MESSAGE-INTEGRITY whose attribute header is at `at`, in constant time.
pub(crate) fn verify_hmac(msg: &[u8], at: usize, key: &IntegrityKey) -> Result<(), Error> {
    let expected = msg
        .get(at + 4..at + 4 + HMAC_SHA1_LEN)
        .ok_or(Error::IntegrityMismatch)?;
    let mac = key.mac_prefix(msg, at).ok_or(Error::IntegrityMismatch)?;
    mac.verify_slice(expected)
        .map_err(|_| Error::IntegrityMismatch)
}

/// The HMAC a MESSAGE-INTEGRITY attribute appended at `at` must carry.
pub(crate) fn compute_hmac(msg: &[u8], at: usize, key: &IntegrityKey) -> Option<[u8; 20]> {
    let mac = key.mac_prefix(msg, at)?;
    Some(mac.finalize().into_bytes().into())
}

/// Verifies the FINGERPRINT whose attribute header is at `at`.
pub(crate) fn verify_fingerprint(msg: &[u8], at: usize) -> Result<(), Error> {
    let carried = be32(msg, at + 4).ok_or(Error::FingerprintMismatch)?;
    match compute_fingerprint(msg, at) {
        Some(crc) if crc == carried => Ok(()),
        _ => Err(Error::FingerprintMismatch),
    }
}

/// The value a FINGERPRINT appended at `at` must carry.
pub(crate) fn compute_fingerprint(msg: &[u8], at: usize) -> Option<u32> {
    let adjusted = u16::try_from(at + 8 - HEADER_LEN).ok()?;
    let mut crc = Crc32::new();
    crc.update(msg.get(..2)?);
    crc.update(&adjusted.to_be_bytes());
    crc.update(msg.get(4..at)?);
    Some(crc.finish() ^ FINGERPRINT_XOR)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), slice-by-8. Hand-written to keep
/// the dependency list short; checked against the RFC 5769 vectors and an independent
/// implementation in the tests.
pub(crate) struct Crc32(u32);

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

impl Crc32 {
    pub(crate) fn new() -> Self {
        Crc32(!0)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut crc = self.0;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let &[b0, b1, b2, b3, b4, b5, b6, b7] = c else {
                continue;
            };
            let lo = crc ^ u32::from_le_bytes([b0, b1, b2, b3]);
            // Indices are masked to 0..=255, so the table lookups cannot go out of bounds.
            crc = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][usize::from(b4)]
                ^ t[2][usize::from(b5)]
                ^ t[1][usize::from(b6)]
                ^ t[0][usize::from(b7)];
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xFF) as usize];
        }
        self.0 = crc;
    }

    pub(crate) fn finish(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.finish()
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(b""), 0);
    }

    #[test]
    fn crc32_is_chunking_independent() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = crc(&data);
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(split);
            let mut c = Crc32::new();
            c.update(a);
            c.update(b);
            assert_eq!(c.finish(), whole, "split at {split}");
        }
    }

    #[test]
    fn key_debug_hides_password() {
        assert_eq!(
            format!("{:?}", IntegrityKey::new(b"secret")),
            "IntegrityKey(..)"
        );
    }
}
