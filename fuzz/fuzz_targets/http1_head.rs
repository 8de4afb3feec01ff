#![no_main]
//! HTTP/1 head parsing: `parse_head` never panics and returns sorted, unique anomalies within
//! bounded memory; `find_head_end` gives the same answer whether the bytes arrive whole or in
//! pieces (byte 0 picks the piece size), and agrees with `parse_head` on where the head ends.

use libfuzzer_sys::fuzz_target;
use picket_dpi::http1::{find_head_end, parse_head, Framing, HeadLimits};
use picket_signatures::Anomaly;

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 32) + 1;
    let whole = find_head_end(data, 0);

    // Incremental search, `step` bytes at a time, with the hint.
    let mut searched = 0;
    let mut found = None;
    let mut len = 0;
    while len < data.len() {
        len = (len + step).min(data.len());
        if let Some(n) = find_head_end(&data[..len], searched) {
            found = Some(n);
            break;
        }
        searched = len;
    }
    assert_eq!(found, whole);

    let limits = HeadLimits {
        max_request_line: 64,
        max_header_line: 128,
        max_headers: 8,
        max_head: 512,
    };
    let head = parse_head(data.to_vec(), &limits);
    let a = head.anomalies();
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert!(head.fields().len() <= limits.max_headers);
    assert!(head.head_len() <= data.len());
    match whole {
        Some(n) => assert!(head.is_complete() && head.head_len() == n),
        None => assert!(!head.is_complete() && head.has_anomaly(Anomaly::Truncated)),
    }
    if matches!(head.framing(), Framing::Chunked | Framing::ContentLength(_)) {
        for bad in [
            Anomaly::ContentLengthAndTransferEncoding,
            Anomaly::DuplicateContentLength,
            Anomaly::InvalidContentLength,
            Anomaly::InvalidTransferEncoding,
        ] {
            assert!(!head.has_anomaly(bad));
        }
    }
    // Every accessor, on whatever was parsed.
    let _ = (
        head.method(),
        head.target(),
        head.path(),
        head.query(),
        head.version(),
    );
    let _ = (
        head.host(),
        head.authority(),
        head.content_type(),
        head.content_encoding(),
    );
    let _ = (
        head.expects_continue(),
        head.is_upgrade(),
        head.keep_alive(),
    );
    let _ = (head.request_line(), head.target_form(), head.raw());
    for (name, _) in head.headers() {
        assert!(head.header(name).is_some());
    }
});
