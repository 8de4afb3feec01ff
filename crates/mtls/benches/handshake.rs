//! Mesh mTLS handshakes in memory (no sockets): the CPU cost of one handshake on each side
//! together, full and resumed, and of issuing a workload certificate from a CSR.
//!
//! `cargo bench -p picket-mtls --bench handshake`; the figures are per core (both peers run
//! on the same thread, so a full handshake here is one client's and one server's work).
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use picket_mtls::*;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};

fn identity(ca: &MeshCa, ns: &str, sa: &str) -> WorkloadIdentity {
    let id = SpiffeId::in_default_domain(ns, sa).unwrap();
    let csr = generate_key_and_csr(None).unwrap();
    let cert = ca
        .issue_from_csr(&csr.csr_der, &id, DEFAULT_WORKLOAD_LIFETIME)
        .unwrap();
    WorkloadIdentity::from_pem(cert.chain_pem().as_bytes(), csr.key_pem.as_bytes()).unwrap()
}

/// Runs one handshake between fresh connections, moving the records through a buffer, and
/// delivers the server's session tickets to the client.
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Option<HandshakeKind> {
    let mut c = ClientConnection::new(client.clone(), mesh_server_name()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..8 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets().unwrap();
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
            assert!(s.peer_certificates().is_some());
            return c.handshake_kind();
        }
    }
    panic!("handshake did not finish");
}

fn handshakes(c: &mut Criterion) {
    let ca = MeshCa::generate(TrustDomain::default(), &CaOptions::default()).unwrap();
    let bundle = ca.trust_bundle().unwrap();
    let server_identity = identity(&ca, "shop", "cart");
    let client_identity = identity(&ca, "shop", "frontend");
    let server = Arc::new(server_config(&server_identity, &bundle).unwrap());
    let accepted = AcceptedPeers::one(server_identity.spiffe_id().clone());
    let mut full = client_config(
        &client_identity,
        &bundle,
        accepted.clone(),
        MeshProtocol::Http1,
    )
    .unwrap();
    full.resumption = rustls::client::Resumption::disabled();
    let full = Arc::new(full);
    let resuming =
        Arc::new(client_config(&client_identity, &bundle, accepted, MeshProtocol::Http1).unwrap());

    let mut g = c.benchmark_group("mtls");
    g.throughput(Throughput::Elements(1));
    assert_eq!(handshake(&server, &full), Some(HandshakeKind::Full));
    assert_eq!(handshake(&server, &full), Some(HandshakeKind::Full));
    g.bench_function("full_handshake", |b| b.iter(|| handshake(&server, &full)));
    assert_eq!(handshake(&server, &resuming), Some(HandshakeKind::Full));
    assert_eq!(handshake(&server, &resuming), Some(HandshakeKind::Resumed));
    g.bench_function("resumed_handshake", |b| {
        b.iter(|| handshake(&server, &resuming))
    });
    let csr = generate_key_and_csr(None).unwrap();
    let id = SpiffeId::in_default_domain("shop", "cart").unwrap();
    g.bench_function("issue_from_csr", |b| {
        b.iter(|| {
            ca.issue_from_csr(&csr.csr_der, &id, DEFAULT_WORKLOAD_LIFETIME)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = handshakes
}
criterion_main!(benches);
