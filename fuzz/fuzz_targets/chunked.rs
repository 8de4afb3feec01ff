#![no_main]
//! Chunked decoding: byte 0 picks the piece size; fed in pieces, the decoder must give exactly
//! the data, end (`consumed`) and error it gives when fed whole, never pass more data than it
//! was given, and keep the trailer section within its limit.

use libfuzzer_sys::fuzz_target;
use picket_dpi::chunked::{ChunkedDecoder, ChunkedError, ChunkedLimits, ChunkedStatus};

const LIMITS: ChunkedLimits = ChunkedLimits {
    max_size_line: 64,
    max_trailers: 128,
};

/// (data, end of the body within `input` if it ended, error, trailers)
fn run(input: &[u8], step: usize) -> (Vec<u8>, Option<usize>, Option<ChunkedError>, Vec<u8>) {
    let mut d = ChunkedDecoder::new(LIMITS);
    let mut data = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let end = (start + step).min(input.len());
        let piece = &input[start..end];
        match d.push(piece, &mut |s| data.extend_from_slice(s)) {
            Ok(ChunkedStatus::Done { consumed }) => {
                assert!(consumed <= piece.len());
                assert!(d.is_done());
                assert!(d.trailers().len() <= LIMITS.max_trailers);
                return (data, Some(start + consumed), None, d.trailers().to_vec());
            }
            Ok(ChunkedStatus::NeedMore) => assert!(!d.is_done()),
            Err(e) => {
                let _ = e.anomaly();
                return (data, None, Some(e), Vec::new());
            }
        }
        start = end;
    }
    (data, None, None, Vec::new())
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, input.len().max(1));
    let split = run(input, usize::from(step % 16) + 1);
    assert!(whole.0.len() <= input.len());
    assert_eq!(split, whole);
});
