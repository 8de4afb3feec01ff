//! Shared by the proxy's integration tests: child processes stopped on drop, the Python test
//! peers, a running `picket proxy`, curl.
#![allow(dead_code)]

pub mod h2_backend;
pub mod identity_double;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Backend {
    pub _proc: Proc,
    pub addr: SocketAddr,
}

pub fn backend() -> Backend {
    python_peer("backend.py")
}

/// A server-speaks-first echo peer (`tests/support/greeter.py`).
pub fn greeter() -> Backend {
    python_peer("greeter.py")
}

fn python_peer(script: &str) -> Backend {
    python_peer_with(Command::new("python3"), script)
}

/// Starts a test peer script through `cmd` (`python3`, or a wrapper such as `ip netns exec`).
/// It prints its port on its first line.
pub fn python_peer_with(cmd: Command, script: &str) -> Backend {
    python_peer_on(cmd, script, "127.0.0.1")
}

/// The same, listening on `host` (`::1` for IPv6).
pub fn python_peer_on(mut cmd: Command, script: &str, host: &str) -> Backend {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let ip: std::net::IpAddr = host.parse().expect("peer address");
    let mut child = cmd
        .arg(script)
        .arg(host)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("backend port");
    Backend {
        _proc: Proc(child),
        addr: SocketAddr::new(ip, port),
    }
}

pub struct Picket {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The admin endpoint, when started with `--admin-listen`.
    pub admin: Option<SocketAddr>,
    /// Block log lines (stdout), as they arrive.
    pub lines: mpsc::Receiver<String>,
}

impl Picket {
    /// Gateway mode on an ephemeral port in front of `upstream`.
    pub fn start(upstream: SocketAddr, extra: &[&str]) -> Picket {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_picket"));
        cmd.args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
        ])
        .args(extra);
        Picket::spawn(cmd)
    }

    /// Runs `cmd` (a `picket proxy` command line, possibly behind a wrapper) with JSON logs
    /// and waits for its start-up line.
    pub fn spawn(mut cmd: Command) -> Picket {
        let mut child = cmd
            .args(["--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("picket proxy");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (addr_tx, addr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in stderr.lines().map_while(Result::ok) {
                if !sent && line.contains("picket proxy started") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let listen = v["fields"]["listen"].as_str().unwrap().to_string();
                    let admin = v["fields"]["admin"].as_str().unwrap_or("").to_string();
                    let _ = addr_tx.send((listen, admin));
                    sent = true;
                }
            }
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (listen, admin) = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("picket did not start");
        Picket {
            proc: Proc(child),
            addr: listen.split(',').next().unwrap().parse().unwrap(),
            admin: admin.parse().ok(),
            lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The next block log line, parsed.
    pub fn next_log(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(5))
            .expect("no block log line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    pub fn no_more_logs(&self) {
        if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            panic!("unexpected block log line: {l}");
        }
    }
}

/// curl's exit status and stdout.
pub fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
