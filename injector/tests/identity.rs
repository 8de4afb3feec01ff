//! The identity service end to end: the real `picket-injector` binary (`ca generate`, then
//! `identity` with a static token file, and `serve --mesh-ca-dir`), CSRs made by openssl,
//! curl as the client with `--cacert root.crt` and `--resolve` for the serving DNS name, and
//! the chain checked with `openssl verify` and webpki.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use picket_mtls::issuance::CertificateResponse;
use picket_mtls::{spiffe_id_of, TrustBundle};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_picket-injector");
const DNS: &str = "picket-injector.picket-system.svc";

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("picket-identity-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process stopped by PID: SIGTERM in `stop`, SIGKILL on drop if still running.
struct Proc {
    child: Child,
}

impl Proc {
    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ca_generate(dir: &Path, td: &str) -> PathBuf {
    let ca = dir.join("ca");
    run(Command::new(BIN).args([
        "ca",
        "generate",
        "--out",
        ca.to_str().unwrap(),
        "--trust-domain",
        td,
    ]));
    ca
}

/// An EC P-256 key and a CSR made by openssl, with optional extra `-addext` arguments.
fn openssl_csr(dir: &Path, name: &str, addext: Option<&str>) -> String {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    run(Command::new("openssl").args([
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]));
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/O=workload",
        "-out",
        csr.to_str().unwrap(),
    ]);
    if let Some(ext) = addext {
        cmd.args(["-addext", ext]);
    }
    run(&mut cmd);
    std::fs::read_to_string(csr).unwrap()
}

/// POSTs `body` to the identity service; returns (body, status).
fn post(dir: &Path, port: u16, token: Option<&str>, body: &str) -> (String, u16) {
    post_with(dir, port, token, body, &[])
}

