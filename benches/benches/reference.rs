//! The literal matcher alone on the reference sets of `../shared/bench`, over the 64 MiB
//! reference corpus (one call per pass, every match counted), with aho-corasick 1.1 and a
//! `regex::bytes::RegexSet` of `regex50.txt` configured as in `../shared/bench/README.md`, so the
//! ratios come from one run on one machine.
//!
//! `cargo bench -p picket-benches --bench reference` (pin with `taskset -c 1`).

use std::hint::black_box;
use std::time::Duration;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use picket_benches::{reference_corpus, reference_lines, REFERENCE_MATCHES};
use picket_signatures::matcher::LiteralMatcher;

fn count(m: &LiteralMatcher, hay: &[u8]) -> u64 {
    let mut n = 0u64;
    m.for_each_match(hay, |_| n += 1);
    n
}

fn reference(c: &mut Criterion) {
    let hay = reference_corpus();
    let lits100 = reference_lines("literals100.txt");
    let lits1000 = reference_lines("literals1000.txt");
    assert_eq!(lits100.len(), 100);
    assert_eq!(lits1000.len(), 1000);

    let mut g = c.benchmark_group("reference");
    // A pass over 64 MiB takes 0.1 to 0.7 s: ten passes per benchmark are plenty.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::BytesDecimal(hay.len() as u64));

    for (set, lits) in [("literals100", &lits100), ("literals1000", &lits1000)] {
        for ci in [false, true] {
            let m = LiteralMatcher::new(lits, ci);
            let n = count(&m, &hay);
            if !ci {
                assert_eq!(n, REFERENCE_MATCHES, "{set}: case-sensitive match count");
            }
            eprintln!("picket LiteralMatcher {set} ci={ci}: {n} matches");
            let case = if ci { "nocase" } else { "case" };
            g.bench_function(format!("picket/{set}/{case}"), |b| {
                b.iter(|| count(&m, black_box(&hay)))
            });
        }
    }

    for (set, lits, kind) in [
        ("literals100", &lits100, None),
        ("literals1000", &lits1000, None),
        ("literals1000", &lits1000, Some(AhoCorasickKind::DFA)),
    ] {
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(kind)
            .build(lits)
            .expect("aho-corasick builds");
        let n = ac.find_iter(&hay).count();
        assert_eq!(
            n as u64, REFERENCE_MATCHES,
            "aho-corasick {set}: match count"
        );
        let label = match kind {
            None => format!("auto-{:?}", ac.kind()),
            Some(_) => format!("{:?}", ac.kind()),
        };
        g.bench_function(format!("aho-corasick/{set}/{label}"), |b| {
            b.iter(|| ac.find_iter(black_box(&hay)).count())
        });
    }

    let set = regex::bytes::RegexSetBuilder::new(reference_lines("regex50.txt"))
        .unicode(false)
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .expect("regex50 compiles");
    eprintln!("RegexSet regex50: {} of 50 match", set.matches(&hay).len());
    g.bench_function("regex-set/regex50", |b| {
        b.iter(|| set.matches(black_box(&hay)).len())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = reference
}
criterion_main!(benches);
