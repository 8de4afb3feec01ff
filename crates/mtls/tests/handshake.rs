//! mTLS handshakes over real sockets on 127.0.0.1 (tokio + tokio-rustls), with certificates
//! issued from CSRs by a fresh mesh CA.
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use picket_mtls::verify::SpiffeServerVerifier;
use picket_mtls::*;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::{client, TlsAcceptor, TlsConnector};

const LIMIT: Duration = Duration::from_secs(10);

fn id(ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::in_default_domain(ns, sa).unwrap()
}

fn new_ca() -> MeshCa {
    MeshCa::generate(TrustDomain::default(), &CaOptions::default()).unwrap()
}

/// The whole workload flow: key and CSR in the "pod", certificate from the CA.
fn workload(ca: &MeshCa, who: &SpiffeId) -> WorkloadIdentity {
    let csr = generate_key_and_csr(Some(who)).unwrap();
    let cert = ca
        .issue_from_csr(csr.csr_pem.as_bytes(), who, DEFAULT_WORKLOAD_LIFETIME)
        .unwrap();
    WorkloadIdentity::from_pem(cert.chain_pem().as_bytes(), csr.key_pem.as_bytes()).unwrap()
}

/// What the server task saw of one handshake.
#[derive(Debug)]
struct Accepted {
    peer: Result<SpiffeId, String>,
    protocol: Result<MeshProtocol, String>,
    /// Serial of the client's leaf certificate.
    peer_serial: Option<Vec<u8>>,
}

struct Server {
    addr: SocketAddr,
    results: mpsc::UnboundedReceiver<io::Result<Accepted>>,
}

impl Server {
    /// Accepts connections forever; each one gets the configuration `config()` returns at
    /// accept time, reports its handshake, then echoes until EOF.
    async fn spawn(config: impl Fn() -> Arc<ServerConfig> + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, results) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = TlsAcceptor::from(config());
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let conn = tls.get_ref().1;
                    let _ = tx.send(Ok(Accepted {
                        peer: peer_spiffe_id(conn).map_err(|e| e.to_string()),
                        protocol: negotiated_protocol(conn).map_err(|e| e.to_string()),
                        peer_serial: conn
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|leaf| CertificateInfo::parse(leaf).ok())
                            .map(|info| info.serial),
                    }));
                    let mut buf = [0u8; 1024];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if tls.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Server { addr, results }
    }

    async fn next(&mut self) -> io::Result<Accepted> {
        timeout(LIMIT, self.results.recv())
            .await
            .expect("server reported nothing in time")
            .expect("server task ended")
    }
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> io::Result<client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    timeout(
        LIMIT,
        TlsConnector::from(config).connect(mesh_server_name(), tcp),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}

/// Sends `msg` and expects it echoed back.
async fn round_trip(tls: &mut client::TlsStream<TcpStream>, msg: &[u8]) -> io::Result<()> {
    tls.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    timeout(LIMIT, tls.read_exact(&mut back))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo"))??;
    assert_eq!(back, msg);
    Ok(())
}

/// Connect and exchange one message; the error if either step fails.
async fn try_exchange(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<()> {
    let mut tls = connect(addr, config).await?;
    round_trip(&mut tls, b"hello").await
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn leaf_of(tls: &client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn is_expired(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        )
    )
}

fn is_unknown_issuer(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    )
}