fn post_with(
    dir: &Path,
    port: u16,
    token: Option<&str>,
    body: &str,
    extra: &[&str],
) -> (String, u16) {
    let file = dir.join("request.json");
    std::fs::write(&file, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(dir.join("ca/root.crt"))
        .args(["--resolve", &format!("{DNS}:{port}:127.0.0.1")])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data-binary", &format!("@{}", file.display())])
        .args(["-w", "\n%{http_code}"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    cmd.args(extra);
    cmd.arg(format!("https://{DNS}:{port}/v1/certificate"));
    let out = run(&mut cmd);
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_string(), status.trim().parse().unwrap())
}

fn wait_listening(proc: &mut Proc, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            proc.child.try_wait().unwrap().is_none(),
            "picket-injector exited: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "never listened on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    v["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn ca_generate_writes_the_secret_layout_and_refuses_to_overwrite() {
    let dir = tempdir("cagen");
    let ca = ca_generate(&dir, "mesh.example");
    for (f, mode) in [
        ("root.crt", 0o644),
        ("root.key", 0o600),
        ("intermediate.crt", 0o644),
        ("intermediate.key", 0o600),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(ca.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{f}");
    }
    let loaded = picket_injector::identity::load_ca_dir(&ca).unwrap();
    assert_eq!(loaded.trust_domain().as_str(), "mesh.example");
    let before = std::fs::read(ca.join("intermediate.key")).unwrap();
    let out = Command::new(BIN)
        .args(["ca", "generate", "--out", ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(ca.join("intermediate.key")).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn identity_service_issues_for_the_token_and_refuses_the_rest() {
    let dir = tempdir("service");
    let td = "mesh.example";
    ca_generate(&dir, td);
    std::fs::write(
        dir.join("tokens.json"),
        json!({"tok-cart": "shop/cart", "tok-db": "db/postgres"}).to_string(),
    )
    .unwrap();
    let port = free_port();
    let health = free_port();
    let log = dir.join("stderr.log");
    let child = Command::new(BIN)
        .arg("identity")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--health-listen", &format!("127.0.0.1:{health}")])
        .arg("--mesh-ca-dir")
        .arg(dir.join("ca"))
        .arg("--tokens")
        .arg(dir.join("tokens.json"))
        .args(["--dns-name", DNS, "--dns-name", "localhost"])
        .args(["--workload-cert-ttl", "90s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut proc = Proc { child };
    wait_listening(&mut proc, port, &log);

    // Good token, CSR without SAN: 200, the token's identity, a chain to the root.
    let csr = openssl_csr(&dir, "cart", None);
    let request = json!({ "csr": csr }).to_string();
    let (body, status) = post(&dir, port, Some("tok-cart"), &request);
    assert_eq!(status, 200, "{body}");
    let answer: CertificateResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.spiffe_id, "spiffe://mesh.example/ns/shop/sa/cart");
    let root_pem = std::fs::read_to_string(dir.join("ca/root.crt")).unwrap();
    assert_eq!(answer.trust_bundle, root_pem);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        answer.not_after > now && answer.not_after <= now + 91,
        "lifetime from --workload-cert-ttl: {} vs now {now}",
        answer.not_after
    );
    assert!(answer.not_before <= now);
    let chain = picket_mtls::cert::certs_from_pem(answer.certificate_chain.as_bytes()).unwrap();
    assert_eq!(chain.len(), 2);
    TrustBundle::from_pem(root_pem.as_bytes())
        .unwrap()
        .verify_chain(&chain, SystemTime::now())
        .unwrap();
    assert_eq!(spiffe_id_of(&chain[0]).unwrap().as_str(), answer.spiffe_id);
    // openssl agrees: the leaf verifies with the intermediate against root.crt, and carries
    // the SPIFFE id as its URI SAN, for the key of the CSR.
    let leaf = dir.join("leaf.pem");
    let inter = dir.join("inter.pem");
    std::fs::write(&leaf, picket_mtls::cert::certs_to_pem(&chain[..1])).unwrap();
    std::fs::write(&inter, picket_mtls::cert::certs_to_pem(&chain[1..])).unwrap();
    let out = run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca/root.crt"))
        .arg("-untrusted")
        .arg(&inter)
        .arg(&leaf));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&leaf));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("URI:spiffe://mesh.example/ns/shop/sa/cart"),
        "{text}"
    );
    let pubkey =
        |args: &[&str], file: &Path| run(Command::new("openssl").args(args).arg(file)).stdout;
    assert_eq!(
        pubkey(&["x509", "-noout", "-pubkey", "-in"], &leaf),
        pubkey(&["ec", "-pubout", "-in"], &dir.join("cart.key"))
    );

    // A CSR naming its own identity is fine too.
    let same = openssl_csr(
        &dir,
        "same",
        Some("subjectAltName=URI:spiffe://mesh.example/ns/shop/sa/cart"),
    );
    let (body, status) = post(
        &dir,
        port,
        Some("tok-cart"),
        &json!({ "csr": same }).to_string(),
    );
    assert_eq!(status, 200, "{body}");

    // Bad token, no token: 401 unauthenticated.
    let (body, status) = post(&dir, port, Some("tok-nope"), &request);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "unauthenticated")
    );
    let (body, status) = post(&dir, port, None, &request);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "unauthenticated")
    );

    // A CSR asking for another identity, or a DNS name: 403 identity_mismatch.
    for (name, ext) in [
        (
            "admin",
            "subjectAltName=URI:spiffe://mesh.example/ns/kube-system/sa/admin",
        ),
        (
            "dns",
            "subjectAltName=DNS:picket-injector.picket-system.svc",
        ),
    ] {
        let other = openssl_csr(&dir, name, Some(ext));
        let (body, status) = post(
            &dir,
            port,
            Some("tok-cart"),
            &json!({ "csr": other }).to_string(),
        );
        assert_eq!(
            (status, error_code(&body).as_str()),
            (403, "identity_mismatch"),
            "{body}"
        );
    }
    // The identity follows the token: the same SAN-less CSR with db's token is db's.
    let (body, status) = post(&dir, port, Some("tok-db"), &request);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("spiffe://mesh.example/ns/db/sa/postgres"));

    // Garbage body, a CSR that is not one, an oversized body: 400.
    let (body, status) = post(&dir, port, Some("tok-cart"), "garbage{");
    assert_eq!((status, error_code(&body).as_str()), (400, "bad_request"));
    let (body, status) = post(
        &dir,
        port,
        Some("tok-cart"),
        &json!({ "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" }).to_string(),
    );
    assert_eq!((status, error_code(&body).as_str()), (400, "bad_csr"));
    let big = json!({ "csr": "A".repeat(64 * 1024) }).to_string();
    // (Expect: 100-continue, so curl waits for the refusal instead of writing into a
    // connection the server has closed.)
    let (body, status) = post_with(
        &dir,
        port,
        Some("tok-cart"),
        &big,
        &["-H", "Expect: 100-continue"],
    );
    assert_eq!((status, error_code(&body).as_str()), (400, "bad_request"));

    // The serving certificate: from the mesh CA, for the DNS names, no SPIFFE id.
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername {DNS} -CAfile {} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -text",
        dir.join("ca/root.crt").display()
    )));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("DNS:{DNS}")), "{text}");
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(!text.contains("URI:"), "{text}");
    // A client that does not trust the mesh root refuses it.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null"])
        .args(["--resolve", &format!("{DNS}:{port}:127.0.0.1")])
        .arg(format!("https://{DNS}:{port}/v1/certificate"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Metrics count each decision.
    let out = run(Command::new("curl").args([
        "-sS",
        "--max-time",
        "10",
        &format!("http://127.0.0.1:{health}/metrics"),
    ]));
    let metrics = String::from_utf8_lossy(&out.stdout);
    for line in [
        r#"picket_identity_issued_total{result="issued"} 3"#,
        r#"picket_identity_issued_total{result="unauthenticated"} 2"#,
        r#"picket_identity_issued_total{result="identity_mismatch"} 2"#,
        r#"picket_identity_issued_total{result="bad_request"} 2"#,
        r#"picket_identity_issued_total{result="bad_csr"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    assert!(proc.stop().success());
    // One log line per decision, with the identity and never the token.
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains("tok-cart") && !log.contains("tok-nope"),
        "{log}"
    );
    let decisions: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("result").is_some())
        .collect();
    assert_eq!(decisions.len(), 10, "{log}");
    assert!(decisions.iter().any(|d| d["result"] == "issued"
        && d["namespace"] == "shop"
        && d["serviceaccount"] == "cart"));
    assert!(decisions.iter().any(|d| d["result"] == "refused"
        && d["code"] == "identity_mismatch"
        && d["namespace"] == "shop"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_with_a_mesh_ca_runs_the_identity_service_and_gives_sidecars_the_root() {
    let dir = tempdir("serve");
    let ca = ca_generate(&dir, "cluster.local");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("webhook-ca.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({"proxyImage": "p:1", "initImage": "p:1"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("tokens.json"), r#"{"t": "shop/web"}"#).unwrap();
    let (port, health, identity) = (free_port(), free_port(), free_port());
    let log = dir.join("stderr.log");
    let child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--health-listen", &format!("127.0.0.1:{health}")])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--mesh-ca-dir")
        .arg(&ca)
        .args(["--identity-listen", &format!("127.0.0.1:{identity}")])
        .args(["--identity-dns-name", DNS, "--ca-poll", "200ms"])
        .arg("--identity-tokens")
        .arg(dir.join("tokens.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut proc = Proc { child };
    wait_listening(&mut proc, port, &log);
    wait_listening(&mut proc, identity, &log);

    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "CREATE",
            "object": {"metadata": {"name": "web", "namespace": "shop"},
                       "spec": {"serviceAccountName": "web",
                                "containers": [{"name": "web", "image": "nginx"}]}}
        }
    });
    std::fs::write(dir.join("review.json"), review.to_string()).unwrap();
    fn find_env<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        match v {
            Value::Object(m) if m.get("name").and_then(Value::as_str) == Some(name) => Some(v),
            Value::Object(m) => m.values().find_map(|x| find_env(x, name)),
            Value::Array(a) => a.iter().find_map(|x| find_env(x, name)),
            _ => None,
        }
    }
    // The PICKET_IDENTITY_CA an admission gives the sidecar.
    let admitted_ca = || -> String {
        let out = run(Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(dir.join("webhook-ca.pem"))
            .args([
                "--data-binary",
                &format!("@{}", dir.join("review.json").display()),
            ])
            .arg(format!("https://localhost:{port}/mutate")));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        use base64::Engine as _;
        let patch = base64::engine::general_purpose::STANDARD
            .decode(answer["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        let text = patch.to_string();
        let env_value = find_env(&patch, "PICKET_IDENTITY_CA")
            .unwrap_or_else(|| panic!("no PICKET_IDENTITY_CA in {text}"));
        env_value["value"].as_str().unwrap().to_string()
    };
    let root = std::fs::read_to_string(ca.join("root.crt")).unwrap();
    assert_eq!(admitted_ca(), root);

    // The identity service answers beside the webhook.
    let csr = picket_mtls::generate_key_and_csr(None).unwrap();
    let (body, status) = post(
        &dir,
        identity,
        Some("t"),
        &json!({"csr": csr.csr_pem}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("spiffe://cluster.local/ns/shop/sa/web"));
    let out = run(Command::new("curl").args([
        "-sS",
        "--max-time",
        "10",
        &format!("http://127.0.0.1:{health}/metrics"),
    ]));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(r#"picket_identity_issued_total{result="issued"} 1"#));

    // A root rotation in the CA directory reaches pods admitted after it, without a restart:
    // their bundle has the new root and, during the rotation, the old one.
    let next = dir.join("next");
    run(Command::new(BIN).args([
        "ca",
        "generate",
        "--out",
        next.to_str().unwrap(),
        "--trust-domain",
        "cluster.local",
    ]));
    std::fs::copy(ca.join("root.crt"), ca.join("extra-roots.crt")).unwrap();
    for f in [
        "root.crt",
        "root.key",
        "intermediate.crt",
        "intermediate.key",
    ] {
        std::fs::copy(next.join(f), ca.join(f)).unwrap();
    }
    let new_root = std::fs::read_to_string(next.join("root.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bundle = admitted_ca();
        if bundle.contains(new_root.trim()) {
            assert!(bundle.contains(root.trim()), "{bundle}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the admitted bundle never had the new root"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(proc.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_a_mesh_ca_of_another_trust_domain() {
    let dir = tempdir("mismatch");
    let ca = ca_generate(&dir, "other.example");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({"proxyImage": "p:1", "initImage": "p:1"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("tokens.json"), "{}").unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--health-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--identity-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--mesh-ca-dir")
        .arg(&ca)
        .args(["--identity-dns-name", DNS])
        .arg("--identity-tokens")
        .arg(dir.join("tokens.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trust domain"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The serving certificate as openssl s_client sees it, verified against `root`; `None` when
/// the handshake does not verify.
fn serving_cert_text(port: u16, root: &Path) -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername {DNS} -CAfile {} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -text",
            root.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success() && text.contains("Certificate:")).then_some(text)
}

#[test]
fn a_changed_ca_directory_is_picked_up_and_a_broken_one_is_not() {
    let dir = tempdir("reload");
    let ca = ca_generate(&dir, "cluster.local");
    let next = dir.join("next");
    run(Command::new(BIN).args([
        "ca",
        "generate",
        "--out",
        next.to_str().unwrap(),
        "--trust-domain",
        "cluster.local",
    ]));
    std::fs::write(dir.join("tokens.json"), r#"{"t": "shop/cart"}"#).unwrap();
    let port = free_port();
    let log = dir.join("stderr.log");
    let child = Command::new(BIN)
        .arg("identity")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--mesh-ca-dir")
        .arg(&ca)
        .arg("--tokens")
        .arg(dir.join("tokens.json"))
        .args(["--dns-name", DNS, "--ca-poll", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut proc = Proc { child };
    wait_listening(&mut proc, port, &log);
    let old_root = dir.join("old-root.crt");
    std::fs::copy(ca.join("root.crt"), &old_root).unwrap();
    let csr = picket_mtls::generate_key_and_csr(None).unwrap();
    let request = json!({"csr": csr.csr_pem}).to_string();
    let issue = || {
        let (body, status) = post(&dir, port, Some("t"), &request);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<CertificateResponse>(&body).unwrap()
    };
    let verifies = |answer: &CertificateResponse, root: &Path| {
        let chain = picket_mtls::cert::certs_from_pem(answer.certificate_chain.as_bytes()).unwrap();
        TrustBundle::from_pem(&std::fs::read(root).unwrap())
            .unwrap()
            .verify_chain(&chain, SystemTime::now())
            .is_ok()
    };
    assert!(verifies(&issue(), &old_root));

    // A broken update (an intermediate key that is not the intermediate's): ignored.
    std::fs::copy(next.join("intermediate.key"), ca.join("intermediate.key")).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(serving_cert_text(port, &old_root).is_some());
    assert!(verifies(&issue(), &old_root));

    // Root rotation, step 2: the new root and intermediate, the old root still trusted.
    for f in [
        "root.crt",
        "root.key",
        "intermediate.crt",
        "intermediate.key",
    ] {
        std::fs::copy(next.join(f), ca.join(f)).unwrap();
    }
    std::fs::copy(&old_root, ca.join("extra-roots.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving_cert_text(port, &next.join("root.crt")).is_none() {
        assert!(
            Instant::now() < deadline,
            "the serving certificate was never re-issued from the new CA: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // (post() trusts ca/root.crt, now the new root.)
    let answer = issue();
    assert!(verifies(&answer, &next.join("root.crt")));
    assert!(!verifies(&answer, &old_root));
    // The bundle carries both roots while the old one is being rotated out.
    let bundle = TrustBundle::from_pem(answer.trust_bundle.as_bytes()).unwrap();
    assert_eq!(bundle.roots().len(), 2);
    assert!(proc.stop().success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("mesh CA not reloaded"), "{log}");
    assert!(log.contains("mesh CA reloaded"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
