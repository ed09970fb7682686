//! What the detector remembers of one datum: its last write and the reads
//! since, each as an epoch (a task and its own clock at the access) with
//! the place in the script it happened (FastTrack, Flanagan and Freund,
//! PLDI 2009).
//!
//! Reads are kept as the set of those no later read is ordered after: one
//! epoch while reads are ordered (the common case), more only while they
//! are concurrent. A write replaces them all.

use super::clock::{Clock, Tid};

/// A place in the script: where the access's expression starts (the
/// report finds its end in the text). One word keeps a shadow small.
pub type Site = u32;

/// One access: who, when in their own clock, where.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mark {
    pub tid: Tid,
    pub clock: u32,
    pub site: Site,
}

impl Mark {
    /// No access: task numbers start at 1.
    const NONE: Mark = Mark { tid: 0, clock: 0, site: 0 };

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

/// The top bit of the last write's task number: it was an update.
const UPDATE: u32 = 1 << 31;
/// The top bit of the last read's task number: other reads, concurrent
/// with it, are kept aside (rare, so a shadow stays 24 bytes).
const MORE: u32 = 1 << 31;

/// The last write, and the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shadow {
    write: Mark,
    read: Mark,
}

impl Shadow {
    /// Whether reads concurrent with the last one are kept aside.
    pub fn has_more(&self) -> bool {
        self.read.tid & MORE != 0
    }

    /// The last write and its kind.
    fn last_write(&self) -> Option<(Mark, Access)> {
        let kind = if self.write.tid & UPDATE != 0 { Access::Update } else { Access::Write };
        let write = Mark { tid: self.write.tid & !UPDATE, ..self.write };
        (write.tid != 0).then_some((write, kind))
    }

    fn last_read(&self) -> Option<Mark> {
        let read = Mark { tid: self.read.tid & !MORE, ..self.read };
        (read.tid != 0).then_some(read)
    }

    /// Records an access by `me` (whose clock is `now`), giving the first
    /// earlier access it races with. `more` holds the reads kept aside
    /// (see [`Shadow::has_more`]), and is left holding those still to keep.
    pub fn access(&mut self, access: Access, me: Mark, now: &Clock, more: &mut Vec<Mark>) -> Option<Conflict> {
        let racing = |mark: &Mark| mark.tid != me.tid && !mark.before(now);
        let mut conflict = None;
        if let Some((write, kind)) = self.last_write()
            && racing(&write)
            && !(access == Access::Update && kind == Access::Update)
        {
            conflict = Some(Conflict { earlier: write, access: kind });
        }
        let last = self.last_read();
        match access {
            Access::Read => {
                // Reads in order (the common case) keep one epoch.
                if let Some(read) = last.filter(|r| r.tid != me.tid && !r.before(now)) {
                    more.push(read);
                }
                more.retain(|r| r.tid != me.tid && !r.before(now));
                self.read = me;
            }
            Access::Write | Access::Update => {
                if conflict.is_none() {
                    let reads = last.iter().chain(more.iter());
                    conflict =
                        reads.into_iter().find(|r| racing(r)).map(|r| Conflict { earlier: *r, access: Access::Read });
                }
                self.read = Mark::NONE;
                more.clear();
                let tid = if access == Access::Update { me.tid | UPDATE } else { me.tid };
                self.write = Mark { tid, ..me };
            }
        }
        if !more.is_empty() {
            self.read.tid |= MORE;
        }
        conflict
    }

