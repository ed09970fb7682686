//! A 32-byte slot holding one byte string: inline when it fits in 24
//! bytes (ints, floats, short strings), otherwise in a block of its own.
//!
//! ```text
//! [len u32][flags u32][24 bytes: the bytes themselves, or the block's offset]
//! ```
//!
//! Queues keep their items in slots, shared cells their value.

use super::SyncError;
use super::shm::{Off, Region};

pub const SLOT: usize = 32;
const INLINE: usize = 24;
/// The bytes live in a block whose offset the slot holds.
const IN_BLOCK: u32 = 1;

pub type Raw = [u8; SLOT];

/// Packs `bytes` into a slot, filling a new block if they do not fit.
pub fn pack(region: &Region, bytes: &[u8]) -> Result<Raw, SyncError> {
    let mut raw = [0u8; SLOT];
    let len = u32::try_from(bytes.len()).map_err(|_| SyncError::NoSpace)?;
    raw[..4].copy_from_slice(&len.to_le_bytes());
    if bytes.len() <= INLINE {
        raw[8..8 + bytes.len()].copy_from_slice(bytes);
    } else {
        let block = region.alloc(bytes.len()).ok_or(SyncError::NoSpace)?;
        region.write(block, bytes);
        raw[4..8].copy_from_slice(&IN_BLOCK.to_le_bytes());
        raw[8..16].copy_from_slice(&block.to_le_bytes());
    }
    Ok(raw)
}

fn block(raw: &Raw) -> Option<Off> {
    let flags = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
    (flags & IN_BLOCK != 0).then(|| {
        let mut at = [0u8; 8];
        at.copy_from_slice(&raw[8..16]);
        u64::from_le_bytes(at)
    })
}

/// The bytes a slot holds (its block, if any, stays allocated).
pub fn unpack(region: &Region, raw: &Raw) -> Vec<u8> {
    let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    match block(raw) {
        Some(off) => region.read(off, len),
        None => raw[8..8 + len.min(INLINE)].to_vec(),
    }
}

/// Frees the slot's block, if it has one.
pub fn release(region: &Region, raw: &Raw) {
    if let Some(off) = block(raw) {
        region.free(off);
    }
}

/// Reads the slot stored at `off`.
pub fn read(region: &Region, off: Off) -> Raw {
    let mut raw = [0u8; SLOT];
    raw.copy_from_slice(&region.read(off, SLOT));
    raw
}
