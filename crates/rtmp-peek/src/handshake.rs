//! The RTMP handshake, both sides, in its simple form and in the digest ("complex") form that
//! Flash Player 9+ introduced.
//!
//! Simple: C0/S0 is the version byte 3, C1/S1 are 1536 bytes (time, zero, random) and each
//! side echoes the other's packet as C2/S2.
//!
//! Digest: bytes 4..8 of C1 carry a version, and a 32-byte HMAC-SHA256 sits at an offset
//! derived from the packet itself, in the first 764-byte block (schema 1) or the second
//! (schema 0). The server proves itself with its own digest in S1 and with an S2 whose last
//! 32 bytes are keyed by the client's digest. A server answers in the form the client used:
//! players such as ffmpeg check the digest S1 and S2 when playing and give up if they are
//! wrong, so answering a digest C1 with a bare echo is not always enough.
//!
//! Neither side checks the peer's C2/S2: SRS and nginx-rtmp do not either, and Flash-era
//! clients are known to send ones that would fail.

use bytes::{Buf, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Error;

/// Size of C1, C2, S1 and S2.
pub const PACKET_SIZE: usize = 1536;
/// The only RTMP version accepted (6, RTMPE, is not supported).
pub const RTMP_VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
    0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];
const FMS_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";
const FP_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
/// The version a digest-form S1 advertises (FMS 4.5.0.1, as SRS sends it).
const SERVER_VERSION: [u8; 4] = [0x04, 0x05, 0x00, 0x01];
/// The version a digest-form C1 advertises (Flash Player 9.0.124.2, as ffmpeg sends it).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7c, 0x02];

type HmacSha256 = Hmac<Sha256>;

/// Where the digest of a digest-form C1/S1 sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Key block first, digest block second (digest offset from bytes 772..776).
    Schema0,
    /// Digest block first (digest offset from bytes 8..12), as ffmpeg sends it.
    Schema1,
}

/// Which form a handshake took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeForm {
    /// Plain echo handshake.
    Simple,
    /// HMAC-SHA256 digest handshake.
    Digest(Schema),
}

fn full_key(text: &[u8]) -> Vec<u8> {
    let mut key = text.to_vec();
    key.extend_from_slice(&KEY_TAIL);
    key
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; DIGEST_LEN], Error> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).map_err(|_| Error::HandshakeDigest)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

fn digest_offset(p: &[u8; PACKET_SIZE], schema: Schema) -> usize {
    let base = match schema {
        Schema::Schema0 => 772,
        Schema::Schema1 => 8,
    };
    let sum: usize = p[base..base + 4].iter().map(|b| usize::from(*b)).sum();
    base + 4 + sum % 728
}

