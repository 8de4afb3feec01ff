//! `picket init` on real kernels: the binary runs as root inside network namespaces this test
//! creates (and deletes on drop, even on failure), with a veth pair to a peer namespace. Only
//! addresses inside those namespaces are used. For each backend (iptables-nft,
//! iptables-legacy, nft): install, read back, install again (still one set), real redirection
//! (inbound to 15006, outbound to 15001, UID 2102 and exclusions bypass), cleanup back to the
//! exact nat state from before.
//!
//! Needs root, `ip`, `setpriv`, `python3` and the backend's tools (.ci/run installs them and
//! runs as root). Outside CI without them a test says so and passes; under `CI=true` it fails.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Proc;

const PROBE: &str = include_str!("support/tcp_probe.py");
const POD4: &str = "10.209.0.1";
const PEER4: &str = "10.209.0.2";
const PEER4_EXCLUDED: &str = "10.209.0.3";
const POD6: &str = "fd00:209::1";
const PEER6: &str = "fd00:209::2";
const PEER6_EXCLUDED: &str = "fd00:209::3";

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(tool).exists())
        || Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

fn prerequisites(tools: &[&str]) -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    for tool in ["ip", "setpriv", "python3"].iter().chain(tools) {
        if !have(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    Ok(())
}

/// False (after a message) when the test cannot run here; fails instead under `CI=true`.
fn can_run(test: &str, tools: &[&str]) -> bool {
    match prerequisites(tools) {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test} cannot run in CI: {why}"
            );
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// Runs `cmd` to completion within `secs`, killed by PID past that.
fn bounded(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish in {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run_ok(Command::new("ip").args(["netns", "add", name]));
        let ns = Netns(name.to_string());
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, prog]);
        c
    }

    fn argv(&self, argv: &[&str]) -> Command {
        let mut c = self.cmd(argv[0]);
        c.args(&argv[1..]);
        c
    }

    fn ok(&self, argv: &[&str]) -> String {
        run_ok(&mut self.argv(argv))
    }

    /// `picket init ARGS` in this namespace, as root.
    fn init(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(env!("CARGO_BIN_EXE_picket"));
        c.arg("init").args(args);
        bounded(c, 60)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A pod namespace and a peer namespace joined by a veth pair (eth0 in both).
struct Pair {
    pod: Netns,
    peer: Netns,
}

fn pair(tag: &str) -> Pair {
    let base = format!("picket-init-{}-{tag}", std::process::id());
    let pod = Netns::new(&format!("{base}-pod"));
    let peer = Netns::new(&format!("{base}-peer"));
    run_ok(Command::new("ip").args([
        "-n", &pod.0, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
        &peer.0,
    ]));
    for (ns, v4, v6) in [
        (&pod, vec![POD4], vec![POD6]),
        (
            &peer,
            vec![PEER4, PEER4_EXCLUDED],
            vec![PEER6, PEER6_EXCLUDED],
        ),
    ] {
        for a in v4 {
            ns.ok(&["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"]);
        }
        for a in v6 {
            ns.ok(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{a}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
        }
        ns.ok(&["ip", "link", "set", "eth0", "up"]);
    }
    Pair { pod, peer }
}

/// A `tcp_probe.py listen` process; one JSON line per accepted connection.
struct Listener {
    _proc: Proc,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Listener {
    fn start(ns: &Netns, addrs: &[&str]) -> Listener {
        let mut child = ns
            .cmd("python3")
            .args(["-c", PROBE, "listen"])
            .args(addrs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let proc = Proc(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let v = if line == "ready" {
                    serde_json::Value::String(line)
                } else {
                    serde_json::from_str(&line).unwrap_or(serde_json::Value::Null)
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("listener did not start");
        assert_eq!(first, "ready");
        Listener {
            _proc: proc,
            lines: rx,
        }
    }

    /// The next accepted connection: its local port and original destination.
    fn accepted(&self, what: &str) -> (u64, Option<String>) {
        let v = self
            .lines
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{what}: no connection arrived"));
        (
            v["local_port"].as_u64().unwrap(),
            v["orig_dst"].as_str().map(str::to_string),
        )
    }

    fn nothing_more(&self) {
        if let Ok(v) = self.lines.recv_timeout(Duration::from_millis(300)) {
            panic!("unexpected connection: {v}");
        }
    }
}

/// Connects from `ns` (as `uid` when given, through setpriv); whether it connected.
fn connect(ns: &Netns, uid: Option<u32>, host: &str, port: u16) -> bool {
    let mut c = match uid {
        Some(uid) => {
            let mut c = ns.cmd("setpriv");
            c.args([
                format!("--reuid={uid}").as_str(),
                &format!("--regid={uid}"),
                "--clear-groups",
                // Not a python3 shim under root's home, which another UID cannot run.
                if std::path::Path::new("/usr/bin/python3").exists() {
                    "/usr/bin/python3"
                } else {
                    "python3"
                },
            ]);
            c
        }
        None => ns.cmd("python3"),
    };
    c.args(["-c", PROBE, "connect", host, &port.to_string()]);
    bounded(c, 20).status.success()
}

#[derive(Clone, Copy, PartialEq)]
enum Be {
    IptNft,
    IptLegacy,
    Nft,
}

impl Be {
    fn flag(self) -> &'static str {
        match self {
            Be::IptNft => "iptables-nft",
            Be::IptLegacy => "iptables-legacy",
            Be::Nft => "nft",
        }
    }

    fn tools(self) -> Vec<&'static str> {
        match self {
            Be::IptNft => vec![
                "iptables-nft",
                "iptables-nft-restore",
                "iptables-nft-save",
                "ip6tables-nft",
                "ip6tables-nft-save",
            ],
            Be::IptLegacy => vec![
                "iptables-legacy",
                "iptables-legacy-restore",
                "iptables-legacy-save",
                "ip6tables-legacy",
                "ip6tables-legacy-save",
            ],
            Be::Nft => vec!["nft"],
        }
    }

    /// Rules of someone else, there before picket: they must survive everything.
    fn foreign_rules(self, ns: &Netns) {
        match self {
            Be::Nft => {
                let mut c = ns.cmd("nft");
                c.args([
                    "add table ip keep; add chain ip keep out { type nat hook output priority 0; }; add rule ip keep out udp dport 53 return",
                ]);
                run_ok(&mut c);
            }
            _ => {
                let (v4, v6) = match self {
                    Be::IptNft => ("iptables-nft", "ip6tables-nft"),
                    _ => ("iptables-legacy", "ip6tables-legacy"),
                };
                for bin in [v4, v6] {
                    ns.ok(&[bin, "-w", "10", "-t", "nat", "-N", "KEEP_ME"]);
                    ns.ok(&[
                        bin, "-w", "10", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "53",
                        "-j", "KEEP_ME",
                    ]);
                    ns.ok(&[
                        bin, "-w", "10", "-t", "nat", "-A", "KEEP_ME", "-j", "RETURN",
                    ]);
                }
            }
        }
    }

    /// The namespace's nat rules as this backend shows them, without comments and counters.
    fn nat_state(self, ns: &Netns) -> String {
        let raw = match self {
            Be::Nft => ns.ok(&["nft", "list", "ruleset"]),
            Be::IptNft => {
                ns.ok(&["iptables-nft-save", "-t", "nat"])
                    + &ns.ok(&["ip6tables-nft-save", "-t", "nat"])
            }
            Be::IptLegacy => {
                ns.ok(&["iptables-legacy-save", "-t", "nat"])
                    + &ns.ok(&["ip6tables-legacy-save", "-t", "nat"])
            }
        };
        raw.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match (l.starts_with(':'), l.rfind(" [")) {
                (true, Some(i)) => &l[..i],
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn iptables_nft_install_redirect_reinstall_cleanup() {
    full_cycle(Be::IptNft);
}

#[test]
fn iptables_legacy_install_redirect_reinstall_cleanup() {
    full_cycle(Be::IptLegacy);
}

#[test]
fn nft_install_redirect_reinstall_cleanup() {
    full_cycle(Be::Nft);
}

fn full_cycle(be: Be) {
    if !can_run(&format!("picket init ({})", be.flag()), &be.tools()) {
        return;
    }
    let p = pair(be.flag());
    be.foreign_rules(&p.pod);
    let before = be.nat_state(&p.pod);

    let flags = [
        "--backend",
        be.flag(),
        "--exclude-inbound-ports",
        "8081",
        "--exclude-outbound-ports",
        "9998",
        "--exclude-outbound-cidrs",
        &format!("{PEER4_EXCLUDED}/32,{PEER6_EXCLUDED}"),
    ];
    let out = p.pod.init(&flags);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "first install: {stderr}");
    for fam in ["IPv4", "IPv6"] {
        assert!(
            stderr.contains(&format!("picket init: {fam}: ")) && stderr.contains("verified"),
            "{stderr}"
        );
    }
    let installed = be.nat_state(&p.pod);
    // Read back: one set of rules per family, jumps once, exclusions in place.
    let expect: Vec<(&str, usize)> = match be {
        Be::Nft => vec![
            ("table ip picket {", 1),
            ("table ip6 picket {", 1),
            ("type nat hook prerouting", 2),
            ("meta l4proto tcp jump PICKET_INBOUND", 2),
            ("meta l4proto tcp jump PICKET_OUTPUT", 2),
            ("meta l4proto tcp redirect to :15006", 2),
            ("meta l4proto tcp redirect to :15001", 2),
            ("meta skuid 2102 return", 2),
            ("tcp dport 15090 return", 2),
            ("tcp dport 15443 return", 2),
            ("tcp dport 8081 return", 2),
            ("tcp dport 9998 return", 2),
            ("ip daddr 10.209.0.3 return", 1),
            ("ip6 daddr fd00:209::3 return", 1),
            ("table ip keep", 1),
        ],
        _ => vec![
            ("-A PREROUTING -p tcp -j PICKET_INBOUND", 2),
            ("-A OUTPUT -p tcp -j PICKET_OUTPUT", 2),
            (
                "-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
                2,
            ),
            ("-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001", 2),
            ("-A PICKET_OUTPUT -m owner --uid-owner 2102 -j RETURN", 2),
            ("-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN", 2),
            ("-A PICKET_INBOUND -p tcp -m tcp --dport 8081 -j RETURN", 2),
            ("-A PICKET_OUTPUT -p tcp -m tcp --dport 9998 -j RETURN", 2),
            ("-A PICKET_OUTPUT -d 10.209.0.3/32 -j RETURN", 1),
            ("-A PICKET_OUTPUT -d fd00:209::3/128 -j RETURN", 1),
            ("-A OUTPUT -p udp -m udp --dport 53 -j KEEP_ME", 2),
        ],
    };
    for (needle, n) in &expect {
        assert_eq!(count(&installed, needle), *n, "{needle:?} in\n{installed}");
    }

    // Twice: exactly the same rules, no second set.
    let out = p.pod.init(&flags);
    assert!(
        out.status.success(),
        "second install: {}",
        text(&out.stderr)
    );
    assert_eq!(be.nat_state(&p.pod), installed, "re-run changed the rules");

    // Real traffic.
    let pod_l = Listener::start(
        &p.pod,
        &[
            "0.0.0.0:15006",
            "[::]:15006",
            "0.0.0.0:15001",
            "[::]:15001",
            "0.0.0.0:8080",
            "0.0.0.0:8081",
            "0.0.0.0:15090",
        ],
    );
    let peer_l = Listener::start(&p.peer, &["0.0.0.0:9999", "[::]:9999", "0.0.0.0:9998"]);
    // Inbound, from the peer to an app port: to 15006 (although the app listens on 8080),
    // original destination kept.
    assert!(connect(&p.peer, None, POD4, 8080));
    assert_eq!(
        pod_l.accepted("inbound v4"),
        (15006, Some(format!("{POD4}:8080")))
    );
    assert!(connect(&p.peer, None, POD6, 8080));
    assert_eq!(
        pod_l.accepted("inbound v6"),
        (15006, Some(format!("[{POD6}]:8080")))
    );
    // Excluded inbound ports (the operator's, and the admin port) reach the port itself.
    assert!(connect(&p.peer, None, POD4, 8081));
    assert_eq!(pod_l.accepted("excluded inbound 8081").0, 8081);
    assert!(connect(&p.peer, None, POD4, 15090));
    assert_eq!(pod_l.accepted("admin port").0, 15090);
    // Outbound from an app process: to 15001.
    assert!(connect(&p.pod, None, PEER4, 9999));
    assert_eq!(
        pod_l.accepted("outbound v4"),
        (15001, Some(format!("{PEER4}:9999")))
    );
    assert!(connect(&p.pod, None, PEER6, 9999));
    assert_eq!(
        pod_l.accepted("outbound v6"),
        (15001, Some(format!("[{PEER6}]:9999")))
    );
    // Outbound from picket's UID: straight to the peer.
    assert!(connect(&p.pod, Some(2102), PEER4, 9999));
    assert_eq!(peer_l.accepted("uid 2102 v4").0, 9999);
    assert!(connect(&p.pod, Some(2102), PEER6, 9999));
    assert_eq!(peer_l.accepted("uid 2102 v6").0, 9999);
    // picket forwarding an inbound connection to the app (its UID, the pod's own address):
    // reaches the app, not 15006 again.
    assert!(connect(&p.pod, Some(2102), POD4, 8080));
    assert_eq!(pod_l.accepted("uid 2102 to the app").0, 8080);
    // Excluded CIDRs and port: straight to the peer.
    assert!(connect(&p.pod, None, PEER4_EXCLUDED, 9999));
    assert_eq!(peer_l.accepted("excluded cidr v4").0, 9999);
    assert!(connect(&p.pod, None, PEER6_EXCLUDED, 9999));
    assert_eq!(peer_l.accepted("excluded cidr v6").0, 9999);
    assert!(connect(&p.pod, None, PEER4, 9998));
    assert_eq!(peer_l.accepted("excluded port").0, 9998);
    // The pod talking to itself (own address, loopback) is not captured.
    assert!(connect(&p.pod, None, POD4, 8081));
    assert_eq!(pod_l.accepted("own address").0, 8081);
    assert!(connect(&p.pod, None, "127.0.0.1", 8081));
    assert_eq!(pod_l.accepted("loopback").0, 8081);
    pod_l.nothing_more();
    peer_l.nothing_more();

    // Cleanup: the nat rules are exactly what they were, and nothing is redirected.
    let out = p.pod.init(&["--cleanup", "--backend", be.flag()]);
    assert!(out.status.success(), "cleanup: {}", text(&out.stderr));
    assert_eq!(be.nat_state(&p.pod), before, "cleanup left a difference");
    assert!(connect(&p.peer, None, POD4, 8080));
    assert_eq!(pod_l.accepted("inbound after cleanup").0, 8080);
    assert!(connect(&p.pod, None, PEER4, 9999));
    assert_eq!(peer_l.accepted("outbound after cleanup").0, 9999);
    pod_l.nothing_more();
}

#[test]
fn auto_backend_follows_the_rules_already_in_the_namespace() {
    let tools = [Be::IptNft.tools(), Be::IptLegacy.tools()].concat();
    if !can_run("picket init auto detection", &tools) {
        return;
    }
    let ns = Netns::new(&format!("picket-init-{}-auto", std::process::id()));
    // The namespace already uses iptables-legacy (as a node whose tools are legacy would).
    ns.ok(&[
        "iptables-legacy",
        "-w",
        "10",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "53",
        "-j",
        "RETURN",
    ]);
    let out = ns.init(&[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("backend iptables-legacy (auto: the namespace has 0 iptables-nft rule(s) and 1 iptables-legacy rule(s))"),
        "{stderr}"
    );
    assert!(ns
        .ok(&["iptables-legacy-save", "-t", "nat"])
        .contains("-A OUTPUT -p tcp -j PICKET_OUTPUT"));
    assert!(!ns
        .ok(&["iptables-nft-save", "-t", "nat"])
        .contains("PICKET"));
    // Again: its own chains decide, still legacy, still one set.
    let out = ns.init(&[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("backend iptables-legacy (auto: picket's chains from an earlier run"),
        "{stderr}"
    );
    let legacy = ns.ok(&["iptables-legacy-save", "-t", "nat"]);
    assert_eq!(count(&legacy, "-A OUTPUT -p tcp -j PICKET_OUTPUT"), 1);
    // Cleanup under auto finds them there.
    let out = ns.init(&["--cleanup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let legacy = ns.ok(&["iptables-legacy-save", "-t", "nat"]);
    assert!(!legacy.contains("PICKET"), "{legacy}");
    assert!(legacy.contains("-A OUTPUT -p udp -m udp --dport 53 -j RETURN"));
}

#[test]
fn ipv6_is_skipped_with_a_log_line_when_the_namespace_has_none_unless_required() {
    if !can_run("picket init without IPv6", &Be::IptNft.tools()) {
        return;
    }
    let ns = Netns::new(&format!("picket-init-{}-no6", std::process::id()));
    ns.ok(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.ok(&["sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=1"]);
    let out = ns.init(&["--backend", "iptables-nft", "--ipv6", "on"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--ipv6 on, but IPv6 rules cannot be installed"),
        "{stderr}"
    );
    assert!(!ns.ok(&["iptables-nft-save"]).contains("PICKET"));
    let out = ns.init(&["--backend", "iptables-nft"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("IPv6 skipped: "), "{stderr}");
    assert!(ns
        .ok(&["iptables-nft-save", "-t", "nat"])
        .contains("-A OUTPUT -p tcp -j PICKET_OUTPUT"));
    assert!(!ns.ok(&["ip6tables-nft-save"]).contains("PICKET"));

    // Installed with IPv6, which then goes away: cleanup still removes the IPv6 rules.
    let ns = Netns::new(&format!("picket-init-{}-gone6", std::process::id()));
    let out = ns.init(&["--backend", "iptables-nft", "--ipv6", "on"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(ns.ok(&["ip6tables-nft-save"]).contains("PICKET_OUTPUT"));
    ns.ok(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.ok(&["sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=1"]);
    let out = ns.init(&["--cleanup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!ns.ok(&["ip6tables-nft-save"]).contains("PICKET"));
    assert!(!ns.ok(&["iptables-nft-save"]).contains("PICKET"));
}

/// The binary, copied where an unprivileged user can execute it; the copy is removed on drop.
struct AnyoneBin(PathBuf);

impl AnyoneBin {
    fn new(tag: &str) -> AnyoneBin {
        let dir = std::env::temp_dir().join(format!("picket-init-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let guard = AnyoneBin(dir.join("picket"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_picket"), &guard.0).unwrap();
        std::fs::set_permissions(&guard.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        guard
    }
}

impl Drop for AnyoneBin {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn as_nobody(ns: &Netns, bin: &AnyoneBin, env_path: &str, args: &[&str]) -> Output {
    let mut c = ns.cmd("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "env",
        &format!("PATH={env_path}"),
    ])
    .arg(&bin.0)
    .arg("init")
    .args(args);
    bounded(c, 30)
}

#[test]
fn dry_run_as_an_unprivileged_user_prints_the_plan_and_touches_nothing() {
    if !can_run("picket init --dry-run", &Be::IptNft.tools()) {
        return;
    }
    let ns = Netns::new(&format!("picket-init-{}-dry", std::process::id()));
    let state = |ns: &Netns| {
        ns.ok(&["iptables-nft-save"])
            + &ns.ok(&["ip6tables-nft-save"])
            + &{
                let o = ns.cmd("nft").args(["list", "ruleset"]).output();
                o.map(|o| text(&o.stdout)).unwrap_or_default()
            }
    };
    let before = state(&ns);
    let bin = AnyoneBin::new("dry");
    // No iptables or nft reachable either: PATH points nowhere.
    let out = as_nobody(
        &ns,
        &bin,
        "/nonexistent",
        &[
            "--dry-run",
            "--backend",
            "iptables-legacy",
            "--exclude-outbound-cidrs",
            "10.0.0.0/8",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("# backend: iptables-legacy\n"), "{stdout}");
    assert!(
        stdout.contains("run: iptables-legacy-restore --noflush -w 10 <<'EOF'\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("*nat\n:PICKET_INBOUND - [0:0]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("-A PICKET_OUTPUT -d 10.0.0.0/8 -j RETURN\n"));
    assert!(stdout.contains("-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"));
    assert!(stdout.contains("ip6tables-legacy-restore"));
    let out = as_nobody(
        &ns,
        &bin,
        "/nonexistent",
        &["--dry-run", "--backend", "nft"],
    );
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("table ip picket {\n"));
    assert_eq!(state(&ns), before, "a dry run changed the rules");
}

#[test]
fn without_net_admin_it_fails_and_says_what_to_do() {
    if !can_run("picket init without privileges", &Be::IptNft.tools()) {
        return;
    }
    let ns = Netns::new(&format!("picket-init-{}-eperm", std::process::id()));
    let bin = AnyoneBin::new("eperm");
    let out = as_nobody(
        &ns,
        &bin,
        "/usr/sbin:/usr/bin:/sbin:/bin",
        &["--backend", "iptables-nft"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("NET_ADMIN"), "{stderr}");
    // A backend whose tools are missing is named, and also fails.
    let out = as_nobody(&ns, &bin, "/nonexistent", &["--backend", "nft"]);
    let stderr = text(&out.stderr);
    if !have("nft") {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("nft not found"), "{stderr}");
    } else {
        // nft is found in /usr/sbin whatever PATH says; then it is the permission again.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("NET_ADMIN"), "{stderr}");
    }
    assert!(!ns.ok(&["iptables-nft-save"]).contains("PICKET"));
}

#[test]
fn invalid_flags_are_refused_before_anything_runs() {
    for (flag, value, msg) in [
        (
            "--exclude-outbound-cidrs",
            "10.0.0.0/8;reboot",
            "invalid CIDR",
        ),
        ("--exclude-outbound-cidrs", "10.0.0.0/33", "invalid CIDR"),
        ("--exclude-inbound-ports", "22,0", "invalid port"),
        ("--exclude-outbound-ports", "65536", "invalid port"),
        ("--inbound-capture-port", "$(id)", "invalid port"),
    ] {
        let out = bounded(
            {
                let mut c = Command::new(env!("CARGO_BIN_EXE_picket"));
                c.args(["init", "--dry-run", flag, value]);
                c
            },
            10,
        );
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(msg), "{flag} {value}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}