#[tokio::test]
async fn mtls_handshake_exchanges_bytes_and_both_sides_see_the_peer_id() {
    let ca = new_ca();
    let (server_id, client_id) = (id("shop", "cart"), id("shop", "frontend"));
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let client_tls = MeshTls::new(workload(&ca, &client_id), ca.trust_bundle().unwrap()).unwrap();
    assert_eq!(client_tls.trust_domain(), client_id.trust_domain());
    let mut server = Server::spawn(move || server_tls.server_config()).await;

    let config = client_tls
        .client_config(&AcceptedPeers::one(server_id.clone()), MeshProtocol::Http1)
        .unwrap();
    let mut tls = connect(server.addr, config).await.unwrap();
    let conn = tls.get_ref().1;
    assert_eq!(peer_spiffe_id(conn).unwrap(), server_id);
    assert_eq!(negotiated_protocol(conn).unwrap(), MeshProtocol::Http1);
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    round_trip(&mut tls, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();

    let seen = server.next().await.unwrap();
    assert_eq!(seen.peer, Ok(client_id));
    assert_eq!(seen.protocol, Ok(MeshProtocol::Http1));

    // The other application protocols negotiate as offered.
    for protocol in [MeshProtocol::Http2, MeshProtocol::Opaque] {
        let config = client_tls
            .client_config(&AcceptedPeers::one(server_id.clone()), protocol)
            .unwrap();
        let mut tls = connect(server.addr, config).await.unwrap();
        assert_eq!(negotiated_protocol(tls.get_ref().1).unwrap(), protocol);
        round_trip(&mut tls, b"x").await.unwrap();
        assert_eq!(server.next().await.unwrap().protocol, Ok(protocol));
    }
}

#[tokio::test]
async fn csr_asking_for_another_identity_gets_the_callers() {
    let ca = new_ca();
    let asked = id("kube-system", "cluster-admin");
    let granted = id("shop", "frontend");
    let csr = generate_key_and_csr(Some(&asked)).unwrap();
    let cert = ca
        .issue_from_csr(&csr.csr_der, &granted, DEFAULT_WORKLOAD_LIFETIME)
        .unwrap();
    assert_eq!(spiffe_id_of(cert.leaf()).unwrap(), granted);
    assert_eq!(cert.info.spiffe_id, Some(granted.clone()));

    // And that is the identity the server sees in the handshake.
    let client =
        WorkloadIdentity::from_pem(cert.chain_pem().as_bytes(), csr.key_pem.as_bytes()).unwrap();
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;
    let client_tls = MeshTls::new(client, ca.trust_bundle().unwrap()).unwrap();
    let config = client_tls
        .client_config(&AcceptedPeers::one(server_id), MeshProtocol::Opaque)
        .unwrap();
    try_exchange(server.addr, config).await.unwrap();
    assert_eq!(server.next().await.unwrap().peer, Ok(granted));
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let ca = new_ca();
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;

    // Same server verification as a sidecar, but no client certificate.
    let bundle = ca.trust_bundle().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(bundle.roots()[0].clone()).unwrap();
    let verifier =
        SpiffeServerVerifier::new(Arc::new(roots), AcceptedPeers::one(server_id), provider());
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![MeshProtocol::Http1.alpn_id().to_vec()];

    assert!(try_exchange(server.addr, Arc::new(config)).await.is_err());
    let err = server.next().await.unwrap_err();
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::NoCertificatesPresented),
        "{err}"
    );
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let ca = new_ca();
    let rogue = new_ca(); // same trust domain, different root
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;

    // The rogue client trusts the real root (so it accepts the server) but its own
    // certificate comes from the other CA.
    let client = workload(&rogue, &id("shop", "frontend"));
    let config = client_config(
        &client,
        &ca.trust_bundle().unwrap(),
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();
    assert!(try_exchange(server.addr, Arc::new(config)).await.is_err());
    let err = server.next().await.unwrap_err();
    assert!(rustls_error(&err).is_some_and(is_unknown_issuer), "{err:?}");

    // A sidecar also refuses to start with a certificate its bundle does not cover.
    let rogue_client = workload(&rogue, &id("shop", "frontend"));
    assert!(matches!(
        MeshTls::new(rogue_client, ca.trust_bundle().unwrap()),
        Err(Error::Untrusted(_))
    ));
}

#[tokio::test]
async fn expired_certificates_are_refused_on_both_sides() {
    let ca = new_ca();
    let (server_id, client_id) = (id("shop", "cart"), id("shop", "frontend"));
    let expired = |who: &SpiffeId| {
        let csr = generate_key_and_csr(None).unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86400);
        let cert = ca
            .issue_from_csr_at(&csr.csr_der, who, two_days_ago, Duration::from_secs(86400))
            .unwrap();
        assert!(cert.info.not_after < SystemTime::now());
        WorkloadIdentity::from_pem(cert.chain_pem().as_bytes(), csr.key_pem.as_bytes()).unwrap()
    };
    let bundle = ca.trust_bundle().unwrap();

    // Expired client certificate: the server refuses it.
    let good_server = server_config(&workload(&ca, &server_id), &bundle).unwrap();
    let good_server = Arc::new(good_server);
    let mut server = Server::spawn(move || good_server.clone()).await;
    let config = client_config(
        &expired(&client_id),
        &bundle,
        AcceptedPeers::one(server_id.clone()),
        MeshProtocol::Http1,
    )
    .unwrap();
    assert!(try_exchange(server.addr, Arc::new(config)).await.is_err());
    let err = server.next().await.unwrap_err();
    assert!(rustls_error(&err).is_some_and(is_expired), "{err:?}");

    // Expired server certificate: the client refuses it.
    let stale_server = Arc::new(server_config(&expired(&server_id), &bundle).unwrap());
    let mut server = Server::spawn(move || stale_server.clone()).await;
    let config = client_config(
        &workload(&ca, &client_id),
        &bundle,
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();
    let err = connect(server.addr, Arc::new(config)).await.unwrap_err();
    assert!(rustls_error(&err).is_some_and(is_expired), "{err:?}");
    assert!(server.next().await.is_err());

    // And MeshTls will not install one.
    assert!(matches!(
        MeshTls::new(expired(&client_id), bundle),
        Err(Error::CertificateExpired)
    ));
}

