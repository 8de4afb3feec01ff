//! `picket init`: what the injected init container runs. It installs, in the pod's network
//! namespace, the nat rules that send the pod's TCP through picket: inbound to the inbound
//! capture port (15006), outbound to the outbound capture port (15001), except picket's own
//! traffic (its UID), loopback traffic, and what the operator excludes.
//!
//! This module is the rule plan (pure, unit-tested: the exact `iptables-restore` and `nft`
//! input for given flags); [`backend`] runs it (backend detection, atomic apply, read-back
//! verification, cleanup).
//!
//! The structure follows istio-init's well-known one, with picket's names, in the nat table:
//!
//! ```text
//! PREROUTING -p tcp -j PICKET_INBOUND
//!   PICKET_INBOUND: excluded inbound ports (15090, 15443 always) RETURN, then -j PICKET_IN_REDIRECT
//!   PICKET_IN_REDIRECT: REDIRECT --to-ports 15006
//! OUTPUT -p tcp -j PICKET_OUTPUT
//!   PICKET_OUTPUT: uid-owner 2102 RETURN (picket itself, including its connections to the
//!                  app on the pod's own address), -o lo RETURN (the pod talking to itself),
//!                  127.0.0.1/32 (::1/128) RETURN, excluded CIDRs RETURN, excluded ports
//!                  RETURN, then -j PICKET_REDIRECT
//!   PICKET_REDIRECT: REDIRECT --to-ports 15001
//! ```

pub mod backend;

use std::fmt;
use std::net::IpAddr;
use std::process::ExitCode;
use std::str::FromStr;

use backend::{Backend, BackendChoice};

/// The admin port and the mesh mTLS port: never captured inbound.
pub const ALWAYS_EXCLUDED_INBOUND: [u16; 2] = [15090, 15443];

pub const CHAIN_INBOUND: &str = "PICKET_INBOUND";
pub const CHAIN_IN_REDIRECT: &str = "PICKET_IN_REDIRECT";
pub const CHAIN_OUTPUT: &str = "PICKET_OUTPUT";
pub const CHAIN_REDIRECT: &str = "PICKET_REDIRECT";
/// picket's own chains, in the order they are declared.
pub const OWN_CHAINS: [&str; 4] = [
    CHAIN_INBOUND,
    CHAIN_IN_REDIRECT,
    CHAIN_OUTPUT,
    CHAIN_REDIRECT,
];

/// The jumps into picket's chains, as `iptables-save` prints them.
pub const JUMP_PREROUTING: &str = "-A PREROUTING -p tcp -j PICKET_INBOUND";
pub const JUMP_OUTPUT: &str = "-A OUTPUT -p tcp -j PICKET_OUTPUT";

/// The nftables table picket owns (one per family: `ip picket`, `ip6 picket`).
pub const NFT_TABLE: &str = "picket";

#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// UID picket runs as; its own connections are never redirected.
    #[arg(long, default_value_t = 2102)]
    pub proxy_uid: u32,
    /// Where inbound TCP is redirected (picket's inbound listener).
    #[arg(long, default_value = "15006", value_parser = parse_port)]
    pub inbound_capture_port: u16,
    /// Where outbound TCP is redirected (picket's outbound listener).
    #[arg(long, default_value = "15001", value_parser = parse_port)]
    pub outbound_capture_port: u16,
    /// Inbound destination ports not captured (comma list; 15090 and 15443 always are not).
    #[arg(long, default_value = "", value_parser = parse_port_list)]
    pub exclude_inbound_ports: PortList,
    /// Outbound destination ports not captured (comma list).
    #[arg(long, default_value = "", value_parser = parse_port_list)]
    pub exclude_outbound_ports: PortList,
    /// Outbound destinations not captured (comma list of ADDR/PREFIX, IPv4 or IPv6; a bare
    /// address is one host).
    #[arg(long, default_value = "", value_parser = parse_cidr_list)]
    pub exclude_outbound_cidrs: CidrList,
    /// Which rule backend: detected (auto), iptables-nft, iptables-legacy, or nft directly.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// IPv6 rules: auto (installed when the namespace has IPv6 and ip6 nat works, skipped
    /// with a log line otherwise), on (required: failing if impossible), off.
    #[arg(long, value_enum, default_value = "auto")]
    pub ipv6: Ipv6Mode,
    /// Print the exact commands and rules; execute nothing (no root or binaries needed).
    #[arg(long)]
    pub dry_run: bool,
    /// Remove picket's chains/table and the jumps into them, and nothing else.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ipv6Mode {
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The nftables family keyword and the address match keyword.
    pub fn nft(self) -> (&'static str, &'static str) {
        match self {
            Family::V4 => ("ip", "ip daddr"),
            Family::V6 => ("ip6", "ip6 daddr"),
        }
    }

    fn loopback(self) -> Cidr {
        match self {
            Family::V4 => Cidr {
                addr: IpAddr::from([127, 0, 0, 1]),
                prefix: 32,
            },
            Family::V6 => Cidr {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                prefix: 128,
            },
        }
    }
}

