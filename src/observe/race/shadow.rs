//! What the detector remembers of one datum: its last write and the reads
//! since, each as an epoch (a task and its own clock at the access) with
//! the place in the script it happened (FastTrack, Flanagan and Freund,
//! PLDI 2009).
//!
//! Reads are kept as the set of those no later read is ordered after: one
//! epoch while reads are ordered (the common case), more only while they
//! are concurrent. A write replaces them all.

use super::clock::{Clock, Tid};

/// A place in the script: a span's start and end.
pub type Site = (u32, u32);

/// One access: who, when in their own clock, where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    pub tid: Tid,
    pub clock: u32,
    pub site: Site,
}

impl Mark {
    /// Whether this access happened before the present of a task whose
    /// clock is `now`.
    fn before(&self, now: &Clock) -> bool {
        self.clock <= now.get(self.tid)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// `x op= v` done as one atomic step: it races with plain reads and
    /// writes, never with another such update.
    Update,
}

impl Access {
    pub fn word(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Update => "update",
        }
    }
}

/// An earlier access that the present one is not ordered with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conflict {
    pub earlier: Mark,
    pub access: Access,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shadow {
    write: Option<(Mark, Access)>,
    reads: Vec<Mark>,
}

impl Shadow {
    /// Records an access by `me` (whose clock is `now`), giving the first
    /// earlier access it races with.
    pub fn access(&mut self, access: Access, me: Mark, now: &Clock) -> Option<Conflict> {
        let racing = |mark: &Mark| mark.tid != me.tid && !mark.before(now);
        let mut conflict = None;
        if let Some((write, kind)) = self.write
            && racing(&write)
            && !(access == Access::Update && kind == Access::Update)
        {
            conflict = Some(Conflict { earlier: write, access: kind });
        }
        match access {
            Access::Read => {
                self.reads.retain(|read| !read.before(now));
                self.reads.push(me);
            }
            Access::Write | Access::Update => {
                if conflict.is_none() {
                    conflict =
                        self.reads.iter().find(|r| racing(r)).map(|r| Conflict { earlier: *r, access: Access::Read });
                }
                self.reads.clear();
                self.write = Some((me, access));
            }
        }
        conflict
    }

    /// The shadow as bytes, for one kept in shared memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 * (1 + self.reads.len()));
        let mut mark = |m: &Mark, tag: u32| {
            for word in [tag, m.tid, m.clock, m.site.0, m.site.1] {
                out.extend_from_slice(&word.to_le_bytes());
            }
        };
        if let Some((write, kind)) = &self.write {
            mark(write, if *kind == Access::Update { 2 } else { 1 });
        }
        for read in &self.reads {
            mark(read, 0);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Shadow {
        let mut shadow = Shadow::default();
        for entry in bytes.chunks_exact(20) {
            let word = |at: usize| super::word(entry, at);
            let mark = Mark { tid: word(4), clock: word(8), site: (word(12), word(16)) };
            match word(0) {
                0 => shadow.reads.push(mark),
                2 => shadow.write = Some((mark, Access::Update)),
                _ => shadow.write = Some((mark, Access::Write)),
            }
        }
        shadow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(entries: &[(Tid, u32)]) -> Clock {
        let mut c = Clock::default();
        for &(tid, n) in entries {
            for _ in 0..n {
                c.tick(tid);
            }
        }
        c
    }

    fn mark(tid: Tid, clock: u32, line: u32) -> Mark {
        Mark { tid, clock, site: (line, line + 1) }
    }

    #[test]
    fn unordered_accesses_conflict_and_ordered_ones_do_not() {
        let mut s = Shadow::default();
        // Task 1 writes at its step 1; task 2 has not heard of it.
        assert_eq!(s.access(Access::Write, mark(1, 1, 10), &clock(&[(1, 1)])), None);
        let found = s.access(Access::Read, mark(2, 1, 20), &clock(&[(2, 1)]));
        assert_eq!(found, Some(Conflict { earlier: mark(1, 1, 10), access: Access::Write }));
        // Task 3 has seen task 1 up to step 1 and task 2 up to step 1: ordered.
        assert_eq!(s.access(Access::Write, mark(3, 1, 30), &clock(&[(1, 1), (2, 1), (3, 1)])), None);
    }

    #[test]
    fn reads_do_not_race_and_updates_race_only_with_plain_accesses() {
        let mut s = Shadow::default();
        assert_eq!(s.access(Access::Read, mark(1, 1, 1), &clock(&[(1, 1)])), None);
        assert_eq!(s.access(Access::Read, mark(2, 1, 2), &clock(&[(2, 1)])), None);
        let found = s.access(Access::Update, mark(3, 1, 3), &clock(&[(3, 1)]));
        assert_eq!(found.map(|c| c.access), Some(Access::Read));
        assert_eq!(s.access(Access::Update, mark(4, 1, 4), &clock(&[(4, 1)])), None);
        let found = s.access(Access::Write, mark(5, 1, 5), &clock(&[(5, 1)]));
        assert_eq!(found.map(|c| c.access), Some(Access::Update));
        assert_eq!(Shadow::from_bytes(&s.to_bytes()), s);
    }
}
