//! [`Str`], the string a value holds: one pointer wide, so a [`Value`]
//! stays 16 bytes, and growable in place when nothing else holds it, so
//! `s += t` in a loop appends instead of copying the whole string.
//!
//! [`Value`]: super::Value

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use super::error::{Fault, MAX_LEN, text_room, too_large};

/// An immutable-looking, shared string. Clones share the text; the one
/// owner of a string may append to it ([`Str::append`]).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str(Arc<String>);

impl Str {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends `tail`: in place when this is the string's only holder
    /// (amortised linear over a loop of appends), else into a copy.
    pub fn append(&mut self, tail: &str) -> Result<(), Fault> {
        let len = self.0.len() + tail.len();
        if len > MAX_LEN {
            return Err(too_large("string"));
        }
        match Arc::get_mut(&mut self.0) {
            Some(text) => {
                if text.try_reserve(tail.len()).is_err() {
                    return Err(too_large("string"));
                }
                text.push_str(tail);
            }
            None => {
                let mut text = text_room(len)?;
                text.push_str(&self.0);
                text.push_str(tail);
                self.0 = Arc::new(text);
            }
        }
        Ok(())
    }

    /// Whether `a` and `b` are the same string object (not just equal).
    pub fn ptr_eq(a: &Str, b: &Str) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
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
        &self.0
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        &self.0
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
        Str(Arc::new(text))
    }
}

impl From<&str> for Str {
    fn from(text: &str) -> Str {
        Str(Arc::new(text.to_owned()))
    }
}

impl From<&String> for Str {
    fn from(text: &String) -> Str {
        Str::from(text.as_str())
    }
}

impl From<Arc<str>> for Str {
    fn from(text: Arc<str>) -> Str {
        Str::from(&*text)
    }
}

impl From<&Arc<str>> for Str {
    fn from(text: &Arc<str>) -> Str {
        Str::from(&**text)
    }
}

impl From<char> for Str {
    fn from(c: char) -> Str {
        Str(Arc::new(c.to_string()))
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

    #[test]
    fn append_grows_the_only_copy_in_place() {
        let mut s = Str::from("ab");
        let holder = Arc::as_ptr(&s.0);
        for _ in 0..10 {
            s.append("x").unwrap();
        }
        assert_eq!(s.as_str(), "abxxxxxxxxxx");
        assert_eq!(Arc::as_ptr(&s.0), holder, "the only holder's string was copied");
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
