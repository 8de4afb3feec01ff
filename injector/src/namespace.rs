//! Namespace annotations, which pods inherit (see [`crate::settings`]).
//!
//! An AdmissionReview carries the pod but not its Namespace object, so the webhook has to
//! find the namespace's annotations itself. That is the [`NamespaceLookup`] seam:
//!
//! * [`StaticNamespaces`] answers from a fixed map: the configuration file's `namespaces`
//!   field (rendered by the Helm chart from its values), and the tests;
//! * a Kubernetes implementation (not written yet) will keep a watch-fed cache of Namespace
//!   objects (RBAC: `get`, `list`, `watch` on `namespaces`), answer from it, and fall back to
//!   one `GET` for a namespace it has not seen yet (one created seconds before its first pod).
//!
//! The lookup is asynchronous so that fallback can do I/O. A failed lookup denies the pod
//! (its controller retries) rather than injecting it with settings that may be wrong.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

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
