//! Mesh mutual TLS in the data path (with [`picket_mtls`]).
//!
//! **Inbound** (a listener of direction `inbound`, when picket has mesh certificates): a
//! connection that opens with a TLS ClientHello is a picket peer's tunnel. picket terminates
//! it with [`MeshTls::server_config`] (client certificate required, chained to the trust
//! bundle, SPIFFE id of this trust domain, a `picket/1+…` ALPN id), and the ALPN id says what
//! the tunnel carries: `picket/1+http/1.1` goes to the HTTP/1 path, `picket/1+h2` to the
//! HTTP/2 path, and `picket/1+tcp` to protocol detection on the decrypted bytes (so an HTTP
//! request that arrives late in a `tcp` tunnel is still found and inspected). The peer's
//! SPIFFE id is in every block log line of the connection (`peer_identity`) and counted in
//! `picket_mesh_connections_total{direction,peer}`. A failed handshake (no certificate, one
//! from another CA, expired, no picket ALPN) is logged and counted as
//! `picket_connection_errors_total{reason="mtls"}`.
//!
//! Under [`InboundPolicy::Permissive`] a connection that does not open with a ClientHello is
//! served as plaintext, as without mesh; picket waits at most `--detect-timeout-ms` for the
//! first bytes before it decides (a server-first client gets its greeting that much later).
//! Under [`InboundPolicy::Strict`] it is reset, logged and counted
//! (`reason="plaintext_refused"`); the upstream is never connected for it.
//!
//! **Outbound** (gateway mode with `--mesh-upstream`): the upstream is a picket peer. The
//! connection to it is opened *after* protocol detection, because the ALPN id offered names
//! the protocol: HTTP/1 → `picket/1+http/1.1`, HTTP/2 → `picket/1+h2`, anything else →
//! `picket/1+tcp`. A client silent past `--detect-timeout-ms` (a server-first protocol) gets
//! a `picket/1+tcp` tunnel at that point, so the server's greeting can reach it; what it sends
//! later is detected and inspected again by the peer on the inbound side.
//!
//! **Outbound in transparent mode**: the same, to the original destination, when the probe
//! of its mesh port 15443 says it is a picket peer ([`crate::mesh_probe`]).
//!
//! Every handshake has a deadline: inbound, `--request-timeout` from the first byte (from
//! accept under `strict`); outbound, `--connect-timeout` for connect and handshake.
//!
//! The certificate, key and trust bundle are files ([`MeshFiles`]), loaded at start (a bad
//! one stops picket from starting) and then watched ([`watch`]): changed material is
//! installed for new handshakes, bad material is refused and the last good one stays.
//! Or they come from the identity service and are renewed there ([`crate::identity`]); and an
//! inbound allow-list of peer identities per port may apply after the handshake
//! ([`crate::authz`], [`MeshSettings::inbound_allow`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use picket_mtls::{
    mesh_server_name, negotiated_protocol, peer_spiffe_id, AcceptedPeers, MeshProtocol, MeshTls,
    SpiffeId, TrustBundle, TrustDomain, WorkloadIdentity,
};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::conn_io::{ClientIo, UpstreamIo};
use crate::detect::Protocol;
use crate::gateway::{ConnError, GatewayConfig};
use crate::reload::FileStamp;

/// What an inbound listener does with connections that are not mesh mTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundPolicy {
    /// Serve them as plaintext (inspected as without mesh).
    Permissive,
    /// Reset them.
    Strict,
}

/// The mesh part of the proxy's configuration.
#[derive(Debug, Clone)]
pub struct MeshSettings {
    pub tls: Arc<MeshTls>,
    pub inbound: InboundPolicy,
    /// Gateway mode: the fixed upstream is a picket peer, accepted when its identity is one
    /// of these.
    pub upstream: Option<AcceptedPeers>,
    /// `--inbound-allow`: the peer identities each inbound port accepts ([`crate::authz`]).
    pub inbound_allow: Option<Arc<crate::authz::InboundAllow>>,
}

