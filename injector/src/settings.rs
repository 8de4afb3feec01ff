//! The per-pod settings: annotations on the pod, inherited from its namespace, or the
//! configuration's defaults, validated.
//!
//! For each of `picket.dev/inject`, `picket.dev/mode`, `picket.dev/exclude-inbound-ports`,
//! `picket.dev/exclude-outbound-ports` and `picket.dev/exclude-outbound-cidrs`, the pod's
//! annotation wins when present (even empty: `""` clears an inherited list); otherwise the
//! namespace's annotation applies; otherwise the configuration's value. An invalid value is
//! an error naming where it came from, which the webhook turns into a denial.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Pod opt-out annotation (`"false"` skips injection).
pub const ANNOTATION_INJECT: &str = "picket.dev/inject";
/// Marker set on injected pods; its value is the injector's version.
pub const ANNOTATION_INJECTED: &str = "picket.dev/injected";
pub const ANNOTATION_MODE: &str = "picket.dev/mode";
pub const ANNOTATION_EXCLUDE_INBOUND_PORTS: &str = "picket.dev/exclude-inbound-ports";
pub const ANNOTATION_EXCLUDE_OUTBOUND_PORTS: &str = "picket.dev/exclude-outbound-ports";
pub const ANNOTATION_EXCLUDE_OUTBOUND_CIDRS: &str = "picket.dev/exclude-outbound-cidrs";

/// The sidecar's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Protect,
    Monitor,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Protect => "protect",
            Mode::Monitor => "monitor",
        })
    }
}

/// `protect` or `monitor`.
pub fn parse_mode(value: &str) -> Result<Mode, String> {
    match value.trim() {
        "protect" => Ok(Mode::Protect),
        "monitor" => Ok(Mode::Monitor),
        other => Err(format!("{other:?} is not \"protect\" or \"monitor\"")),
    }
}

/// A comma list of TCP ports (1–65535); spaces around items and empty items are ignored;
/// duplicates are dropped; the order is kept.
pub fn parse_ports(value: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let port: u16 = match item.parse() {
            Ok(p) if p != 0 && item.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(format!("{item:?} is not a port number (1-65535)")),
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// A comma list of IPv4/IPv6 CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (taken as
/// `/32` or `/128`). Returned in canonical text form, `addr/len`.
pub fn parse_cidrs(value: &str) -> Result<Vec<String>, String> {
    let mut cidrs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, len) = match item.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (item, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{item:?} is not an IP address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => return Err(format!("{item:?} has an invalid prefix length (0-{max})")),
            },
        };
        let canonical = format!("{ip}/{len}");
        if !cidrs.contains(&canonical) {
            cidrs.push(canonical);
        }
    }
    Ok(cidrs)
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pod,
    Namespace,
    Config,
}

/// The validated settings for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSettings {
    /// False when `picket.dev/inject: "false"` applies.
    pub inject: bool,
    pub mode: Mode,
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    pub exclude_outbound_cidrs: Vec<String>,
}

/// An invalid annotation value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {where_} annotation {key}: {why}")]
pub struct InvalidAnnotation {
    pub key: String,
    /// `pod` or `namespace <name>`.
    pub where_: String,
    pub why: String,
}