    /// The shadow and the reads kept aside as bytes, for one kept in
    /// shared memory: per access, its kind, task, clock and site.
    pub fn to_bytes(&self, more: &[Mark]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * (2 + more.len()));
        let mut mark = |m: &Mark, tag: u32| {
            for word in [tag, m.tid, m.clock, m.site] {
                out.extend_from_slice(&word.to_le_bytes());
            }
        };
        if let Some((write, kind)) = self.last_write() {
            mark(&write, if kind == Access::Update { 2 } else { 1 });
        }
        for read in self.last_read().iter().chain(more) {
            mark(read, 0);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> (Shadow, Vec<Mark>) {
        let mut shadow = Shadow::default();
        let mut more = Vec::new();
        for entry in bytes.chunks_exact(16) {
            let word = |at: usize| super::word(entry, at);
            let mark = Mark { tid: word(4) & !UPDATE, clock: word(8), site: word(12) };
            match word(0) {
                0 if shadow.read.tid == 0 => shadow.read = mark,
                0 => more.push(mark),
                2 => shadow.write = Mark { tid: mark.tid | UPDATE, ..mark },
                _ => shadow.write = mark,
            }
        }
        if !more.is_empty() {
            shadow.read.tid |= MORE;
        }
        (shadow, more)
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
        Mark { tid, clock, site: line }
    }

    /// A shadow with its reads kept aside, as its keepers hold it.
    #[derive(Default, Debug, PartialEq)]
    struct Kept(Shadow, Vec<Mark>);

    impl Kept {
        fn access(&mut self, access: Access, me: Mark, now: &Clock) -> Option<Conflict> {
            self.0.access(access, me, now, &mut self.1)
        }

        fn travelled(&self) -> Kept {
            let (shadow, more) = Shadow::from_bytes(&self.0.to_bytes(&self.1));
            Kept(shadow, more)
        }
    }

    #[test]
    fn unordered_accesses_conflict_and_ordered_ones_do_not() {
        let mut s = Kept::default();
        // Task 1 writes at its step 1; task 2 has not heard of it.
        assert_eq!(s.access(Access::Write, mark(1, 1, 10), &clock(&[(1, 1)])), None);
        let found = s.access(Access::Read, mark(2, 1, 20), &clock(&[(2, 1)]));
        assert_eq!(found, Some(Conflict { earlier: mark(1, 1, 10), access: Access::Write }));
        // Task 3 has seen task 1 up to step 1 and task 2 up to step 1: ordered.
        assert_eq!(s.access(Access::Write, mark(3, 1, 30), &clock(&[(1, 1), (2, 1), (3, 1)])), None);
    }

    #[test]
    fn reads_do_not_race_and_updates_race_only_with_plain_accesses() {
        let mut s = Kept::default();
        assert_eq!(s.access(Access::Read, mark(1, 1, 1), &clock(&[(1, 1)])), None);
        assert_eq!(s.access(Access::Read, mark(2, 1, 2), &clock(&[(2, 1)])), None);
        assert_eq!(s.travelled(), s);
        let found = s.access(Access::Update, mark(3, 1, 3), &clock(&[(3, 1)]));
        assert_eq!(found.map(|c| c.access), Some(Access::Read));
        assert_eq!(s.access(Access::Update, mark(4, 1, 4), &clock(&[(4, 1)])), None);
        let found = s.access(Access::Write, mark(5, 1, 5), &clock(&[(5, 1)]));
        assert_eq!(found.map(|c| c.access), Some(Access::Update));
        assert_eq!(s.travelled(), s);
    }

    #[test]
    fn concurrent_reads_are_all_kept_until_one_read_follows_them() {
        let mut s = Kept::default();
        s.access(Access::Read, mark(1, 1, 1), &clock(&[(1, 1)]));
        s.access(Access::Read, mark(2, 1, 2), &clock(&[(2, 1)]));
        assert!(s.0.has_more() && s.1 == vec![mark(1, 1, 1)]);
        // A write by task 3, which saw task 2's read but not task 1's.
        let found = s.access(Access::Write, mark(3, 1, 3), &clock(&[(2, 1), (3, 1)]));
        assert_eq!(found, Some(Conflict { earlier: mark(1, 1, 1), access: Access::Read }));
        s.access(Access::Read, mark(1, 2, 1), &clock(&[(1, 2)]));
        s.access(Access::Read, mark(2, 2, 2), &clock(&[(2, 2)]));
        // Task 4 read after both: its read alone is kept.
        s.access(Access::Read, mark(4, 1, 4), &clock(&[(1, 2), (2, 2), (3, 1), (4, 1)]));
        assert!(!s.0.has_more() && s.1.is_empty());
        assert_eq!(std::mem::size_of::<Shadow>(), 24);
    }
}