/// Why the mesh material could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum MeshLoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mesh certificate {cert} / key {key}: {source}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: picket_mtls::Error,
    },
    #[error("mesh trust bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: picket_mtls::Error,
    },
    #[error("mesh certificate {cert} does not verify against the trust bundle {bundle}: {source}")]
    Chain {
        cert: PathBuf,
        bundle: PathBuf,
        #[source]
        source: picket_mtls::Error,
    },
}

/// The three PEM files of the mesh material.
#[derive(Debug, Clone)]
pub struct MeshFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub bundle: PathBuf,
}

impl MeshFiles {
    /// Reads and parses the files (each on its own: whether they belong together is checked
    /// by [`MeshTls::new`] / [`MeshTls::replace`]).
    pub fn read(&self) -> Result<(WorkloadIdentity, TrustBundle), MeshLoadError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| MeshLoadError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let (cert_pem, key_pem, bundle_pem) =
            (read(&self.cert)?, read(&self.key)?, read(&self.bundle)?);
        let identity = WorkloadIdentity::from_pem(&cert_pem, &key_pem).map_err(|source| {
            MeshLoadError::Identity {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            }
        })?;
        let roots = TrustBundle::from_pem(&bundle_pem).map_err(|source| MeshLoadError::Bundle {
            path: self.bundle.clone(),
            source,
        })?;
        Ok((identity, roots))
    }

    /// Loads the material and checks that it belongs together (the chain verifies against
    /// the bundle and is valid now).
    pub fn load(&self) -> Result<MeshTls, MeshLoadError> {
        let (identity, roots) = self.read()?;
        MeshTls::new(identity, roots).map_err(|source| self.chain_error(source))
    }

    fn chain_error(&self, source: picket_mtls::Error) -> MeshLoadError {
        MeshLoadError::Chain {
            cert: self.cert.clone(),
            bundle: self.bundle.clone(),
            source,
        }
    }

    /// What each file is now (see [`FileStamp`]).
    fn stamp(&self) -> [Option<FileStamp>; 3] {
        [&self.cert, &self.key, &self.bundle].map(|p| FileStamp::of(p))
    }
}

/// Watches the mesh files and installs changed material in `tls` ([`MeshTls::replace`]):
/// new handshakes use it, established connections keep theirs. Material that does not load
/// or does not belong together (a certificate written before its key, another workload's
/// identity, a chain the bundle does not verify, an expired certificate) leaves the material
/// in force; every attempt is logged and counted in `picket_mesh_reloads_total{result}`
/// (`ok`, `invalid`, `refused`), and the next change is tried again.
pub async fn watch(
    files: MeshFiles,
    tls: Arc<MeshTls>,
    metrics: Arc<crate::metrics::Metrics>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    metrics.mesh_certificate(&tls);
    let mut last = files.stamp();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let now = files.stamp();
        if now == last {
            continue;
        }
        last = now;
        let result = match files.read() {
            Err(e) => {
                tracing::warn!(error = %e, "mesh material changed but cannot be loaded; the current material stays in force");
                "invalid"
            }
            Ok((identity, roots)) => match tls.replace(identity, roots) {
                Err(e) => {
                    let e = files.chain_error(e);
                    tracing::warn!(error = %e, "mesh material refused; the current material stays in force");
                    "refused"
                }
                Ok(()) => {
                    let info = tls.certificate_info();
                    tracing::info!(identity = %tls.spiffe_id(), serial = %info.serial_hex(), "mesh certificate reloaded");
                    metrics.mesh_certificate(&tls);
                    "ok"
                }
            },
        };
        metrics.mesh_reload(result);
    }
}

