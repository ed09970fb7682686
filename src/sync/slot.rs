//! A 32-byte slot holding one byte string: inline when it fits in 24
//! bytes (ints, floats, short strings), otherwise in a block of its own.
//!
//! ```text
//! [len u32][flags u32][24 bytes: the bytes themselves, or the block's offset]
//! ```
//!
//! Queues keep their items in slots, shared cells their value. A filled
//! slot holds a reference to each primitive its bytes name (`refs.rs`).

use super::SyncError;
use super::refs;
use super::shm::{Off, Region};

pub const SLOT: usize = 32;
const INLINE: usize = 24;
/// The bytes live in a block whose offset the slot holds.
const IN_BLOCK: u32 = 1;

pub type Raw = [u8; SLOT];

/// Packs `bytes` into a slot, filling a new block if they do not fit; the
/// slot takes a reference to each primitive they name.
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
    refs::retain_in(bytes);
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
fn unpack(region: &Region, raw: &Raw) -> Vec<u8> {
    let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    match block(raw) {
        Some(off) => region.read(off, len),
        None => inline(raw).to_vec(),
    }
}

/// Empties a slot that is dropped: its block is freed and its references
/// given back. Bytes inline in the slot are scanned where they are.
pub fn discard(region: &Region, raw: &Raw) {
    match block(raw) {
        Some(_) => drop(take(region, raw)),
        None => refs::release_in(inline(raw)),
    }
}

/// Whether a slot holds exactly `bytes`.
pub fn holds(region: &Region, raw: &Raw, bytes: &[u8]) -> bool {
    let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    len == bytes.len()
        && match block(raw) {
            Some(off) => region.read(off, len) == bytes,
            None => inline(raw) == bytes,
        }
}

fn inline(raw: &Raw) -> &[u8] {
    let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    &raw[8..8 + len.min(INLINE)]
}

/// Empties a slot whose primitive is being taken apart: the handles its
/// bytes name go to `work` to be released (see `refs::release_all`).
pub fn discard_into(region: &Region, raw: &Raw, work: &mut Vec<super::handle::Handle>) {
    refs::scan(&unpack_and_free(region, raw), work);
}

/// Empties a slot, handing its bytes and their references to the caller.
pub fn take(region: &Region, raw: &Raw) -> Taken {
    Taken(unpack_and_free(region, raw))
}

fn unpack_and_free(region: &Region, raw: &Raw) -> Vec<u8> {
    let bytes = unpack(region, raw);
    if let Some(off) = block(raw) {
        region.free(off);
    }
    bytes
}

/// Copies a slot's bytes out, with a reference of their own to each
/// primitive they name, so the slot may be emptied meanwhile. The caller
/// holds whatever guards the slot.
pub fn copy(region: &Region, raw: &Raw) -> Taken {
    let bytes = unpack(region, raw);
    refs::retain_in(&bytes);
    Taken(bytes)
}

/// Bytes taken out of a slot, holding the references the slot held until
/// they are dropped: long enough to read the primitives they name into
/// values of their own.
#[derive(Debug, PartialEq)]
pub struct Taken(Vec<u8>);

impl<const N: usize> PartialEq<&[u8; N]> for Taken {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == other[..]
    }
}

impl std::ops::Deref for Taken {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        refs::release_in(&self.0);
    }
}

/// Reads the slot stored at `off`.
pub fn read(region: &Region, off: Off) -> Raw {
    let mut raw = [0u8; SLOT];
    raw.copy_from_slice(&region.read(off, SLOT));
    raw
}
