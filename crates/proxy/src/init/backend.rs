//! Running the plan: which backend, applying it atomically, reading it back, cleaning up.
//!
//! Every command is run with an argument vector and its rules on standard input: no shell,
//! nothing from the flags is ever interpreted by one.
//!
//! # Backend detection (`--backend auto`)
//! The iptables-nft and iptables-legacy front ends program two different kernel subsystems.
//! Both are consulted by the kernel, but a tool that reads or manages the pod's rules with the
//! other front end (a CNI plugin, kube-proxy on hostNetwork pods, a debugging operator) does not
//! see them, and on some distributions mixing them has left pods unprotected. So picket uses
//! what the namespace already uses:
//! 1. picket's own rules from an earlier run (its chains in `iptables-nft-save` or
//!    `iptables-legacy-save`, or its `picket` table in `nft list tables`): the same backend
//!    again, so that a re-run replaces them instead of adding a second set;
//! 2. otherwise, rules of anyone else: the iptables front end whose `*-save` (IPv4 and IPv6,
//!    all tables) shows rules when the other shows none, or more rules when both do;
//! 3. otherwise (a fresh pod namespace, the usual case): iptables-nft when its save command
//!    works (the kernel has nf_tables), else iptables-legacy, else nft.
//!
//! # Verification
//! After applying, the rules are read back (`*-save -t nat`, `nft list table`) and compared
//! with the plan: every own chain holds exactly the planned rules in order, and the jumps from
//! PREROUTING and OUTPUT (the hooked chains for nft) exist. That proves the kernel holds and
//! hooks the redirect. It cannot prove that packets reach it: a rule placed before picket's
//! jump (reported as a warning), another nat hook at an earlier priority, an eBPF data path
//! that bypasses netfilter, or policy routing can still take traffic elsewhere, and nothing
//! here checks that picket is listening on the capture ports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{
    iptables_cleanup, nft_cleanup, Family, Ipv6Mode, Jumps, Plan, CHAIN_INBOUND, CHAIN_OUTPUT,
    JUMP_OUTPUT, JUMP_PREROUTING, NFT_TABLE, OWN_CHAINS,
};

pub const NFT_BINARY: &str = "nft";
/// `iptables-restore` flags: keep everything not named in the input; wait for the xtables
/// lock (held by any other iptables user on the node, for legacy) up to 10 s.
pub const RESTORE_ARGS: [&str; 3] = ["--noflush", "-w", "10"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Auto,
    IptablesNft,
    IptablesLegacy,
    Nft,
}

impl BackendChoice {
    pub fn explicit(self) -> Option<Backend> {
        match self {
            BackendChoice::Auto => None,
            BackendChoice::IptablesNft => Some(Backend::IptablesNft),
            BackendChoice::IptablesLegacy => Some(Backend::IptablesLegacy),
            BackendChoice::Nft => Some(Backend::Nft),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    IptablesNft,
    IptablesLegacy,
    Nft,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::IptablesNft => "iptables-nft",
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::Nft => "nft",
        }
    }

