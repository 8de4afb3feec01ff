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
//!   sets one bit in a 2^16-bit filter (8 KiB, L1-resident). At each input position the four
//!   bytes there are loaded as one `u32`, folded, hashed with one multiply, and the bit tested.
//!   With 1,000 literals about 1.5% of the bits are set, so about 1.5% of benign positions go on
//!   to verification.
//! * Verification looks up the bucket of literals with that hash and compares each in full.
//! * Literals of one to three bytes (`|`, `$(`, `;id`) are found through a 256-entry table on
//!   their first byte, consulted only at positions whose byte can start one.
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

/// log2 of the filter's size in bits.
const FILTER_BITS: u32 = 16;
/// The multiplier of the window hash (Knuth's golden-ratio constant).
const HASH_MUL: u32 = 0x9E37_79B1;
/// Words of a filter (both filters have 2^16 bits: the short one is indexed by a byte pair).
const FILTER_WORDS: usize = 1 << (FILTER_BITS - 6);

/// One reported occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiteralMatch {
    /// Index of the literal in the order given to [`LiteralMatcher::new`].
    pub literal: u32,
    pub start: usize,
    pub end: usize,
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
    filter: Box<[u64; FILTER_WORDS]>,
    /// `bucket_start[h]..bucket_start[h + 1]` indexes `bucket_ids` for hash `h`.
    bucket_start: Vec<u32>,
    bucket_ids: Vec<u32>,
    /// For each first byte (folded), the short literals (1 to 3 bytes) that begin with it.
    short_by_first: Vec<Vec<u32>>,
    /// Bit filter over the first two (folded) bytes of the short literals; a one-byte literal
    /// sets the bits of all 256 pairs it can begin.
    short_filter: Box<[u64; FILTER_WORDS]>,
    has_short: bool,
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

        let buckets = 1usize << FILTER_BITS;
        let mut filter = Box::new([0u64; FILTER_WORDS]);
        let mut counts = vec![0u32; buckets + 1];
        let mut short_by_first: Vec<Vec<u32>> = vec![Vec::new(); 256];
        let mut short_filter = Box::new([0u64; FILTER_WORDS]);
        let mut long_hashes = Vec::new();
        for (id, lit) in literals.iter().enumerate() {
            let id = id as u32;
            match lit.len() {
                0 => {}
                1..=3 => {
                    let b0 = fold_byte(lit[0], case_insensitive);
                    short_by_first[b0 as usize].push(id);
                    // Pairs are formed from the folded window, so a one-byte literal must set
                    // the pair of every possible second byte.
                    let b0 = (lit[0] as u32 | fold) & 0xff;
                    let seconds: Vec<u32> = match lit.get(1) {
                        Some(&b1) => vec![(b1 as u32 | fold) & 0xff],
                        None => (0..256).map(|b| (b | fold) & 0xff).collect(),
                    };
                    for b1 in seconds {
                        let p = (b0 | (b1 << 8)) as usize;
                        short_filter[p >> 6] |= 1 << (p & 63);
                    }
                }
                _ => {
                    let h = hash(window(lit, 0) | fold);
                    filter[h >> 6] |= 1 << (h & 63);
                    counts[h] += 1;
                    long_hashes.push((h, id));
                }
            }
        }
        // Prefix sums turn counts into bucket starts.
        let mut bucket_start = vec![0u32; buckets + 1];
        let mut acc = 0u32;
        for h in 0..buckets {
            bucket_start[h] = acc;
            acc += counts[h];
        }
        bucket_start[buckets] = acc;
        let mut fill = bucket_start.clone();
        let mut bucket_ids = vec![0u32; acc as usize];
        for (h, id) in long_hashes {
            bucket_ids[fill[h] as usize] = id;
            fill[h] += 1;
        }
        let has_short = short_by_first.iter().any(|v| !v.is_empty());
        LiteralMatcher {
            literals,
            case_insensitive,
            fold,
            filter,
            bucket_start,
            bucket_ids,
            short_by_first,
            short_filter,
            has_short,
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
        let filter = &*self.filter;
        let short_filter = &*self.short_filter;
        while let Some(chunk) = hay.get(i..i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            // Test five positions branch-free; only a set bit leaves the fast path.
            let mut any = 0u64;
            for k in 0..5 {
                let w = (x >> (8 * k)) as u32 | self.fold;
                let h = hash(w);
                let p = (w & 0xffff) as usize;
                any |= (filter[h >> 6] >> (h & 63)) & 1;
                any |= (short_filter[p >> 6] >> (p & 63)) & 1;
            }
            if any != 0 {
                for k in 0..5 {
                    let w = (x >> (8 * k)) as u32 | self.fold;
                    let h = hash(w);
                    if filter[h >> 6] & (1 << (h & 63)) != 0 {
                        self.verify_long(hay, i + k, h, &mut f);
                    }
                    let p = (w & 0xffff) as usize;
                    if self.has_short && short_filter[p >> 6] & (1 << (p & 63)) != 0 {
                        self.verify_short(hay, i + k, &mut f);
                    }
                }
            }
            i += 5;
        }
        while i < n {
            if i + 4 <= n {
                let h = hash(window(hay, i) | self.fold);
                if self.filter[h >> 6] & (1 << (h & 63)) != 0 {
                    self.verify_long(hay, i, h, &mut f);
                }
            }
            if self.has_short {
                self.verify_short(hay, i, &mut f);
            }
            i += 1;
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
    fn verify_long(&self, hay: &[u8], at: usize, h: usize, f: &mut impl FnMut(LiteralMatch)) {
        let start = self.bucket_start[h] as usize;
        let end = self.bucket_start[h + 1] as usize;
        for &id in &self.bucket_ids[start..end] {
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
    fn verify_short(&self, hay: &[u8], at: usize, f: &mut impl FnMut(LiteralMatch)) {
        let b = fold_byte(hay[at], self.case_insensitive);
        for &id in &self.short_by_first[b as usize] {
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
fn hash(w: u32) -> usize {
    (w.wrapping_mul(HASH_MUL) >> (32 - FILTER_BITS)) as usize
}

#[inline]
fn fold_byte(b: u8, case_insensitive: bool) -> u8 {
    if case_insensitive {
        b.to_ascii_lowercase()
    } else {
        b
    }
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