/// `--mesh-upstream`: a SPIFFE id (`spiffe://td/ns/NS/sa/SA`), or `trust-domain:TD` for any
/// workload of trust domain TD.
pub fn parse_upstream_peers(s: &str) -> Result<AcceptedPeers, String> {
    if let Some(td) = s.strip_prefix("trust-domain:") {
        return TrustDomain::new(td)
            .map(AcceptedPeers::trust_domain)
            .map_err(|e| format!("--mesh-upstream {s}: {e}"));
    }
    SpiffeId::parse(s)
        .map(AcceptedPeers::one)
        .map_err(|e| format!("--mesh-upstream {s}: {e} (a SPIFFE id, or trust-domain:TD)"))
}

/// The protocol a detected connection is tunnelled as.
pub(crate) fn mesh_protocol(p: Protocol) -> MeshProtocol {
    match p {
        Protocol::Http1 => MeshProtocol::Http1,
        Protocol::H2 => MeshProtocol::Http2,
        Protocol::Tls | Protocol::Opaque => MeshProtocol::Opaque,
    }
}

/// What an inbound connection turned out to be.
pub(crate) enum Inbound {
    /// A mesh tunnel, terminated: what it carries and who sent it.
    Mesh {
        io: ClientIo,
        protocol: MeshProtocol,
        peer: SpiffeId,
    },
    /// Not TLS, and the policy lets plaintext in.
    Plain(TcpStream),
    /// Closed before its first byte.
    Closed,
}

/// What the first bytes of a connection say, looked at without consuming them.
enum FirstBytes {
    ClientHello,
    Other,
    Closed,
    /// Nothing decisive before the deadline.
    Silent,
}

/// Peeks at the first bytes (`MSG_PEEK`, so whoever serves the connection reads them again)
/// until they show whether it opens with a TLS handshake record.
async fn peek_first(tcp: &TcpStream, deadline: Instant) -> std::io::Result<FirstBytes> {
    let mut b = [0u8; 2];
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut b)).await {
            Err(_) => return Ok(FirstBytes::Silent),
            Ok(r) => r?,
        };
        if n == 0 {
            return Ok(FirstBytes::Closed);
        }
        match crate::detect::is_tls_handshake(&b[..n]) {
            Some(true) => return Ok(FirstBytes::ClientHello),
            Some(false) => return Ok(FirstBytes::Other),
            // One byte so far: peek returns at once while it is there, so wait a little.
            None => {
                let next = Instant::now() + Duration::from_millis(2);
                if next >= deadline {
                    return Ok(FirstBytes::Silent);
                }
                tokio::time::sleep_until(next).await;
            }
        }
    }
}

/// Terminates mesh mTLS on an inbound connection, or lets it through as plaintext, or refuses
/// it, as the policy says (see the module docs).
pub(crate) async fn accept_inbound(
    tcp: TcpStream,
    mesh: &MeshSettings,
    cfg: &GatewayConfig,
) -> Result<Inbound, ConnError> {
    let accepted = Instant::now();
    let strict = mesh.inbound == InboundPolicy::Strict;
    // Plaintext clients of server-first protocols say nothing: under `permissive` they get
    // their greeting after the detection timeout; under `strict` the handshake must be done
    // within the request timeout of the accept.
    let wait = if strict {
        cfg.request_timeout
    } else {
        cfg.detect_timeout
    };
    let first = peek_first(&tcp, accepted + wait)
        .await
        .map_err(ConnError::Client)?;
    match first {
        FirstBytes::ClientHello => {}
        FirstBytes::Closed => return Ok(Inbound::Closed),
        FirstBytes::Other | FirstBytes::Silent if !strict => return Ok(Inbound::Plain(tcp)),
        FirstBytes::Other => {
            ClientIo::Plain(tcp).abort();
            return Err(ConnError::PlaintextRefused);
        }
        FirstBytes::Silent => {
            ClientIo::Plain(tcp).abort();
            return Err(ConnError::MeshHandshakeTimeout(cfg.request_timeout));
        }
    }
    let deadline = if strict {
        accepted + cfg.request_timeout
    } else {
        Instant::now() + cfg.request_timeout
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(mesh.tls.server_config());
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Err(_) => return Err(ConnError::MeshHandshakeTimeout(cfg.request_timeout)),
        Ok(Err(e)) => return Err(ConnError::MeshHandshake(e)),
        Ok(Ok(tls)) => tls,
    };
    let session = tls.get_ref().1;
    let protocol = negotiated_protocol(session).map_err(ConnError::MeshPeer)?;
    let peer = peer_spiffe_id(session).map_err(ConnError::MeshPeer)?;
    Ok(Inbound::Mesh {
        io: ClientIo::Tls(Box::new(tls)),
        protocol,
        peer,
    })
}

