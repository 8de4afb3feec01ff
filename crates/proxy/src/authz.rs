//! Inbound authorization by peer identity: an optional allow-list of SPIFFE ids per port
//! (`--inbound-allow PORT=PATTERN[,PATTERN…]`, repeatable).
//!
//! * `PORT` is the port the client addressed: the original destination port in transparent
//!   mode, the listen port in gateway mode; `*` stands for every port without a list of its
//!   own. Lists given for the same port add up.
//! * `PATTERN` is `ns/<glob>/sa/<glob>`, a workload of this sidecar's own trust domain, or a
//!   whole `spiffe://<trust-domain>/ns/<glob>/sa/<glob>` glob. In a glob, `*` matches any run
//!   of characters other than `/` and `?` one such character; everything else matches itself.
//!   So `ns/shop/sa/*` is every service account of namespace `shop`, `ns/*/sa/*` every
//!   workload of the own trust domain, `spiffe://partner.example/ns/*/sa/billing` one
//!   service account name in every namespace of another trust domain (which the trust bundle
//!   must also trust).
//!
//! The check runs on every inbound connection to a port that has a list, right after the mesh
//! handshake and before anything is read for inspection or the application is connected: a
//! peer whose SPIFFE id matches no pattern, and a plaintext connection (no identity at all), is
//! reset (`SO_LINGER` 0), logged as one JSON line on stdout (`event: "deny"`, `reason`
//! `identity_not_allowed` or `no_identity`; see [`crate::blocklog::DenyFacts`]) and counted in
//! `picket_inbound_denied_total{reason}`. In monitor mode the line says `event: "alert"`, the
//! connection goes on, and it is counted all the same (what protect mode would deny). Ports
//! without a list (and no `*` list) are not restricted.
use std::collections::HashMap;

use picket_mtls::{SpiffeId, TrustDomain};

/// One allowed-identity pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `ns/<glob>/sa/<glob>` in the sidecar's own trust domain.
    Local { namespace: String, account: String },
    /// A glob over the whole SPIFFE id.
    Full(String),
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("spiffe://") {
            let (td, path) = rest
                .split_once('/')
                .ok_or_else(|| format!("{s}: expected spiffe://TD/ns/<glob>/sa/<glob>"))?;
            check_path(path).map_err(|e| format!("{s}: {e}"))?;
            if td.is_empty() || td.contains(['*', '?']) {
                return Err(format!("{s}: the trust domain cannot be a glob"));
            }
            TrustDomain::new(td).map_err(|e| format!("{s}: {e}"))?;
            return Ok(Pattern::Full(s.to_string()));
        }
        let (namespace, account) =
            check_path(s).map_err(|e| format!("{s}: {e} (or a full spiffe:// glob)"))?;
        Ok(Pattern::Local {
            namespace: namespace.to_string(),
            account: account.to_string(),
        })
    }

    /// Whether `peer` matches, `own` being this sidecar's trust domain.
    pub fn matches(&self, peer: &SpiffeId, own: &TrustDomain) -> bool {
        match self {
            Pattern::Local { namespace, account } => {
                peer.trust_domain() == own
                    && glob(namespace, peer.namespace())
                    && glob(account, peer.service_account())
            }
            Pattern::Full(p) => glob(p, peer.as_str()),
        }
    }
}

/// `ns/<glob>/sa/<glob>` → the two globs.
fn check_path(path: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["ns", ns, "sa", sa] if !ns.is_empty() && !sa.is_empty() => Ok((ns, sa)),
        _ => Err("expected ns/<glob>/sa/<glob>".into()),
    }
}

