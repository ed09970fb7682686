//! [`Str`], the string a value holds: one pointer wide, so a [`Value`]
//! stays 16 bytes, and growable in place when nothing else holds it, so
//! `s += t` in a loop appends instead of copying the whole string.
//!
//! [`Value`]: super::Value

use std::alloc::{Layout, alloc, dealloc};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use super::blocks;
use super::error::{Fault, MAX_LEN, out_of_memory, past_limit, too_large};

/// The head of a string's one block: its holders, how many of the bytes
/// after it the text uses, and how many there are (the rest is room to
/// append into). Twelve bytes, so that a text of up to 20 bytes (a word,
/// a key, a formatted number) takes a 32-byte block, not a 48-byte one.
///
/// The operations a script's sizes reach keep a string within
/// [`MAX_LEN`]; a file read whole, or a program's output, may pass it, up
/// to [`LONGEST`].
#[repr(C)]
struct Head {
    count: AtomicU32,
    used: u32,
    room: u32,
}

const HEAD: usize = std::mem::size_of::<Head>();

/// The longest text a string holds (4 GiB less its head).
pub const LONGEST: usize = u32::MAX as usize - HEAD;

/// A count at or past this is saturated: the string is kept until the
/// process ends (as Linux's `refcount_t` does), where `Arc` aborts. It
/// takes two billion holders, 32 GiB of values, to get there.
const SATURATED: u32 = 1 << 31;

/// The error for a text past [`LONGEST`].
pub fn too_long() -> Fault {
    past_limit("string", LONGEST).with_help("read a file this large in parts, or as bytes")
}

/// A string's one heap block: a [`Head`], then the bytes. One allocation
/// per string, from [`blocks`] when it is small, and one pointer to
/// reach the text.
struct Block(NonNull<Head>);

// SAFETY: the block is shared as `Arc` shares: its count is atomic, and
// its bytes are written only by its one holder (`Str::append`) or before
// it is shared.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Block {
    /// A block of at least `room` bytes, none of them used yet; the bytes
    /// are not initialised.
    fn with_room(room: usize) -> Result<Block, Fault> {
        if room > LONGEST {
            return Err(too_long());
        }
        let size = HEAD + room;
        let (at, size) = if size <= blocks::LARGEST {
            (blocks::take(size), blocks::rounded(size))
        } else {
            let layout = Layout::from_size_align(size, std::mem::align_of::<Head>()).map_err(|_| too_long())?;
            // SAFETY: the layout's size is not zero.
            (NonNull::new(unsafe { alloc(layout) }), size)
        };
        let at = at.ok_or_else(|| out_of_memory("string"))?.cast::<Head>();
        // The room fits: `size` is at most `u32::MAX` (or `LARGEST`).
        let room = (size - HEAD) as u32;
        // SAFETY: `at` is a fresh block of `size` bytes, aligned for a `Head`.
        unsafe { at.write(Head { count: AtomicU32::new(1), used: 0, room }) };
        Ok(Block(at))
    }

    #[inline]
    fn head(&self) -> &Head {
        // SAFETY: the block lives while this holder does.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn room(&self) -> usize {
        self.head().room as usize
    }

    #[inline]
    fn bytes(&self) -> *mut u8 {
        // SAFETY: the bytes follow the head, inside the block.
        unsafe { self.0.as_ptr().cast::<u8>().add(HEAD) }
    }

    /// Writes `text` at byte `at` and counts the text as used up to its end.
    ///
    /// # Safety
    /// This is the block's only holder; `at + text.len()` is at most its
    /// room, and `at` is the end of the text or a `str` written whole.
    #[inline]
    unsafe fn write(&mut self, at: usize, text: &[u8]) {
        // SAFETY: as the caller promises; `text` is not in this block,
        // which only this holder writes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), self.bytes().add(at), text.len());
            // Within the room, which fits a `u32`.
            (*self.0.as_ptr()).used = (at + text.len()) as u32;
        }
    }

    #[inline]
    fn is_unique(&self) -> bool {
        self.head().count.load(Ordering::Acquire) == 1
    }
}

/// Holds a saturated count far from both zero and the top: no run of
/// clones or drops between two resets moves it by 2^30.
#[cold]
fn saturate(count: &AtomicU32) {
    count.store(SATURATED | SATURATED >> 1, Ordering::Relaxed);
}

impl Clone for Block {
    #[inline]
    fn clone(&self) -> Block {
        let count = &self.head().count;
        if count.fetch_add(1, Ordering::Relaxed) >= SATURATED {
            saturate(count);
        }
        Block(self.0)
    }
}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        let count = &self.head().count;
        match count.fetch_sub(1, Ordering::Release) {
            1 => {}
            n if n >= SATURATED => return saturate(count),
            _ => return,
        }
        fence(Ordering::Acquire);
        let size = HEAD + self.room();
        let at = self.0.cast::<u8>();
        if size <= blocks::LARGEST {
            // SAFETY: the last holder gives back the block `take` gave for `size`.
            unsafe { blocks::give(at, size) };
        } else {
            // SAFETY: allocated with this layout in `with_room`.
            unsafe { dealloc(at.as_ptr(), Layout::from_size_align_unchecked(size, std::mem::align_of::<Head>())) };
        }
    }
}

