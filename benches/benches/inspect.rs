//! Whole-request inspection with the built-in pack: `inspect_bytes` on a typical ~500-byte
//! browser GET head (time per request), `parse_head` alone on the same head, and POSTs with
//! 4 KiB and 64 KiB bodies (JSON generated here; urlencoded forms from
//! `../shared/bench/gen_inputs.py bodies`, the bodies of the proxy load tests).
//!
//! `cargo bench -p picket-benches --bench inspect` (pin with `taskset -c 1`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use picket_benches::{benign_json, load_test_bodies, post_request, typical_get_head, KIB};
use picket_dpi::http1::{parse_head, HeadLimits};
use picket_dpi::{inspect_bytes, Decision, InspectConfig};
use picket_signatures::Engine;

fn check(engine: &Engine, cfg: &InspectConfig, raw: &[u8], want: Decision, label: &str) {
    let out = inspect_bytes(engine, cfg, raw);
    assert_eq!(out.len(), 1, "{label}: one request expected");
    let got = out[0].verdict.decision();
    assert_eq!(got, want, "{label}: {:?}", out[0].verdict.hits);
}

fn inspect(c: &mut Criterion) {
    let engine = Engine::builtin().expect("the built-in pack compiles");
    let cfg = InspectConfig::default();
    let limits = HeadLimits::default();

    let head = typical_get_head();
    check(&engine, &cfg, &head, Decision::Allow, "GET");
    let parsed = parse_head(head.clone(), &limits);
    assert!(
        parsed.is_complete() && parsed.anomalies().is_empty(),
        "{:?}",
        parsed.anomalies()
    );

    let mut g = c.benchmark_group("inspect");
    g.throughput(Throughput::BytesDecimal(head.len() as u64));
    g.bench_function(format!("get-head-{}B/inspect_bytes", head.len()), |b| {
        b.iter(|| inspect_bytes(&engine, &cfg, black_box(&head)))
    });
    g.bench_function(format!("get-head-{}B/parse_head", head.len()), |b| {
        b.iter_batched(
            || head.clone(),
            |raw| parse_head(raw, &limits),
            BatchSize::SmallInput,
        )
    });

    let (form4k, form64k) = load_test_bodies();
    let json4k = benign_json(4 * KIB, 21);
    let json64k = benign_json(64 * KIB, 22);
    // A command injection in one more record at the end of the array.
    let mut json64k_attack = json64k[..json64k.len() - 1].to_vec();
    json64k_attack.extend_from_slice(br#",{"cmd":"a; cat /etc/passwd"}]"#);
    let posts = [
        (
            "post-json-4KiB",
            post_request("/api/v1/items", "application/json", &json4k),
            Decision::Allow,
        ),
        (
            "post-json-64KiB",
            post_request("/api/v1/items", "application/json", &json64k),
            Decision::Allow,
        ),
        (
            "post-json-64KiB-attack",
            post_request("/api/v1/items", "application/json", &json64k_attack),
            Decision::Block,
        ),
        (
            "post-form-4KiB",
            post_request(
                "/account/profile",
                "application/x-www-form-urlencoded",
                &form4k,
            ),
            Decision::Allow,
        ),
        (
            "post-form-64KiB",
            post_request(
                "/account/profile",
                "application/x-www-form-urlencoded",
                &form64k,
            ),
            Decision::Allow,
        ),
    ];
    for (label, raw, want) in &posts {
        check(&engine, &cfg, raw, *want, label);
        g.throughput(Throughput::BytesDecimal(raw.len() as u64));
        g.bench_function(format!("{label}/inspect_bytes"), |b| {
            b.iter(|| inspect_bytes(&engine, &cfg, black_box(raw)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = inspect
}
criterion_main!(benches);
