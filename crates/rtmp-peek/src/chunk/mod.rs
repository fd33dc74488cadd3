//! The chunk stream: splitting messages into chunks and putting them back together.
//!
//! [`ChunkReader`] turns bytes into complete [`Message`](crate::Message)s: it follows fmt 0-3
//! headers per chunk stream, 1-3 byte chunk stream ids, extended timestamps, interleaved
//! chunk streams, and applies the peer's Set Chunk Size, Abort and Window Acknowledgement
//! Size by itself. [`ChunkWriter`] does the reverse for one outgoing direction.

mod reader;
mod writer;

pub use reader::{ChunkReader, MessagePiece, PassOn, Piece, ReaderLimits};
pub use writer::ChunkWriter;

/// Chunk size every RTMP connection starts with, in both directions.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest legal chunk size (the top bit of Set Chunk Size must be 0).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// Largest message length the 24-bit length field can express.
pub const MAX_MESSAGE_LEN: u32 = 0x00ff_ffff;
/// Largest chunk stream id (3-byte basic header).
pub const MAX_CSID: u32 = 65_599;

const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

fn check_chunk_size(size: u32) -> Result<u32, crate::Error> {
    if size == 0 || size > MAX_CHUNK_SIZE {
        return Err(crate::Error::InvalidChunkSize(size));
    }
    Ok(size)
}
