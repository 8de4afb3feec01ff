//! The multi-literal prefilter: finds every occurrence of every literal of a pack in one pass.
//!
//! # Why not a plain Aho-Corasick automaton
//!
//! An Aho-Corasick DFA does a table walk per input byte whose state table, for a thousand
//! literals, no longer fits in L1: measured here on `../shared/bench` it reaches about 0.25 GB/s
//! on `literals1000`. Attack literals are rare in real traffic, so almost every byte is a
//! non-match, and the work that matters is rejecting positions cheaply. This matcher does what
//! Hyperscan's FDR and Rabin-Karp do in spirit:
//!
//! * For every literal of four bytes or more, the hash of its first four (case-folded) bytes
//!   sets one bit in a filter of 2^16 bits (8 KiB, L1-resident) or more: the filter grows with
//!   the number of literals so that about 1/32 of its bits are set. At each input position the
//!   four bytes there are loaded as one `u32`, folded, hashed with one multiply, and the bit
//!   tested, so only a few percent of benign positions go on to verification.
//! * Verification looks up the bucket of literals with that hash and compares each in full.
//! * Literals of one to three bytes (`|`, `$(`, `;id`) are found through a second 2^16-bit
//!   filter on the byte pair at each position, and verified against the few literals that
//!   begin with that pair.
//!
//! The cost per byte is therefore nearly flat in the number of literals (the filter stays the
//! same size; only its density grows), which is what lets a pack grow from 100 to 10,000
//! signatures without the scan slowing down in proportion.
//!
//! # Semantics
//!
//! Every occurrence of every literal is reported, overlapping ones included (the semantics
//! Hyperscan reports under), as `(literal id, start, end)`. Matching is ASCII case-insensitive
//! when the matcher is built so (the engine's default: attack literals are case-insensitive, and
//! a case-sensitive regex can still confirm), exact otherwise.

/// log2 of the long-literal filter's size in bits: at least 2^16 (8 KiB, L1-resident), grown
/// with the number of literals so that the share of set bits stays near 1/32 (at 30,000
/// literals the filter is 128 KiB: L2, but a third of all positions would otherwise go on to
/// verification), at most 2^22.
const MIN_FILTER_BITS: u32 = 16;
const MAX_FILTER_BITS: u32 = 22;
/// The multiplier of the window hash (Knuth's golden-ratio constant).
const HASH_MUL: u32 = 0x9E37_79B1;
/// Words of the short-literal filter (2^16 bits, one per byte pair).
const PAIR_WORDS: usize = (1 << 16) / 64;

/// One reported occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiteralMatch {
    /// Index of the literal in the order given to [`LiteralMatcher::new`].
    pub literal: u32,
    pub start: usize,
    pub end: usize,
}

/// Literal ids grouped by a small integer key: `ids[start[k]..start[k + 1]]`.
#[derive(Debug, Clone)]
struct Buckets {
    start: Vec<u32>,
    ids: Vec<u32>,
}

