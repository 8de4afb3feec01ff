use clap::Parser;

use super::backend::{verify_iptables, verify_nft, BackendChoice};
use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    init: InitArgs,
}

fn args(argv: &[&str]) -> InitArgs {
    let mut full = vec!["picket-init"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).expect("valid flags").init
}

fn parse_err(argv: &[&str]) -> String {
    let mut full = vec!["picket-init"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full) {
        Ok(_) => panic!("{argv:?} accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_give_the_istio_like_ipv4_rules() {
    let plan = Plan::new(&args(&[]));
    assert_eq!(
        plan.iptables_install(Family::V4, Jumps::BOTH),
        "*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-A PICKET_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A PICKET_INBOUND -p tcp -m tcp --dport 15443 -j RETURN
-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT
-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PICKET_OUTPUT -m owner --uid-owner 2102 -j RETURN
-A PICKET_OUTPUT -o lo -j RETURN
-A PICKET_OUTPUT -d 127.0.0.1/32 -j RETURN
-A PICKET_OUTPUT -j PICKET_REDIRECT
-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A PREROUTING -p tcp -j PICKET_INBOUND
-A OUTPUT -p tcp -j PICKET_OUTPUT
COMMIT
"
    );
}

#[test]
fn exclusions_ports_and_uid_are_in_the_rules_per_family() {
    let plan = Plan::new(&args(&[
        "--proxy-uid",
        "1337",
        "--inbound-capture-port",
        "16006",
        "--outbound-capture-port",
        "16001",
        "--exclude-inbound-ports",
        "22, 8081,15090",
        "--exclude-outbound-ports",
        "5432",
        "--exclude-outbound-cidrs",
        "10.96.0.0/12,fd00:1::/64,169.254.169.254",
    ]));
    assert_eq!(plan.exclude_inbound_ports, vec![15090, 15443, 22, 8081]);
    let v4 = plan.iptables_install(Family::V4, Jumps::default());
    let v6 = plan.iptables_install(Family::V6, Jumps::default());
    for want in [
        "-A PICKET_INBOUND -p tcp -m tcp --dport 22 -j RETURN\n-A PICKET_INBOUND -p tcp -m tcp --dport 8081 -j RETURN\n-A PICKET_INBOUND -p tcp -j PICKET_IN_REDIRECT\n",
        "-A PICKET_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n",
        "-A PICKET_OUTPUT -m owner --uid-owner 1337 -j RETURN\n",
        "-A PICKET_OUTPUT -d 127.0.0.1/32 -j RETURN\n-A PICKET_OUTPUT -d 10.96.0.0/12 -j RETURN\n-A PICKET_OUTPUT -d 169.254.169.254/32 -j RETURN\n-A PICKET_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN\n-A PICKET_OUTPUT -j PICKET_REDIRECT\n",
        "-A PICKET_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n",
    ] {
        assert!(v4.contains(want), "{want} not in\n{v4}");
    }
    // The IPv6 set has the IPv6 loopback and CIDRs only, and no jumps when told so.
    assert!(v6.contains("-A PICKET_OUTPUT -d ::1/128 -j RETURN\n-A PICKET_OUTPUT -d fd00:1::/64 -j RETURN\n-A PICKET_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN\n"), "{v6}");
    assert!(!v6.contains("10.96.0.0"), "{v6}");
    assert!(!v4.contains("fd00"), "{v4}");
    assert!(
        !v4.contains("-A PREROUTING") && !v4.contains("-A OUTPUT "),
        "{v4}"
    );
}

#[test]
fn nft_script_is_one_idempotent_transaction_with_both_families() {
    let plan = Plan::new(&args(&["--exclude-outbound-cidrs", "10.0.0.0/8,fd00::1"]));
    let s = plan.nft_install(&[Family::V4, Family::V6]);
    assert!(s.starts_with(
        "table ip picket\ndelete table ip picket\ntable ip6 picket\ndelete table ip6 picket\ntable ip picket {\n"
    ), "{s}");
    let expected_v4_output = "\tchain PICKET_OUTPUT {
\t\tmeta skuid 2102 return
\t\toifname \"lo\" return
\t\tip daddr 127.0.0.1 return
\t\tip daddr 10.0.0.0/8 return
\t\tjump PICKET_REDIRECT
\t}
";
    assert!(s.contains(expected_v4_output), "{s}");
    assert!(
        s.contains("\t\tip6 daddr ::1 return\n\t\tip6 daddr fd00::1 return\n"),
        "{s}"
    );
    assert!(s.contains("type nat hook prerouting priority -100; policy accept;\n\t\tmeta l4proto tcp jump PICKET_INBOUND\n"), "{s}");
    assert!(s.contains("type nat hook output priority -100; policy accept;\n\t\tmeta l4proto tcp jump PICKET_OUTPUT\n"), "{s}");
    assert!(s.contains("\t\ttcp dport 15090 return\n\t\ttcp dport 15443 return\n\t\tmeta l4proto tcp jump PICKET_IN_REDIRECT\n"), "{s}");
    assert!(s.contains("meta l4proto tcp redirect to :15006\n"), "{s}");
    assert!(s.contains("meta l4proto tcp redirect to :15001\n"), "{s}");
    assert_eq!(s.matches("table ip6 picket {").count(), 1);
    assert_eq!(
        plan.nft_install(&[Family::V4]).matches("ip6").count(),
        0,
        "IPv4 only"
    );
}

#[test]
fn ports_are_validated() {
    assert_eq!(parse_port("1"), Ok(1));
    assert_eq!(parse_port("65535"), Ok(65535));
    for bad in [
        "0",
        "65536",
        "-1",
        "+80",
        "80a",
        "",
        " ",
        "8080;reboot",
        "0x50",
    ] {
        assert!(parse_port(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(parse_port_list(""), Ok(PortList(vec![])));
    assert_eq!(
        parse_port_list(" 80, ,443,80 "),
        Ok(PortList(vec![80, 443]))
    );
    assert!(parse_port_list("80,0").is_err());
    let e = parse_err(&["--exclude-inbound-ports", "80,70000"]);
    assert!(e.contains("invalid port \"70000\""), "{e}");
    let e = parse_err(&["--inbound-capture-port", "0"]);
    assert!(e.contains("invalid port"), "{e}");
}

#[test]
fn cidrs_are_validated_and_normalised() {
    let c = |s: &str| s.parse::<Cidr>().map(|c| c.to_string());
    assert_eq!(c("10.1.2.3/8"), Ok("10.0.0.0/8".into()));
    assert_eq!(c("10.1.2.3"), Ok("10.1.2.3/32".into()));
    assert_eq!(c("0.0.0.0/0"), Ok("0.0.0.0/0".into()));
    assert_eq!(c("FD00:1::5/64"), Ok("fd00:1::/64".into()));
    assert_eq!(c("::1"), Ok("::1/128".into()));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "example.com",
        "10.0.0.0/8;rm -rf /",
        "$(id)",
        "10.0.0.0 /8",
        "",
    ] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        parse_cidr_list("10.0.0.0/8, ,10.0.0.1/8").map(|l| l.0.len()),
        Ok(1)
    );
    let e = parse_err(&["--exclude-outbound-cidrs", "10.0.0.0/8,10.0.0.0/40"]);
    assert!(e.contains("invalid CIDR \"10.0.0.0/40\""), "{e}");
}

#[test]
fn a_zero_prefix_excludes_the_whole_family() {
    let plan = Plan::new(&args(&["--exclude-outbound-cidrs", "0.0.0.0/0"]));
    let v4 = plan.iptables_install(Family::V4, Jumps::default());
    assert!(
        v4.contains("-A PICKET_OUTPUT -d 127.0.0.1/32 -j RETURN\n-A PICKET_OUTPUT -j RETURN\n"),
        "{v4}"
    );
    assert!(!plan
        .iptables_install(Family::V6, Jumps::default())
        .contains("-A PICKET_OUTPUT -j RETURN"));
    assert!(plan.nft_install(&[Family::V4]).contains("\t\treturn\n"));
}

#[test]
fn cleanup_deletes_each_jump_found_then_the_chains() {
    assert_eq!(
        iptables_cleanup(Jumps {
            prerouting: 2,
            output: 1
        }),
        "*nat
:PICKET_INBOUND - [0:0]
:PICKET_IN_REDIRECT - [0:0]
:PICKET_OUTPUT - [0:0]
:PICKET_REDIRECT - [0:0]
-D PREROUTING -p tcp -j PICKET_INBOUND
-D PREROUTING -p tcp -j PICKET_INBOUND
-D OUTPUT -p tcp -j PICKET_OUTPUT
-X PICKET_INBOUND
-X PICKET_IN_REDIRECT
-X PICKET_OUTPUT
-X PICKET_REDIRECT
COMMIT
"
    );
    assert_eq!(
        nft_cleanup(&[Family::V4, Family::V6]),
        "table ip picket\ndelete table ip picket\ntable ip6 picket\ndelete table ip6 picket\n"
    );
}

#[test]
fn jumps_are_counted_exactly() {
    let save = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j PICKET_INBOUND\n-A PREROUTING -p tcp -j PICKET_INBOUND_X\n-A OUTPUT -p udp -j PICKET_OUTPUT\nCOMMIT\n";
    assert_eq!(
        Jumps::count_in(save),
        Jumps {
            prerouting: 1,
            output: 0
        }
    );
}

#[test]
fn dry_run_prints_the_commands_and_exact_input() {
    let a = args(&["--exclude-inbound-ports", "22"]);
    let plan = Plan::new(&a);
    let text = dry_run_text(&plan, BackendChoice::Auto, Ipv6Mode::Auto, false);
    assert!(text.starts_with("# picket init --dry-run: nothing is executed"));
    assert!(text.contains("# backend: auto (chosen at run time"));
    assert!(text.contains(
        "# IPv4: read iptables-nft-save -t nat, then run: iptables-nft-restore --noflush -w 10 <<'EOF'\n"
    ), "{text}");
    assert!(text.contains("# IPv6: read ip6tables-nft-save -t nat, then run: ip6tables-nft-restore --noflush -w 10 <<'EOF'\n"), "{text}");
    assert!(text.contains(&plan.iptables_install(Family::V4, Jumps::BOTH)));
    assert!(text.contains(&plan.iptables_install(Family::V6, Jumps::BOTH)));
    assert!(text.contains("--dport 22 -j RETURN"));

    let nft = dry_run_text(&plan, BackendChoice::Nft, Ipv6Mode::Off, false);
    assert!(
        nft.contains("# backend: nft\n# IPv6: off\n# run: nft -f - <<'EOF'\n"),
        "{nft}"
    );
    assert!(nft.contains(&plan.nft_install(&[Family::V4])));
    assert!(!nft.contains("ip6"));

    let legacy = dry_run_text(&plan, BackendChoice::IptablesLegacy, Ipv6Mode::On, true);
    assert!(
        legacy.contains("iptables-legacy-restore --noflush -w 10"),
        "{legacy}"
    );
    assert!(legacy.contains(&iptables_cleanup(Jumps::BOTH)));
    assert!(!legacy.contains("REDIRECT --to-ports"));
}

#[test]
fn read_back_verification_accepts_the_plan_and_refuses_anything_else() {
    let plan = Plan::new(&args(&["--exclude-outbound-cidrs", "10.0.0.0/8"]));
    // What iptables-save prints after the install: header lines, counters, other rules.
    let mut save = String::from(
        "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for c in OWN_CHAINS {
        save.push_str(&format!(":{c} - [0:0]\n"));
    }
    save.push_str("-A PREROUTING -p tcp -j PICKET_INBOUND\n-A OUTPUT -p udp -m udp --dport 53 -j RETURN\n-A OUTPUT -p tcp -j PICKET_OUTPUT\n");
    for (_, rules) in plan.iptables_chains(Family::V4) {
        for r in rules {
            save.push_str(&r);
            save.push('\n');
        }
    }
    save.push_str("COMMIT\n");
    assert_eq!(verify_iptables(&plan, Family::V4, &save), Ok(()));
    let no_jump = save.replace("-A OUTPUT -p tcp -j PICKET_OUTPUT\n", "");
    assert!(verify_iptables(&plan, Family::V4, &no_jump)
        .unwrap_err()
        .contains("no jump from OUTPUT"));
    let changed = save.replace("--to-ports 15001", "--to-ports 15002");
    assert!(verify_iptables(&plan, Family::V4, &changed)
        .unwrap_err()
        .contains("chain PICKET_REDIRECT holds"));
    let missing = save.replace("-A PICKET_OUTPUT -d 10.0.0.0/8 -j RETURN\n", "");
    assert!(verify_iptables(&plan, Family::V4, &missing).is_err());
    let doubled = save.replace(
        "-A PICKET_OUTPUT -j PICKET_REDIRECT\n",
        "-A PICKET_OUTPUT -j PICKET_REDIRECT\n-A PICKET_OUTPUT -j PICKET_REDIRECT\n",
    );
    assert!(verify_iptables(&plan, Family::V4, &doubled).is_err());
    // The IPv6 plan does not match IPv4 rules.
    assert!(verify_iptables(&plan, Family::V6, &save).is_err());
}

#[test]
fn nft_read_back_matches_what_nft_lists() {
    let plan = Plan::new(&args(&["--exclude-outbound-cidrs", "10.0.0.0/8,10.1.1.1"]));
    // nft's listing of the script (format of nft 1.0: priority names, host without /32).
    let listed = plan
        .nft_install(&[Family::V4])
        .split("table ip picket {\n")
        .nth(1)
        .map(|t| format!("table ip picket {{\n{t}"))
        .unwrap()
        .replace(
            "priority -100; policy accept;\n\t\tmeta l4proto tcp jump PICKET_INBOUND",
            "priority dstnat; policy accept;\n\t\tmeta l4proto tcp jump PICKET_INBOUND",
        );
    assert!(listed.contains("ip daddr 10.1.1.1 return"), "{listed}");
    assert_eq!(verify_nft(&plan, Family::V4, &listed), Ok(()));
    let unhooked = listed.replace("type nat hook output", "type filter hook output");
    assert!(verify_nft(&plan, Family::V4, &unhooked)
        .unwrap_err()
        .contains("not hooked"));
    let other = listed.replace("redirect to :15006", "redirect to :15007");
    assert!(verify_nft(&plan, Family::V4, &other).is_err());
    assert!(verify_nft(&plan, Family::V4, "table ip picket {\n}\n").is_err());
}