/// `*` any run of non-`/` characters, `?` one non-`/` character. Allocation-free: it walks
/// both strings by byte offset, a character at a time.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn at(s: &str, i: usize) -> Option<char> {
        s.get(i..).and_then(|rest| rest.chars().next())
    }
    // Iterative matching with one backtrack point per `*` (linear in practice). `pi` and `ti`
    // are byte offsets, always on character boundaries.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(tc) = at(text, ti) {
        let pc = at(pattern, pi);
        if pc == Some('*') {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some(pc) = pc.filter(|&pc| pc == tc || (pc == '?' && tc != '/')) {
            pi += pc.len_utf8();
            ti += tc.len_utf8();
        } else if let Some((sp, st)) = star {
            // Let the `*` take one more character, unless that would be a `/`.
            let Some(sc) = at(text, st) else {
                return false;
            };
            if sc == '/' {
                return false;
            }
            pi = sp + 1;
            ti = st + sc.len_utf8();
            star = Some((sp, ti));
        } else {
            return false;
        }
    }
    pattern
        .get(pi..)
        .is_some_and(|rest| rest.chars().all(|c| c == '*'))
}

/// The port key of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKey {
    Port(u16),
    Any,
}

/// Every `--inbound-allow` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundAllow {
    lists: HashMap<PortKey, Vec<Pattern>>,
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    IdentityNotAllowed,
    NoIdentity,
}

impl Denial {
    pub fn reason(self) -> &'static str {
        match self {
            Denial::IdentityNotAllowed => "identity_not_allowed",
            Denial::NoIdentity => "no_identity",
        }
    }
}

impl InboundAllow {
    /// Adds one `PORT=PATTERN[,PATTERN…]` flag value.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (port, patterns) = spec
            .split_once('=')
            .ok_or_else(|| format!("--inbound-allow {spec}: expected PORT=PATTERN[,PATTERN...]"))?;
        let key = match port.trim() {
            "*" => PortKey::Any,
            p => PortKey::Port(
                p.parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("--inbound-allow {spec}: bad port {p:?}"))?,
            ),
        };
        let mut parsed = Vec::new();
        for p in patterns.split(',').filter(|p| !p.trim().is_empty()) {
            parsed.push(Pattern::parse(p).map_err(|e| format!("--inbound-allow {spec}: {e}"))?);
        }
        if parsed.is_empty() {
            return Err(format!("--inbound-allow {spec}: no pattern"));
        }
        self.lists.entry(key).or_default().extend(parsed);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// The list that applies to `port`, if any.
    fn list(&self, port: u16) -> Option<&[Pattern]> {
        self.lists
            .get(&PortKey::Port(port))
            .or_else(|| self.lists.get(&PortKey::Any))
            .map(Vec::as_slice)
    }

    /// `Ok` when a connection to `port` from `peer` (None: plaintext) may go on.
    pub fn check(
        &self,
        port: u16,
        peer: Option<&SpiffeId>,
        own: &TrustDomain,
    ) -> Result<(), Denial> {
        let Some(list) = self.list(port) else {
            return Ok(());
        };
        let Some(peer) = peer else {
            return Err(Denial::NoIdentity);
        };
        if list.iter().any(|p| p.matches(peer, own)) {
            Ok(())
        } else {
            Err(Denial::IdentityNotAllowed)
        }
    }
}

