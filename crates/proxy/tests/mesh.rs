//! Mesh mutual TLS through `picket proxy`, end to end on 127.0.0.1: two pickets (a client
//! side with `--mesh-upstream`, a server side terminating mTLS in front of the application)
//! with a recording TCP relay between them, and `openssl s_client` / curl as clients that are
//! not mesh peers. Certificates come from a mesh CA made in the test (`picket_mtls::MeshCa`),
//! written as PEM to a temporary directory.
//!
//! `openssl` is needed for the s_client test; without it the test says so and passes, except
//! under `CI=true`, where it fails.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::h2_backend::H2Backend;
use common::{backend, curl, Picket};
use picket_mtls::{
    generate_key_and_csr, CaOptions, MeshCa, SpiffeId, TrustDomain, DEFAULT_WORKLOAD_LIFETIME,
};

const CURL_RESET: i32 = 56;
const CURL_EMPTY_REPLY: i32 = 52;
const CURL_HTTP2_STREAM: i32 = 92;
const SERVER_ID: &str = "spiffe://cluster.local/ns/default/sa/server";
const CLIENT_ID: &str = "spiffe://cluster.local/ns/default/sa/client";

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("picket-mesh-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A workload certificate and key as PEM files.
struct Identity {
    cert: PathBuf,
    key: PathBuf,
}

/// The mesh material of one test: a CA, its trust bundle on disk, identities issued from it.
struct Mesh {
    dir: TempDir,
    ca: MeshCa,
    bundle: PathBuf,
}

impl Mesh {
    fn new(tag: &str) -> Mesh {
        let dir = TempDir::new(tag);
        let ca = MeshCa::generate(TrustDomain::default(), &CaOptions::default()).unwrap();
        let bundle = dir.0.join("bundle.pem");
        std::fs::write(&bundle, ca.trust_bundle().unwrap().to_pem()).unwrap();
        Mesh { dir, ca, bundle }
    }

    /// Issues a certificate for `id`, valid now (or from `not_before` for `lifetime`).
    fn issue(&self, name: &str, id: &str, validity: Option<(SystemTime, Duration)>) -> Identity {
        let id = SpiffeId::parse(id).unwrap();
        let csr = generate_key_and_csr(Some(&id)).unwrap();
        let cert = match validity {
            None => self
                .ca
                .issue_from_csr(csr.csr_pem.as_bytes(), &id, DEFAULT_WORKLOAD_LIFETIME),
            Some((not_before, lifetime)) => {
                self.ca
                    .issue_from_csr_at(csr.csr_pem.as_bytes(), &id, not_before, lifetime)
            }
        }
        .unwrap();
        let identity = Identity {
            cert: self.dir.0.join(format!("{name}.pem")),
            key: self.dir.0.join(format!("{name}.key")),
        };
        std::fs::write(&identity.cert, cert.chain_pem()).unwrap();
        std::fs::write(&identity.key, csr.key_pem).unwrap();
        identity
    }

    /// The `--mesh-*` arguments for `who`.
    fn args(&self, who: &Identity) -> Vec<String> {
        vec![
            "--mesh-cert".into(),
            path(&who.cert),
            "--mesh-key".into(),
            path(&who.key),
            "--mesh-trust-bundle".into(),
            path(&self.bundle),
        ]
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn start(upstream: SocketAddr, args: &[String]) -> Picket {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Picket::start(upstream, &args)
}

/// A TCP relay between the two pickets that records every byte, both directions.
struct Recorder {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start(target: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let record = bytes.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let record = record.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Recorder { addr, bytes }
    }

    fn recorded(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The client side (`--mesh-upstream`) and the server side of a mesh, with the recorder
/// between them, in front of `app`.
struct Pair {
    client: Picket,
    server: Picket,
    wire: Recorder,
    _mesh: Mesh,
}

fn pair(app: SocketAddr, client_extra: &[&str]) -> Pair {
    let mesh = Mesh::new("pair");
    let server_id = mesh.issue("server", SERVER_ID, None);
    let client_id = mesh.issue("client", CLIENT_ID, None);
    let server = start(app, &mesh.args(&server_id));
    let wire = Recorder::start(server.addr);
    let mut args = mesh.args(&client_id);
    args.extend(["--mesh-upstream".to_string(), SERVER_ID.to_string()]);
    args.extend(client_extra.iter().map(|s| s.to_string()));
    let client = start(wire.addr, &args);
    Pair {
        client,
        server,
        wire,
        _mesh: mesh,
    }
}

#[test]
fn http1_through_the_mesh_is_encrypted_and_inspected_on_the_way_out() {
    let app = backend();
    let p = pair(app.addr, &[]);
    let (rc, body) = curl(&[
        "-H",
        "X-Marker: header-marker-4711",
        "--data",
        "note=body-marker-0815",
        &p.client.url("/mesh/path-marker-9931"),
    ]);
    assert_eq!(rc, 0, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/mesh/path-marker-9931");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["body_len"], "note=body-marker-0815".len());

    let wire = p.wire.recorded();
    assert!(!wire.is_empty());
    assert_eq!(
        wire[0], 0x16,
        "the mesh connection opens with a TLS handshake"
    );
    for marker in [
        "path-marker-9931",
        "header-marker-4711",
        "body-marker-0815",
        "X-Marker",
        "HTTP/1.1",
    ] {
        assert!(!contains(&wire, marker), "{marker} in clear on the wire");
    }

    // An attack is refused by the client side, before anything reaches the mesh.
    let (rc, _) = curl(&[
        "-A",
        "() { :; }; /bin/cat /etc/passwd",
        &p.client.url("/cgi-bin/status"),
    ]);
    assert_eq!(rc, CURL_RESET);
    let v = p.client.next_log();
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["direction"], "outbound", "{v}");
    assert_eq!(v["signature"]["id"], "PKT-SHELLSHOCK-FUNC", "{v}");
    assert_eq!(v["peer_identity"], SERVER_ID, "{v}");
    p.server.no_more_logs();
    p.client.no_more_logs();
}

#[test]
fn the_server_side_blocks_and_names_the_client_when_the_client_side_only_monitors() {
    let app = backend();
    let p = pair(app.addr, &["--mode", "monitor"]);
    let (rc, _) = curl(&[
        "-A",
        "() { :; }; /bin/cat /etc/passwd",
        &p.client.url("/cgi-bin/status"),
    ]);
    assert!(rc == CURL_RESET || rc == CURL_EMPTY_REPLY, "curl exit {rc}");
    let alert = p.client.next_log();
    assert_eq!(alert["event"], "alert", "{alert}");
    assert_eq!(alert["direction"], "outbound", "{alert}");
    let v = p.server.next_log();
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["direction"], "inbound", "{v}");
    assert_eq!(v["proto"], "http1", "{v}");
    assert_eq!(v["signature"]["id"], "PKT-SHELLSHOCK-FUNC", "{v}");
    assert_eq!(v["path"], "/cgi-bin/status", "{v}");
    assert_eq!(v["peer_identity"], CLIENT_ID, "{v}");
    assert_eq!(v["action"], "reset", "{v}");
    // A benign request still goes through the monitoring client side and the mesh.
    let (rc, body) = curl(&[&p.client.url("/fine")]);
    assert_eq!(rc, 0, "{body}");
    assert!(body.contains("/fine"), "{body}");
}

#[test]
fn http2_through_the_mesh() {
    let app = H2Backend::start();
    let p = pair(app.addr, &[]);
    let (rc, out) = curl(&[
        "--http2-prior-knowledge",
        "-i",
        &p.client.url("/h2/path-marker-5150?name=world"),
    ]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(
        out.contains("x-echo-path: /h2/path-marker-5150?name=world"),
        "{out}"
    );
    assert!(!contains(&p.wire.recorded(), "path-marker-5150"));
    // A refused stream on the way out.
    let (rc, _) = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "User-Agent: () { :; }; /bin/bash -c 'cat /etc/passwd'",
        &p.client.url("/cgi-bin/status"),
    ]);
    assert_eq!(rc, CURL_HTTP2_STREAM);
    let v = p.client.next_log();
    assert_eq!(v["proto"], "h2", "{v}");
    assert_eq!(v["direction"], "outbound", "{v}");
    assert_eq!(v["action"], "rst_stream", "{v}");
    let paths: Vec<String> = app
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.path_and_query.clone())
        .collect();
    assert_eq!(paths, ["/h2/path-marker-5150?name=world"]);
    p.server.no_more_logs();
}

/// Whether `cmd` can be run; under `CI=true` it must be.
fn available(cmd: &str) -> bool {
    let ok = Command::new(cmd)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{cmd} is required under CI=true"
        );
        eprintln!("skipped: {cmd} not installed");
    }
    ok
}

