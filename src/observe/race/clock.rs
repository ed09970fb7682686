//! Vector clocks: what a task knows of every task's progress.
//!
//! A task's clock is dense (indexed by task number, most runs have few
//! tasks). It travels between tasks, and between processes, as bytes: the
//! pairs of its nonzero entries.

use std::sync::atomic::Ordering;

use super::book::Words;

/// A task's number in the race detector: unique across every process of
/// a run (the shared book hands them out), never reused.
pub type Tid = u32;

/// The most task numbers a run hands out: a clock read from bytes never
/// grows past this, however the bytes came to be.
pub const MAX_TIDS: u32 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clock(Vec<u32>);

impl Clock {
    pub fn get(&self, tid: Tid) -> u32 {
        self.0.get(tid as usize).copied().unwrap_or(0)
    }

    fn set(&mut self, tid: Tid, value: u32) {
        let i = tid as usize;
        if i >= self.0.len() {
            self.0.resize(i + 1, 0);
        }
        self.0[i] = value;
    }

    /// Knows task `tid` up to `count` at least.
    pub fn raise(&mut self, tid: Tid, count: u32) {
        if count > self.get(tid) {
            self.set(tid, count);
        }
    }

    /// The task's own step: after a release, what it does next is new.
    pub fn tick(&mut self, tid: Tid) {
        self.set(tid, self.get(tid).saturating_add(1));
    }

    /// Everything `other` knows, this now knows too.
    pub fn join(&mut self, other: &Clock) {
        if other.0.len() > self.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Appends the clock as bytes: `(tid, count)` pairs of its nonzero entries.
    pub fn write(&self, out: &mut Vec<u8>) {
        for (tid, &count) in self.0.iter().enumerate() {
            if count != 0 {
                out.extend_from_slice(&(tid as u32).to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
            }
        }
    }

    /// How many tasks this clock has heard of.
    fn heard(&self) -> usize {
        self.0.iter().filter(|&&count| count != 0).count()
    }

    /// Joins the clock kept as `words` (pairs, as [`Clock::write`] writes
    /// them) into this one.
    pub fn join_words(&mut self, words: &Words) {
        for pair in 0..words.len() / 2 {
            let tid = words.word(2 * pair).load(Ordering::Relaxed);
            let count = words.word(2 * pair + 1).load(Ordering::Relaxed);
            if tid < MAX_TIDS {
                self.raise(tid, count);
            }
        }
    }

    /// Joins this clock into the one kept as `words`, in place; false when
    /// this one has heard of a task those words have no pair for.
    pub fn join_into(&self, words: &Words) -> bool {
        let mut shared = 0;
        for pair in 0..words.len() / 2 {
            let tid = words.word(2 * pair).load(Ordering::Relaxed);
            let mine = self.get(tid);
            if mine != 0 {
                shared += 1;
                words.word(2 * pair + 1).fetch_max(mine, Ordering::Relaxed);
            }
        }
        shared == self.heard()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Joins the clock written as `bytes` (see [`Clock::write`]) into this
    /// one; entries past [`MAX_TIDS`] are ignored.
    pub fn join_bytes(&mut self, bytes: &[u8]) {
        for pair in bytes.chunks_exact(8) {
            let (tid, count) = (super::word(pair, 0), super::word(pair, 4));
            if tid < MAX_TIDS {
                self.raise(tid, count);
            }
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Clock {
        let mut clock = Clock::default();
        clock.join_bytes(bytes);
        clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_joins_and_travels_as_bytes() {
        let mut a = Clock::default();
        a.tick(1);
        a.tick(1);
        let mut b = Clock::default();
        b.tick(3);
        b.join(&a);
        assert_eq!((b.get(1), b.get(2), b.get(3)), (2, 0, 1));
        assert_eq!(Clock::from_bytes(&b.to_bytes()), b);
        // Bytes naming an absurd task number do not allocate for it.
        let mut wild = Vec::new();
        wild.extend_from_slice(&u32::MAX.to_le_bytes());
        wild.extend_from_slice(&5u32.to_le_bytes());
        assert_eq!(Clock::from_bytes(&wild), Clock::default());
    }
}