/// Applies the mesh settings' allow-list to an inbound connection: `true` when it may go on.
/// A refusal (or, in monitor mode, an alert) is logged on stdout and counted here; the caller
/// resets the connection on `false`.
pub(crate) fn admit(
    mesh: &crate::mesh::MeshSettings,
    conn: &crate::gateway::ConnInfo,
    peer: Option<&SpiffeId>,
    shared: &crate::gateway::Shared,
) -> bool {
    let Some(allow) = mesh.inbound_allow.as_deref() else {
        return true;
    };
    // Borrowed, not cloned: an allowed connection costs no allocation here.
    let Err(denial) = allow.check(conn.dst_port, peer, mesh.tls.trust_domain()) else {
        return true;
    };
    let monitor = shared.cfg.mode == crate::gateway::Mode::Monitor;
    let reason = denial.reason();
    shared
        .metrics
        .inbound_denied
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: reason.to_string(),
        })
        .inc();
    let peer_identity = peer.map(SpiffeId::as_str);
    shared.log.deny(&crate::blocklog::DenyFacts {
        event: if monitor { "alert" } else { "deny" },
        direction: conn.direction.as_str(),
        src: conn.peer.to_string(),
        dst: conn.upstream.to_string(),
        peer_identity,
        reason,
        action: if monitor { "none" } else { "reset" },
        mode: shared.cfg.mode.as_str(),
    });
    tracing::warn!(peer = %conn.peer, port = conn.dst_port, peer_identity = peer_identity.unwrap_or(""), reason, monitor, "inbound connection not allowed by --inbound-allow");
    monitor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("*", "shop"));
        assert!(glob("sh*", "shop"));
        assert!(glob("*op", "shop"));
        assert!(glob("s?op", "shop"));
        assert!(glob("*-prod", "cart-prod"));
        assert!(!glob("*-prod", "cart-staging"));
        assert!(!glob("shop", "shop2"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("", ""));
        assert!(!glob("?", ""));
        // `*` and `?` never cross a `/`.
        assert!(!glob("spiffe://td/*", "spiffe://td/ns/a/sa/b"));
        assert!(glob("spiffe://td/ns/*/sa/*", "spiffe://td/ns/a/sa/b"));
        assert!(!glob("a?b", "a/b"));
        // Characters, not bytes: `?` takes one character of any width.
        assert!(glob("caf?", "café"));
        assert!(glob("*é", "café"));
        assert!(!glob("caf??", "café"));
        assert!(glob("é*", "é"));
        assert!(!glob("*x", "é/x"));
    }

    #[test]
    fn lists_by_port() {
        let own = TrustDomain::default();
        let mut allow = InboundAllow::default();
        allow.add("8080=ns/shop/sa/frontend,ns/ops/sa/*").unwrap();
        allow
            .add("8080=spiffe://partner.example/ns/*/sa/billing")
            .unwrap();
        allow.add("*=ns/*/sa/*").unwrap();
        let frontend = id("spiffe://cluster.local/ns/shop/sa/frontend");
        let other = id("spiffe://cluster.local/ns/shop/sa/other");
        let ops = id("spiffe://cluster.local/ns/ops/sa/robot");
        let partner = id("spiffe://partner.example/ns/x/sa/billing");
        let foreign_frontend = id("spiffe://partner.example/ns/shop/sa/frontend");
        assert_eq!(allow.check(8080, Some(&frontend), &own), Ok(()));
        assert_eq!(allow.check(8080, Some(&ops), &own), Ok(()));
        assert_eq!(allow.check(8080, Some(&partner), &own), Ok(()));
        assert_eq!(
            allow.check(8080, Some(&other), &own),
            Err(Denial::IdentityNotAllowed)
        );
        // `ns/…` patterns are the own trust domain only.
        assert_eq!(
            allow.check(8080, Some(&foreign_frontend), &own),
            Err(Denial::IdentityNotAllowed)
        );
        assert_eq!(allow.check(8080, None, &own), Err(Denial::NoIdentity));
        // Other ports: the `*` list.
        assert_eq!(allow.check(9090, Some(&other), &own), Ok(()));
        assert_eq!(
            allow.check(9090, Some(&partner), &own),
            Err(Denial::IdentityNotAllowed)
        );
        assert_eq!(allow.check(9090, None, &own), Err(Denial::NoIdentity));
        // Without a `*` list, other ports are open.
        let mut one = InboundAllow::default();
        one.add("8080=ns/shop/sa/frontend").unwrap();
        assert_eq!(one.check(9090, None, &own), Ok(()));
    }

    #[test]
    fn bad_specs() {
        let mut a = InboundAllow::default();
        for bad in [
            "8080",
            "x=ns/a/sa/b",
            "0=ns/a/sa/b",
            "8080=",
            "8080=shop/frontend",
            "8080=ns//sa/b",
            "8080=ns/a/sa/b/c",
            "8080=spiffe://*/ns/a/sa/b",
            "8080=spiffe://td",
            "8080=spiffe://Bad_TD/ns/a/sa/b",
        ] {
            assert!(a.add(bad).is_err(), "{bad} accepted");
        }
        assert!(a.is_empty());
    }
}
