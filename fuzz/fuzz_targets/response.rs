#![no_main]
//! Response framing: byte 0 picks the piece size, byte 1 the requests (bit i set: request i is
//! HEAD); fed in pieces, the framer must reach exactly the state it reaches when fed whole,
//! never count more responses than requests, and be idle only when every request is answered.

use libfuzzer_sys::fuzz_target;
use picket_dpi::response::{RequestMeta, ResponseFramer, ResponseLimits};

const LIMITS: ResponseLimits = ResponseLimits {
    max_head: 256,
    max_outstanding: 8,
};

fn run(reqs: u8, input: &[u8], step: usize) -> (u64, usize, bool, bool) {
    let mut f = ResponseFramer::new(LIMITS);
    for i in 0..8 {
        let method: &[u8] = if reqs & (1 << i) != 0 { b"HEAD" } else { b"GET" };
        f.request(RequestMeta::new(method, true));
    }
    for piece in input.chunks(step) {
        f.push(piece);
    }
    assert!(f.completed() <= 8);
    assert_eq!(f.completed() as usize + f.outstanding(), 8);
    if f.idle() {
        assert_eq!(f.outstanding(), 0);
    }
    (f.completed(), f.outstanding(), f.reusable(), f.at_boundary())
}

fuzz_target!(|data: &[u8]| {
    let [step, reqs, input @ ..] = data else {
        return;
    };
    let whole = run(*reqs, input, input.len().max(1));
    let split = run(*reqs, input, usize::from(step % 16) + 1);
    assert_eq!(split, whole);
});