/// An immutable-looking, shared string. Clones share the text; the one
/// owner of a string may append to it ([`Str::append`]).
#[derive(Clone)]
pub struct Str(Block);

impl Str {
    #[inline]
    pub fn as_str(&self) -> &str {
        let used = self.0.head().used as usize;
        // SAFETY: the used bytes are always whole UTF-8 text, written
        // before they are counted: only the constructors and `append`
        // write them, each a `str` at a time.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.0.bytes(), used)) }
    }

    /// A string of `text` with room for `room` more bytes, for `append`.
    pub fn with_room(text: &str, room: usize) -> Result<Str, Fault> {
        let size = text.len().checked_add(room).filter(|n| *n <= MAX_LEN).ok_or_else(|| too_large("string"))?;
        let mut block = Block::with_room(size)?;
        // SAFETY: the new block's only holder writes its first bytes.
        unsafe { block.write(0, text.as_bytes()) };
        Ok(Str(block))
    }

    /// A copy of `text`, up to [`LONGEST`] bytes (a file read whole, say):
    /// an error past it or when memory is out, not an abort as `from` is.
    pub fn copied(text: &str) -> Result<Str, Fault> {
        let mut block = Block::with_room(text.len())?;
        // SAFETY: the new block's only holder writes its first bytes.
        unsafe { block.write(0, text.as_bytes()) };
        Ok(Str(block))
    }

    /// `parts` with `sep` between them, `len` bytes in all, written
    /// straight into the string's one block (`",".join(parts)` of a big
    /// list: no `String` to build first and copy after). A part that
    /// would pass `len` ends the string before it.
    pub fn joined<'a>(len: usize, sep: &str, parts: impl IntoIterator<Item = &'a str>) -> Result<Str, Fault> {
        if len > MAX_LEN {
            return Err(too_large("string"));
        }
        let mut block = Block::with_room(len)?;
        let mut used = 0;
        for (i, part) in parts.into_iter().enumerate() {
            let gap = if i == 0 { "" } else { sep };
            if used + gap.len() + part.len() > len {
                break;
            }
            for piece in [gap, part] {
                // SAFETY: the new block's only holder writes whole parts
                // in turn, within `len`. (A copy, not a byte loop: a
                // tenth of the time of a long join.)
                unsafe { block.write(used, piece.as_bytes()) };
                used += piece.len();
            }
        }
        Ok(Str(block))
    }

    /// Appends `tail`: in place when this is the string's only holder and
    /// its block has room, else into a new block of twice the size
    /// (amortised linear over a loop of appends).
    #[inline]
    pub fn append(&mut self, tail: &str) -> Result<(), Fault> {
        let used = self.as_str().len();
        // Within the room, the text stays within `MAX_LEN`: a block has
        // room past its text only when it is small, or `with_room` (which
        // checks) made it.
        if self.0.is_unique() && self.0.room() - used >= tail.len() {
            // SAFETY: the only holder writes a whole `str` at the text's
            // end, within the room.
            unsafe { self.0.write(used, tail.as_bytes()) };
            return Ok(());
        }
        self.append_grown(tail)
    }

    /// `append` into a new block: this one is shared, or full.
    #[cold]
    fn append_grown(&mut self, tail: &str) -> Result<(), Fault> {
        let used = self.as_str().len();
        let len = used + tail.len();
        if len > MAX_LEN {
            return Err(too_large("string"));
        }
        let room = len.max(self.0.room().saturating_mul(2)).min(MAX_LEN) - used;
        let mut grown = Str::with_room(self.as_str(), room)?;
        grown.append(tail)?;
        *self = grown;
        Ok(())
    }

    /// Whether `a` and `b` are the same string object (not just equal).
    pub fn ptr_eq(a: &Str, b: &Str) -> bool {
        a.0.0 == b.0.0
    }
}

/// Text built a piece at a time (an interpolation): in a buffer on the
/// native stack while it is short, so that the string it makes takes a
/// block of its exact size, not one sized by a guess; past the buffer, in
/// a string of its own that grows.
pub struct Builder {
    short: [MaybeUninit<u8>; SHORT],
    /// Bytes written to `short`; past [`SHORT`] once the text is `long`.
    len: usize,
    long: Option<Str>,
}

/// The most text a small block holds.
const SHORT: usize = blocks::LARGEST - HEAD;

impl Builder {
    #[inline]
    pub fn new() -> Builder {
        Builder { short: [const { MaybeUninit::uninit() }; SHORT], len: 0, long: None }
    }