/// Invalid flag values (refused before anything runs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("invalid port {0:?}: expected a number from 1 to 65535")]
    Port(String),
    #[error("invalid CIDR {0:?}: expected ADDRESS/PREFIX (IPv4 prefix 0-32, IPv6 0-128) or a bare address")]
    Cidr(String),
}

/// A TCP port, 1-65535.
pub fn parse_port(s: &str) -> Result<u16, InputError> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputError::Port(s.to_string()));
    }
    match t.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(InputError::Port(s.to_string())),
    }
}

/// A comma list of ports; empty items (an empty annotation) are allowed and ignored,
/// duplicates dropped, order kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

pub fn parse_port_list(s: &str) -> Result<PortList, InputError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let p = parse_port(item)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(PortList(out))
}

/// An address block. Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as the kernel
/// stores it, so that what is read back compares equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn family(&self) -> Family {
        match self.addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn max_prefix(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    /// The `iptables-save` form (`-d 10.0.0.0/8`); `None` for a /0 (iptables prints no `-d`).
    fn iptables(&self) -> Option<String> {
        (self.prefix > 0).then(|| format!("-d {self}"))
    }

    /// The `nft list` form (`ip daddr 10.0.0.0/8`, a host without its prefix); `None` for /0.
    fn nft(&self) -> Option<String> {
        let kw = self.family().nft().1;
        if self.prefix == 0 {
            None
        } else if self.prefix == self.max_prefix() {
            Some(format!("{kw} {}", self.addr))
        } else {
            Some(format!("{kw} {self}"))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Cidr, InputError> {
        let bad = || InputError::Cidr(s.to_string());
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(bad());
                }
                (a, Some(p.parse::<u8>().map_err(|_| bad())?))
            }
            None => (t, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u32::from(a) & mask).to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u128::from(a) & mask).to_be_bytes())
            }
        };
        Ok(Cidr { addr, prefix })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

pub fn parse_cidr_list(s: &str) -> Result<CidrList, InputError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let c: Cidr = item.parse()?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(CidrList(out))
}

/// The rules to install, from validated flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub proxy_uid: u32,
    pub inbound_port: u16,
    pub outbound_port: u16,
    /// 15090 and 15443 first, then the operator's.
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    pub exclude_outbound_cidrs: Vec<Cidr>,
}

impl Plan {
    pub fn new(args: &InitArgs) -> Plan {
        let mut inbound: Vec<u16> = ALWAYS_EXCLUDED_INBOUND.to_vec();
        for p in &args.exclude_inbound_ports.0 {
            if !inbound.contains(p) {
                inbound.push(*p);
            }
        }
        Plan {
            proxy_uid: args.proxy_uid,
            inbound_port: args.inbound_capture_port,
            outbound_port: args.outbound_capture_port,
            exclude_inbound_ports: inbound,
            exclude_outbound_ports: args.exclude_outbound_ports.0.clone(),
            exclude_outbound_cidrs: args.exclude_outbound_cidrs.0.clone(),
        }
    }

    fn cidrs(&self, family: Family) -> impl Iterator<Item = &Cidr> {
        self.exclude_outbound_cidrs
            .iter()
            .filter(move |c| c.family() == family)
    }

