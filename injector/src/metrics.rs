//! The injector's Prometheus metrics, served as OpenMetrics text on the health listener's
//! `/metrics`.
//!
//! * `picket_identity_issued_total{result}`: identity service decisions; `result` is `issued`
//!   or the refusal's [`ErrorCode`] (`unauthenticated`, `identity_mismatch`, …), a fixed set.
//! * `picket_identity_serving_cert_reissued_total`: re-issues of the identity service's own
//!   serving certificate.
//! * `picket_injector_namespace_lookup_failures_total`: namespace annotation lookups that
//!   failed (the pod then gets its pod-level settings only).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use picket_mtls::issuance::ErrorCode;

/// The `result` label of `picket_identity_issued_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Every metric of the injector, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub identity_issued: Family<ResultLabel, Counter>,
    pub serving_cert_reissued: Counter,
    pub namespace_lookup_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let identity_issued = Family::<ResultLabel, Counter>::default();
        registry.register(
            "picket_identity_issued",
            "Identity service decisions, by result (issued, or the error code)",
            identity_issued.clone(),
        );
        let serving_cert_reissued = Counter::default();
        registry.register(
            "picket_identity_serving_cert_reissued",
            "Re-issues of the identity service's own serving certificate",
            serving_cert_reissued.clone(),
        );
        let namespace_lookup_failures = Counter::default();
        registry.register(
            "picket_injector_namespace_lookup_failures",
            "Namespace annotation lookups that failed (pod-level settings used)",
            namespace_lookup_failures.clone(),
        );
        Metrics {
            registry,
            identity_issued,
            serving_cert_reissued,
            namespace_lookup_failures,
        }
    }

    /// Counts one identity decision.
    pub fn identity_result(&self, result: Result<(), ErrorCode>) {
        let result = match result {
            Ok(()) => "issued",
            Err(code) => code.as_str(),
        };
        self.identity_issued
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_result() {
        let m = Metrics::new();
        m.identity_result(Ok(()));
        m.identity_result(Err(ErrorCode::IdentityMismatch));
        m.identity_result(Err(ErrorCode::IdentityMismatch));
        let text = m.encode();
        assert!(
            text.contains(r#"picket_identity_issued_total{result="issued"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"picket_identity_issued_total{result="identity_mismatch"} 2"#),
            "{text}"
        );
        // The names agree with the wire format.
        for code in [
            ErrorCode::BadCsr,
            ErrorCode::Unavailable,
            ErrorCode::Forbidden,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