    #[inline(always)]
    pub fn push(&mut self, piece: &str) -> Result<(), Fault> {
        let end = self.len + piece.len();
        if end > SHORT {
            return self.push_long(piece);
        }
        // SAFETY: `len..end` lies in the buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(piece.as_ptr(), self.short.as_mut_ptr().add(self.len).cast(), piece.len());
        }
        self.len = end;
        Ok(())
    }

    #[cold]
    fn push_long(&mut self, piece: &str) -> Result<(), Fault> {
        if let Some(long) = &mut self.long {
            return long.append(piece);
        }
        let end = self.len + piece.len();
        let mut long = Str::with_room(self.short_text(), end.saturating_mul(2).min(MAX_LEN) - self.len)?;
        long.append(piece)?;
        self.long = Some(long);
        // Every later piece goes to `long`.
        self.len = SHORT + 1;
        Ok(())
    }

    #[inline]
    fn short_text(&self) -> &str {
        // SAFETY: the buffer's first `len` bytes (at most `SHORT`) were
        // written, whole `str`s one after another.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.short.as_ptr().cast(), self.len)) }
    }

    #[inline]
    pub fn finish(self) -> Result<Str, Fault> {
        match self.long {
            Some(long) => Ok(long),
            None => Str::copied(self.short_text()),
        }
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
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
        match Str::copied(text) {
            Ok(s) => s,
            // Memory out, as a `String` would.
            Err(_) => std::alloc::handle_alloc_error(Layout::new::<Head>()),
        }
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
            let before = s.0.0;
            s.append("x").unwrap();
            blocks += usize::from(s.0.0 != before);
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
        assert!(s.0.room() >= len);
        assert_eq!(Str::joined(0, ",", []).unwrap().as_str(), "");
        assert_eq!(Str::joined(1, ",", ["x"]).unwrap().as_str(), "x");
        // A length too short for every part ends at the last whole one.
        assert_eq!(Str::joined(4, "-", ["ab", "é", "cd"]).unwrap().as_str(), "ab");
        assert!(Str::joined(MAX_LEN + 1, ",", ["x"]).is_err());
    }

    #[test]
    fn a_string_with_room_appends_in_place() {
        let mut s = Str::with_room("héllo", 10).unwrap();
        let block = s.0.0;
        s.append(", wörld").unwrap();
        assert_eq!(s.as_str(), "héllo, wörld");
        assert_eq!(s.0.0, block);
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

    /// Strings either side of the largest small block (its 128 bytes
    /// hold a 116-byte text), dropped on another thread or this one, and
    /// grown past it.
    #[test]
    fn strings_of_every_size_keep_their_text() {
        for len in [0, 1, 7, 8, 9, 19, 20, 21, 115, 116, 117, 200, 5000] {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let s = Str::from(text.as_str());
            assert_eq!((s.as_str(), s.0.room() >= len), (text.as_str(), true));
            let elsewhere = s.clone();
            let seen = std::thread::spawn(move || elsewhere.as_str().to_string()).join().unwrap();
            assert_eq!(seen, text);
            let mut grown = s.clone();
            for _ in 0..20 {
                grown.append("0123456789").unwrap();
            }
            assert_eq!(grown.as_str(), text.clone() + &"0123456789".repeat(20));
            assert_eq!(s.as_str(), text, "the first holder's text is unchanged");
            assert_eq!(Str::copied(&text).unwrap(), s);
        }
    }

    #[test]
    fn a_text_of_twenty_bytes_takes_a_block_of_thirty_two() {
        assert_eq!(Str::from("item 123456: 246912").0.room(), 32 - HEAD);
        assert_eq!(Str::from("x".repeat(21).as_str()).0.room(), 48 - HEAD);
        assert!(Block::with_room(LONGEST + 1).is_err());
    }

    /// Past two billion holders the count stops counting: the string is
    /// kept, never freed while a holder remains.
    #[test]
    fn a_saturated_count_keeps_its_string() {
        let s = Str::from("kept");
        let count = &s.0.head().count;
        count.store(SATURATED - 1, Ordering::Relaxed);
        let copies: Vec<Str> = (0..4).map(|_| s.clone()).collect();
        assert_eq!(count.load(Ordering::Relaxed), SATURATED | SATURATED >> 1);
        drop(copies);
        assert_eq!(count.load(Ordering::Relaxed), SATURATED | SATURATED >> 1);
        assert!(!s.0.is_unique());
        assert_eq!(s.clone().as_str(), "kept");
    }

    /// A short text built in pieces takes a block of its exact size; a
    /// long one moves to a string of its own at the buffer's end.
    #[test]
    fn a_builder_sizes_a_short_text_exactly_and_grows_a_long_one() {
        let mut text = Builder::new();
        for piece in ["item ", "123456", ": ", "246912"] {
            text.push(piece).unwrap();
        }
        let short = text.finish().unwrap();
        assert_eq!((short.as_str(), short.0.room()), ("item 123456: 246912", 32 - HEAD));
        for len in [SHORT - 1, SHORT, SHORT + 1, 5000] {
            let mut text = Builder::new();
            let mut expected = String::new();
            while expected.len() < len {
                let piece = if expected.len().is_multiple_of(3) { "é" } else { "ab" };
                text.push(piece).unwrap();
                expected.push_str(piece);
            }
            assert_eq!(text.finish().unwrap().as_str(), expected);
        }
        assert_eq!(Builder::new().finish().unwrap().as_str(), "");
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