/// Resolves and validates the settings of a pod from its annotations, its namespace's
/// annotations and the configuration.
pub fn resolve(
    pod_annotations: &BTreeMap<String, String>,
    namespace: &str,
    namespace_annotations: &BTreeMap<String, String>,
    config: &crate::Config,
) -> Result<PodSettings, InvalidAnnotation> {
    let pick = |key: &str, default: &str| -> (String, Source) {
        if let Some(v) = pod_annotations.get(key) {
            (v.clone(), Source::Pod)
        } else if let Some(v) = namespace_annotations.get(key) {
            (v.clone(), Source::Namespace)
        } else {
            (default.to_string(), Source::Config)
        }
    };
    let fail = |key: &str, source: Source, why: String| InvalidAnnotation {
        key: key.to_string(),
        where_: match source {
            Source::Pod => "pod".to_string(),
            Source::Namespace => format!("namespace {namespace}"),
            Source::Config => "configuration".to_string(),
        },
        why,
    };
    let (inject, src) = pick(ANNOTATION_INJECT, "true");
    let inject = match inject.trim() {
        "true" => true,
        "false" => false,
        other => {
            return Err(fail(
                ANNOTATION_INJECT,
                src,
                format!("{other:?} is not \"true\" or \"false\""),
            ))
        }
    };
    let (mode, src) = pick(ANNOTATION_MODE, &config.mode);
    let mode = parse_mode(&mode).map_err(|why| fail(ANNOTATION_MODE, src, why))?;
    let (v, src) = pick(
        ANNOTATION_EXCLUDE_INBOUND_PORTS,
        &config.exclude_inbound_ports,
    );
    let exclude_inbound_ports =
        parse_ports(&v).map_err(|why| fail(ANNOTATION_EXCLUDE_INBOUND_PORTS, src, why))?;
    let (v, src) = pick(
        ANNOTATION_EXCLUDE_OUTBOUND_PORTS,
        &config.exclude_outbound_ports,
    );
    let exclude_outbound_ports =
        parse_ports(&v).map_err(|why| fail(ANNOTATION_EXCLUDE_OUTBOUND_PORTS, src, why))?;
    let (v, src) = pick(
        ANNOTATION_EXCLUDE_OUTBOUND_CIDRS,
        &config.exclude_outbound_cidrs,
    );
    let exclude_outbound_cidrs =
        parse_cidrs(&v).map_err(|why| fail(ANNOTATION_EXCLUDE_OUTBOUND_CIDRS, src, why))?;
    Ok(PodSettings {
        inject,
        mode,
        exclude_inbound_ports,
        exclude_outbound_ports,
        exclude_outbound_cidrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_cidrs_parse_strictly() {
        assert_eq!(parse_ports(" 80, 443,,80 ").unwrap(), vec![80, 443]);
        assert_eq!(parse_ports("").unwrap(), Vec::<u16>::new());
        for bad in ["0", "65536", "80-90", "http", "-1", "+80"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_cidrs("10.0.0.0/8, 169.254.169.254,fd00::/8").unwrap(),
            vec!["10.0.0.0/8", "169.254.169.254/32", "fd00::/8"]
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "fd00::/129",
            "example.com",
            "10.0.0.0/",
            "1.2.3.4/+8",
        ] {
            assert!(parse_cidrs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pod_overrides_namespace_which_overrides_config() {
        let mut config = crate::Config::with_images("p", "i");
        config.exclude_outbound_ports = "25".into();
        let ns = BTreeMap::from([
            (ANNOTATION_MODE.to_string(), "monitor".to_string()),
            (
                ANNOTATION_EXCLUDE_OUTBOUND_PORTS.to_string(),
                "5432".to_string(),
            ),
        ]);
        let s = resolve(&BTreeMap::new(), "shop", &ns, &config).unwrap();
        assert_eq!(s.mode, Mode::Monitor);
        assert_eq!(s.exclude_outbound_ports, vec![5432]);
        let pod = BTreeMap::from([
            (ANNOTATION_MODE.to_string(), "protect".to_string()),
            (ANNOTATION_EXCLUDE_OUTBOUND_PORTS.to_string(), String::new()),
        ]);
        let s = resolve(&pod, "shop", &ns, &config).unwrap();
        assert_eq!(s.mode, Mode::Protect);
        assert!(s.exclude_outbound_ports.is_empty());
        let s = resolve(&BTreeMap::new(), "other", &BTreeMap::new(), &config).unwrap();
        assert_eq!(s.exclude_outbound_ports, vec![25]);
    }

    #[test]
    fn invalid_values_name_their_origin() {
        let config = crate::Config::with_images("p", "i");
        let ns = BTreeMap::from([(ANNOTATION_MODE.to_string(), "block".to_string())]);
        let e = resolve(&BTreeMap::new(), "shop", &ns, &config).unwrap_err();
        assert_eq!(e.where_, "namespace shop");
        assert!(e.to_string().contains("picket.dev/mode"), "{e}");
        let pod = BTreeMap::from([(ANNOTATION_INJECT.to_string(), "no".to_string())]);
        let e = resolve(&pod, "shop", &BTreeMap::new(), &config).unwrap_err();
        assert_eq!(e.where_, "pod");
    }
}
