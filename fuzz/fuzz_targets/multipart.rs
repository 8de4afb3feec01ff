#![no_main]
//! Multipart: the first byte picks the boundary length, the boundary follows, then the body.
//! Also feeds the whole input to the Content-Type boundary parser.

use libfuzzer_sys::fuzz_target;
use picket_dpi::{multipart, ExtractLimits};
use picket_signatures::Target;

fuzz_target!(|data: &[u8]| {
    if let Some(b) = multipart::boundary(data) {
        assert!(!b.is_empty() && b.len() <= multipart::MAX_BOUNDARY);
    }
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16) + 1;
    if rest.len() < n {
        return;
    }
    let (boundary, body) = rest.split_at(n);
    let limits = ExtractLimits {
        max_depth: 8,
        max_fields: 1000,
    };
    let mut count = 0usize;
    let mut sink = |t: Target, _: &[u8], _: &[u8]| {
        assert_eq!(t, Target::MultipartPart);
        count += 1;
    };
    let _ = multipart::extract(body, boundary, &limits, &mut sink);
    assert!(count <= limits.max_fields);
});
