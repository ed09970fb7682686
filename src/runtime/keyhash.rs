//! How map keys hash. Strings, floats and the rest go through foldhash.
//! Ints get a hash that keeps runs of neighbouring keys (`m[0]`, `m[1]`,
//! ...) in neighbouring buckets: the table's memory is read in order, as
//! in CPython, where 1M int keys with a mixing hash missed the cache on
//! every insert and lookup. Only 16 neighbours share a run (the rest of
//! the int is mixed with a per-map seed), so strided keys (`m[i * 1024]`)
//! still spread over the whole table.

use std::hash::{BuildHasher, Hasher};

/// The [`BuildHasher`] of a map's table.
#[derive(Clone)]
pub struct KeyHashing {
    strings: foldhash::fast::RandomState,
    seed: u64,
}

impl Default for KeyHashing {
    fn default() -> KeyHashing {
        let strings = foldhash::fast::RandomState::default();
        let seed = strings.hash_one(0x243f_6a88_85a3_08d3u64);
        KeyHashing { strings, seed }
    }
}

impl BuildHasher for KeyHashing {
    type Hasher = KeyHasher;
    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { other: self.strings.build_hasher(), seed: self.seed, int: None }
    }
}

/// Hashes one key: an int written alone with `write_i64` (as `Key::Int`
/// hashes) takes the run-keeping hash; any other write, foldhash's.
pub struct KeyHasher {
    other: foldhash::fast::FoldHasher<'static>,
    seed: u64,
    int: Option<i64>,
}

impl Hasher for KeyHasher {
    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.int = Some(n);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.other.write(bytes);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.other.write_u8(n);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.other.write_u64(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.other.write_usize(n);
    }

    #[inline]
    fn finish(&self) -> u64 {
        match self.int {
            Some(n) => run_hash(n, self.seed),
            None => self.other.finish(),
        }
    }
}

/// The low 4 bits are the int's own (16 neighbours, 16 neighbouring
/// buckets); the rest mixes the run number, which also gives the table's
/// tag bits (the top 7) their spread.
#[inline]
fn run_hash(n: i64, seed: u64) -> u64 {
    let run = (n >> 4) as u64 ^ seed;
    let full = (run as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mixed = (full as u64) ^ ((full >> 64) as u64);
    (mixed << 4) | (n as u64 & 15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_int(hashing: &KeyHashing, n: i64) -> u64 {
        let mut h = hashing.build_hasher();
        h.write_i64(n);
        h.finish()
    }

    #[test]
    fn neighbours_share_a_run_of_buckets() {
        let hashing = KeyHashing::default();
        let base = hash_int(&hashing, 32);
        for i in 0..16 {
            assert_eq!(hash_int(&hashing, 32 + i), base + i as u64);
        }
    }

    #[test]
    fn strided_keys_spread_over_the_table() {
        // 4096 keys a table-size apart must not pile into a few buckets of
        // a table of 2^16 (their low bits are all equal).
        let hashing = KeyHashing::default();
        let buckets: HashSet<u64> = (0..4096).map(|i| hash_int(&hashing, i << 16) & 0xffff).collect();
        assert!(buckets.len() > 3500, "only {} distinct buckets", buckets.len());
        let tags: HashSet<u64> = (0..4096).map(|i| hash_int(&hashing, i) >> 57).collect();
        assert!(tags.len() > 100, "only {} distinct tags", tags.len());
    }
}
