//! Quick figures for the reference sets, without criterion: scans the 64 MiB reference corpus
//! with `LiteralMatcher` on `literals100.txt` and `literals1000.txt` (case-sensitive and
//! case-insensitive), best of three passes, and prints matches and GB/s.
//!
//! ```text
//! taskset -c 1 cargo run --release -p picket-benches --bin refscan [-- --compare] [-- CORPUS]
//! ```
//!
//! `--compare` adds aho-corasick 1.1 (LeftmostFirst: auto, and forced DFA) and `regex50.txt` as a
//! `regex::bytes::RegexSet`, configured as in `../shared/bench/README.md`. A CORPUS argument
//! scans that file instead of the generated corpus (no match-count check then).

use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use picket_benches::{reference_corpus, reference_lines, REFERENCE_MATCHES};
use picket_signatures::matcher::LiteralMatcher;

/// Best of `runs` passes of `f` over `len` bytes, in GB/s, with the last pass's result.
fn best<T>(len: usize, runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (len as f64 / best / 1e9, out.expect("runs > 0"))
}

fn main() {
    let mut compare = false;
    let mut corpus_path = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--compare" => compare = true,
            "-h" | "--help" => {
                println!("usage: refscan [--compare] [CORPUS]");
                return;
            }
            _ => corpus_path = Some(a),
        }
    }
    let hay = match &corpus_path {
        Some(p) => std::fs::read(p).unwrap_or_else(|e| panic!("reading {p}: {e}")),
        None => reference_corpus(),
    };
    let mib = hay.len() as f64 / (1024.0 * 1024.0);
    println!("corpus: {mib:.0} MiB");

    for set in ["literals100.txt", "literals1000.txt"] {
        let lits = reference_lines(set);
        for ci in [false, true] {
            let m = LiteralMatcher::new(&lits, ci);
            let (gbs, n) = best(hay.len(), 3, || {
                let mut n = 0u64;
                m.for_each_match(&hay, |_| n += 1);
                n
            });
            let case = if ci {
                "case-insensitive"
            } else {
                "case-sensitive  "
            };
            println!("LiteralMatcher  {set:<17} {case} matches={n:>7}  {gbs:.3} GB/s");
            if !ci && corpus_path.is_none() {
                assert_eq!(n, REFERENCE_MATCHES, "{set}: wrong match count");
            }
        }
    }

    if !compare {
        return;
    }
    for (set, kinds) in [
        ("literals100.txt", &[None][..]),
        ("literals1000.txt", &[None, Some(AhoCorasickKind::DFA)][..]),
    ] {
        let lits = reference_lines(set);
        for &kind in kinds {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .kind(kind)
                .build(&lits)
                .expect("aho-corasick builds");
            let (gbs, n) = best(hay.len(), 2, || ac.find_iter(&hay).count());
            let label = format!("{:?}", ac.kind());
            println!("aho-corasick    {set:<17} {label:<16} matches={n:>7}  {gbs:.3} GB/s");
        }
    }
    let set = regex::bytes::RegexSetBuilder::new(reference_lines("regex50.txt"))
        .unicode(false)
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .expect("regex50 compiles");
    let (gbs, n) = best(hay.len(), 2, || set.matches(&hay).len());
    println!("RegexSet        regex50.txt       unicode off      matched={n:>7}  {gbs:.3} GB/s");
}
