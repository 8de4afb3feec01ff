//! Instruction-count companion to `benches/inspect.rs`: inspects the typical 502-byte GET head
//! `N` times (default 20,000) with the built-in pack and nothing else, so that
//! `valgrind --tool=callgrind target/release/headcost` gives a repeatable cost per request
//! (total instructions / N) whatever else the shared machine is doing, and a profile of where
//! they go. Criterion's wall-clock figures stay the reference for the README's targets.

use std::hint::black_box;

use picket_benches::typical_get_head;
use picket_dpi::{inspect_bytes, Decision, InspectConfig};
use picket_signatures::Engine;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("the built-in pack does not compile: {e}");
            std::process::exit(2);
        }
    };
    let cfg = InspectConfig::default();
    let head = typical_get_head();
    let start = std::time::Instant::now();
    let mut blocked = 0usize;
    for _ in 0..n {
        let out = inspect_bytes(&engine, &cfg, black_box(&head));
        blocked += out
            .iter()
            .filter(|r| r.verdict.decision() == Decision::Block)
            .count();
    }
    let per = start.elapsed() / n.max(1) as u32;
    println!(
        "{n} inspections of a {}-byte GET head: {per:?} each, {blocked} blocked",
        head.len()
    );
}