/// Opens the mesh tunnel to the upstream picket peer: TCP connect and mTLS handshake within
/// the connect timeout, offering `protocol`, accepting a server that `peers` accepts.
pub(crate) async fn connect_upstream(
    addr: SocketAddr,
    mesh: &MeshSettings,
    peers: &AcceptedPeers,
    protocol: MeshProtocol,
    cfg: &GatewayConfig,
) -> Result<(UpstreamIo, SpiffeId), ConnError> {
    let deadline = Instant::now() + cfg.connect_timeout;
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnError::UpstreamTimeout(addr)),
        Ok(Err(source)) => return Err(ConnError::Upstream { addr, source }),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let peer_err = |source| ConnError::UpstreamMeshPeer { addr, source };
    let config = mesh.tls.client_config(peers, protocol).map_err(peer_err)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls =
        match tokio::time::timeout_at(deadline, connector.connect(mesh_server_name(), tcp)).await {
            Err(_) => return Err(ConnError::UpstreamTimeout(addr)),
            Ok(Err(source)) => return Err(ConnError::UpstreamMesh { addr, source }),
            Ok(Ok(tls)) => tls,
        };
    let session = tls.get_ref().1;
    let agreed = negotiated_protocol(session).map_err(peer_err)?;
    if agreed != protocol {
        return Err(peer_err(picket_mtls::Error::UnknownAlpn(
            String::from_utf8_lossy(agreed.alpn_id()).into_owned(),
        )));
    }
    let peer = peer_spiffe_id(session).map_err(peer_err)?;
    Ok((UpstreamIo::Tls(Box::new(tls)), peer))
}

/// Most distinct peer identities that get a label value of their own in
/// `picket_mesh_connections_total`; later ones are counted as `other`.
pub const MAX_PEER_LABELS: usize = 256;

/// The label value for `peer`, keeping the metric's cardinality bounded.
#[derive(Debug, Default)]
pub struct PeerLabels {
    seen: Mutex<HashSet<String>>,
}

impl PeerLabels {
    pub fn label(&self, peer: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(peer) {
            return peer.to_string();
        }
        if seen.len() >= MAX_PEER_LABELS {
            return "other".to_string();
        }
        seen.insert(peer.to_string());
        peer.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_peers_parse() {
        let one = parse_upstream_peers("spiffe://cluster.local/ns/default/sa/server").unwrap();
        assert!(one.accepts(&SpiffeId::in_default_domain("default", "server").unwrap()));
        assert!(!one.accepts(&SpiffeId::in_default_domain("default", "other").unwrap()));
        let td = parse_upstream_peers("trust-domain:cluster.local").unwrap();
        assert!(td.accepts(&SpiffeId::in_default_domain("x", "y").unwrap()));
        assert!(parse_upstream_peers("server").is_err());
        assert!(parse_upstream_peers("trust-domain:").is_err());
    }

    #[test]
    fn peer_labels_are_capped() {
        let labels = PeerLabels::default();
        for i in 0..MAX_PEER_LABELS {
            assert_eq!(labels.label(&format!("p{i}")), format!("p{i}"));
        }
        assert_eq!(labels.label("p0"), "p0");
        assert_eq!(labels.label("late"), "other");
    }
}