    /// The restore and save commands of an iptables backend (`nft` for nft).
    pub fn binaries(self, family: Family) -> (&'static str, &'static str) {
        match (self, family) {
            (Backend::IptablesNft, Family::V4) => ("iptables-nft-restore", "iptables-nft-save"),
            (Backend::IptablesNft, Family::V6) => ("ip6tables-nft-restore", "ip6tables-nft-save"),
            (Backend::IptablesLegacy, Family::V4) => {
                ("iptables-legacy-restore", "iptables-legacy-save")
            }
            (Backend::IptablesLegacy, Family::V6) => {
                ("ip6tables-legacy-restore", "ip6tables-legacy-save")
            }
            (Backend::Nft, _) => (NFT_BINARY, NFT_BINARY),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{binary} not found ({why}); install it in the init container image (package iptables, or nftables for --backend nft), or choose another --backend")]
    MissingBinary { binary: String, why: String },
    #[error("{command}: permission denied ({detail}); the init container must run as root (runAsUser: 0) with the NET_ADMIN and NET_RAW capabilities (securityContext.capabilities.add: [NET_ADMIN, NET_RAW])")]
    PermissionDenied { command: String, detail: String },
    #[error("{command} failed ({status}): {detail}")]
    Rejected {
        command: String,
        status: String,
        detail: String,
    },
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{backend} {family}: the rules read back are not the ones installed: {what}; the redirect is not in effect")]
    Verify {
        backend: &'static str,
        family: &'static str,
        what: String,
    },
    #[error("--ipv6 on, but IPv6 rules cannot be installed: {0}")]
    Ipv6Required(String),
    #[error("no usable rule backend: {0}; install iptables (iptables-nft or iptables-legacy) or nftables in the init container image, or name one with --backend")]
    NoBackend(String),
}

fn log(msg: &str) {
    eprintln!("picket init: {msg}");
}

/// `name` in PATH, or in the sbin directories (not always in a container's PATH).
fn find_binary(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn require_binary(name: &str) -> Result<PathBuf, InitError> {
    find_binary(name).ok_or_else(|| InitError::MissingBinary {
        binary: name.to_string(),
        why: "not in PATH, /usr/sbin or /sbin".to_string(),
    })
}

/// Runs `bin args`, with `stdin` as its input; its standard output, or a classified error.
fn run(bin: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, InitError> {
    let command = format!("{} {}", bin.display(), args.join(" "))
        .trim_end()
        .to_string();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => InitError::MissingBinary {
                binary: bin.display().to_string(),
                why: source.to_string(),
            },
            _ => InitError::Spawn {
                command: command.clone(),
                source,
            },
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that exits early closes its end; its exit status says why.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| InitError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = stderr.trim().replace('\n', "; ");
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission denied")
        || lower.contains("operation not permitted")
        || lower.contains("you must be root")
    {
        return Err(InitError::PermissionDenied { command, detail });
    }
    Err(InitError::Rejected {
        command,
        status: out.status.to_string(),
        detail: if detail.is_empty() {
            "no message".to_string()
        } else {
            detail
        },
    })
}

/// The restore and save commands of an iptables backend. The `-nft`/`-legacy` names first;
/// else the plain `iptables-restore` when its `--version` says it is that variant.
fn iptables_tools(backend: Backend, family: Family) -> Result<(PathBuf, PathBuf), InitError> {
    let (restore, save) = backend.binaries(family);
    if let (Some(r), Some(s)) = (find_binary(restore), find_binary(save)) {
        return Ok((r, s));
    }
    let (plain_restore, plain_save) = match family {
        Family::V4 => ("iptables-restore", "iptables-save"),
        Family::V6 => ("ip6tables-restore", "ip6tables-save"),
    };
    if let (Some(r), Some(s)) = (find_binary(plain_restore), find_binary(plain_save)) {
        let version = run(&r, &["--version"], None).unwrap_or_default();
        let is_nft = version.contains("nf_tables");
        if is_nft == (backend == Backend::IptablesNft) {
            return Ok((r, s));
        }
    }
    Err(InitError::MissingBinary {
        binary: restore.to_string(),
        why: format!("neither {restore}/{save} nor a {plain_restore} of that variant is installed"),
    })
}

fn has_own_chains(save: &str) -> bool {
    save.lines()
        .any(|l| OWN_CHAINS.iter().any(|c| l.starts_with(&format!(":{c} "))))
}

fn count_rules(save: &str) -> usize {
    save.lines().filter(|l| l.starts_with("-A ")).count()
}

fn nft_has_own_table(tables: &str) -> bool {
    tables.lines().any(|l| {
        let l = l.trim();
        l == format!("table ip {NFT_TABLE}") || l == format!("table ip6 {NFT_TABLE}")
    })
}

/// What one iptables front end shows in this namespace (IPv4 and, when it works, IPv6; all
/// tables); `None` when it is not installed or cannot read (no kernel support).
fn iptables_view(backend: Backend) -> Option<String> {
    let (_, save4) = iptables_tools(backend, Family::V4).ok()?;
    let mut text = run(&save4, &[], None).ok()?;
    if let Ok((_, save6)) = iptables_tools(backend, Family::V6) {
        text.push_str(&run(&save6, &[], None).unwrap_or_default());
    }
    Some(text)
}

fn nft_view() -> Option<String> {
    let nft = find_binary(NFT_BINARY)?;
    run(&nft, &["list", "tables"], None).ok()
}

/// The backend for `--backend auto` (see the module documentation), and why.
fn detect() -> Result<(Backend, String), InitError> {
    let ipt_nft = iptables_view(Backend::IptablesNft);
    let legacy = iptables_view(Backend::IptablesLegacy);
    let nft = nft_view();
    let own = [
        ipt_nft.as_deref().is_some_and(has_own_chains),
        legacy.as_deref().is_some_and(has_own_chains),
        nft.as_deref().is_some_and(nft_has_own_table),
    ];
    if own.iter().filter(|o| **o).count() > 1 {
        log("warning: picket's rules are in more than one backend (iptables-nft, iptables-legacy, nft); the first is kept up to date, `picket init --cleanup` removes them from all");
    }
    if own[0] {
        return Ok((
            Backend::IptablesNft,
            "picket's chains from an earlier run are there".into(),
        ));
    }
    if own[1] {
        return Ok((
            Backend::IptablesLegacy,
            "picket's chains from an earlier run are there".into(),
        ));
    }
    if own[2] {
        return Ok((
            Backend::Nft,
            "picket's table from an earlier run is there".into(),
        ));
    }
    let n = ipt_nft.as_deref().map(count_rules).unwrap_or(0);
    let l = legacy.as_deref().map(count_rules).unwrap_or(0);
    if n > 0 || l > 0 {
        let why =
            format!("the namespace has {n} iptables-nft rule(s) and {l} iptables-legacy rule(s)");
        return Ok(if l > n {
            (Backend::IptablesLegacy, why)
        } else {
            (Backend::IptablesNft, why)
        });
    }
    let why = "no rules in the namespace yet";
    if ipt_nft.is_some() {
        Ok((Backend::IptablesNft, format!("{why}; nf_tables available")))
    } else if legacy.is_some() {
        Ok((
            Backend::IptablesLegacy,
            format!("{why}; iptables-nft unavailable"),
        ))
    } else if nft.is_some() {
        Ok((Backend::Nft, format!("{why}; only nft available")))
    } else {
        Err(InitError::NoBackend(
            "neither iptables-nft, iptables-legacy nor nft is installed and working".into(),
        ))
    }
}

fn choose(choice: BackendChoice) -> Result<Backend, InitError> {
    match choice.explicit() {
        Some(b) => {
            log(&format!("backend {} (--backend)", b.name()));
            Ok(b)
        }
        None => {
            let (b, why) = detect()?;
            log(&format!("backend {} (auto: {why})", b.name()));
            Ok(b)
        }
    }
}

/// Why the namespace has no IPv6, if it has none.
fn namespace_without_ipv6() -> Option<String> {
    match std::fs::read_to_string("/proc/net/if_inet6") {
        Ok(s) if !s.trim().is_empty() => None,
        Ok(_) => Some(
            "the network namespace has no IPv6 address (IPv6 disabled, or no interface up)".into(),
        ),
        Err(e) => Some(format!(
            "no IPv6 in this kernel or namespace (/proc/net/if_inet6: {e})"
        )),
    }
}

/// The families to handle: IPv4 always; IPv6 unless off, or unavailable under auto (with a log
/// line). `probe` says whether ip6 nat works with this backend.
fn families(
    mode: Ipv6Mode,
    probe: impl FnOnce() -> Result<(), String>,
) -> Result<Vec<Family>, InitError> {
    if mode == Ipv6Mode::Off {
        log("IPv6: off (--ipv6 off); IPv4 rules only");
        return Ok(vec![Family::V4]);
    }
    let why_not = namespace_without_ipv6().or_else(|| probe().err());
    match (why_not, mode) {
        (None, _) => Ok(vec![Family::V4, Family::V6]),
        (Some(why), Ipv6Mode::On) => Err(InitError::Ipv6Required(why)),
        (Some(why), _) => {
            log(&format!(
                "IPv6 skipped: {why}; IPv4 rules only (--ipv6 on makes this an error)"
            ));
            Ok(vec![Family::V4])
        }
    }
}

fn iptables_ipv6_probe(backend: Backend) -> Result<(), String> {
    let (_, save) = iptables_tools(backend, Family::V6).map_err(|e| e.to_string())?;
    run(&save, &["-t", "nat"], None)
        .map(|_| ())
        .map_err(|e| format!("ip6tables nat table unavailable: {e}"))
}

/// Installs the plan; verified before returning Ok.
pub fn install(plan: &Plan, choice: BackendChoice, ipv6: Ipv6Mode) -> Result<(), InitError> {
    let backend = choose(choice)?;
    match backend {
        Backend::Nft => {
            let nft = require_binary(NFT_BINARY)?;
            let fams = families(ipv6, || {
                run(
                    &nft,
                    &["-c", "-f", "-"],
                    Some(&plan.nft_install(&[Family::V6])),
                )
                .map(|_| ())
                .map_err(|e| format!("ip6 nat unavailable in nftables: {e}"))
            })?;
            run(&nft, &["-f", "-"], Some(&plan.nft_install(&fams)))?;
            for f in fams {
                let listed = run(&nft, &["list", "table", f.nft().0, NFT_TABLE], None)?;
                verify_nft(plan, f, &listed).map_err(|what| InitError::Verify {
                    backend: backend.name(),
                    family: f.name(),
                    what,
                })?;
                log(&format!(
                    "{}: table {} {NFT_TABLE} installed and verified (inbound -> {}, outbound -> {})",
                    f.name(),
                    f.nft().0,
                    plan.inbound_port,
                    plan.outbound_port
                ));
            }
        }
        Backend::IptablesNft | Backend::IptablesLegacy => {
            let fams = families(ipv6, || iptables_ipv6_probe(backend))?;
            for f in fams {
                let (restore, save) = iptables_tools(backend, f)?;
                let before = run(&save, &["-t", "nat"], None)?;
                let have = Jumps::count_in(&before);
                let add = Jumps {
                    prerouting: usize::from(have.prerouting == 0),
                    output: usize::from(have.output == 0),
                };
                run(
                    &restore,
                    &RESTORE_ARGS,
                    Some(&plan.iptables_install(f, add)),
                )?;
                let after = run(&save, &["-t", "nat"], None)?;
                verify_iptables(plan, f, &after).map_err(|what| InitError::Verify {
                    backend: backend.name(),
                    family: f.name(),
                    what,
                })?;
                log(&format!(
                    "{}: {} chains installed and verified (inbound -> {}, outbound -> {}){}",
                    f.name(),
                    backend.name(),
                    plan.inbound_port,
                    plan.outbound_port,
                    if add == Jumps::default() {
                        "; jumps were already there"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Checks `iptables-save -t nat` output against the plan (module documentation: what it
/// proves). Rules ahead of picket's jumps are reported, not refused.
pub fn verify_iptables(plan: &Plan, family: Family, save: &str) -> Result<(), String> {
    let lines: Vec<&str> = save.lines().map(str::trim_end).collect();
    for (chain, expected) in plan.iptables_chains(family) {
        if !lines.iter().any(|l| l.starts_with(&format!(":{chain} "))) {
            return Err(format!("chain {chain} is missing"));
        }
        let prefix = format!("-A {chain} ");
        let found: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        if found != expected {
            return Err(format!(
                "chain {chain} holds [{}], expected [{}]",
                found.join(" | "),
                expected.join(" | ")
            ));
        }
    }
    let jumps = Jumps::count_in(save);
    if jumps.prerouting == 0 {
        return Err(format!("no jump from PREROUTING to {CHAIN_INBOUND}"));
    }
    if jumps.output == 0 {
        return Err(format!("no jump from OUTPUT to {CHAIN_OUTPUT}"));
    }
    for (base, jump) in [("PREROUTING", JUMP_PREROUTING), ("OUTPUT", JUMP_OUTPUT)] {
        let prefix = format!("-A {base} ");
        let ahead = lines
            .iter()
            .take_while(|l| **l != jump)
            .filter(|l| l.starts_with(&prefix))
            .count();
        if ahead > 0 {
            log(&format!(
                "warning: {} {ahead} rule(s) in nat {base} come before picket's jump and may take packets first",
                family.name()
            ));
        }
    }
    Ok(())
}

/// Checks `nft list table FAMILY picket` output against the plan.
pub fn verify_nft(plan: &Plan, family: Family, listed: &str) -> Result<(), String> {
    let mut chains: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for line in listed.lines().map(str::trim) {
        if let Some(name) = line
            .strip_prefix("chain ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            chains.push((name.to_string(), Vec::new(), Vec::new()));
        } else if line.is_empty() || line == "}" || line.starts_with("table ") {
            continue;
        } else if let Some((_, headers, rules)) = chains.last_mut() {
            if line.starts_with("type ") {
                headers.push(line.to_string());
            } else {
                rules.push(line.to_string());
            }
        }
    }
    for (chain, expected) in plan.nft_chains(family) {
        let Some((_, headers, rules)) = chains.iter().find(|(n, _, _)| n == chain) else {
            return Err(format!("chain {chain} is missing"));
        };
        if rules != &expected {
            return Err(format!(
                "chain {chain} holds [{}], expected [{}]",
                rules.join(" | "),
                expected.join(" | ")
            ));
        }
        let hook = match chain {
            "prerouting" => Some("type nat hook prerouting "),
            "output" => Some("type nat hook output "),
            _ => None,
        };
        if let Some(hook) = hook {
            if !headers.iter().any(|h| h.starts_with(hook)) {
                return Err(format!("chain {chain} is not hooked ({hook}...)"));
            }
        }
    }
    Ok(())
}

/// Removes picket's chains and jumps (or tables): from the named backend, or under auto from
/// every backend that holds some.
pub fn cleanup(choice: BackendChoice, ipv6: Ipv6Mode) -> Result<(), InitError> {
    let backends: Vec<Backend> = match choice.explicit() {
        Some(b) => vec![b],
        None => {
            let mut found = Vec::new();
            for b in [Backend::IptablesNft, Backend::IptablesLegacy] {
                if iptables_view(b).as_deref().is_some_and(has_own_chains) {
                    found.push(b);
                }
            }
            if nft_view().as_deref().is_some_and(nft_has_own_table) {
                found.push(Backend::Nft);
            }
            if found.is_empty() {
                log("cleanup: no picket rules found in any backend; nothing to remove");
                return Ok(());
            }
            found
        }
    };
    for backend in backends {
        match backend {
            Backend::Nft => {
                let nft = require_binary(NFT_BINARY)?;
                let fams: Vec<Family> = if ipv6 == Ipv6Mode::Off {
                    vec![Family::V4]
                } else {
                    vec![Family::V4, Family::V6]
                };
                run(&nft, &["-f", "-"], Some(&nft_cleanup(&fams)))?;
                let tables = run(&nft, &["list", "tables"], None)?;
                for f in fams {
                    let t = format!("table {} {NFT_TABLE}", f.nft().0);
                    if tables.lines().any(|l| l.trim() == t) {
                        return Err(InitError::Verify {
                            backend: backend.name(),
                            family: f.name(),
                            what: format!("{t} is still there after cleanup"),
                        });
                    }
                }
                log("cleanup: nft tables removed");
            }
            Backend::IptablesNft | Backend::IptablesLegacy => {
                // IPv6 rules from an earlier run are removed even if the addresses are gone
                // since: only whether ip6 nat can be read matters here.
                let mut fams = vec![Family::V4];
                if ipv6 != Ipv6Mode::Off {
                    match iptables_ipv6_probe(backend) {
                        Ok(()) => fams.push(Family::V6),
                        Err(why) if ipv6 == Ipv6Mode::On => {
                            return Err(InitError::Ipv6Required(why))
                        }
                        Err(why) => log(&format!("cleanup: IPv6 skipped: {why}")),
                    }
                }
                for f in fams {
                    let (restore, save) = iptables_tools(backend, f)?;
                    let before = run(&save, &["-t", "nat"], None)?;
                    let jumps = Jumps::count_in(&before);
                    if !has_own_chains(&before) && jumps == Jumps::default() {
                        log(&format!(
                            "cleanup: {} {}: no picket rules; nothing to remove",
                            backend.name(),
                            f.name()
                        ));
                        continue;
                    }
                    run(&restore, &RESTORE_ARGS, Some(&iptables_cleanup(jumps)))?;
                    let after = run(&save, &["-t", "nat"], None)?;
                    if has_own_chains(&after) || Jumps::count_in(&after) != Jumps::default() {
                        return Err(InitError::Verify {
                            backend: backend.name(),
                            family: f.name(),
                            what: "picket's chains or jumps are still there after cleanup".into(),
                        });
                    }
                    log(&format!(
                        "cleanup: {} {}: chains and jumps removed",
                        backend.name(),
                        f.name()
                    ));
                }
            }
        }
    }
    Ok(())
}
