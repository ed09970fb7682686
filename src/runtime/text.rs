//! [`Str`], the string a value holds: one pointer wide, so a [`Value`]
//! stays 16 bytes, and growable in place when nothing else holds it, so
//! `s += t` in a loop appends instead of copying the whole string.
//!
//! [`Value`]: super::Value

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::MaybeUninit;
use std::ops::Deref;

use triomphe::{Arc, HeaderSlice, HeaderWithLength, ThinArc, UniqueArc};

use super::error::{Fault, MAX_LEN, out_of_memory, too_large};

/// A string's one heap block: a count, how many of the bytes the text
/// uses (the header), and the bytes, the rest of them room to append
/// into. One allocation per string, and one pointer to reach the text.
type Block = ThinArc<usize, u8>;

/// An immutable-looking, shared string. Clones share the text; the one
/// owner of a string may append to it ([`Str::append`]).
#[derive(Clone)]
pub struct Str(Block);

impl Str {
    #[inline]
    pub fn as_str(&self) -> &str {
        let block = &*self.0;
        let used = block.header.header.min(block.slice.len());
        // SAFETY: the used bytes are always whole UTF-8 text: only the
        // constructors and `append` write them, each a `str` at a time.
        unsafe { std::str::from_utf8_unchecked(&block.slice[..used]) }
    }

    /// A string of `text` with room for `room` more bytes, for `append`.
    pub fn with_room(text: &str, room: usize) -> Result<Str, Fault> {
        let size = text.len().checked_add(room).filter(|n| *n <= MAX_LEN).ok_or_else(|| too_large("string"))?;
        if room == 0 {
            let block = ThinArc::try_from_header_and_slice(text.len(), text.as_bytes());
            return Ok(Str(block.map_err(|_| out_of_memory("string"))?));
        }
        // Written into fresh memory as two runs of bytes, not a byte at a
        // time through an iterator (which was a tenth of w18's work).
        let mut block =
            UniqueArc::<HeaderSlice<HeaderWithLength<usize>, [MaybeUninit<u8>]>>::try_from_header_and_uninit_slice(
                HeaderWithLength::new(text.len(), size),
                size,
            )
            .map_err(|_| out_of_memory("string"))?;
        let (used, spare) = block.slice.split_at_mut(text.len());
        for (byte, &from) in used.iter_mut().zip(text.as_bytes()) {
            byte.write(from);
        }
        for byte in spare {
            byte.write(0);
        }
        // SAFETY: every byte of the slice was written just above.
        let block = unsafe { block.assume_init_slice_with_header() };
        Ok(Str(Arc::into_thin(block.shareable())))
    }

    /// `parts` with `sep` between them, `len` bytes in all, written
    /// straight into the string's one block (`",".join(parts)` of a big
    /// list: no `String` to build first and copy after). A part that
    /// would pass `len` ends the string before it.
    pub fn joined<'a>(len: usize, sep: &str, parts: impl IntoIterator<Item = &'a str>) -> Result<Str, Fault> {
        if len > MAX_LEN {
            return Err(too_large("string"));
        }
        let mut block =
            UniqueArc::<HeaderSlice<HeaderWithLength<usize>, [MaybeUninit<u8>]>>::try_from_header_and_uninit_slice(
                HeaderWithLength::new(0, len),
                len,
            )
            .map_err(|_| out_of_memory("string"))?;
        let mut used = 0;
        for (i, part) in parts.into_iter().enumerate() {
            let gap = if i == 0 { "" } else { sep };
            if used + gap.len() + part.len() > len {
                break;
            }
            for piece in [gap, part] {
                let into = &mut block.slice[used..used + piece.len()];
                // SAFETY: `into` is exactly `piece.len()` bytes of the new
                // block, which `piece` (borrowed, not in the block) cannot
                // overlap; a `MaybeUninit<u8>` is written by any `u8`. (A
                // copy, not a byte loop: a tenth of the time of a long join.)
                unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), into.as_mut_ptr().cast::<u8>(), piece.len()) };
                used += piece.len();
            }
        }
        for byte in &mut block.slice[used..] {
            byte.write(0);
        }
        // Whole parts only, so the used bytes are whole UTF-8 text.
        block.header.header = used;
        // SAFETY: every byte of the slice was written just above.
        let block = unsafe { block.assume_init_slice_with_header() };
        Ok(Str(Arc::into_thin(block.shareable())))
    }

    /// Appends `tail`: in place when this is the string's only holder and
    /// its block has room, else into a new block of twice the size
    /// (amortised linear over a loop of appends).
    pub fn append(&mut self, tail: &str) -> Result<(), Fault> {
        let used = self.as_str().len();
        let len = used + tail.len();
        if len > MAX_LEN {
            return Err(too_large("string"));
        }
        let done = self.0.with_arc_mut(|arc| match Arc::get_mut(arc) {
            Some(block) if block.slice().len() >= len => {
                block.slice_mut()[used..len].copy_from_slice(tail.as_bytes());
                *block.header_mut() = len;
                true
            }
            _ => false,
        });
        if !done {
            let room = len.max(self.0.slice.len().saturating_mul(2)).min(MAX_LEN) - used;
            let mut grown = Str::with_room(self.as_str(), room)?;
            grown.append(tail)?;
            *self = grown;
        }
        Ok(())
    }

    /// Whether `a` and `b` are the same string object (not just equal).
    pub fn ptr_eq(a: &Str, b: &Str) -> bool {
        a.0.ptr() == b.0.ptr()
    }
}

