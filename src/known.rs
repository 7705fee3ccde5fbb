//! The set of target blocks already obtained: a bitset with a summary level so that
//! "the next known block at or after i" is cheap even for millions of blocks.

/// A set of block indices `0..n`.
#[derive(Clone, Debug)]
pub struct KnownSet {
    n: usize,
    /// Level 0: one bit per block. Level k+1: one bit per non-zero word of level k.
    levels: Vec<Vec<u64>>,
    count: usize,
}

impl KnownSet {
    /// An empty set over `n` blocks.
    pub fn new(n: usize) -> Self {
        let mut levels = Vec::new();
        let mut words = n.div_ceil(64).max(1);
        loop {
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        KnownSet {
            n,
            levels,
            count: 0,
        }
    }

    /// Number of blocks in the universe.
    pub fn universe(&self) -> usize {
        self.n
    }

    /// Number of known blocks.
    pub fn count(&self) -> usize {
        self.count
    }

    /// True when every block is known.
    pub fn is_full(&self) -> bool {
        self.count == self.n
    }

    /// One bit per block (block i is bit i % 64 of word i / 64), at least one word.
    pub fn words(&self) -> &[u64] {
        &self.levels[0]
    }

    /// Is block `i` known?
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        i < self.n && self.levels[0][i / 64] >> (i % 64) & 1 == 1
    }

    /// Mark block `i` known.
    pub fn insert(&mut self, i: usize) {
        if i >= self.n || self.contains(i) {
            return;
        }
        self.count += 1;
        let mut idx = i;
        for level in self.levels.iter_mut() {
            let w = &mut level[idx / 64];
            let was_zero = *w == 0;
            *w |= 1 << (idx % 64);
            if !was_zero {
                break;
            }
            idx /= 64;
        }
    }

    /// Mark blocks `first..=last` known.
    pub fn insert_range(&mut self, first: usize, last: usize) {
        for i in first..=last.min(self.n.saturating_sub(1)) {
            self.insert(i);
        }
    }

    /// The smallest known block `>= i`, or the universe size if there is none.
    pub fn next_known(&self, i: usize) -> usize {
        self.next_in(0, i).unwrap_or(self.n).min(self.n)
    }

    /// Smallest set bit >= i at `level`, searching upward through the summaries.
    fn next_in(&self, level: usize, i: usize) -> Option<usize> {
        let words = &self.levels[level];
        let wi = i / 64;
        if wi >= words.len() {
            return None;
        }
        let w = words[wi] & (!0u64 << (i % 64));
        if w != 0 {
            return Some(wi * 64 + w.trailing_zeros() as usize);
        }
        // Find the next non-zero word after wi via the level above.
        let next_word = if level + 1 < self.levels.len() {
            self.next_in(level + 1, wi + 1)?
        } else {
            (wi + 1..words.len()).find(|&k| words[k] != 0)?
        };
        let w = words.get(next_word)?;
        Some(next_word * 64 + w.trailing_zeros() as usize)
    }

    /// The smallest block `>= i` that is not known, or the universe size if there is none.
    pub fn next_missing(&self, mut i: usize) -> usize {
        while i < self.n {
            // Known blocks from i on in this word (the bits above the word's end are zero).
            let ones = (!(self.levels[0][i / 64] >> (i % 64))).trailing_zeros() as usize;
            if ones == 0 {
                return i;
            }
            i += ones;
        }
        self.n
    }

    /// Maximal runs `[start, end)` of blocks that are not known, ascending.
    pub fn missing_runs(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.n {
            if self.contains(i) {
                i = self.next_missing(i);
                continue;
            }
            let j = self.next_known(i);
            out.push((i, j));
            i = j;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_vector() {
        let mut seed = 12345u64;
        for n in [0usize, 1, 63, 64, 65, 4095, 4096, 4097, 300_000] {
            let mut k = KnownSet::new(n);
            let mut plain = vec![false; n];
            for _ in 0..(n / 3 + 5) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if n == 0 {
                    break;
                }
                let i = (seed >> 33) as usize % n;
                k.insert(i);
                plain[i] = true;
            }
            assert_eq!(k.count(), plain.iter().filter(|&&b| b).count());
            for i in (0..=n).step_by(1 + n / 2000) {
                let want = (i..n).find(|&j| plain[j]).unwrap_or(n);
                assert_eq!(k.next_known(i), want, "n {n} i {i}");
                let want = (i..n).find(|&j| !plain[j]).unwrap_or(n);
                assert_eq!(k.next_missing(i), want, "n {n} i {i}");
            }
            let mut runs = Vec::new();
            let mut i = 0;
            while i < n {
                if plain[i] {
                    i += 1;
                    continue;
                }
                let j = (i..n).find(|&j| plain[j]).unwrap_or(n);
                runs.push((i, j));
                i = j;
            }
            assert_eq!(k.missing_runs(), runs, "n {n}");
        }
    }

    #[test]
    fn sparse_far_search() {
        let mut k = KnownSet::new(10_000_000);
        assert_eq!(k.next_known(0), 10_000_000);
        k.insert(9_999_999);
        assert_eq!(k.next_known(5), 9_999_999);
        k.insert_range(100, 200);
        assert_eq!(k.next_known(5), 100);
        assert_eq!(k.next_known(201), 9_999_999);
        assert_eq!(k.count(), 102);
    }
}
