//! Transparent mode on real kernel redirection: inside a network namespace this test creates
//! (and deletes), an iptables `REDIRECT` rule sends the client's outbound connections to
//! picket's 15001 listener, except picket's own (UID 2102), exactly as the init container will
//! install it. picket must recover the original destination, inspect, and forward there.
//!
//! Needs root, `ip`, `iptables` and `setpriv` (.ci/run installs them and runs as root). Outside
//! CI without them the test says so and passes; under `CI=true` it fails instead.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use common::{python_peer_on, Picket};

const PROXY_UID: &str = "2102";

fn have(tool: &str) -> bool {
    Command::new("sh")
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
    for tool in ["ip", "iptables", "setpriv", "curl"] {
        if !have(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    Ok(())
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        run("ip", &["netns", "add", name]);
        let ns = Netns(name.to_string());
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, prog]);
        c
    }

    fn exec_ok(&self, argv: &[&str]) {
        let status = self.cmd(argv[0]).args(&argv[1..]).status().unwrap();
        assert!(status.success(), "in {}: {argv:?} failed", self.0);
    }

    /// curl inside the namespace: exit status and body.
    fn curl(&self, args: &[&str]) -> (i32, String) {
        let out = self
            .cmd("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(prog: &str, args: &[&str]) {
    let status = Command::new(prog).args(args).status().unwrap();
    assert!(status.success(), "{prog} {args:?} failed");
}

/// The picket binary, copied where UID 2102 can execute it (the checkout may sit under a
/// directory only root can enter).
fn binary_for_proxy_uid(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picket-transparent-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("picket");
    std::fs::copy(env!("CARGO_BIN_EXE_picket"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn outbound_ipv4_connections_go_to_their_original_destination_after_inspection() {
    outbound_through_redirect(Family::V4);
}

#[test]
fn outbound_ipv6_connections_go_to_their_original_destination_after_inspection() {
    outbound_through_redirect(Family::V6);
}

#[derive(Clone, Copy, PartialEq)]
enum Family {
    V4,
    V6,
}

fn outbound_through_redirect(family: Family) {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "transparent-mode test cannot run in CI: {why}"
        );
        eprintln!("skipping the transparent-mode test: {why}");
        return;
    }
    let (host, iptables, listen, url_host, tag) = match family {
        Family::V4 => ("127.0.0.1", "iptables", "127.0.0.1:15001", "127.0.0.1", "4"),
        Family::V6 => ("::1", "ip6tables", "[::1]:15001", "[::1]", "6"),
    };
    let ns = Netns::new(&format!("picket-t{}-{tag}", std::process::id()));
    let backend = python_peer_on(ns.cmd("python3"), "backend.py", host);
    let port = backend.addr.port().to_string();

    let bin = binary_for_proxy_uid(tag);
    let mut cmd = ns.cmd("setpriv");
    cmd.args([
        &format!("--reuid={PROXY_UID}"),
        &format!("--regid={PROXY_UID}"),
        "--clear-groups",
    ])
    .arg(&bin)
    .args([
        "proxy",
        "--outbound-listen",
        listen,
        "--inbound-listen",
        "127.0.0.1:15006",
        "--admin-listen",
        "127.0.0.1:15090",
    ]);
    let picket = Picket::spawn(cmd);
    // What `picket init` will install for outbound traffic: everything but picket's own.
    ns.exec_ok(&[
        iptables,
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "-d",
        host,
        "--dport",
        &port,
        "-m",
        "owner",
        "!",
        "--uid-owner",
        PROXY_UID,
        "-j",
        "REDIRECT",
        "--to-ports",
        "15001",
    ]);

    let url = format!("http://{url_host}:{port}");
    let (rc, body) = ns.curl(&["-g", &format!("{url}/hello?q=bash+away")]);
    assert_eq!(rc, 0, "benign request through the redirect");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/hello?q=bash+away");

    let (rc, _) = ns.curl(&[
        "-g",
        "-A",
        "() { :; }; /bin/id",
        &format!("{url}/cgi-bin/x"),
    ]);
    assert_eq!(rc, 56, "attack reset");
    let log = picket.next_log();
    assert_eq!(log["direction"], "outbound");
    assert_eq!(log["dst"], format!("{url_host}:{port}"));
    assert_eq!(log["signature"]["id"], "PKT-SHELLSHOCK-FUNC");

    // A connection made straight to the listener has no other destination: refused, not
    // looped back into picket.
    let (rc, _) = ns.curl(&["-g", &format!("http://{listen}/")]);
    assert_ne!(rc, 0);
    let (rc, metrics) = ns.curl(&["-f", "http://127.0.0.1:15090/metrics"]);
    assert_eq!(rc, 0);
    assert!(
        metrics.contains(r#"picket_connection_errors_total{reason="loop"} 1"#)
            || metrics.contains(r#"picket_connection_errors_total{reason="no_original_dst"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"picket_requests_total{direction="outbound",proto="http1",verdict="allow"} 1"#
        ),
        "{metrics}"
    );
    drop(picket);
    drop(backend);
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}