/// One `openssl s_client` exchange with an HTTP/1.1 request; its stdout and stderr.
fn s_client(addr: SocketAddr, args: &[&str]) -> (String, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-quiet"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /via-s-client HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut out, mut err) = (String::new(), String::new());
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let _ = child.wait();
    (out, err)
}

/// `picket_connection_errors_total` by reason, from the admin endpoint.
fn connection_errors(admin: SocketAddr) -> HashMap<String, u64> {
    let (rc, text) = curl(&[&format!("http://{admin}/metrics")]);
    assert_eq!(rc, 0);
    text.lines()
        .filter_map(|l| l.strip_prefix("picket_connection_errors_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once('"')?;
            let value = rest.rsplit(' ').next()?.parse().ok()?;
            Some((reason.to_string(), value))
        })
        .collect()
}

#[test]
fn strict_inbound_refuses_clients_that_are_not_mesh_peers() {
    if !available("openssl") {
        return;
    }
    let app = backend();
    let mesh = Mesh::new("strict");
    let server = mesh.issue("server", SERVER_ID, None);
    let client = mesh.issue("client", CLIENT_ID, None);
    let expired = mesh.issue(
        "expired",
        CLIENT_ID,
        Some((
            SystemTime::now() - Duration::from_secs(3 * 24 * 3600),
            Duration::from_secs(24 * 3600),
        )),
    );
    let other = Mesh::new("other-ca");
    let stranger = other.issue("stranger", CLIENT_ID, None);
    let mut args = mesh.args(&server);
    args.extend(
        ["--mesh-inbound", "strict", "--admin-listen", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string()),
    );
    let p = start(app.addr, &args);
    let admin = p.admin.expect("admin address");
    let bundle = path(&mesh.bundle);
    let with = |id: &Identity, alpn: bool| {
        let (cert, key) = (path(&id.cert), path(&id.key));
        // `-cert` takes the leaf; the intermediate comes from `-cert_chain`.
        let mut a = vec![
            "-cert_chain".to_string(),
            cert.clone(),
            "-cert".to_string(),
            cert,
            "-key".to_string(),
            key,
            "-CAfile".to_string(),
            bundle.clone(),
        ];
        if alpn {
            a.extend(["-alpn".to_string(), "picket/1+http/1.1".to_string()]);
        }
        a
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s_client(p.addr, &args)
    };

    // The control: a mesh peer's certificate and ALPN get through to the application.
    let (out, err) = run(with(&client, true));
    assert!(out.starts_with("HTTP/1.1 200"), "{out}\n{err}");
    assert!(out.contains("/via-s-client"), "{out}");

    let refused = [
        (
            "no certificate",
            vec!["-alpn".to_string(), "picket/1+http/1.1".to_string()],
        ),
        ("a certificate from another CA", with(&stranger, true)),
        ("an expired certificate", with(&expired, true)),
        ("no picket ALPN", with(&client, false)),
    ];
    for (what, args) in refused.iter().cloned() {
        let (out, err) = run(args);
        assert!(!out.contains("HTTP/1.1"), "{what}: {out}\n{err}");
    }
    // Plaintext is refused under strict.
    let (rc, out) = curl(&[&p.url("/plain")]);
    assert!(
        rc == CURL_RESET || rc == CURL_EMPTY_REPLY,
        "curl exit {rc}: {out}"
    );
    let errors = connection_errors(admin);
    assert!(
        errors.get("mtls").copied().unwrap_or(0) >= refused.len() as u64,
        "{errors:?}"
    );
    assert_eq!(errors.get("plaintext_refused"), Some(&1), "{errors:?}");
    p.no_more_logs();
}

