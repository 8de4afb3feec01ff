//! `picket-injector serve` end to end: the real binary, a self-signed serving certificate
//! made here with rcgen, and curl as the client (`--cacert`), over HTTPS.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("picket-injector-{tag}-{}", std::process::id()));
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

/// The server process; stopped by PID when dropped (also on a failed assertion).
struct Server {
    child: Child,
}

impl Server {
    /// SIGTERM by PID, then wait for the exit.
    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "picket-injector did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// Body and HTTP status of a curl call made with `-w '\n%{http_code}'`.
fn body_and_status(out: &Output) -> (String, u16) {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (body.to_string(), status.trim().parse().expect("status"))
}

fn post(dir: &Path, port: u16, body: &str) -> (String, u16) {
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    let url = format!("https://localhost:{port}/mutate");
    let data = format!("@{}", file.display());
    let cacert = dir.join("ca.pem");
    let out = curl(&[
        "--cacert",
        cacert.to_str().unwrap(),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &data,
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    body_and_status(&out)
}

#[test]
fn admission_review_round_trip_over_https_with_curl() {
    let dir = tempdir("serve");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("ca.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({
            "proxyImage": "registry.example/picket:0.1.0",
            "initImage": "registry.example/picket:0.1.0",
            "nativeSidecar": false,
            "namespaces": {"shop": {"picket.dev/mode": "monitor"}}
        })
        .to_string(),
    )
    .unwrap();
    let port = free_port();
    let health_port = free_port();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_picket-injector"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--health-listen", &format!("127.0.0.1:{health_port}")])
        .args(["--tls-cert", dir.join("tls.crt").to_str().unwrap()])
        .args(["--tls-key", dir.join("tls.key").to_str().unwrap()])
        .args(["--config", dir.join("config.json").to_str().unwrap()])
        .args(["--tls-poll-ms", "200"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("picket-injector starts");
    let mut server = Server { child };

    // Ready when /readyz answers.
    let readyz = format!("http://127.0.0.1:{health_port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = curl(&["-w", "\n%{http_code}", &readyz]);
        if out.status.success() && body_and_status(&out).1 == 200 {
            break;
        }
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "picket-injector exited: {}",
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "picket-injector never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = curl(&[
        "-w",
        "\n%{http_code}",
        &format!("http://127.0.0.1:{health_port}/healthz"),
    ]);
    assert_eq!(body_and_status(&out), ("ok\n".to_string(), 200));

    // A Pod of a ReplicaSet (generateName, no name), with an HTTP readiness probe.
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-5d8f7b-", "namespace": "shop",
                     "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                 "ports": [{"containerPort": 80, "name": "http"}],
                                 "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}}]}
    });
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c8f0e-9a51-4d43-9d5e-1b2a3c4d5e6f",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE", "object": pod
        }
    });
    let (body, status) = post(&dir, port, &review.to_string());
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "3f1c8f0e-9a51-4d43-9d5e-1b2a3c4d5e6f"
    );
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let mut patched = review["request"]["object"].clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(patched.clone()).unwrap();
    let spec = typed.spec.unwrap();
    let containers: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(containers, ["picket-proxy", "web"]);
    let inits: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["picket-init"]);
    let proxy = &spec.containers[0];
    let args = proxy.args.clone().unwrap();
    assert_eq!(args[..3], ["proxy", "--mode", "monitor"]);
    assert!(proxy.lifecycle.as_ref().unwrap().post_start.is_some());
    let annotations = typed.metadata.annotations.unwrap();
    assert_eq!(
        annotations["picket.dev/injected"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        patched["spec"]["containers"][1]["readinessProbe"]["httpGet"]["path"],
        "/app-health/web/readyz"
    );

    // Malformed requests: not JSON → 400 with an error; no request → 400; wrong version → denied.
    let (body, status) = post(&dir, port, "{\"apiVersion\": ");
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let (body, status) = post(
        &dir,
        port,
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    );
    assert_eq!(status, 400, "{body}");
    let mut old = review.clone();
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (body, status) = post(&dir, port, &old.to_string());
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["uid"],
        "3f1c8f0e-9a51-4d43-9d5e-1b2a3c4d5e6f"
    );
    // Anything but POST /mutate.
    let out = curl(&[
        "--cacert",
        dir.join("ca.pem").to_str().unwrap(),
        "-w",
        "\n%{http_code}",
        &format!("https://localhost:{port}/other"),
    ]);
    assert_eq!(body_and_status(&out).1, 404);

    // Rotation: a half-written pair (new key, old certificate) keeps the old certificate in
    // force; the complete new pair is served without a restart.
    let new = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls.key"), new.signing_key.serialize_pem()).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let (_, status) = post(&dir, port, &review.to_string());
    assert_eq!(status, 200, "the old certificate is still served");
    std::fs::write(dir.join("tls.crt"), new.cert.pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), new.cert.pem()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = curl(&[
            "--cacert",
            dir.join("ca.pem").to_str().unwrap(),
            "-o",
            "/dev/null",
            "-w",
            "\n%{http_code}",
            &format!("https://localhost:{port}/other"),
        ]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, status) = post(&dir, port, &review.to_string());
    assert_eq!(status, 200);

    // Stopped by PID with SIGTERM; it exits cleanly.
    let status = server.stop();
    assert!(status.success(), "{status:?}");

    // One JSON log line per admission decision.
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let decisions: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("decision").is_some())
        .collect();
    let inject = decisions
        .iter()
        .find(|l| l["decision"] == "inject")
        .expect("an inject decision logged");
    assert_eq!(inject["uid"], "3f1c8f0e-9a51-4d43-9d5e-1b2a3c4d5e6f");
    assert_eq!(inject["namespace"], "shop");
    assert_eq!(inject["pod"], "web-5d8f7b-*");
    assert!(inject["reason"].as_str().unwrap().contains("monitor"));
    assert!(decisions.iter().any(|l| l["decision"] == "deny"));
    assert_eq!(
        decisions
            .iter()
            .filter(|l| l["decision"] == "bad_request")
            .count(),
        2
    );
    let _ = std::fs::remove_dir_all(&dir);
}
