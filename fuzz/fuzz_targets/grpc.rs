#![no_main]
//! gRPC message reassembly: byte 0 picks the piece size, byte 1 the coding; the stream fed in
//! pieces must give exactly the fields and anomalies it gives when fed whole, and the decoder
//! never buffers more than `max_message`.

use libfuzzer_sys::fuzz_target;
use picket_dpi::decode::{ContentCoding, DecodeLimits};
use picket_dpi::grpc::MessageDecoder;
use picket_dpi::{ExtractLimits, FieldSink};
use picket_signatures::{Anomaly, Target};

#[derive(Default, PartialEq, Debug)]
struct Collect {
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    anomalies: Vec<Anomaly>,
}

impl FieldSink for Collect {
    fn field(&mut self, _: Target, name: &[u8], value: &[u8]) {
        self.fields.push((name.to_vec(), value.to_vec()));
    }
    fn anomaly(&mut self, a: Anomaly) {
        self.anomalies.push(a);
    }
}

const MAX_MESSAGE: usize = 4096;

fn run(stream: &[u8], coding: ContentCoding, step: usize) -> (Collect, bool) {
    let limits = ExtractLimits {
        max_depth: 16,
        max_fields: 1000,
    };
    let decode_limits = DecodeLimits {
        max_output: 64 * 1024,
        max_ratio: 100,
        max_layers: 1,
    };
    let mut dec = MessageDecoder::new(coding, MAX_MESSAGE, decode_limits);
    let mut c = Collect::default();
    let mut failed = false;
    for piece in stream.chunks(step) {
        failed |= dec.push(piece, &limits, &mut c).is_err();
        assert!(dec.buffered() <= MAX_MESSAGE);
    }
    failed |= dec.finish(&mut c).is_err();
    (c, failed)
}

fuzz_target!(|data: &[u8]| {
    let [step, coding, stream @ ..] = data else {
        return;
    };
    let step = usize::from(*step % 32) + 1;
    let coding = match coding % 3 {
        0 => ContentCoding::Identity,
        1 => ContentCoding::Gzip,
        _ => ContentCoding::Deflate,
    };
    let (whole, whole_failed) = run(stream, coding, stream.len().max(1));
    let (split, split_failed) = run(stream, coding, step);
    assert_eq!(whole, split);
    assert_eq!(whole_failed, split_failed);
});