#[tokio::test]
async fn server_with_an_unexpected_spiffe_id_is_refused() {
    let ca = new_ca();
    let (server_id, client_id) = (id("shop", "cart"), id("shop", "frontend"));
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;
    let client_tls = MeshTls::new(workload(&ca, &client_id), ca.trust_bundle().unwrap()).unwrap();

    let expected = id("shop", "payments");
    let config = client_tls
        .client_config(&AcceptedPeers::one(expected.clone()), MeshProtocol::Http1)
        .unwrap();
    let err = connect(server.addr, config).await.unwrap_err();
    let refusal = rustls_error(&err).and_then(verification_error);
    match refusal {
        Some(Error::PeerNotAccepted(presented)) => assert_eq!(**presented, server_id),
        other => panic!("expected PeerNotAccepted, got {other:?} ({err})"),
    }
    assert!(server.next().await.is_err());

    // Another trust domain is refused too, even with a matching namespace/service account.
    let elsewhere = AcceptedPeers::trust_domain(TrustDomain::new("other.org").unwrap());
    let config = client_tls
        .client_config(&elsewhere, MeshProtocol::Http1)
        .unwrap();
    assert!(connect(server.addr, config).await.is_err());
    assert!(server.next().await.is_err());

    // A set containing it, or the whole trust domain, is accepted.
    for accepted in [
        AcceptedPeers::any_of([expected, server_id.clone()]),
        AcceptedPeers::trust_domain(TrustDomain::default()),
    ] {
        let config = client_tls
            .client_config(&accepted, MeshProtocol::Http1)
            .unwrap();
        try_exchange(server.addr, config).await.unwrap();
        assert_eq!(server.next().await.unwrap().peer, Ok(client_id.clone()));
    }
}

#[tokio::test]
async fn client_without_picket_alpn_is_recognised() {
    let ca = new_ca();
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;
    let client = workload(&ca, &id("shop", "frontend"));
    let bundle = ca.trust_bundle().unwrap();
    let base = client_config(
        &client,
        &bundle,
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();

    // No ALPN at all: the handshake completes, and the server can tell.
    let mut none = base.clone();
    none.alpn_protocols.clear();
    try_exchange(server.addr, Arc::new(none)).await.unwrap();
    let seen = server.next().await.unwrap();
    assert!(seen.peer.is_ok());
    assert_eq!(seen.protocol, Err(Error::MissingAlpn.to_string()));

    // Only a foreign protocol: rustls refuses the handshake.
    let mut foreign = base;
    foreign.alpn_protocols = vec![b"h2".to_vec()];
    assert!(try_exchange(server.addr, Arc::new(foreign)).await.is_err());
    let err = server.next().await.unwrap_err();
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::NoApplicationProtocol),
        "{err}"
    );
}