fn packet_digest(p: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> Result<[u8; 32], Error> {
    hmac(key, &[&p[..offset], &p[offset + DIGEST_LEN..]])
}

/// The schema and digest of a digest-form packet signed with `key`, if it is one.
fn find_digest(p: &[u8; PACKET_SIZE], key: &[u8]) -> Result<Option<(Schema, [u8; 32])>, Error> {
    for schema in [Schema::Schema0, Schema::Schema1] {
        let offset = digest_offset(p, schema);
        if packet_digest(p, offset, key)?[..] == p[offset..offset + DIGEST_LEN] {
            let mut digest = [0u8; DIGEST_LEN];
            digest.copy_from_slice(&p[offset..offset + DIGEST_LEN]);
            return Ok(Some((schema, digest)));
        }
    }
    Ok(None)
}

/// Fills `p` as a digest-form C1/S1 and returns its digest.
fn sign_packet(
    p: &mut [u8; PACKET_SIZE],
    version: [u8; 4],
    schema: Schema,
    key: &[u8],
) -> Result<[u8; 32], Error> {
    p[0..4].fill(0);
    p[4..8].copy_from_slice(&version);
    let offset = digest_offset(p, schema);
    let digest = packet_digest(p, offset, key)?;
    p[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    Ok(digest)
}

/// Builds a digest-form C2/S2 answering a peer packet whose digest was `peer_digest`.
fn answer_packet(
    rng: &mut fastrand::Rng,
    peer_digest: &[u8],
    full_key: &[u8],
) -> Result<Box<[u8; PACKET_SIZE]>, Error> {
    let mut p = Box::new([0u8; PACKET_SIZE]);
    rng.fill(&mut p[..]);
    let key = hmac(full_key, &[peer_digest])?;
    let sig = hmac(&key, &[&p[..PACKET_SIZE - DIGEST_LEN]])?;
    p[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
    Ok(p)
}

fn packet_at(input: &[u8], start: usize) -> Option<Box<[u8; PACKET_SIZE]>> {
    let slice = input.get(start..start + PACKET_SIZE)?;
    let mut p = Box::new([0u8; PACKET_SIZE]);
    p.copy_from_slice(slice);
    Some(p)
}

fn check_version(input: &[u8]) -> Result<(), Error> {
    match input.first() {
        Some(&v) if v != RTMP_VERSION => Err(Error::UnsupportedVersion(v)),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    WaitC0C1,
    WaitC2,
    Done,
}

/// The server side: reads C0 C1, answers S0 S1 S2 at once, then reads C2.
///
/// ```
/// use bytes::BytesMut;
/// use rtmp_peek::handshake::{ClientHandshake, ServerHandshake};
/// let (mut client, mut server) = (ClientHandshake::new(true), ServerHandshake::new());
/// let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
/// client.start(&mut to_server)?;
/// assert!(!server.process(&mut to_server, &mut to_client)?);
/// assert!(client.process(&mut to_client, &mut to_server)?);
/// assert!(server.process(&mut to_server, &mut to_client)?);
/// assert!(matches!(server.form(), Some(rtmp_peek::handshake::HandshakeForm::Digest(_))));
/// # Ok::<(), rtmp_peek::Error>(())
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    rng: fastrand::Rng,
    form: Option<HandshakeForm>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A server handshake with a randomly seeded generator for S1/S2.
    pub fn new() -> Self {
        Self::with_rng(fastrand::Rng::new())
    }

    /// A server handshake drawing its random bytes from `rng` (for reproducible tests).
    pub fn with_rng(rng: fastrand::Rng) -> Self {
        ServerHandshake {
            state: ServerState::WaitC0C1,
            rng,
            form: None,
        }
    }

    /// A server handshake with a fixed seed: reproducible S1/S2 for tests and fuzzing.
    pub fn with_seed(seed: u64) -> Self {
        Self::with_rng(fastrand::Rng::with_seed(seed))
    }

    /// The form the client used, once C1 has been read.
    pub fn form(&self) -> Option<HandshakeForm> {
        self.form
    }

    /// Whether C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Consumes handshake bytes from `input`, appends replies to `out`, and returns whether
    /// the handshake is complete. Bytes after C2 are left in `input`: they are chunks.
    pub fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, Error> {
        loop {
            match self.state {
                ServerState::WaitC0C1 => {
                    // Refuse non-RTMP input (an HTTP request, TLS) on its first byte.
                    check_version(input)?;
                    let Some(c1) = packet_at(input, 1) else {
                        return Ok(false);
                    };
                    input.advance(1 + PACKET_SIZE);
                    self.answer(&c1, out)?;
                    self.state = ServerState::WaitC2;
                }
                ServerState::WaitC2 => {
                    if input.len() < PACKET_SIZE {
                        return Ok(false);
                    }
                    input.advance(PACKET_SIZE);
                    self.state = ServerState::Done;
                }
                ServerState::Done => return Ok(true),
            }
        }
    }

    fn answer(&mut self, c1: &[u8; PACKET_SIZE], out: &mut BytesMut) -> Result<(), Error> {
        out.reserve(1 + 2 * PACKET_SIZE);
        out.extend_from_slice(&[RTMP_VERSION]);
        let mut s1 = Box::new([0u8; PACKET_SIZE]);
        self.rng.fill(&mut s1[8..]);
        // A zero version means the client wants the plain echo handshake.
        let found = if c1[4..8] == [0; 4] {
            None
        } else {
            find_digest(c1, &full_key(FP_TEXT)[..30])?
        };
        match found {
            None => {
                self.form = Some(HandshakeForm::Simple);
                out.extend_from_slice(&s1[..]);
                out.extend_from_slice(c1);
            }
            Some((schema, c1_digest)) => {
                self.form = Some(HandshakeForm::Digest(schema));
                sign_packet(&mut s1, SERVER_VERSION, schema, &full_key(FMS_TEXT)[..36])?;
                let s2 = answer_packet(&mut self.rng, &c1_digest, &full_key(FMS_TEXT))?;
                out.extend_from_slice(&s1[..]);
                out.extend_from_slice(&s2[..]);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    WaitS0S1S2,
    Done,
}

/// The client side, for the proxy's leg towards an origin: sends C0 C1, reads S0 S1 S2,
/// answers C2.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    rng: fastrand::Rng,
    digest: bool,
    form: Option<HandshakeForm>,
}

impl ClientHandshake {
    /// A client handshake; `digest` picks the digest form (schema 1) over the simple one.
    pub fn new(digest: bool) -> Self {
        Self::with_rng(digest, fastrand::Rng::new())
    }

    /// As [`new`](Self::new), drawing random bytes from `rng`.
    pub fn with_rng(digest: bool, rng: fastrand::Rng) -> Self {
        ClientHandshake {
            state: ClientState::Start,
            rng,
            digest,
            form: None,
        }
    }

    /// As [`new`](Self::new), with a fixed seed: a reproducible C1/C2.
    pub fn with_seed(digest: bool, seed: u64) -> Self {
        Self::with_rng(digest, fastrand::Rng::with_seed(seed))
    }

    /// The form the server answered with, once S1 has been read.
    pub fn form(&self) -> Option<HandshakeForm> {
        self.form
    }

    /// Whether C2 has been sent.
    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Appends C0 C1 to `out` (once; later calls append nothing).
    pub fn start(&mut self, out: &mut BytesMut) -> Result<(), Error> {
        if self.state != ClientState::Start {
            return Ok(());
        }
        let mut c1 = Box::new([0u8; PACKET_SIZE]);
        self.rng.fill(&mut c1[8..]);
        if self.digest {
            sign_packet(
                &mut c1,
                CLIENT_VERSION,
                Schema::Schema1,
                &full_key(FP_TEXT)[..30],
            )?;
        }
        out.reserve(1 + PACKET_SIZE);
        out.extend_from_slice(&[RTMP_VERSION]);
        out.extend_from_slice(&c1[..]);
        self.state = ClientState::WaitS0S1S2;
        Ok(())
    }

    /// Consumes S0 S1 S2 from `input`, appends C2 to `out` and returns whether the handshake
    /// is complete. Calls [`start`](Self::start) first if it was not called. Bytes after S2
    /// are left in `input`.
    pub fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, Error> {
        self.start(out)?;
        if self.state == ClientState::Done {
            return Ok(true);
        }
        check_version(input)?;
        let Some(s1) = packet_at(input, 1) else {
            return Ok(false);
        };
        if input.len() < 1 + 2 * PACKET_SIZE {
            return Ok(false);
        }
        input.advance(1 + 2 * PACKET_SIZE);
        let found = if self.digest && s1[4..8] != [0; 4] {
            find_digest(&s1, &full_key(FMS_TEXT)[..36])?
        } else {
            None
        };
        match found {
            Some((schema, s1_digest)) => {
                self.form = Some(HandshakeForm::Digest(schema));
                let c2 = answer_packet(&mut self.rng, &s1_digest, &full_key(FP_TEXT))?;
                out.extend_from_slice(&c2[..]);
            }
            None => {
                self.form = Some(HandshakeForm::Simple);
                out.extend_from_slice(&s1[..]);
            }
        }
        self.state = ClientState::Done;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> fastrand::Rng {
        fastrand::Rng::with_seed(7)
    }

    #[test]
    fn simple_server_echoes_c1() {
        let mut c1 = vec![0u8; PACKET_SIZE];
        c1[0] = 1;
        c1[100] = 0x55;
        let mut input = BytesMut::new();
        input.extend_from_slice(&[3]);
        input.extend_from_slice(&c1);
        let mut out = BytesMut::new();
        let mut server = ServerHandshake::with_rng(rng());
        assert!(!server.process(&mut input, &mut out).unwrap());
        assert_eq!(server.form(), Some(HandshakeForm::Simple));
        assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1 + PACKET_SIZE..], &c1[..]);
        input.extend_from_slice(&[0u8; PACKET_SIZE]);
        input.extend_from_slice(b"rest");
        assert!(server.process(&mut input, &mut out).unwrap());
        assert_eq!(&input[..], b"rest");
    }

    #[test]
    fn refuses_other_versions_on_the_first_byte() {
        let mut server = ServerHandshake::new();
        let mut input = BytesMut::from(&b"G"[..]);
        assert_eq!(
            server.process(&mut input, &mut BytesMut::new()),
            Err(Error::UnsupportedVersion(b'G'))
        );
        let mut client = ClientHandshake::new(false);
        let mut input = BytesMut::from(&[6u8][..]);
        assert_eq!(
            client.process(&mut input, &mut BytesMut::new()),
            Err(Error::UnsupportedVersion(6))
        );
    }

    fn run(digest: bool, split: usize) -> (ClientHandshake, ServerHandshake, Vec<u8>, Vec<u8>) {
        let mut client = ClientHandshake::with_rng(digest, rng());
        let mut server = ServerHandshake::with_rng(fastrand::Rng::with_seed(9));
        let (mut c_out, mut s_out) = (BytesMut::new(), BytesMut::new());
        client.start(&mut c_out).unwrap();
        let c0c1 = c_out.to_vec();
        let mut s_in = BytesMut::new();
        for piece in c_out.split().chunks(split) {
            s_in.extend_from_slice(piece);
            assert!(!server.process(&mut s_in, &mut s_out).unwrap());
        }
        let s_all = s_out.to_vec();
        let mut c_in = BytesMut::new();
        let mut done = false;
        for piece in s_out.split().chunks(split) {
            c_in.extend_from_slice(piece);
            done = client.process(&mut c_in, &mut c_out).unwrap();
        }
        assert!(done);
        s_in.extend_from_slice(&c_out.split());
        assert!(server.process(&mut s_in, &mut s_out).unwrap());
        assert!(s_in.is_empty() && s_out.is_empty());
        (client, server, c0c1, s_all)
    }

    #[test]
    fn simple_both_sides_any_split() {
        for split in [1, 7, 1000, 5000] {
            let (client, server, _, _) = run(false, split);
            assert_eq!(client.form(), Some(HandshakeForm::Simple));
            assert_eq!(server.form(), Some(HandshakeForm::Simple));
        }
    }

    #[test]
    fn digest_answered_in_kind() {
        let (client, server, c0c1, s0s1s2) = run(true, 333);
        assert_eq!(server.form(), Some(HandshakeForm::Digest(Schema::Schema1)));
        assert_eq!(client.form(), Some(HandshakeForm::Digest(Schema::Schema1)));
        // Check S1 and S2 the way a player does.
        let c1: [u8; PACKET_SIZE] = c0c1[1..].try_into().unwrap();
        let s1: [u8; PACKET_SIZE] = s0s1s2[1..1 + PACKET_SIZE].try_into().unwrap();
        let s2 = &s0s1s2[1 + PACKET_SIZE..];
        assert_eq!(&s1[4..8], &SERVER_VERSION);
        let (schema, _) = find_digest(&s1, &full_key(FMS_TEXT)[..36])
            .unwrap()
            .unwrap();
        assert_eq!(schema, Schema::Schema1);
        let c1_digest = &c1[digest_offset(&c1, Schema::Schema1)..][..32];
        let key = hmac(&full_key(FMS_TEXT), &[c1_digest]).unwrap();
        assert_eq!(hmac(&key, &[&s2[..1504]]).unwrap()[..], s2[1504..]);
    }

    #[test]
    fn digest_schema0_is_recognised() {
        let mut c1 = Box::new([0u8; PACKET_SIZE]);
        fastrand::Rng::with_seed(1).fill(&mut c1[8..]);
        sign_packet(
            &mut c1,
            CLIENT_VERSION,
            Schema::Schema0,
            &full_key(FP_TEXT)[..30],
        )
        .unwrap();
        let mut input = BytesMut::new();
        input.extend_from_slice(&[3]);
        input.extend_from_slice(&c1[..]);
        let mut server = ServerHandshake::new();
        server.process(&mut input, &mut BytesMut::new()).unwrap();
        assert_eq!(server.form(), Some(HandshakeForm::Digest(Schema::Schema0)));
    }

    #[test]
    fn nonzero_version_without_digest_is_simple() {
        let mut input = BytesMut::new();
        input.extend_from_slice(&[3, 0, 0, 0, 0, 1, 2, 3, 4]);
        input.extend_from_slice(&[0xabu8; PACKET_SIZE - 8]);
        let mut server = ServerHandshake::new();
        let mut out = BytesMut::new();
        server.process(&mut input, &mut out).unwrap();
        assert_eq!(server.form(), Some(HandshakeForm::Simple));
        assert_eq!(
            &out[1 + PACKET_SIZE + 4..1 + PACKET_SIZE + 8],
            &[1, 2, 3, 4]
        );
    }
}
