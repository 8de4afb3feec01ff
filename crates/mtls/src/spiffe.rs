//! Workload identities: [`TrustDomain`] and [`SpiffeId`].
//!
//! picket names a workload by the Kubernetes service account it runs as, in the form every
//! SPIFFE-speaking mesh uses: `spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>`.
//! The id travels as the only URI subject alternative name of the workload's certificate, and
//! it is what a sidecar logs as `peer_identity` and what an authorisation policy names.
//!
//! Parsing is strict on purpose: an id is compared as a string in policies and logs, so two
//! spellings of one identity (upper case, a trailing slash, a percent escape, an empty path
//! segment) must not both be accepted. The rules are the SPIFFE ID specification's, narrowed
//! to the Kubernetes form:
//!
//! * the scheme is exactly `spiffe://` (lower case);
//! * the trust domain is 1–255 bytes of `a-z 0-9 . - _`, with no empty dot-separated label
//!   (so no leading, trailing or doubled dot), no port and no user info;
//! * the path is exactly `/ns/<namespace>/sa/<serviceaccount>`: no extra or missing segments,
//!   no empty segment, no trailing slash, no query or fragment;
//! * the namespace is a Kubernetes namespace name (an RFC 1123 label: 1–63 bytes of
//!   `a-z 0-9 -`, starting and ending with a letter or digit);
//! * the service account is a Kubernetes object name (an RFC 1123 subdomain: at most 253
//!   bytes, dot-separated labels as above);
//! * the whole id is at most 2048 bytes.
use std::fmt;
use std::str::FromStr;

/// The trust domain picket uses when none is configured, as in Istio and Linkerd.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

const SCHEME: &str = "spiffe://";
const MAX_ID_LEN: usize = 2048;
const MAX_TRUST_DOMAIN_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;
const MAX_SUBDOMAIN_LEN: usize = 253;

/// Why a string is not an acceptable trust domain or SPIFFE id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("SPIFFE id is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("SPIFFE id must start with \"spiffe://\"")]
    WrongScheme,
    #[error("trust domain is empty")]
    EmptyTrustDomain,
    #[error("trust domain is longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
    #[error("trust domain may only contain a-z, 0-9, '.', '-' and '_' (found {0:?})")]
    TrustDomainChar(char),
    #[error("trust domain has an empty label (leading, trailing or doubled '.')")]
    TrustDomainEmptyLabel,
    #[error("path must be /ns/<namespace>/sa/<serviceaccount>")]
    WrongPath,
    #[error("namespace {0:?} is not a Kubernetes namespace name (RFC 1123 label)")]
    BadNamespace(String),
    #[error("service account {0:?} is not a Kubernetes object name (RFC 1123 subdomain)")]
    BadServiceAccount(String),
}

/// A SPIFFE trust domain (`cluster.local` by default): the set of workloads whose
/// certificates chain to one mesh CA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates `name` as a trust domain (see the module docs for the rules).
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        if name.is_empty() {
            return Err(SpiffeIdError::EmptyTrustDomain);
        }
        if name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(SpiffeIdError::TrustDomainTooLong);
        }
        if let Some(c) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
        {
            return Err(SpiffeIdError::TrustDomainChar(c));
        }
        if name.split('.').any(str::is_empty) {
            return Err(SpiffeIdError::TrustDomainEmptyLabel);
        }
        Ok(TrustDomain(name.to_owned()))
    }

    /// Parses the SPIFFE id of a trust domain itself, `spiffe://<trust-domain>` (what the mesh
    /// CA certificates carry as their URI SAN).
    pub fn from_uri(uri: &str) -> Result<Self, SpiffeIdError> {
        let rest = uri.strip_prefix(SCHEME).ok_or(SpiffeIdError::WrongScheme)?;
        TrustDomain::new(rest)
    }

    /// `spiffe://<trust-domain>`.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        TrustDomain(DEFAULT_TRUST_DOMAIN.to_owned())
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::new(s)
    }
}

