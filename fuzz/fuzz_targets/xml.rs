#![no_main]
//! XML extraction never panics and never emits more than `max_fields`.

use libfuzzer_sys::fuzz_target;
use picket_dpi::{xml, ExtractLimits};
use picket_signatures::Target;

fuzz_target!(|data: &[u8]| {
    let limits = ExtractLimits {
        max_depth: 32,
        max_fields: 1000,
    };
    let mut n = 0usize;
    let mut sink = |t: Target, _: &[u8], _: &[u8]| {
        assert!(matches!(
            t,
            Target::XmlText | Target::XmlAttribute | Target::XmlDoctype | Target::XmlPi
        ));
        n += 1;
    };
    let _ = xml::extract(data, &limits, &mut sink);
    assert!(n <= limits.max_fields);
});
