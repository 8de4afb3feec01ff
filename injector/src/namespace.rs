//! Namespace annotations, which pods inherit (see [`crate::settings`]).
//!
//! An AdmissionReview carries the pod but not its Namespace object, so the webhook has to
//! find the namespace's annotations itself. That is the [`NamespaceLookup`] seam:
//!
//! * [`StaticNamespaces`] answers from a fixed map: the configuration file's `namespaces`
//!   field (rendered by the Helm chart from its values), and the tests
//!   (`serve --namespace-source config`);
//! * [`KubeNamespaces`] reads the Namespace from the API server (`GET
//!   /api/v1/namespaces/NAME`, RBAC `get` on `namespaces`) and keeps its `picket.dev/*`
//!   annotations for a short TTL ([`NAMESPACE_CACHE_TTL`]) in a bounded cache
//!   ([`NAMESPACE_CACHE_ENTRIES`]) (`serve --namespace-source kubernetes`, the default in a
//!   cluster).
//!
//! The lookup is asynchronous so it can do I/O. [`KubeNamespaces`] never fails: when the API
//! server cannot be read it answers with the last annotations it saw for the namespace, or
//! none, logs a warning and counts it (`picket_injector_namespace_lookup_failures_total`),
//! so an API server hiccup does not block pod creation (the pod gets its pod-level
//! settings). A lookup that does return an error denies the pod (its controller retries).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use crate::metrics::Metrics;

/// A namespace's annotations could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the annotations of namespace {namespace}: {reason}")]
pub struct LookupError {
    pub namespace: String,
    pub reason: String,
}

/// The future returned by [`NamespaceLookup::annotations`].
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BTreeMap<String, String>, LookupError>> + Send + 'a>>;

/// Finds a namespace's annotations. An unknown namespace has none (an empty map).
pub trait NamespaceLookup: Send + Sync {
    fn annotations<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a>;
}

/// Namespace annotations from a fixed map.
#[derive(Debug, Clone, Default)]
pub struct StaticNamespaces {
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl StaticNamespaces {
    pub fn new(namespaces: BTreeMap<String, BTreeMap<String, String>>) -> Self {
        StaticNamespaces { namespaces }
    }

    /// The annotations of `namespace`, empty when unknown.
    pub fn get(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces.get(namespace).cloned().unwrap_or_default()
    }

    /// Sets (replaces) the annotations of `namespace`.
    pub fn insert(&mut self, namespace: &str, annotations: BTreeMap<String, String>) {
        self.namespaces.insert(namespace.to_string(), annotations);
    }
}

impl NamespaceLookup for StaticNamespaces {
    fn annotations<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a> {
        let found = self.get(namespace);
        Box::pin(async move { Ok(found) })
    }
}

/// How long [`KubeNamespaces`] trusts what it read.
pub const NAMESPACE_CACHE_TTL: Duration = Duration::from_secs(30);
/// How many namespaces [`KubeNamespaces`] remembers.
pub const NAMESPACE_CACHE_ENTRIES: usize = 4096;
/// How long one namespace read may take.
pub const NAMESPACE_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Only annotations with this prefix are kept (the rest are of no use to the webhook).
pub const ANNOTATION_PREFIX: &str = "picket.dev/";

/// When a namespace was read, and its `picket.dev/*` annotations.
type Cached = (Instant, BTreeMap<String, String>);

/// Namespace annotations read from the API server, cached. See the module docs.
pub struct KubeNamespaces {
    api: Api<Namespace>,
    ttl: Duration,
    max_entries: usize,
    cache: Mutex<HashMap<String, Cached>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for KubeNamespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeNamespaces")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl KubeNamespaces {
    pub fn new(client: kube::Client) -> KubeNamespaces {
        KubeNamespaces::with_cache(client, NAMESPACE_CACHE_TTL, NAMESPACE_CACHE_ENTRIES)
    }

    /// With a cache of `max_entries` namespaces (at least one), each trusted for `ttl`.
    pub fn with_cache(client: kube::Client, ttl: Duration, max_entries: usize) -> KubeNamespaces {
        KubeNamespaces {
            api: Api::all(client),
            ttl,
            max_entries: max_entries.max(1),
            cache: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Counts failed reads in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> KubeNamespaces {
        self.metrics = Some(metrics);
        self
    }

    /// How many namespaces are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn remember(&self, namespace: &str, annotations: BTreeMap<String, String>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if cache.len() >= self.max_entries && !cache.contains_key(namespace) {
            cache.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            while cache.len() >= self.max_entries {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => cache.remove(&k),
                    None => break,
                };
            }
        }
        cache.insert(namespace.to_string(), (now, annotations));
    }

    async fn lookup(&self, namespace: &str) -> BTreeMap<String, String> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .cloned();
        if let Some((at, annotations)) = &cached {
            if at.elapsed() < self.ttl {
                return annotations.clone();
            }
        }
        let read = tokio::time::timeout(NAMESPACE_READ_TIMEOUT, self.api.get_opt(namespace)).await;
        let failure = match read {
            Ok(Ok(found)) => {
                let annotations: BTreeMap<String, String> = found
                    .and_then(|ns| ns.metadata.annotations)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
                    .collect();
                self.remember(namespace, annotations.clone());
                return annotations;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {NAMESPACE_READ_TIMEOUT:?}"),
        };
        if let Some(m) = &self.metrics {
            m.namespace_lookup_failures.inc();
        }
        let stale = cached.is_some();
        tracing::warn!(
            target: "picket_injector::admission",
            namespace,
            error = %failure,
            fallback = if stale { "last known annotations" } else { "pod-level settings only" },
            "cannot read the namespace's annotations"
        );
        cached.map(|(_, a)| a).unwrap_or_default()
    }
}

impl NamespaceLookup for KubeNamespaces {
    fn annotations<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a> {
        Box::pin(async move { Ok(self.lookup(namespace).await) })
    }
}
