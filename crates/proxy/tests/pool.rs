//! HTTP/1 upstream connection pooling, end to end: the real binary in gateway mode in front of
//! `tests/support/pool_backend.py`, which names the connection that served each response
//! (`X-Conn`), with curl and raw sockets as clients (a new client connection each time).
//! Every process a test starts is stopped by its PID when the test ends.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{curl, python_peer_on, Backend, Picket};

const CURL_RESET: i32 = 56;

fn pool_backend(idle_close: Option<&str>) -> Backend {
    let mut cmd = Command::new("python3");
    if let Some(s) = idle_close {
        cmd.env("IDLE_CLOSE", s);
    }
    python_peer_on(cmd, "pool_backend.py", "127.0.0.1")
}

/// The upstream connection that served a response, from its `X-Conn` header.
fn conn_of(headers: &str) -> u64 {
    headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-conn")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no X-Conn in {headers:?}"))
}

/// One request by curl on a new connection: (exit status, upstream connection).
fn request(p: &Picket, args: &[&str], path: &str) -> (i32, u64) {
    let url = p.url(path);
    let mut all = vec!["-D", "-", "-o", "/dev/null"];
    all.extend_from_slice(args);
    all.push(&url);
    let (rc, headers) = curl(&all);
    assert_eq!(rc, 0, "curl {all:?}");
    // Picket pools the connection when it sees curl's close; give it a moment.
    std::thread::sleep(Duration::from_millis(30));
    (rc, conn_of(&headers))
}

fn get(p: &Picket, path: &str) -> u64 {
    request(p, &[], path).1
}

fn metrics(p: &Picket) -> String {
    let admin = p.admin.expect("admin address");
    let (rc, body) = curl(&[&format!("http://{admin}/metrics")]);
    assert_eq!(rc, 0);
    body
}

fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn sequential_client_connections_share_an_upstream_connection() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &["--admin-listen", "127.0.0.1:0"]);
    let conns: BTreeSet<u64> = (0..20).map(|_| get(&p, "/")).collect();
    assert!(conns.len() <= 2, "20 requests used {conns:?}");
    let m = metrics(&p);
    let reused = metric(
        &m,
        r#"picket_upstream_connections_total{kind="plain",result="reused"}"#,
    );
    let new = metric(
        &m,
        r#"picket_upstream_connections_total{kind="plain",result="new"}"#,
    );
    assert!(reused >= 18 && new <= 2 && reused + new == 20, "{m}");
    assert_eq!(metric(&m, "picket_upstream_idle_connections "), 1, "{m}");
}

#[test]
fn bodyless_and_chunked_responses_leave_the_connection_reusable() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &[]);
    let first = get(&p, "/");
    let (rc, chunked) = curl(&["-D", "-", &p.url("/chunked")]);
    assert_eq!(rc, 0);
    assert!(chunked.contains(&format!("conn={first}\nabc")), "{chunked}");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        get(&p, "/"),
        first,
        "after a chunked response with trailers"
    );
    assert_eq!(request(&p, &["-I"], "/").1, first, "HEAD");
    assert_eq!(get(&p, "/"), first, "after HEAD");
    assert_eq!(get(&p, "/204"), first);
    assert_eq!(get(&p, "/304"), first);
    assert_eq!(get(&p, "/"), first, "after 204 and 304");
}

#[test]
fn closing_responses_are_not_reused() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &[]);
    let closed = get(&p, "/close");
    let next = get(&p, "/");
    assert_ne!(next, closed, "Connection: close");
    assert_eq!(get(&p, "/"), next);
    let (rc, body) = curl(&["-D", "-", &p.url("/eof")]);
    assert_eq!(rc, 0);
    let eof = conn_of(&body);
    assert!(body.contains(&format!("conn={eof}")), "{body}");
    std::thread::sleep(Duration::from_millis(30));
    assert_ne!(get(&p, "/"), eof, "close-delimited");
}

#[test]
fn an_upstream_closing_idle_connections_costs_no_request() {
    let b = pool_backend(Some("0.2"));
    let p = Picket::start(b.addr, &[]);
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        let (rc, conn) = request(&p, &[], "/");
        assert_eq!(rc, 0);
        // The backend closes the pooled connection after 200 ms: the next client gets a
        // fresh one, never the closed one.
        assert!(
            seen.insert(conn),
            "connection {conn} reused after the server closed it"
        );
        std::thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn the_upstream_connection_of_a_blocked_request_is_not_reused() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &[]);
    let first = get(&p, "/");
    // The attack takes the pooled connection and is reset with it.
    let (rc, _) = curl(&["-A", "() { :; }; /bin/id", &p.url("/cgi-bin/x")]);
    assert_eq!(rc, CURL_RESET);
    let _ = p.next_log();
    std::thread::sleep(Duration::from_millis(30));
    assert_ne!(get(&p, "/"), first);
}

#[test]
fn pipelined_requests_then_client_eof() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &[]);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let got = String::from_utf8_lossy(&got);
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 4, "{got}");
    let conn = conn_of(&got);
    assert!(got.ends_with(&format!("conn={conn}\n")), "{got}");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        get(&p, "/"),
        conn,
        "the pipelined connection went back to the pool"
    );
}

#[test]
fn pooling_can_be_turned_off() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &["--upstream-pool-max-per-destination", "0"]);
    let conns: BTreeSet<u64> = (0..3).map(|_| get(&p, "/")).collect();
    assert_eq!(conns.len(), 3);
}

#[test]
fn a_tcp_health_check_leaves_the_pooled_connection_alone() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &[]);
    let first = get(&p, "/");
    // Connect and close without a byte, as a tcpSocket probe does.
    for _ in 0..3 {
        drop(TcpStream::connect(p.addr).unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&p, "/"), first);
    // A client that is not HTTP/1 gets a fresh connection, never the pooled one.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    std::thread::sleep(Duration::from_millis(30));
    let after = get(&p, "/");
    assert_ne!(
        after, first,
        "the pooled connection went to an opaque client"
    );
}

/// Health checks that take the pooled connection and put it back unused do not make it
/// younger: past the idle timeout it is closed as if nobody had touched it.
#[test]
fn health_checks_do_not_keep_a_pooled_connection_past_its_idle_timeout() {
    let b = pool_backend(None);
    let p = Picket::start(b.addr, &["--upstream-idle-timeout-ms", "600"]);
    let first = get(&p, "/");
    let until = std::time::Instant::now() + Duration::from_millis(900);
    while std::time::Instant::now() < until {
        drop(TcpStream::connect(p.addr).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(
        get(&p, "/"),
        first,
        "a connection idle for longer than the idle timeout was reused"
    );
}
