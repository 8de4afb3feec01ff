//! Hot reload: [`MeshTls`] holds the current certificate, key and trust bundle, and the
//! rustls configurations built from them, behind an [`ArcSwap`].
//!
//! # How established connections survive
//!
//! A rustls connection keeps the `Arc<ServerConfig>` / `Arc<ClientConfig>` it was created
//! with for its whole life. [`MeshTls::rotate`] and [`MeshTls::set_trust_bundle`] do not
//! touch those: they build new configurations and swap the pointer, so
//!
//! * handshakes that start after the swap use the new certificate and trust bundle;
//! * connections established before it keep their keys and go on exchanging data (TLS 1.3
//!   never re-authenticates an established connection), and the old configuration is freed
//!   when the last of them closes.
//!
//! Readers ([`MeshTls::server_config`], [`MeshTls::client_config`]) take no lock: one atomic
//! load per accepted or opened connection. Updates are serialised by a mutex so that a
//! rotation and a bundle change racing each other cannot lose one of the two.
//!
//! Every update is validated before it is installed (the new chain must verify against the
//! bundle, be valid now, and name the same workload); a refused update leaves the last good
//! material in force, as DESIGN.md requires of a bad certificate.
//!
//! Client configurations depend on the accepted peers and the protocol offered, so they are
//! built on demand and cached per generation (at most [`MAX_CACHED_CLIENT_CONFIGS`]; past
//! that the cache is cleared). Each generation has fresh session caches, so a session
//! resumed after a change was established under the current material.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};

use crate::alpn::MeshProtocol;
use crate::cert::CertificateInfo;
use crate::config::{client_config, server_config};
use crate::error::{Error, Result};
use crate::identity::{TrustBundle, WorkloadIdentity};
use crate::spiffe::{SpiffeId, TrustDomain};
use crate::verify::AcceptedPeers;

/// How many client configurations one generation caches.
pub const MAX_CACHED_CLIENT_CONFIGS: usize = 1024;

type ClientKey = (AcceptedPeers, MeshProtocol);

struct Generation {
    number: u64,
    identity: WorkloadIdentity,
    bundle: TrustBundle,
    server: Arc<ServerConfig>,
    clients: Mutex<HashMap<ClientKey, Arc<ClientConfig>>>,
}

/// A sidecar's mesh TLS material, replaceable at run time. See the module docs.
pub struct MeshTls {
    current: ArcSwap<Generation>,
    /// The workload's trust domain, fixed for the life of this value (an update for another
    /// identity is refused), kept apart so it can be lent without a load or a clone.
    trust_domain: TrustDomain,
    updating: Mutex<()>,
}

impl std::fmt::Debug for MeshTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.current.load();
        f.debug_struct("MeshTls")
            .field("generation", &g.number)
            .field("identity", g.identity.spiffe_id())
            .field("roots", &g.bundle.roots().len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MeshTls {
    /// Validates `identity` against `bundle` (see [`TrustBundle::verify_chain`]) and builds
    /// the first configurations.
    pub fn new(identity: WorkloadIdentity, bundle: TrustBundle) -> Result<Self> {
        let trust_domain = identity.spiffe_id().trust_domain().clone();
        let first = Generation::build(0, identity, bundle)?;
        Ok(MeshTls {
            current: ArcSwap::from_pointee(first),
            trust_domain,
            updating: Mutex::new(()),
        })
    }

    /// The configuration for the next inbound handshake.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current.load().server.clone()
    }

    /// The configuration for the next outbound handshake to a peer `accepted` accepts,
    /// offering `protocol`.
    pub fn client_config(
        &self,
        accepted: &AcceptedPeers,
        protocol: MeshProtocol,
    ) -> Result<Arc<ClientConfig>> {
        let g = self.current.load();
        let key = (accepted.clone(), protocol);
        if let Some(c) = lock(&g.clients).get(&key) {
            return Ok(c.clone());
        }
        let config = Arc::new(client_config(
            &g.identity,
            &g.bundle,
            accepted.clone(),
            protocol,
        )?);
        let mut clients = lock(&g.clients);
        if clients.len() >= MAX_CACHED_CLIENT_CONFIGS {
            clients.clear();
        }
        Ok(clients.entry(key).or_insert(config).clone())
    }

    /// Installs a renewed certificate and key for the same workload. New handshakes present
    /// it; established connections are not touched.
    pub fn rotate(&self, identity: WorkloadIdentity) -> Result<()> {
        let _guard = lock(&self.updating);
        let g = self.current.load_full();
        if identity.spiffe_id() != g.identity.spiffe_id() {
            return Err(Error::IdentityChanged {
                current: Box::new(g.identity.spiffe_id().clone()),
                new: Box::new(identity.spiffe_id().clone()),
            });
        }
        let next = Generation::build(g.number + 1, identity, g.bundle.clone())?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Replaces the trusted roots. New handshakes verify peers against `bundle`; the
    /// workload's own chain must verify against it too (install a certificate from a new
    /// root with [`MeshTls::replace`] or rotate first).
    pub fn set_trust_bundle(&self, bundle: TrustBundle) -> Result<()> {
        let _guard = lock(&self.updating);
        let g = self.current.load_full();
        let next = Generation::build(g.number + 1, g.identity.clone(), bundle)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Replaces certificate, key and bundle at once (a root rotation's last step, or an
    /// emergency re-key).
    pub fn replace(&self, identity: WorkloadIdentity, bundle: TrustBundle) -> Result<()> {
        let _guard = lock(&self.updating);
        let g = self.current.load_full();
        if identity.spiffe_id() != g.identity.spiffe_id() {
            return Err(Error::IdentityChanged {
                current: Box::new(g.identity.spiffe_id().clone()),
                new: Box::new(identity.spiffe_id().clone()),
            });
        }
        let next = Generation::build(g.number + 1, identity, bundle)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// This workload's trust domain (borrowed: no allocation, for per-connection checks).
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// This workload's identity.
    pub fn spiffe_id(&self) -> SpiffeId {
        self.current.load().identity.spiffe_id().clone()
    }

    /// Serial and validity of the certificate new handshakes present (for renewal scheduling
    /// and metrics).
    pub fn certificate_info(&self) -> CertificateInfo {
        self.current.load().identity.info().clone()
    }

    pub fn trust_bundle(&self) -> TrustBundle {
        self.current.load().bundle.clone()
    }

    /// Counts installed updates (0 for the material given to [`MeshTls::new`]).
    pub fn generation(&self) -> u64 {
        self.current.load().number
    }
}

impl Generation {
    fn build(number: u64, identity: WorkloadIdentity, bundle: TrustBundle) -> Result<Self> {
        bundle.verify_chain(identity.chain(), SystemTime::now())?;
        let server = Arc::new(server_config(&identity, &bundle)?);
        Ok(Generation {
            number,
            identity,
            bundle,
            server,
            clients: Mutex::new(HashMap::new()),
        })
    }
}