impl Default for Str {
    fn default() -> Str {
        Str::from("")
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        Str::ptr_eq(self, other) || self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// One copy of each string a program's text names: its string literals
/// and the field and method names its code looks up. A map built from a
/// literal (`{"total": 0}`) then holds the very key `acc.total` looks for,
/// and a name's hint (`vm::code::NameHint`) confirms its guess by comparing
/// two pointers, not two strings. Kept by one resolution (a script with
/// its modules, or one REPL input), so nothing outlives the program.
#[derive(Default)]
pub struct Interner(HashSet<Str>);

impl Interner {
    /// The program's copy of `text`.
    pub fn get(&mut self, text: &str) -> Str {
        if let Some(known) = self.0.get(text) {
            return known.clone();
        }
        let new = Str::from(text);
        self.0.insert(new.clone());
        new
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hashes as `str` does, so a `&str` finds a `Str` key.
impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl From<String> for Str {
    fn from(text: String) -> Str {
        Str::from(text.as_str())
    }
}

impl From<&str> for Str {
    fn from(text: &str) -> Str {
        Str(ThinArc::from_header_and_slice(text.len(), text.as_bytes()))
    }
}

impl From<&String> for Str {
    fn from(text: &String) -> Str {
        Str::from(text.as_str())
    }
}

impl From<std::sync::Arc<str>> for Str {
    fn from(text: std::sync::Arc<str>) -> Str {
        Str::from(&*text)
    }
}

impl From<&std::sync::Arc<str>> for Str {
    fn from(text: &std::sync::Arc<str>) -> Str {
        Str::from(&**text)
    }
}

impl From<char> for Str {
    fn from(c: char) -> Str {
        Str::from(c.encode_utf8(&mut [0; 4]) as &str)
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop of appends to the only holder copies the text only when the
    /// block is full, into one twice as large: a handful of copies for a
    /// thousand appends.
    #[test]
    fn append_grows_the_only_copy_in_place() {
        let mut s = Str::from("ab");
        let mut blocks = 1;
        for _ in 0..1000 {
            let before = s.0.ptr();
            s.append("x").unwrap();
            blocks += usize::from(s.0.ptr() != before);
        }
        assert_eq!(s.as_str(), format!("ab{}", "x".repeat(1000)));
        assert!(blocks <= 12, "{blocks} blocks for 1000 appends");
    }

    #[test]
    fn joined_writes_parts_and_separators_into_one_block() {
        let parts = ["héllo", "", "wörld"];
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 2 * ", ".len();
        let s = Str::joined(len, ", ", parts).unwrap();
        assert_eq!(s.as_str(), "héllo, , wörld");
        assert_eq!(s.0.slice.len(), len, "one block of exactly the text");
        assert_eq!(Str::joined(0, ",", []).unwrap().as_str(), "");
        assert_eq!(Str::joined(1, ",", ["x"]).unwrap().as_str(), "x");
        // A length too short for every part ends at the last whole one.
        assert_eq!(Str::joined(4, "-", ["ab", "é", "cd"]).unwrap().as_str(), "ab");
        assert!(Str::joined(MAX_LEN + 1, ",", ["x"]).is_err());
    }

    #[test]
    fn a_string_with_room_appends_in_place() {
        let mut s = Str::with_room("héllo", 10).unwrap();
        let block = s.0.ptr();
        s.append(", wörld").unwrap();
        assert_eq!(s.as_str(), "héllo, wörld");
        assert_eq!(s.0.ptr(), block);
        assert_eq!(s, Str::from("héllo, wörld"));
        assert!(Str::with_room("x", MAX_LEN).is_err());
    }

    #[test]
    fn append_to_a_shared_string_leaves_the_other_holder_alone() {
        let mut s = Str::from("ab");
        let other = s.clone();
        s.append("cd").unwrap();
        assert_eq!(s.as_str(), "abcd");
        assert_eq!(other.as_str(), "ab");
        assert!(!Str::ptr_eq(&s, &other));
    }

    #[test]
    fn an_interner_gives_one_copy_of_each_text() {
        let mut strings = Interner::default();
        let a = strings.get("total");
        let b = strings.get("total");
        let c = strings.get("add");
        assert!(Str::ptr_eq(&a, &b));
        assert!(!Str::ptr_eq(&a, &c));
        assert_eq!((a.as_str(), c.as_str()), ("total", "add"));
    }
}