#[test]
fn permissive_inbound_serves_plaintext_too() {
    let app = backend();
    let mesh = Mesh::new("permissive");
    let server = mesh.issue("server", SERVER_ID, None);
    let p = start(app.addr, &mesh.args(&server));
    let (rc, body) = curl(&[&p.url("/plain")]);
    assert_eq!(rc, 0, "{body}");
    assert!(body.contains("/plain"), "{body}");
    // And inspects it: no peer identity on a plaintext connection.
    let (rc, _) = curl(&["-A", "() { :; }; /bin/id", &p.url("/x")]);
    assert_eq!(rc, CURL_RESET);
    let v = p.next_log();
    assert_eq!(v["event"], "block", "{v}");
    assert!(v.get("peer_identity").is_none(), "{v}");
}

#[test]
fn bad_mesh_material_is_a_start_up_error() {
    let mesh = Mesh::new("bad");
    let good = mesh.issue("good", SERVER_ID, None);
    let garbage = mesh.dir.0.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let other = Mesh::new("bad-other");
    let cases = [
        (
            path(&garbage),
            path(&good.key),
            path(&mesh.bundle),
            "garbage.pem",
        ),
        (
            path(&good.cert),
            path(&good.key),
            path(&other.bundle),
            "trust bundle",
        ),
        (
            path(&good.cert),
            path(&good.key),
            "/nonexistent/bundle.pem".into(),
            "/nonexistent/bundle.pem",
        ),
    ];
    for (cert, key, bundle, expect) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_picket"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
            ])
            .args([
                "--mesh-cert",
                &cert,
                "--mesh-key",
                &key,
                "--mesh-trust-bundle",
                &bundle,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{expect}: {err}");
    }
    // All three or none.
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
        ])
        .args(["--mesh-cert", &path(&good.cert)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_stalled_client_hello_is_cut_off_at_the_request_timeout() {
    let app = backend();
    let mesh = Mesh::new("stall");
    let server = mesh.issue("server", SERVER_ID, None);
    for policy in ["strict", "permissive"] {
        let mut args = mesh.args(&server);
        args.extend(
            ["--mesh-inbound", policy, "--request-timeout", "1"]
                .iter()
                .map(|s| s.to_string()),
        );
        let p = start(app.addr, &args);
        let mut s = TcpStream::connect(p.addr).unwrap();
        // The start of a TLS handshake record, and then nothing.
        s.write_all(b"\x16\x03\x01\x02\x00\x01").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let end = s.read(&mut buf);
        let took = started.elapsed();
        assert!(
            matches!(end, Ok(0)) || end.is_err(),
            "{policy}: connection not closed: {end:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{policy}: closed only after {took:?}"
        );
    }
}

/// The value of a metric line starting with `prefix` (`name{labels}`), 0 if absent.
fn metric(admin: SocketAddr, prefix: &str) -> f64 {
    let (rc, text) = curl(&[&format!("http://{admin}/metrics")]);
    assert_eq!(rc, 0);
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn changed_mesh_files_are_reloaded_and_bad_ones_refused() {
    let app = backend();
    let old = Mesh::new("reload-old");
    let new = Mesh::new("reload-new");
    let server = old.issue("server", SERVER_ID, None);
    let mut args = old.args(&server);
    args.extend(
        ["--pack-poll-ms", "100", "--admin-listen", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string()),
    );
    let s = start(app.addr, &args);
    let admin = s.admin.expect("admin address");
    // A client side whose material comes from the new CA: the server is a stranger to it.
    let client = new.issue("client", CLIENT_ID, None);
    let mut args = new.args(&client);
    args.extend(["--mesh-upstream".to_string(), SERVER_ID.to_string()]);
    let a = start(s.addr, &args);
    let (rc, _) = curl(&[&a.url("/before")]);
    assert_ne!(rc, 0, "a handshake across two CAs must fail");

    // A broken certificate is refused; the material in force stays.
    std::fs::write(&server.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while metric(admin, "picket_mesh_reloads_total{result=\"invalid\"}") < 1.0 {
        assert!(
            Instant::now() < until,
            "the broken certificate was not noticed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rc, _) = curl(&[&s.url("/still-serving")]);
    assert_eq!(rc, 0);

    // The server moves to the new CA: key, certificate and bundle replaced in place.
    let moved = new.issue("server", SERVER_ID, None);
    for (from, to) in [
        (&moved.key, &server.key),
        (&moved.cert, &server.cert),
        (&new.bundle, &old.bundle),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (rc, body) = curl(&[&a.url("/after")]);
        if rc == 0 {
            assert!(body.contains("/after"), "{body}");
            break;
        }
        assert!(Instant::now() < until, "the new material was not taken up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(admin, "picket_mesh_reloads_total{result=\"ok\"}") >= 1.0);
    assert!(metric(admin, "picket_mesh_connections_total{direction=\"inbound\",peer=\"spiffe://cluster.local/ns/default/sa/client\"}") >= 1.0);
}

/// Reads until `n` bytes arrived (or the peer closed, or 5 s passed).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < n {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    got
}

/// A server-first protocol through the mesh: the client side opens a `picket/1+tcp` tunnel at
/// the detection timeout so the greeting gets through, and the server side still detects and
/// inspects what the client sends afterwards.
#[test]
fn a_server_first_protocol_gets_a_tcp_tunnel_and_late_http_is_still_inspected() {
    let g = common::greeter();
    let p = pair(g.addr, &["--detect-timeout-ms", "200"]);
    let mut s = TcpStream::connect(p.client.addr).unwrap();
    assert_eq!(read_n(&mut s, 19), b"220 greeter ready\r\n");
    s.write_all(b"EHLO secret-marker-2222\r\n").unwrap();
    assert_eq!(read_n(&mut s, 25), b"EHLO secret-marker-2222\r\n");
    drop(s);
    let wire = p.wire.recorded();
    assert!(!contains(&wire, "secret-marker-2222") && !contains(&wire, "greeter ready"));

    // Silent until the tunnel is open, then an attack: the server side finds it.
    let mut s = TcpStream::connect(p.client.addr).unwrap();
    assert_eq!(read_n(&mut s, 19), b"220 greeter ready\r\n");
    s.write_all(b"GET /late HTTP/1.1\r\nHost: a\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n")
        .unwrap();
    let rest = read_n(&mut s, 1);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let v = p.server.next_log();
    assert_eq!(v["event"], "block", "{v}");
    assert_eq!(v["path"], "/late", "{v}");
    assert_eq!(v["peer_identity"], CLIENT_ID, "{v}");
    p.client.no_more_logs();
}

#[test]
fn sequential_client_connections_reuse_one_mesh_connection() {
    let app = backend();
    let p = pair(app.addr, &["--admin-listen", "127.0.0.1:0"]);
    let admin = p.client.admin.expect("admin address");
    for i in 0..10 {
        let (rc, body) = curl(&[&p.client.url(&format!("/seq/{i}"))]);
        assert_eq!(rc, 0, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["path"], format!("/seq/{i}"));
        // Picket pools the connection when it sees curl's close.
        std::thread::sleep(Duration::from_millis(30));
    }
    let handshakes = metric(
        admin,
        "picket_mesh_connections_total{direction=\"outbound\"",
    );
    let new = metric(
        admin,
        r#"picket_upstream_connections_total{kind="mesh",result="new"}"#,
    );
    let reused = metric(
        admin,
        r#"picket_upstream_connections_total{kind="mesh",result="reused"}"#,
    );
    assert!(
        handshakes <= 2.0,
        "{handshakes} mesh handshakes for 10 requests"
    );
    assert_eq!(new, handshakes);
    assert_eq!(new + reused, 10.0);
    assert_eq!(metric(admin, "picket_upstream_idle_connections "), 1.0);
    // An attack still is refused on the client side, and its mesh connection is not reused.
    let (rc, _) = curl(&["-A", "() { :; }; /bin/id", &p.client.url("/cgi-bin/x")]);
    assert_eq!(rc, CURL_RESET);
    let v = p.client.next_log();
    assert_eq!(v["peer_identity"], SERVER_ID, "{v}");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(curl(&[&p.client.url("/after")]).0, 0);
    assert_eq!(
        metric(
            admin,
            "picket_mesh_connections_total{direction=\"outbound\""
        ),
        handshakes + 1.0,
        "the blocked request's mesh connection was dropped"
    );
}
