//! The end-to-end test across network namespaces: runs `tools/e2e-netns.sh` (a node namespace
//! with a bridge, client, server and external pod namespaces, `picket init` and `picket proxy`
//! in the client and server pods with mesh certificates from the identity service
//! (`picket-injector identity` in the node namespace, its CA made by `picket-injector ca
//! generate`, renewed during the run); benign requests across mesh mTLS, proven by tcpdump
//! captures, attacks blocked outbound and inbound with their block log lines and the peer's
//! SPIFFE id, the un-meshed server in plaintext, an excluded port, IPv4 and IPv6, a strict
//! server) against this build's binaries, and requires it to exit 0. The script tears its
//! namespaces, processes and `/etc/netns/<ns>` directories down itself, also on failure.
//!
//! The picket-injector binary is taken from beside the picket binary: `cargo test
//! --workspace` builds it before any test runs (the injector's own tests need it); with `-p
//! picket` alone it must have been built into the same target directory first.
//!
//! Needs root, `ip`, `iptables`, `ss`, `setpriv`, `curl`, `tcpdump` and `/usr/bin/python3`
//! with grpcio (.ci/run installs them and runs as root). Outside CI without them the test
//! says so and passes; under `CI=true` it fails instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script's own waits are bounded; this is the backstop (it takes about 30 s, most of it
/// waiting for the certificates' renewal).
const LIMIT: Duration = Duration::from_secs(150);

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
        || Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

fn prerequisites() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    for tool in ["bash", "ip", "iptables", "ss", "setpriv", "curl", "tcpdump"] {
        if !have(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    let grpc = Command::new("/usr/bin/python3")
        .args(["-c", "import grpc"])
        .output();
    if !grpc.map(|o| o.status.success()).unwrap_or(false) {
        return Err("/usr/bin/python3 with grpcio (python3-grpcio) is not installed".into());
    }
    Ok(())
}

#[test]
fn end_to_end_across_network_namespaces() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the end-to-end netns test cannot run in CI: {why}"
        );
        eprintln!("skipping the end-to-end netns test (tools/e2e-netns.sh): {why}");
        return;
    }
    let picket = Path::new(env!("CARGO_BIN_EXE_picket"));
    let injector = picket.with_file_name("picket-injector");
    assert!(
        injector.is_file(),
        "the end-to-end netns test needs the picket-injector binary at {} (the identity \
         service): run with --workspace or build picket-injector first (cargo build -p \
         picket-injector, with the same profile and target directory)",
        injector.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/e2e-netns.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("PICKET_BIN", picket)
        .env("INJECTOR_BIN", &injector)
        .env_remove("KEEP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash tools/e2e-netns.sh");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + LIMIT;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline && !timed_out {
            // SIGTERM, so that the script's trap removes its namespaces and processes.
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        if Instant::now() > deadline + Duration::from_secs(20) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    // Shown with --nocapture, and on failure.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(!timed_out, "tools/e2e-netns.sh took longer than {LIMIT:?}");
    assert!(
        status.success(),
        "tools/e2e-netns.sh failed ({status}):\n{}",
        stderr
            .lines()
            .filter(|l| l.contains("FAILED"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stdout.contains("=== all checks passed"), "{stdout}");
}