#[tokio::test]
async fn rotation_keeps_established_connections_and_new_handshakes_get_the_new_certificate() {
    let ca = new_ca();
    let (server_id, client_id) = (id("shop", "cart"), id("shop", "frontend"));
    let server_tls =
        Arc::new(MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap());
    let client_tls = MeshTls::new(workload(&ca, &client_id), ca.trust_bundle().unwrap()).unwrap();
    let serving = server_tls.clone();
    let mut server = Server::spawn(move || serving.server_config()).await;
    let accepted = AcceptedPeers::one(server_id.clone());

    let config = client_tls
        .client_config(&accepted, MeshProtocol::Http2)
        .unwrap();
    let mut before = connect(server.addr, config).await.unwrap();
    round_trip(&mut before, b"before rotation").await.unwrap();
    server.next().await.unwrap();
    let old_leaf = CertificateInfo::parse(&leaf_of(&before)).unwrap();
    assert_eq!(old_leaf, server_tls.certificate_info());

    // Let the clock move so the new certificate's not_before (whole seconds) is later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server_tls.rotate(workload(&ca, &server_id)).unwrap();
    assert_eq!(server_tls.generation(), 1);
    let new_info = server_tls.certificate_info();
    assert_ne!(new_info.serial, old_leaf.serial);

    // The connection from before still works, in both directions.
    round_trip(&mut before, b"after rotation").await.unwrap();
    round_trip(&mut before, &[7u8; 600]).await.unwrap();

    // A new handshake is served the new certificate.
    let config = client_tls
        .client_config(&accepted, MeshProtocol::Http2)
        .unwrap();
    let mut after = connect(server.addr, config).await.unwrap();
    round_trip(&mut after, b"new").await.unwrap();
    server.next().await.unwrap();
    // The client offered its session from before; the new configuration does not know it.
    assert_eq!(
        after.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    let new_leaf = CertificateInfo::parse(&leaf_of(&after)).unwrap();
    assert_eq!(new_leaf.serial, new_info.serial);
    assert!(new_leaf.not_before > old_leaf.not_before);
    assert_eq!(peer_spiffe_id(after.get_ref().1).unwrap(), server_id);

    // The old connection is still alive after the new one.
    round_trip(&mut before, b"still here").await.unwrap();

    // The client side rotates the same way: the server sees the new client certificate on
    // the next handshake, and the client's old connection keeps working.
    let old_client_serial = client_tls.certificate_info().serial;
    client_tls.rotate(workload(&ca, &client_id)).unwrap();
    let new_client_serial = client_tls.certificate_info().serial;
    assert_ne!(new_client_serial, old_client_serial);
    let config = client_tls
        .client_config(&accepted, MeshProtocol::Http2)
        .unwrap();
    try_exchange(server.addr, config).await.unwrap();
    let seen = server.next().await.unwrap();
    assert_eq!(seen.peer, Ok(client_id));
    assert_eq!(seen.peer_serial, Some(new_client_serial));
    round_trip(&mut before, b"client rotated").await.unwrap();
    round_trip(&mut after, b"both rotated").await.unwrap();
}

#[tokio::test]
async fn refused_updates_leave_the_last_good_material_in_force() {
    let ca = new_ca();
    let other_ca = new_ca();
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let before = server_tls.certificate_info();

    assert!(matches!(
        server_tls.rotate(workload(&ca, &id("shop", "other"))),
        Err(Error::IdentityChanged { .. })
    ));
    assert!(matches!(
        server_tls.rotate(workload(&other_ca, &server_id)),
        Err(Error::Untrusted(_))
    ));
    // A bundle that no longer covers this workload's own certificate.
    assert!(matches!(
        server_tls.set_trust_bundle(other_ca.trust_bundle().unwrap()),
        Err(Error::Untrusted(_))
    ));
    assert_eq!(server_tls.generation(), 0);
    assert_eq!(server_tls.certificate_info(), before);

    // Still serving the original certificate.
    let serving = Arc::new(server_tls);
    let s = serving.clone();
    let mut server = Server::spawn(move || s.server_config()).await;
    let client = workload(&ca, &id("shop", "frontend"));
    let config = client_config(
        &client,
        &ca.trust_bundle().unwrap(),
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();
    let mut tls = connect(server.addr, Arc::new(config)).await.unwrap();
    round_trip(&mut tls, b"ok").await.unwrap();
    server.next().await.unwrap();
    assert_eq!(
        CertificateInfo::parse(&leaf_of(&tls)).unwrap().serial,
        before.serial
    );
}

#[tokio::test]
async fn removing_a_root_refuses_its_clients_on_new_handshakes_only() {
    let old_ca = new_ca();
    let new_ca = new_ca();
    let both = TrustBundle::new(vec![old_ca.root().clone(), new_ca.root().clone()]).unwrap();
    let server_id = id("shop", "cart");

    // The server has moved to the new root and, during the rotation, trusts both.
    let server_tls = Arc::new(MeshTls::new(workload(&new_ca, &server_id), both.clone()).unwrap());
    let serving = server_tls.clone();
    let mut server = Server::spawn(move || serving.server_config()).await;

    // A client still on the old root (trusting both as well).
    let old_client = workload(&old_ca, &id("shop", "frontend"));
    let old_config = Arc::new(
        client_config(
            &old_client,
            &both,
            AcceptedPeers::one(server_id.clone()),
            MeshProtocol::Http1,
        )
        .unwrap(),
    );
    let mut established = connect(server.addr, old_config.clone()).await.unwrap();
    round_trip(&mut established, b"old root, before")
        .await
        .unwrap();
    assert!(server.next().await.unwrap().peer.is_ok());

    // The rotation ends: only the new root.
    server_tls
        .set_trust_bundle(new_ca.trust_bundle().unwrap())
        .unwrap();
    assert_eq!(server_tls.trust_bundle().roots().len(), 1);

    // A new handshake with the old root's certificate is refused...
    assert!(try_exchange(server.addr, old_config).await.is_err());
    let err = server.next().await.unwrap_err();
    assert!(rustls_error(&err).is_some_and(is_unknown_issuer), "{err:?}");
    // ...the connection established before keeps working...
    round_trip(&mut established, b"old root, after")
        .await
        .unwrap();
    // ...and clients of the new root are accepted.
    let new_client = workload(&new_ca, &id("shop", "frontend"));
    let new_config = client_config(
        &new_client,
        &new_ca.trust_bundle().unwrap(),
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();
    try_exchange(server.addr, Arc::new(new_config))
        .await
        .unwrap();
    assert!(server.next().await.unwrap().peer.is_ok());
}

#[tokio::test]
async fn resumed_sessions_still_name_the_peer() {
    let ca = new_ca();
    let (server_id, client_id) = (id("shop", "cart"), id("shop", "frontend"));
    let server_tls = MeshTls::new(workload(&ca, &server_id), ca.trust_bundle().unwrap()).unwrap();
    let client_tls = MeshTls::new(workload(&ca, &client_id), ca.trust_bundle().unwrap()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;
    let accepted = AcceptedPeers::one(server_id.clone());

    let mut kinds = Vec::new();
    for _ in 0..2 {
        let config = client_tls
            .client_config(&accepted, MeshProtocol::Http1)
            .unwrap();
        let mut tls = connect(server.addr, config).await.unwrap();
        // Reading the echo also reads the session tickets the server sends after the handshake.
        round_trip(&mut tls, b"ping").await.unwrap();
        kinds.push(tls.get_ref().1.handshake_kind());
        assert_eq!(peer_spiffe_id(tls.get_ref().1).unwrap(), server_id);
        assert_eq!(server.next().await.unwrap().peer, Ok(client_id.clone()));
    }
    assert_eq!(
        kinds,
        [
            Some(rustls::HandshakeKind::Full),
            Some(rustls::HandshakeKind::Resumed)
        ]
    );
}

#[tokio::test]
async fn client_of_another_trust_domain_is_refused_even_if_its_root_is_trusted() {
    let ca = new_ca();
    let foreign_td = TrustDomain::new("other.org").unwrap();
    let foreign = MeshCa::generate(foreign_td.clone(), &CaOptions::default()).unwrap();
    // The server trusts both roots (say, by mistake), but serves cluster.local.
    let both = TrustBundle::new(vec![ca.root().clone(), foreign.root().clone()]).unwrap();
    let server_id = id("shop", "cart");
    let server_tls = MeshTls::new(workload(&ca, &server_id), both.clone()).unwrap();
    let mut server = Server::spawn(move || server_tls.server_config()).await;

    let stranger_id = SpiffeId::new(foreign_td, "shop", "frontend").unwrap();
    let stranger = workload(&foreign, &stranger_id);
    let config = client_config(
        &stranger,
        &both,
        AcceptedPeers::one(server_id),
        MeshProtocol::Http1,
    )
    .unwrap();
    assert!(try_exchange(server.addr, Arc::new(config)).await.is_err());
    let err = server.next().await.unwrap_err();
    match rustls_error(&err).and_then(verification_error) {
        Some(Error::ForeignTrustDomain { id, expected }) => {
            assert_eq!(**id, stranger_id);
            assert_eq!(expected, &TrustDomain::default());
        }
        other => panic!("expected ForeignTrustDomain, got {other:?} ({err})"),
    }
}
