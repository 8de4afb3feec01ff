#![no_main]
//! The pack parser never panics: any text is a pack or a list of located problems, and a
//! pack it accepts compiles (or fails with a typed error) and scans without panicking.

use libfuzzer_sys::fuzz_target;
use picket_signatures::{Engine, Pack, RequestContext, Scratch, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Pack::parse(text, "fuzz.toml") {
        Ok(pack) => {
            if let Ok(engine) = Engine::compile(pack) {
                let mut hits = Vec::new();
                engine.scan(
                    &RequestContext::default(),
                    Target::Body,
                    b"",
                    text.as_bytes(),
                    &mut Scratch::default(),
                    &mut hits,
                );
            }
        }
        Err(e) => assert!(!e.issues.is_empty() && e.issues.iter().all(|i| i.line >= 1)),
    }
});
