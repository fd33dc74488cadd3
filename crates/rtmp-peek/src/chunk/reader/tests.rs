use super::*;
use crate::message::{Control, UserControl};
use crate::ChunkWriter;
use bytes::Bytes;
use proptest::prelude::*;

fn read_all(reader: &mut ChunkReader) -> Result<Vec<Message>, Error> {
    let mut out = Vec::new();
    while let Some(m) = reader.next_message()? {
        out.push(m);
    }
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<Vec<Message>, Error> {
    let mut r = ChunkReader::new();
    r.feed(bytes);
    read_all(&mut r)
}

fn m(csid: u32, type_id: u8, stream_id: u32, ts: u32, payload: &[u8]) -> Message {
    Message::new(
        csid,
        type_id,
        stream_id,
        ts,
        Bytes::copy_from_slice(payload),
    )
}

#[test]
fn fmt0_single_chunk() {
    let bytes = [
        0x03, 0, 0, 0x10, 0, 0, 3, 0x14, 1, 0, 0,
        0, // fmt 0, csid 3, ts 16, len 3, cmd, msid 1
        b'a', b'b', b'c',
    ];
    assert_eq!(parse(&bytes).unwrap(), vec![m(3, 20, 1, 16, b"abc")]);
}

#[test]
fn fmt1_fmt2_fmt3_headers() {
    let mut bytes = vec![0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa]; // fmt0 ts 10
    bytes.extend([0x44, 0, 0, 5, 0, 0, 2, 9, 0xbb, 0xcc]); // fmt1 delta 5, len 2, video
    bytes.extend([0x84, 0, 0, 7, 0xdd, 0xee]); // fmt2 delta 7
    bytes.extend([0xc4, 0x11, 0x22]); // fmt3: new message, delta 7 again
    assert_eq!(
        parse(&bytes).unwrap(),
        vec![
            m(4, 8, 1, 10, &[0xaa]),
            m(4, 9, 1, 15, &[0xbb, 0xcc]),
            m(4, 9, 1, 22, &[0xdd, 0xee]),
            m(4, 9, 1, 29, &[0x11, 0x22]),
        ]
    );
}

#[test]
fn fmt3_after_fmt0_adds_the_absolute_timestamp() {
    // As ffmpeg and SRS read it: fmt 0's timestamp doubles as the delta.
    let mut bytes = vec![0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 1];
    bytes.extend([0xc4, 2]);
    assert_eq!(parse(&bytes).unwrap()[1].timestamp, 20);
}

#[test]
fn two_and_three_byte_csids() {
    let mut bytes = vec![0x00, 0, 0, 0, 1, 0, 0, 1, 8, 0, 0, 0, 0, 1]; // csid 64
    bytes.extend([0x01, 0xff, 0xff, 0, 0, 1, 0, 0, 1, 8, 0, 0, 0, 0, 2]); // csid 65599
    bytes.extend([0x01, 0x00, 0x01, 0, 0, 1, 0, 0, 1, 8, 0, 0, 0, 0, 3]); // csid 320
    let got = parse(&bytes).unwrap();
    assert_eq!(
        got.iter().map(|m| m.csid).collect::<Vec<_>>(),
        vec![64, 65599, 320]
    );
}

#[test]
fn multi_chunk_message_and_interleaving() {
    // Two 200-byte messages on csids 4 and 6, chunks alternating, chunk size 128.
    let a = [1u8; 200];
    let b = [2u8; 200];
    let mut bytes = vec![0x04, 0, 0, 1, 0, 0, 200, 8, 1, 0, 0, 0];
    bytes.extend(&a[..128]);
    bytes.extend([0x06, 0, 0, 2, 0, 0, 200, 9, 1, 0, 0, 0]);
    bytes.extend(&b[..128]);
    bytes.push(0xc4);
    bytes.extend(&a[128..]);
    bytes.push(0xc6);
    bytes.extend(&b[128..]);
    assert_eq!(
        parse(&bytes).unwrap(),
        vec![m(4, 8, 1, 1, &a), m(6, 9, 1, 2, &b)]
    );
}

#[test]
fn extended_timestamps_on_continuations() {
    let payload = [5u8; 130];
    let mut bytes = vec![
        0x06, 0xff, 0xff, 0xff, 0, 0, 130, 9, 1, 0, 0, 0, 0x01, 0, 0, 0,
    ];
    bytes.extend(&payload[..128]);
    bytes.extend([0xc6, 0x01, 0, 0, 0]);
    bytes.extend(&payload[128..]);
    assert_eq!(
        parse(&bytes).unwrap(),
        vec![m(6, 9, 1, 0x0100_0000, &payload)]
    );

    // Same message from an encoder that omits the repeat on fmt 3: the four bytes after
    // the basic header are payload, and the next header gives the peek enough to decide.
    let mut bytes = vec![
        0x06, 0xff, 0xff, 0xff, 0, 0, 130, 9, 1, 0, 0, 0, 0x01, 0, 0, 0,
    ];
    bytes.extend(&payload[..128]);
    bytes.push(0xc6);
    bytes.extend(&payload[128..]);
    let mut r = ChunkReader::new();
    r.feed(&bytes);
    assert_eq!(r.next_message().unwrap(), None);
    r.feed(&[0x46, 0, 0]);
    assert_eq!(
        r.next_message().unwrap(),
        Some(m(6, 9, 1, 0x0100_0000, &payload))
    );
}

#[test]
fn fmt3_new_message_with_extended_delta() {
    let mut bytes = vec![0x46, 0xff, 0xff, 0xff, 0, 0, 1, 9, 0x01, 0, 0, 0, 0xaa]; // fmt1
    bytes.extend([0xc6, 0x02, 0, 0, 0, 0xbb]); // fmt3 new message, ext delta 0x02000000
    let got = parse(&bytes).unwrap();
    assert_eq!(got[0].timestamp, 0x0100_0000);
    assert_eq!(got[1].timestamp, 0x0300_0000);
}

#[test]
fn set_chunk_size_and_abort_applied() {
    let mut w = ChunkWriter::new();
    let mut bytes = BytesMut::new();
    w.write(&Control::SetChunkSize(300).to_message(), &mut bytes)
        .unwrap();
    let big = m(6, 9, 1, 0, &[9u8; 290]);
    w.write(&big, &mut bytes).unwrap();
    // Start a message on csid 4, abort it, then send a complete one.
    bytes.extend([0x04, 0, 0, 0, 0, 0x01, 0x90, 8, 1, 0, 0, 0]); // 400 bytes
    bytes.extend([1u8; 300]); // first chunk only
    let abort = Control::Abort(4).to_message();
    ChunkWriter::with_chunk_size(300)
        .unwrap()
        .write(&abort, &mut bytes)
        .unwrap();
    bytes.extend([0x04, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 7]);
    let mut r = ChunkReader::new();
    r.feed(&bytes);
    let got = read_all(&mut r).unwrap();
    assert_eq!(r.chunk_size(), 300);
    assert_eq!(got.len(), 4);
    assert_eq!(got[1], big);
    assert_eq!(got[2].type_id, types::ABORT);
    assert_eq!(got[3], m(4, 8, 1, 0, &[7]));
    assert_eq!(r.held, 0);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn window_and_acks() {
    let mut r = ChunkReader::new();
    let mut bytes = BytesMut::new();
    let mut w = ChunkWriter::new();
    w.write(&Control::WindowAckSize(100).to_message(), &mut bytes)
        .unwrap();
    r.feed(&bytes);
    read_all(&mut r).unwrap();
    assert_eq!(r.window_ack_size(), 100);
    assert_eq!(r.ack_due(), None);
    let mut bytes = BytesMut::new();
    w.write(&m(4, 8, 1, 0, &[0u8; 100]), &mut bytes).unwrap();
    r.feed(&bytes);
    read_all(&mut r).unwrap();
    assert_eq!(r.ack_due(), Some(16 + 112));
    assert_eq!(r.ack_due(), None);
}

#[test]
fn errors() {
    assert_eq!(
        parse(&[0x83, 0, 0, 0]),
        Err(Error::MissingPreviousHeader { csid: 3, fmt: 2 })
    );
    assert_eq!(
        parse(&[0xc3]),
        Err(Error::MissingPreviousHeader { csid: 3, fmt: 3 })
    );
    // Declared 16 MiB - 1 is refused at the header, before any allocation.
    assert!(matches!(
        parse(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0]),
        Err(Error::MessageTooLarge { len: 0xffffff, .. })
    ));
    // A new fmt 0 header while a message on the same csid is incomplete.
    let mut bytes = vec![0x04, 0, 0, 0, 0, 1, 0, 8, 1, 0, 0, 0];
    bytes.extend([0u8; 128]);
    bytes.extend([0x04, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
    assert_eq!(parse(&bytes), Err(Error::InterruptedMessage(4)));
    // Set Chunk Size with the top bit set.
    assert_eq!(
        parse(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x80, 0, 0, 0]),
        Err(Error::InvalidChunkSize(0x8000_0000))
    );
    let mut r = ChunkReader::with_limits(ReaderLimits {
        max_chunk_streams: 2,
        ..Default::default()
    });
    r.feed(&[
        0x02, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0,
    ]);
    r.feed(&[0x04, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0]);
    assert_eq!(read_all(&mut r), Err(Error::TooManyChunkStreams(2)));
}

#[test]
fn in_progress_limit() {
    let limits = ReaderLimits {
        max_in_progress: 200,
        ..Default::default()
    };
    let mut r = ChunkReader::with_limits(limits);
    for csid in 4..8u8 {
        r.feed(&[csid, 0, 0, 0, 0, 1, 0, 8, 1, 0, 0, 0]);
        r.feed(&[0u8; 128]);
    }
    assert_eq!(read_all(&mut r), Err(Error::TooMuchInProgress(200)));
}

/// Limits a proxy puts on its clients: 2 MiB messages, one of them in progress plus
/// 256 KiB.
fn proxy_limits() -> ReaderLimits {
    ReaderLimits {
        max_message_size: 2 * 1024 * 1024,
        max_in_progress: 2 * 1024 * 1024 + 256 * 1024,
        ..Default::default()
    }
}

/// A fmt 0 header on `csid` (one byte) starting a video message of `len` bytes.
fn header(csid: u8, len: u32) -> Vec<u8> {
    let l = len.to_be_bytes();
    vec![csid, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0]
}

/// A message's first chunk reserves for every byte already buffered (one allocation
/// for what arrived in one read, no growth by doubling and its copies), never more,
/// and the message comes out whole.
#[test]
fn a_message_reserves_what_arrived_at_once() {
    let payload: Vec<u8> = (0..50_000).map(|i| (i % 251) as u8).collect();
    let mut wire = BytesMut::new();
    let mut w = ChunkWriter::with_chunk_size(4096).unwrap();
    w.write(&m(6, 9, 1, 0, &payload), &mut wire).unwrap();
    let mut r = ChunkReader::new();
    r.set_chunk_size(4096).unwrap();
    // 10 000 bytes: the 12-byte header, two chunks and a part of the third.
    r.feed(&wire[..10_000]);
    assert_eq!(r.next_message().unwrap(), None);
    assert_eq!(r.held, 10_000 - 12);
    r.feed(&wire[10_000..]);
    let got = r.next_message().unwrap().unwrap();
    assert_eq!(&got.payload[..], &payload[..]);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn an_empty_input_buffer_is_released_and_a_partial_one_kept() {
    let mut r = ChunkReader::new();
    let mut wire = BytesMut::new();
    ChunkWriter::new()
        .write(&m(6, 9, 1, 0, &[1, 2, 3]), &mut wire)
        .unwrap();
    r.feed(&wire[..5]);
    assert_eq!(r.next_message().unwrap(), None);
    r.release_empty_buffer();
    assert_eq!(r.buffered(), 5);
    r.feed(&wire[5..]);
    assert!(r.next_message().unwrap().is_some());
    assert!(r.buffer_mut().capacity() > 0);
    r.release_empty_buffer();
    assert_eq!(r.buffer_mut().capacity(), 0);
    // It reads on as before.
    r.feed(&wire);
    assert_eq!(r.next_message().unwrap().unwrap().payload.len(), 3);
}

#[test]
fn many_chunk_streams_each_starting_a_large_message_hit_the_limit() {
    let limits = proxy_limits();
    let mut r = ChunkReader::with_limits(limits);
    r.set_chunk_size(64 * 1024).unwrap();
    let declared = 2 * 1024 * 1024 - 1;
    let mut refused_at = None;
    for csid in 4..60u8 {
        r.feed(&header(csid, declared));
        r.feed(&[7u8; 64 * 1024]);
        match read_all(&mut r) {
            Ok(got) => assert!(got.is_empty()),
            Err(e) => {
                assert_eq!(e, Error::TooMuchInProgress(limits.max_in_progress));
                refused_at = Some(csid);
                break;
            }
        }
        assert!(r.buffered_bytes() <= limits.max_in_progress);
    }
    // 64 KiB each: the 37th message opened crosses 2.25 MiB.
    assert_eq!(refused_at, Some(4 + 36));
}

#[test]
fn declared_lengths_reserve_nothing_up_front() {
    // 60 messages declared at 2 MiB, one byte of each: a few KiB each, not 2 MiB (nor a
    // fixed first reservation of tens of KiB).
    let mut r = ChunkReader::with_limits(proxy_limits());
    // One-byte chunks, so that the next header may start another chunk stream.
    r.set_chunk_size(1).unwrap();
    for csid in 4..64u8 {
        r.feed(&header(csid, 2 * 1024 * 1024 - 1));
        r.feed(&[7u8]);
        assert_eq!(r.next_message().unwrap(), None);
    }
    assert_eq!(r.buffered_bytes(), 60 * MIN_PAYLOAD_CAPACITY);
}

#[test]
fn a_trickled_message_grows_memory_with_what_arrived() {
    let limits = proxy_limits();
    let len = limits.max_message_size as usize;
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut wire = BytesMut::new();
    let mut w = ChunkWriter::with_chunk_size(4096).unwrap();
    w.write(&m(6, 9, 1, 0, &payload), &mut wire).unwrap();
    let mut r = ChunkReader::with_limits(limits);
    r.set_chunk_size(4096).unwrap();
    let mut fed = 0;
    let mut got = None;
    for piece in wire.chunks(1000) {
        r.feed(piece);
        fed += piece.len();
        if let Some(msg) = r.next_message().unwrap() {
            got = Some(msg);
            break;
        }
        // Never more than twice what arrived (or the first small reservation), and
        // never more than the message.
        let held = r.buffered_bytes();
        assert!(
            held <= (2 * fed).max(MIN_PAYLOAD_CAPACITY + 1000) && held <= len + 20,
            "{held} bytes held after {fed} received"
        );
    }
    assert_eq!(got, Some(m(6, 9, 1, 0, &payload)));
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn a_keyframe_sized_message_interleaved_with_audio_passes() {
    // A 1.9 MiB keyframe on csid 6 with audio on csid 4 between its chunks, at the
    // chunk sizes encoders use, within the proxy's limits.
    let limits = proxy_limits();
    let key = m(6, 9, 1, 40, &vec![0x17; 1900 * 1024]);
    for chunk_size in [128u32, 4096, 60_000] {
        let mut key_wire = BytesMut::new();
        ChunkWriter::with_chunk_size(chunk_size)
            .unwrap()
            .write(&key, &mut key_wire)
            .unwrap();
        // Split the keyframe's bytes at chunk boundaries and put an audio message
        // (written by its own writer: other chunk stream) after every 8th chunk.
        let mut wire = BytesMut::new();
        let mut audio_writer = ChunkWriter::with_chunk_size(chunk_size).unwrap();
        let first = 12 + chunk_size as usize;
        let step = 1 + chunk_size as usize;
        let mut pos = 0;
        let mut audio = Vec::new();
        let mut n = 0;
        while pos < key_wire.len() {
            let end = (if pos == 0 { first } else { pos + step }).min(key_wire.len());
            wire.extend_from_slice(&key_wire[pos..end]);
            pos = end;
            n += 1;
            if n % 8 == 0 {
                let a = m(4, 8, 1, n, &vec![0xaf; 300]);
                audio_writer.write(&a, &mut wire).unwrap();
                audio.push(a);
            }
        }
        let mut r = ChunkReader::with_limits(limits);
        r.set_chunk_size(chunk_size).unwrap();
        let mut got = Vec::new();
        for piece in wire.chunks(16 * 1024) {
            r.feed(piece);
            got.extend(read_all(&mut r).unwrap());
        }
        assert!(!audio.is_empty());
        let (videos, audios): (Vec<_>, Vec<_>) = got.into_iter().partition(|m| m.csid == 6);
        assert_eq!(videos, vec![key.clone()], "chunk size {chunk_size}");
        assert_eq!(audios, audio);
        assert_eq!(r.buffered_bytes(), 0);
    }
}

#[test]
fn a_message_of_the_largest_size_fits_when_in_progress_equals_it() {
    // Reservations stop at the declared length, so the limits can be equal.
    let size = 1024 * 1024;
    let limits = ReaderLimits {
        max_message_size: size as u32,
        max_in_progress: size,
        ..Default::default()
    };
    let msg = m(6, 9, 1, 0, &vec![1u8; size]);
    let mut wire = BytesMut::new();
    ChunkWriter::new().write(&msg, &mut wire).unwrap();
    let mut r = ChunkReader::with_limits(limits);
    r.feed(&wire);
    assert_eq!(read_all(&mut r).unwrap(), vec![msg]);
}

#[test]
fn fmt1_opens_a_chunk_stream() {
    let got = parse(&[0x42, 0, 0, 0, 0, 0, 6, 4, 0, 6, 0, 0, 0, 1]).unwrap();
    assert_eq!(
        Control::decode(&got[0]).unwrap(),
        Some(Control::UserControl(UserControl::PingRequest(1)))
    );
}

#[test]
fn zero_length_message() {
    assert_eq!(
        parse(&[0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0]).unwrap(),
        vec![m(3, 20, 0, 0, &[])]
    );
}

pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![2u32..10, 60u32..70, 310u32..330, 65590u32..=65599],
        prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8), 7u8..=255],
        0u32..5,
        prop_oneof![0u32..1000, 0xff_fff0u32..0x100_0010, any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(csid, t, sid, ts, p)| Message::new(csid, t, sid, ts, p.into()))
}

fn media_off_csid_2(csid: u32, type_id: u8) -> bool {
    csid >= 3 && matches!(type_id, 8 | 9)
}

/// What the reader has, through the writer: streamed messages piece by piece, the
/// others whole.
fn pass_pieces(r: &mut ChunkReader, w: &mut ChunkWriter, out: &mut BytesMut) {
    while let Some(piece) = r.next_piece(media_off_csid_2).unwrap() {
        match piece {
            Piece::Message(msg) => w.write(&msg, out).unwrap(),
            Piece::Part(part) => w.write_piece(&part, out).unwrap(),
        }
    }
}

#[test]
fn a_streamed_message_comes_in_pieces_as_it_arrives_and_holds_nothing() {
    let payload: Vec<u8> = (0..10_000).map(|i| (i % 251) as u8).collect();
    let msg = m(6, 9, 1, 40, &payload);
    let wire = ChunkWriter::with_chunk_size(4096)
        .unwrap()
        .to_bytes(&msg)
        .unwrap();
    let mut r = ChunkReader::new();
    r.set_chunk_size(4096).unwrap();
    let mut got = Vec::new();
    for piece in wire.chunks(1000) {
        r.feed(piece);
        while let Some(p) = r.next_piece(media_off_csid_2).unwrap() {
            match p {
                Piece::Part(part) => got.push((
                    (part.csid, part.type_id, part.stream_id, part.timestamp),
                    (part.length, part.offset, part.is_last()),
                    part.data.to_vec(),
                )),
                Piece::Message(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(r.buffered_bytes(), r.buffered());
    }
    assert_eq!(r.buffered_bytes(), 0);
    let mut joined = Vec::new();
    for (head, (length, offset, last), data) in &got {
        assert_eq!(*offset as usize, joined.len());
        assert_eq!((*head, *length), ((6, 9, 1, 40), 10_000));
        joined.extend_from_slice(data);
        assert_eq!(*last, joined.len() == payload.len());
    }
    assert_eq!(joined, payload);
    assert!(got.len() > 10, "pieces follow the reads, not the chunks");
    // Read whole, the reader refuses to hand out the rest of a streamed message.
    let mut r = ChunkReader::new();
    r.set_chunk_size(4096).unwrap();
    r.feed(&wire[..200]);
    assert!(matches!(
        r.next_piece(media_off_csid_2).unwrap(),
        Some(Piece::Part(_))
    ));
    r.feed(&wire[200..300]);
    assert_eq!(r.next_message(), Err(Error::PieceOfStreamedMessage(6)));
}

#[test]
fn a_piece_out_of_turn_is_refused() {
    let mut w = ChunkWriter::with_chunk_size(100).unwrap();
    let mut out = BytesMut::new();
    let part = |offset: u32, data: &'static [u8]| MessagePiece {
        csid: 6,
        type_id: 9,
        stream_id: 1,
        timestamp: 0,
        length: 300,
        offset,
        data,
    };
    assert_eq!(
        w.write_piece(&part(10, &[1; 10]), &mut out),
        Err(Error::PieceOfStreamedMessage(6))
    );
    w.write_piece(&part(0, &[1; 150]), &mut out).unwrap();
    // One whole chunk out, 50 bytes held for the next.
    assert_eq!(out.len(), 12 + 100);
    assert!(w.buffered_bytes() >= 50);
    assert_eq!(
        w.write_piece(&part(100, &[1; 10]), &mut out),
        Err(Error::PieceOfStreamedMessage(6))
    );
    assert_eq!(
        w.write_piece(&part(150, &[1; 151]), &mut out),
        Err(Error::PieceOfStreamedMessage(6))
    );
    assert_eq!(
        w.write(&m(6, 9, 1, 0, b"x"), &mut out),
        Err(Error::InterruptedMessage(6))
    );
    assert!(w.abort(6));
    assert_eq!(w.buffered_bytes(), 0);
    w.write(&m(6, 9, 1, 0, b"x"), &mut out).unwrap();
}

proptest! {
    #[test]
    fn write_then_read(msgs in prop::collection::vec(arb_message(), 1..8),
                       chunk in prop_oneof![1u32..10, 100u32..200, Just(4096u32)]) {
        let mut w = ChunkWriter::with_chunk_size(chunk).unwrap();
        let mut bytes = BytesMut::new();
        for msg in &msgs {
            w.write(msg, &mut bytes).unwrap();
        }
        let mut r = ChunkReader::new();
        r.set_chunk_size(chunk).unwrap();
        r.feed(&bytes);
        prop_assert_eq!(read_all(&mut r).unwrap(), msgs);
        prop_assert_eq!(r.bytes_received(), bytes.len() as u64);
    }

    #[test]
    fn any_split_gives_the_same_messages(msgs in prop::collection::vec(arb_message(), 1..5),
                                         cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut w = ChunkWriter::new();
        let mut bytes = BytesMut::new();
        for msg in &msgs {
            w.write(msg, &mut bytes).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut r = ChunkReader::new();
        let mut got = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            r.feed(&bytes[start..p]);
            start = p;
            got.extend(read_all(&mut r).unwrap());
        }
        prop_assert_eq!(got, msgs);
    }

    /// Passing messages in pieces, however the input is split and whatever the chunk
    /// sizes on each side, writes the very bytes that writing them whole does.
    #[test]
    fn pieces_write_what_whole_messages_write(
        msgs in prop::collection::vec(arb_message(), 1..8),
        chunk_in in prop_oneof![1u32..10, 100u32..200, Just(4096u32)],
        chunk_out in prop_oneof![1u32..10, 100u32..200, Just(4096u32)],
        splits in prop::collection::vec(1usize..900, 1..10),
    ) {
        let mut wire = BytesMut::new();
        let mut expected = BytesMut::new();
        let mut w_in = ChunkWriter::with_chunk_size(chunk_in).unwrap();
        let mut w_expected = ChunkWriter::with_chunk_size(chunk_out).unwrap();
        for msg in &msgs {
            w_in.write(msg, &mut wire).unwrap();
            w_expected.write(msg, &mut expected).unwrap();
        }
        let mut r = ChunkReader::new();
        r.set_chunk_size(chunk_in).unwrap();
        let mut w = ChunkWriter::with_chunk_size(chunk_out).unwrap();
        let mut out = BytesMut::new();
        let mut rest = &wire[..];
        for n in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            r.feed(&rest[..n]);
            rest = &rest[n..];
            pass_pieces(&mut r, &mut w, &mut out);
            prop_assert!(w.buffered_bytes() <= 2 * chunk_out as usize + 64);
        }
        prop_assert_eq!(&out[..], &expected[..]);
        prop_assert_eq!(w.buffered_bytes(), 0);
        prop_assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut r = ChunkReader::new();
        r.feed(&bytes);
        let _ = read_all(&mut r);
    }
}
