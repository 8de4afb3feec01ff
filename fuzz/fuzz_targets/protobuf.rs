#![no_main]
//! Schema-less protobuf walking never panics; every emitted name is a dotted field path.

use libfuzzer_sys::fuzz_target;
use picket_dpi::{protobuf, ExtractLimits};
use picket_signatures::Target;

fuzz_target!(|data: &[u8]| {
    let limits = ExtractLimits {
        max_depth: 16,
        max_fields: 1000,
    };
    let mut n = 0usize;
    let mut sink = |t: Target, name: &[u8], value: &[u8]| {
        assert_eq!(t, Target::GrpcString);
        assert!(!name.is_empty() && name.iter().all(|b| b.is_ascii_digit() || *b == b'.'));
        assert!(!value.is_empty());
        n += 1;
    };
    let _ = protobuf::extract(data, &limits, &mut sink);
    assert!(n <= limits.max_fields);
});
