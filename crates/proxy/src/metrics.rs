//! The proxy's Prometheus metrics (OpenMetrics text on the admin `/metrics` endpoint).
//!
//! Handles are cheap clones of shared atomics, so connection tasks update them without locks;
//! label sets are small enums and signature ids, bounded by the pack.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use picket_dpi::Decision;
use picket_signatures::PackInfo;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    inbound,
    outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::inbound => "inbound",
            Direction::outbound => "outbound",
        }
    }
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Proto {
    http1,
    h2,
    grpc,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::http1 => "http1",
            Proto::h2 => "h2",
            Proto::grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum VerdictLabel {
    allow,
    alert,
    block,
}

impl From<Decision> for VerdictLabel {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Allow => VerdictLabel::allow,
            Decision::Alert => VerdictLabel::alert,
            Decision::Block => VerdictLabel::block,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub direction: Direction,
    pub proto: Proto,
    pub verdict: VerdictLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureLabels {
    pub signature: String,
    pub event: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PackLabels {
    pub name: String,
    pub version: String,
    pub source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric the proxy exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub findings: Family<SignatureLabels, Counter>,
    pub inspection_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub connections: Counter,
    pub open_connections: Gauge,
    pub connection_errors: Family<ReasonLabels, Counter>,
    pub block_log_dropped: Counter,
    pub pack_info: Family<PackLabels, Gauge>,
    pub connections_by_protocol: Family<ProtocolLabels, Counter>,
    pub server_first: Counter,
    pub pack_reloads: Family<ResultLabels, Counter>,
    pub mesh_connections: Family<MeshPeerLabels, Counter>,
    pub mesh_reloads: Family<ResultLabels, Counter>,
    pub mesh_certificate_expiry: Gauge,
    pub mesh_renewals: Family<ResultLabels, Counter>,
    pub inbound_denied: Family<ReasonLabels, Counter>,
    /// Transparent outbound mesh probes, and the probe cache's size ([`crate::mesh_probe`]).
    pub mesh_probe: crate::mesh_probe::ProbeMetrics,
    /// Upstream connections by kind and new/reused, and the idle pool ([`crate::pool`]).
    pub pool: crate::pool::PoolMetrics,
    peer_labels: crate::mesh::PeerLabels,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MeshPeerLabels {
    pub direction: Direction,
    /// The peer's SPIFFE id (`other` past [`crate::mesh::MAX_PEER_LABELS`] distinct ids).
    pub peer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: String,
    pub handling: String,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("picket");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests inspected, by direction, protocol and verdict",
            requests.clone(),
        );
        let findings = Family::<SignatureLabels, Counter>::default();
        registry.register(
            "findings",
            "Requests blocked or alerted on, by the signature that decided and the event",
            findings.clone(),
        );
        // 1 µs to about 1 s.
        let inspection_seconds = Histogram::new(exponential_buckets(1e-6, 4.0, 11));
        registry.register(
            "inspection_seconds",
            "Time spent inspecting each piece of client data read (parsing, decoding, matching)",
            inspection_seconds.clone(),
        );
        let upstream_seconds = Histogram::new(exponential_buckets(1e-4, 2.5, 14));
        registry.register(
            "upstream_response_seconds",
            "Time from a request's last byte forwarded upstream to the first bytes of its response (HTTP/1), or to its response head (HTTP/2)",
            upstream_seconds.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let connection_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connection_errors",
            "Connections ended early, by reason (idle, request_timeout, upstream, client, mtls, plaintext_refused, upstream_mtls, ...)",
            connection_errors.clone(),
        );
        let block_log_dropped = Counter::default();
        registry.register(
            "block_log_dropped",
            "Block log lines dropped because the log queue was full",
            block_log_dropped.clone(),
        );
        let pack_info = Family::<PackLabels, Gauge>::default();
        registry.register(
            "pack_info",
            "The signature pack in force (value 1)",
            pack_info.clone(),
        );
        let connections_by_protocol = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "detected_connections",
            "Connections by detected protocol and how they were handled (inspected, opaque, refused)",
            connections_by_protocol.clone(),
        );
        let pack_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pack_reloads",
            "Pack reload attempts by result (ok, invalid, refused, unreadable, error)",
            pack_reloads.clone(),
        );
        let server_first = Counter::default();
        registry.register(
            "protocol_detect_slow",
            "Connections whose client sent nothing within the detection timeout (server-first protocols, idle preconnects)",
            server_first.clone(),
        );
        let mesh_connections = Family::<MeshPeerLabels, Counter>::default();
        registry.register(
            "mesh_connections",
            "Mesh mTLS connections established, by direction and peer SPIFFE id",
            mesh_connections.clone(),
        );
        let mesh_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mesh_reloads",
            "Mesh certificate / trust bundle reload attempts by result (ok, invalid, refused)",
            mesh_reloads.clone(),
        );
        let mesh_certificate_expiry = Gauge::default();
        registry.register(
            "mesh_certificate_expiry_timestamp_seconds",
            "notAfter of the mesh certificate in force (Unix time)",
            mesh_certificate_expiry.clone(),
        );
        let mesh_renewals = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mesh_certificate_renewals",
            "Mesh certificate requests to the identity service (the first issuance included) by result (ok, error)",
            mesh_renewals.clone(),
        );
        let inbound_denied = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "inbound_denied",
            "Inbound connections refused by --inbound-allow (alerted on in monitor mode), by reason (identity_not_allowed, no_identity)",
            inbound_denied.clone(),
        );
        let mesh_probe = crate::mesh_probe::ProbeMetrics::default();
        registry.register(
            "mesh_probes",
            "Probes of destinations' mesh port 15443 by result (meshed, plain, error)",
            mesh_probe.probes.clone(),
        );
        registry.register(
            "mesh_probe_cache_entries",
            "Destination IPs in the mesh probe cache (answers and probes in flight)",
            mesh_probe.entries.clone(),
        );
        let pool = crate::pool::PoolMetrics::default();
        registry.register(
            "upstream_connections",
            "Upstream connections used for HTTP/1 and other client connections, by kind (plain, mesh) and result (new, reused from the idle pool)",
            pool.connections.clone(),
        );
        registry.register(
            "upstream_idle_connections",
            "Idle upstream connections in the pool",
            pool.idle.clone(),
        );
        registry.register(
            "mesh_probe_no_slot",
            "Outbound connections to an IP without a fresh probe answer that found every probe slot taken (not probed: an expired meshed answer is kept, others go plain)",
            mesh_probe.no_slot.clone(),
        );
        Metrics {
            pool,
            inbound_denied,
            mesh_renewals,
            mesh_probe,
            mesh_connections,
            mesh_reloads,
            mesh_certificate_expiry,
            peer_labels: crate::mesh::PeerLabels::default(),
            connections_by_protocol,
            server_first,
            registry,
            requests,
            findings,
            inspection_seconds,
            upstream_seconds,
            connections,
            open_connections,
            connection_errors,
            block_log_dropped,
            pack_info,
            pack_reloads,
        }
    }

    /// Marks `info` as the pack in force (and any previous one as not).
    pub fn set_pack(&self, info: &PackInfo) {
        self.pack_info.clear();
        self.pack_info
            .get_or_create(&PackLabels {
                name: info.name.clone(),
                version: info.version.clone(),
                source: info.source.clone(),
            })
            .set(1);
    }

    pub fn pack_reload(&self, result: &str) {
        self.pack_reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn detected(&self, protocol: &str, handling: &str) {
        self.connections_by_protocol
            .get_or_create(&ProtocolLabels {
                protocol: protocol.to_string(),
                handling: handling.to_string(),
            })
            .inc();
    }

    /// Counts an established mesh connection with `peer` (a SPIFFE id).
    pub fn mesh_peer(&self, direction: Direction, peer: &str) {
        self.mesh_connections
            .get_or_create(&MeshPeerLabels {
                direction,
                peer: self.peer_labels.label(peer),
            })
            .inc();
    }

    pub fn mesh_reload(&self, result: &str) {
        self.mesh_reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn mesh_renewal(&self, result: &str) {
        self.mesh_renewals
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Records the validity of the mesh certificate in force.
    pub fn mesh_certificate(&self, tls: &picket_mtls::MeshTls) {
        let not_after = tls
            .certificate_info()
            .not_after
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.mesh_certificate_expiry
            .set(i64::try_from(not_after).unwrap_or(i64::MAX));
    }

    pub fn connection_error(&self, reason: &str) {
        self.connection_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
