#![no_main]
//! The whole HTTP/1 inspection path with the built-in pack: arbitrary bytes never panic, and
//! cutting them in two never changes the verdicts.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use picket_dpi::{inspect_bytes, Http1Inspector, InspectConfig};
use picket_signatures::Engine;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::builtin().expect("built-in pack"))
}

fuzz_target!(|data: &[u8]| {
    let cfg = InspectConfig {
        body_limit: 64 << 10,
        ..InspectConfig::default()
    };
    let whole: Vec<_> = inspect_bytes(engine(), &cfg, data)
        .iter()
        .map(|r| r.verdict.clone())
        .collect();
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut out = Vec::new();
    let mut inspector = Http1Inspector::new(engine(), &cfg);
    inspector.push(&data[..cut], &mut out);
    inspector.push(&data[cut..], &mut out);
    inspector.finish(&mut out);
    let split: Vec<_> = out.iter().map(|r| r.verdict.clone()).collect();
    assert_eq!(whole, split);
});