    /// The rules of each own chain in `iptables-save` form (`-A CHAIN ...`), in order.
    pub fn iptables_chains(&self, family: Family) -> Vec<(&'static str, Vec<String>)> {
        let mut inbound: Vec<String> = self
            .exclude_inbound_ports
            .iter()
            .map(|p| format!("-A {CHAIN_INBOUND} -p tcp -m tcp --dport {p} -j RETURN"))
            .collect();
        inbound.push(format!("-A {CHAIN_INBOUND} -p tcp -j {CHAIN_IN_REDIRECT}"));
        let in_redirect = vec![format!(
            "-A {CHAIN_IN_REDIRECT} -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        )];
        let mut output = vec![
            format!(
                "-A {CHAIN_OUTPUT} -m owner --uid-owner {} -j RETURN",
                self.proxy_uid
            ),
            format!("-A {CHAIN_OUTPUT} -o lo -j RETURN"),
            format!(
                "-A {CHAIN_OUTPUT} {} -j RETURN",
                family.loopback().iptables().unwrap_or_default()
            ),
        ];
        for c in self.cidrs(family) {
            output.push(match c.iptables() {
                Some(d) => format!("-A {CHAIN_OUTPUT} {d} -j RETURN"),
                None => format!("-A {CHAIN_OUTPUT} -j RETURN"),
            });
        }
        for p in &self.exclude_outbound_ports {
            output.push(format!(
                "-A {CHAIN_OUTPUT} -p tcp -m tcp --dport {p} -j RETURN"
            ));
        }
        output.push(format!("-A {CHAIN_OUTPUT} -j {CHAIN_REDIRECT}"));
        let redirect = vec![format!(
            "-A {CHAIN_REDIRECT} -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        )];
        vec![
            (CHAIN_INBOUND, inbound),
            (CHAIN_IN_REDIRECT, in_redirect),
            (CHAIN_OUTPUT, output),
            (CHAIN_REDIRECT, redirect),
        ]
    }

    /// Input for `iptables-restore --noflush`: declaring an own chain creates it or flushes
    /// it, so the own chains are replaced whole in one commit; the jumps from PREROUTING and
    /// OUTPUT are appended only when `add_jumps` says they are missing.
    pub fn iptables_install(&self, family: Family, add_jumps: Jumps) -> String {
        let mut s = String::from("*nat\n");
        for c in OWN_CHAINS {
            s.push_str(&format!(":{c} - [0:0]\n"));
        }
        for (_, rules) in self.iptables_chains(family) {
            for r in rules {
                s.push_str(&r);
                s.push('\n');
            }
        }
        if add_jumps.prerouting > 0 {
            s.push_str(JUMP_PREROUTING);
            s.push('\n');
        }
        if add_jumps.output > 0 {
            s.push_str(JUMP_OUTPUT);
            s.push('\n');
        }
        s.push_str("COMMIT\n");
        s
    }

    /// The own chains in `nft list table` form, hook chains included.
    pub fn nft_chains(&self, family: Family) -> Vec<(&'static str, Vec<String>)> {
        let mut inbound: Vec<String> = self
            .exclude_inbound_ports
            .iter()
            .map(|p| format!("tcp dport {p} return"))
            .collect();
        inbound.push(format!("meta l4proto tcp jump {CHAIN_IN_REDIRECT}"));
        let mut output = vec![
            format!("meta skuid {} return", self.proxy_uid),
            "oifname \"lo\" return".to_string(),
            format!("{} return", family.loopback().nft().unwrap_or_default()),
        ];
        for c in self.cidrs(family) {
            output.push(match c.nft() {
                Some(d) => format!("{d} return"),
                None => "return".to_string(),
            });
        }
        for p in &self.exclude_outbound_ports {
            output.push(format!("tcp dport {p} return"));
        }
        output.push(format!("jump {CHAIN_REDIRECT}"));
        vec![
            (
                "prerouting",
                vec![format!("meta l4proto tcp jump {CHAIN_INBOUND}")],
            ),
            (
                "output",
                vec![format!("meta l4proto tcp jump {CHAIN_OUTPUT}")],
            ),
            (CHAIN_INBOUND, inbound),
            (
                CHAIN_IN_REDIRECT,
                vec![format!(
                    "meta l4proto tcp redirect to :{}",
                    self.inbound_port
                )],
            ),
            (CHAIN_OUTPUT, output),
            (
                CHAIN_REDIRECT,
                vec![format!(
                    "meta l4proto tcp redirect to :{}",
                    self.outbound_port
                )],
            ),
        ]
    }

    /// One `nft -f` transaction: the add-then-delete idiom removes a table left by an
    /// earlier run (and does not fail when there is none), then the tables are created
    /// whole. Idempotent and atomic: the kernel applies all of it or none.
    pub fn nft_install(&self, families: &[Family]) -> String {
        let mut s = String::new();
        for &f in families {
            let (fam, _) = f.nft();
            s.push_str(&format!(
                "table {fam} {NFT_TABLE}\ndelete table {fam} {NFT_TABLE}\n"
            ));
        }
        for &f in families {
            let (fam, _) = f.nft();
            s.push_str(&format!("table {fam} {NFT_TABLE} {{\n"));
            for (chain, rules) in self.nft_chains(f) {
                s.push_str(&format!("\tchain {chain} {{\n"));
                match chain {
                    "prerouting" => {
                        s.push_str("\t\ttype nat hook prerouting priority -100; policy accept;\n")
                    }
                    "output" => {
                        s.push_str("\t\ttype nat hook output priority -100; policy accept;\n")
                    }
                    _ => {}
                }
                for r in rules {
                    s.push_str(&format!("\t\t{r}\n"));
                }
                s.push_str("\t}\n");
            }
            s.push_str("}\n");
        }
        s
    }
}

/// How many jumps into picket's chains to add (install) or delete (cleanup).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jumps {
    pub prerouting: usize,
    pub output: usize,
}

impl Jumps {
    pub const BOTH: Jumps = Jumps {
        prerouting: 1,
        output: 1,
    };

    /// The jumps present in `iptables-save -t nat` output.
    pub fn count_in(save: &str) -> Jumps {
        let lines = || save.lines().map(str::trim_end);
        Jumps {
            prerouting: lines().filter(|l| *l == JUMP_PREROUTING).count(),
            output: lines().filter(|l| *l == JUMP_OUTPUT).count(),
        }
    }
}

/// Input for `iptables-restore --noflush` removing exactly what picket added: every jump
/// into its chains (`jumps` as counted), then the chains (declared first, which creates or
/// flushes them, so that deleting them cannot fail on a rule or a reference between them).
pub fn iptables_cleanup(jumps: Jumps) -> String {
    let mut s = String::from("*nat\n");
    for c in OWN_CHAINS {
        s.push_str(&format!(":{c} - [0:0]\n"));
    }
    for _ in 0..jumps.prerouting {
        s.push_str(&JUMP_PREROUTING.replacen("-A", "-D", 1));
        s.push('\n');
    }
    for _ in 0..jumps.output {
        s.push_str(&JUMP_OUTPUT.replacen("-A", "-D", 1));
        s.push('\n');
    }
    for c in OWN_CHAINS {
        s.push_str(&format!("-X {c}\n"));
    }
    s.push_str("COMMIT\n");
    s
}

/// One `nft -f` transaction deleting picket's tables (and not failing when they are absent).
pub fn nft_cleanup(families: &[Family]) -> String {
    let mut s = String::new();
    for &f in families {
        let (fam, _) = f.nft();
        s.push_str(&format!(
            "table {fam} {NFT_TABLE}\ndelete table {fam} {NFT_TABLE}\n"
        ));
    }
    s
}

/// What `--dry-run` prints: the commands and their exact input, for `backend` (an explicit
/// one, or iptables-nft when auto: detection reads the namespace, which a dry run does not).
pub fn dry_run_text(plan: &Plan, choice: BackendChoice, ipv6: Ipv6Mode, cleanup: bool) -> String {
    let backend = choice.explicit().unwrap_or(Backend::IptablesNft);
    let families: Vec<Family> = match ipv6 {
        Ipv6Mode::Off => vec![Family::V4],
        _ => vec![Family::V4, Family::V6],
    };
    let mut s = String::from("# picket init --dry-run: nothing is executed, nothing is changed.\n");
    if choice == BackendChoice::Auto {
        s.push_str(&format!(
            "# backend: auto (chosen at run time from the rules in the namespace; shown for {})\n",
            backend.name()
        ));
    } else {
        s.push_str(&format!("# backend: {}\n", backend.name()));
    }
    match ipv6 {
        Ipv6Mode::Auto => s.push_str(
            "# IPv6: auto (applied only when the namespace has IPv6 and ip6 nat is available)\n",
        ),
        Ipv6Mode::On => s.push_str("# IPv6: on (required)\n"),
        Ipv6Mode::Off => s.push_str("# IPv6: off\n"),
    }
    match backend {
        Backend::Nft => {
            s.push_str(&format!("# run: {} -f - <<'EOF'\n", backend::NFT_BINARY));
            if cleanup {
                s.push_str(&nft_cleanup(&families));
            } else {
                s.push_str(&plan.nft_install(&families));
            }
            s.push_str("EOF\n");
        }
        Backend::IptablesNft | Backend::IptablesLegacy => {
            for f in families {
                let (restore, save) = backend.binaries(f);
                s.push_str(&format!(
                    "# {}: read {save} -t nat, then run: {restore} {} <<'EOF'\n",
                    f.name(),
                    backend::RESTORE_ARGS.join(" ")
                ));
                if cleanup {
                    s.push_str("# (one -D line per jump found; shown for one of each)\n");
                    s.push_str(&iptables_cleanup(Jumps::BOTH));
                } else {
                    s.push_str("# (the PREROUTING/OUTPUT jumps only when missing)\n");
                    s.push_str(&plan.iptables_install(f, Jumps::BOTH));
                }
                s.push_str("EOF\n");
            }
        }
    }
    s
}

/// Runs `picket init`. Exit status: 0 done (or nothing to do), 1 failed (the pod must not
/// start unprotected).
pub fn run(args: InitArgs) -> ExitCode {
    let plan = Plan::new(&args);
    if args.dry_run {
        print!(
            "{}",
            dry_run_text(&plan, args.backend, args.ipv6, args.cleanup)
        );
        return ExitCode::SUCCESS;
    }
    let result = if args.cleanup {
        backend::cleanup(args.backend, args.ipv6)
    } else {
        backend::install(&plan, args.backend, args.ipv6)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picket init: error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests;