impl Buckets {
    fn new(keys: usize, entries: &[(usize, u32)]) -> Buckets {
        let mut start = vec![0u32; keys + 1];
        for &(k, _) in entries {
            start[k + 1] += 1;
        }
        for k in 0..keys {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut ids = vec![0u32; entries.len()];
        for &(k, id) in entries {
            ids[fill[k] as usize] = id;
            fill[k] += 1;
        }
        Buckets { start, ids }
    }

    #[inline]
    fn get(&self, k: usize) -> &[u32] {
        &self.ids[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// A compiled set of literals. See the module documentation for how and why.
#[derive(Debug, Clone)]
pub struct LiteralMatcher {
    /// The literals as given (folded to lowercase when case-insensitive).
    literals: Vec<Box<[u8]>>,
    case_insensitive: bool,
    /// OR-ed into every loaded window: `0x2020_2020` when case-insensitive. That maps `A-Z` onto
    /// `a-z` (and a few other bytes onto each other, which only costs a failed verification).
    fold: u32,
    /// Bit filter over the hash of the first four bytes of the long literals.
    filter: Vec<u64>,
    /// `32 - filter bits`: the hash is the top bits of the product.
    shift: u32,
    /// Long literals by hash.
    long: Buckets,
    /// Bit filter over the first two (folded) bytes of the short literals (1 to 3 bytes); a
    /// one-byte literal sets the bits of all 256 pairs it can begin.
    pair_filter: Box<[u64; PAIR_WORDS]>,
    /// Short literals by (folded) byte pair, the same way.
    short_by_pair: Buckets,
}

impl LiteralMatcher {
    /// Builds a matcher. Empty literals are ignored (they never match).
    pub fn new<I, L>(literals: I, case_insensitive: bool) -> LiteralMatcher
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let fold = if case_insensitive { 0x2020_2020 } else { 0 };
        let literals: Vec<Box<[u8]>> = literals
            .into_iter()
            .map(|l| {
                let l = l.as_ref();
                if case_insensitive {
                    l.to_ascii_lowercase().into_boxed_slice()
                } else {
                    l.to_vec().into_boxed_slice()
                }
            })
            .collect();

        let n_long = literals.iter().filter(|l| l.len() >= 4).count();
        let bits = (n_long.max(1) * 32)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(MIN_FILTER_BITS, MAX_FILTER_BITS);
        let shift = 32 - bits;
        let mut filter = vec![0u64; (1usize << bits) / 64];
        let mut pair_filter = Box::new([0u64; PAIR_WORDS]);
        let mut long = Vec::new();
        let mut by_pair = Vec::new();
        for (id, lit) in literals.iter().enumerate() {
            let id = id as u32;
            match lit.len() {
                0 => {}
                1..=3 => {
                    // Pairs are formed from the folded window, so the keys are folded the same
                    // way; a one-byte literal must claim the pair of every possible second byte.
                    let b0 = (lit[0] as u32 | fold) & 0xff;
                    let seconds: Vec<u32> = match lit.get(1) {
                        Some(&b1) => vec![(b1 as u32 | fold) & 0xff],
                        None => (0..256).map(|b| (b | fold) & 0xff).collect(),
                    };
                    let mut seconds = seconds;
                    seconds.sort_unstable();
                    seconds.dedup();
                    for b1 in seconds {
                        let p = (b0 | (b1 << 8)) as usize;
                        pair_filter[p >> 6] |= 1 << (p & 63);
                        by_pair.push((p, id));
                    }
                }
                _ => {
                    let h = hash(window(lit, 0) | fold, shift);
                    filter[h >> 6] |= 1 << (h & 63);
                    long.push((h, id));
                }
            }
        }
        LiteralMatcher {
            literals,
            case_insensitive,
            fold,
            filter,
            shift,
            long: Buckets::new(1 << bits, &long),
            pair_filter,
            short_by_pair: Buckets::new(1 << 16, &by_pair),
        }
    }

    /// Number of literals, empty ones included.
    pub fn len(&self) -> usize {
        self.literals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.literals.is_empty()
    }

    /// The literal with this id (lowercased if the matcher is case-insensitive).
    pub fn literal(&self, id: u32) -> &[u8] {
        &self.literals[id as usize]
    }

    /// Calls `f` for every occurrence of every literal in `hay`, in order of start position.
    pub fn for_each_match(&self, hay: &[u8], mut f: impl FnMut(LiteralMatch)) {
        let n = hay.len();
        let mut i = 0;
        // Main loop: one 8-byte load yields the four-byte windows at five positions.
        while let Some(chunk) = hay.get(i..i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.five(hay, i, x, 5, &mut f);
            i += 5;
        }
        // The last positions (all of a value shorter than eight bytes, which header values,
        // parameters and cookies often are) go through the same test on a zero-padded copy.
        // A window that runs into the padding can only pass the filters, never verification,
        // which reads `hay` itself; a padding byte folds like any other, and a one-byte
        // literal claims every second byte of its pair, so the last position still finds it.
        while i < n {
            let mut pad = [0u8; 8];
            let rest = &hay[i..];
            let take = rest.len().min(8);
            pad[..take].copy_from_slice(&rest[..take]);
            self.five(hay, i, u64::from_le_bytes(pad), (n - i).min(5), &mut f);
            i += 5;
        }
    }

    /// Tests the `count` (at most five) positions from `at`, whose bytes start `x`: the
    /// windows are tested branch-free, and only a set filter bit leaves the fast path.
    #[inline(always)]
    fn five(&self, hay: &[u8], at: usize, x: u64, count: usize, f: &mut impl FnMut(LiteralMatch)) {
        let filter = self.filter.as_slice();
        let pairs = &*self.pair_filter;
        let mut any = 0u64;
        for k in 0..count {
            let w = (x >> (8 * k)) as u32 | self.fold;
            let h = hash(w, self.shift);
            let p = (w & 0xffff) as usize;
            any |= (filter[h >> 6] >> (h & 63)) & 1;
            any |= (pairs[p >> 6] >> (p & 63)) & 1;
        }
        if any == 0 {
            return;
        }
        for k in 0..count {
            let w = (x >> (8 * k)) as u32 | self.fold;
            let h = hash(w, self.shift);
            if filter[h >> 6] & (1 << (h & 63)) != 0 {
                self.verify(hay, at + k, self.long.get(h), f);
            }
            let p = (w & 0xffff) as usize;
            if pairs[p >> 6] & (1 << (p & 63)) != 0 {
                self.verify(hay, at + k, self.short_by_pair.get(p), f);
            }
        }
    }

    /// Whether any literal occurs in `hay`.
    pub fn is_match(&self, hay: &[u8]) -> bool {
        // Simple rather than early-exiting: callers that need speed use `for_each_match`.
        let mut found = false;
        self.for_each_match(hay, |_| found = true);
        found
    }

    #[inline]
    fn verify(&self, hay: &[u8], at: usize, ids: &[u32], f: &mut impl FnMut(LiteralMatch)) {
        for &id in ids {
            let lit = &self.literals[id as usize];
            if self.eq_at(hay, at, lit) {
                f(LiteralMatch {
                    literal: id,
                    start: at,
                    end: at + lit.len(),
                });
            }
        }
    }

    #[inline]
    fn eq_at(&self, hay: &[u8], at: usize, lit: &[u8]) -> bool {
        match hay.get(at..at + lit.len()) {
            Some(s) if self.case_insensitive => s.eq_ignore_ascii_case(lit),
            Some(s) => s == lit,
            None => false,
        }
    }
}

#[inline]
fn window(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn hash(w: u32, shift: u32) -> usize {
    (w.wrapping_mul(HASH_MUL) >> shift) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, MatchKind};
    use proptest::prelude::*;

    fn oracle(lits: &[Vec<u8>], hay: &[u8], ci: bool) -> Vec<LiteralMatch> {
        let idx: Vec<usize> = (0..lits.len()).filter(|&i| !lits[i].is_empty()).collect();
        let pats: Vec<&[u8]> = idx.iter().map(|&i| lits[i].as_slice()).collect();
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(ci)
            .match_kind(MatchKind::Standard)
            .build(&pats)
            .unwrap();
        let mut v: Vec<LiteralMatch> = ac
            .find_overlapping_iter(hay)
            .map(|m| LiteralMatch {
                literal: idx[m.pattern().as_usize()] as u32,
                start: m.start(),
                end: m.end(),
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn ours(lits: &[Vec<u8>], hay: &[u8], ci: bool) -> Vec<LiteralMatch> {
        let m = LiteralMatcher::new(lits, ci);
        let mut v = Vec::new();
        m.for_each_match(hay, |x| v.push(x));
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn finds_short_and_long_overlapping() {
        let lits: Vec<Vec<u8>> = ["`", "$(", ";id", "/bin/sh", "/bin/bash", "bin"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let hay = b"a=1;ID`x` $(/BIN/BASH -c /bin/sh)";
        assert_eq!(ours(&lits, hay, true), oracle(&lits, hay, true));
        assert_eq!(ours(&lits, hay, false), oracle(&lits, hay, false));
        assert_eq!(ours(&lits, hay, true).len(), 8);
    }

    #[test]
    fn large_sets_grow_the_filter_and_still_agree() {
        // Deterministic pseudo-random literals (xorshift), enough to grow the filter past 2^16.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let lits: Vec<Vec<u8>> = (0..5000)
            .map(|_| {
                let len = 1 + (next() % 9) as usize;
                (0..len)
                    .map(|_| b"abcdefgh;/ "[(next() % 11) as usize])
                    .collect()
            })
            .collect();
        let hay: Vec<u8> = (0..20_000)
            .map(|_| b"abcdefgh;/ XY"[(next() % 13) as usize])
            .collect();
        assert_eq!(ours(&lits, &hay, true), oracle(&lits, &hay, true));
        assert_eq!(ours(&lits, &hay, false), oracle(&lits, &hay, false));
    }

    #[test]
    fn match_at_the_very_end_and_start() {
        let lits = vec![b"abcd".to_vec(), b"xyz".to_vec()];
        for hay in [&b"abcd"[..], b"xyz", b"..abcd", b"abcdxyz", b"1234567abcd"] {
            assert_eq!(
                ours(&lits, hay, false),
                oracle(&lits, hay, false),
                "{hay:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn agrees_with_aho_corasick(
            lits in proptest::collection::vec(proptest::collection::vec(prop::sample::select(b"abAB/;$( ".to_vec()), 0..7), 1..20),
            hay in proptest::collection::vec(prop::sample::select(b"abAB/;$( x\n".to_vec()), 0..200),
            ci in any::<bool>(),
        ) {
            prop_assert_eq!(ours(&lits, &hay, ci), oracle(&lits, &hay, ci));
        }

        #[test]
        fn agrees_on_arbitrary_bytes(
            lits in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..6), 1..30),
            hay in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assert_eq!(ours(&lits, &hay, true), oracle(&lits, &hay, true));
            prop_assert_eq!(ours(&lits, &hay, false), oracle(&lits, &hay, false));
        }
    }
}