/// A workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>`.
///
/// Only constructible through validation ([`SpiffeId::new`], [`SpiffeId::parse`]), so a
/// value of this type is always in canonical form and compares equal exactly when the
/// identities are the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    uri: String,
    trust_domain: TrustDomain,
    namespace: String,
    service_account: String,
}

impl SpiffeId {
    /// The identity of `service_account` in `namespace` under `trust_domain`.
    pub fn new(
        trust_domain: TrustDomain,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        if !is_rfc1123_label(namespace) {
            return Err(SpiffeIdError::BadNamespace(namespace.to_owned()));
        }
        if !is_rfc1123_subdomain(service_account) {
            return Err(SpiffeIdError::BadServiceAccount(service_account.to_owned()));
        }
        let uri = format!("{SCHEME}{trust_domain}/ns/{namespace}/sa/{service_account}");
        if uri.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        Ok(SpiffeId {
            uri,
            trust_domain,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }

    /// The identity of `service_account` in `namespace` under `cluster.local`.
    pub fn in_default_domain(
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        SpiffeId::new(TrustDomain::default(), namespace, service_account)
    }

    /// Parses and validates a SPIFFE id string.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        if s.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = s.strip_prefix(SCHEME).ok_or(SpiffeIdError::WrongScheme)?;
        let (domain, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let trust_domain = TrustDomain::new(domain)?;
        if path.split('/').any(str::is_empty) {
            return Err(SpiffeIdError::WrongPath);
        }
        let mut segments = path.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => {
                SpiffeId::new(trust_domain, ns, sa)
            }
            _ => Err(SpiffeIdError::WrongPath),
        }
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The id as a URI string.
    pub fn as_str(&self) -> &str {
        &self.uri
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_rfc1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SUBDOMAIN_LEN && s.split('.').all(is_rfc1123_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_round_trip() {
        for s in [
            "spiffe://cluster.local/ns/default/sa/default",
            "spiffe://cluster.local/ns/kube-system/sa/coredns",
            "spiffe://prod.example_corp-1/ns/a/sa/b.c-d.e",
            "spiffe://x/ns/0/sa/9",
        ] {
            let id = SpiffeId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
            let again: SpiffeId = id.as_str().parse().unwrap();
            assert_eq!(again, id);
        }
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/cart").unwrap();
        assert_eq!(id.trust_domain().as_str(), "cluster.local");
        assert_eq!(id.namespace(), "shop");
        assert_eq!(id.service_account(), "cart");
        assert_eq!(SpiffeId::in_default_domain("shop", "cart").unwrap(), id);
    }

    #[test]
    fn wrong_scheme() {
        for s in [
            "https://cluster.local/ns/a/sa/b",
            "SPIFFE://cluster.local/ns/a/sa/b",
            "spiffe:/cluster.local/ns/a/sa/b",
            "spiffe:cluster.local/ns/a/sa/b",
            "cluster.local/ns/a/sa/b",
            "",
        ] {
            assert_eq!(SpiffeId::parse(s), Err(SpiffeIdError::WrongScheme), "{s}");
        }
    }

    #[test]
    fn missing_or_extra_parts() {
        for s in [
            "spiffe://cluster.local",
            "spiffe://cluster.local/",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa",
            "spiffe://cluster.local/ns/a/sa/",
            "spiffe://cluster.local/ns/a/sa/b/",
            "spiffe://cluster.local/ns/a/sa/b/c",
            "spiffe://cluster.local/ns/a/sa/b/extra/x",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local/namespace/a/sa/b",
            "spiffe://cluster.local//ns/a/sa/b",
            "spiffe://cluster.local/ns//sa/b",
        ] {
            assert_eq!(SpiffeId::parse(s), Err(SpiffeIdError::WrongPath), "{s}");
        }
        assert_eq!(
            SpiffeId::parse("spiffe:///ns/a/sa/b"),
            Err(SpiffeIdError::EmptyTrustDomain)
        );
    }

    #[test]
    fn bad_characters() {
        let cases = [
            (
                "spiffe://Cluster.local/ns/a/sa/b",
                SpiffeIdError::TrustDomainChar('C'),
            ),
            (
                "spiffe://cluster.local:8443/ns/a/sa/b",
                SpiffeIdError::TrustDomainChar(':'),
            ),
            (
                "spiffe://user@cluster.local/ns/a/sa/b",
                SpiffeIdError::TrustDomainChar('@'),
            ),
            (
                "spiffe://clüster/ns/a/sa/b",
                SpiffeIdError::TrustDomainChar('ü'),
            ),
            (
                "spiffe://cluster.local/ns/A/sa/b",
                SpiffeIdError::BadNamespace("A".into()),
            ),
            (
                "spiffe://cluster.local/ns/a_b/sa/b",
                SpiffeIdError::BadNamespace("a_b".into()),
            ),
            (
                "spiffe://cluster.local/ns/-a/sa/b",
                SpiffeIdError::BadNamespace("-a".into()),
            ),
            (
                "spiffe://cluster.local/ns/a-/sa/b",
                SpiffeIdError::BadNamespace("a-".into()),
            ),
            (
                "spiffe://cluster.local/ns/a.b/sa/b",
                SpiffeIdError::BadNamespace("a.b".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/b%2F",
                SpiffeIdError::BadServiceAccount("b%2F".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/b?x=1",
                SpiffeIdError::BadServiceAccount("b?x=1".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/b#f",
                SpiffeIdError::BadServiceAccount("b#f".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/..",
                SpiffeIdError::BadServiceAccount("..".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/b..c",
                SpiffeIdError::BadServiceAccount("b..c".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/B",
                SpiffeIdError::BadServiceAccount("B".into()),
            ),
            (
                "spiffe://cluster.local/ns/a/sa/b c",
                SpiffeIdError::BadServiceAccount("b c".into()),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(SpiffeId::parse(s), Err(want), "{s}");
        }
    }

    #[test]
    fn trust_domain_rules() {
        assert_eq!(TrustDomain::default().as_str(), "cluster.local");
        assert!(TrustDomain::new("example.org").is_ok());
        assert!(TrustDomain::new("a_b-c.9").is_ok());
        assert_eq!(TrustDomain::new(""), Err(SpiffeIdError::EmptyTrustDomain));
        assert_eq!(
            TrustDomain::new(".a"),
            Err(SpiffeIdError::TrustDomainEmptyLabel)
        );
        assert_eq!(
            TrustDomain::new("a."),
            Err(SpiffeIdError::TrustDomainEmptyLabel)
        );
        assert_eq!(
            TrustDomain::new("a..b"),
            Err(SpiffeIdError::TrustDomainEmptyLabel)
        );
        assert_eq!(
            TrustDomain::new("a b"),
            Err(SpiffeIdError::TrustDomainChar(' '))
        );
        assert_eq!(
            TrustDomain::new(&"a".repeat(256)),
            Err(SpiffeIdError::TrustDomainTooLong)
        );
        assert!(TrustDomain::new(&"a".repeat(255)).is_ok());
        assert_eq!(
            TrustDomain::from_uri("spiffe://cluster.local"),
            Ok(TrustDomain::default())
        );
        assert!(TrustDomain::from_uri("spiffe://cluster.local/ns/a/sa/b").is_err());
        assert_eq!(TrustDomain::default().uri(), "spiffe://cluster.local");
    }

    #[test]
    fn length_limits() {
        let long_ns = "a".repeat(64);
        assert_eq!(
            SpiffeId::in_default_domain(&long_ns, "b"),
            Err(SpiffeIdError::BadNamespace(long_ns.clone()))
        );
        assert!(SpiffeId::in_default_domain(&"a".repeat(63), "b").is_ok());
        let long_sa = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long_sa.len(), 253);
        assert!(SpiffeId::in_default_domain("x", &long_sa).is_ok());
        let too_long = format!("{long_sa}e");
        assert!(matches!(
            SpiffeId::in_default_domain("x", &too_long),
            Err(SpiffeIdError::BadServiceAccount(_))
        ));
        let huge = format!("spiffe://cluster.local/ns/a/sa/{}", "b".repeat(2100));
        assert_eq!(SpiffeId::parse(&huge), Err(SpiffeIdError::TooLong));
    }
}
