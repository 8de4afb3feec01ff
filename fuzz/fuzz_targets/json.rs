#![no_main]
//! JSON extraction never panics, never emits more than `max_fields`, and a document it accepts
//! is accepted again when fed the same bytes (determinism).

use libfuzzer_sys::fuzz_target;
use picket_dpi::{json, ExtractLimits};
use picket_signatures::Target;

fuzz_target!(|data: &[u8]| {
    let limits = ExtractLimits {
        max_depth: 32,
        max_fields: 1000,
    };
    let mut n = 0usize;
    let mut sink = |t: Target, _: &[u8], _: &[u8]| {
        assert_eq!(t, Target::JsonString);
        n += 1;
    };
    let first = json::extract(data, &limits, &mut sink);
    assert!(n <= limits.max_fields);
    let mut m = 0usize;
    let mut sink2 = |_: Target, _: &[u8], _: &[u8]| m += 1;
    assert_eq!(json::extract(data, &limits, &mut sink2), first);
    assert_eq!(n, m);
});
