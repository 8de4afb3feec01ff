#![forbid(unsafe_code)]
//! picket-injector: the mutating admission webhook that adds the picket sidecar to pods, and
//! `picket-injector inject`, the same injection applied to manifests.
//!
//! * [`config`]: the configuration file;
//! * [`settings`]: per-pod annotations, namespace inheritance, validation;
//! * [`namespace`]: where namespace annotations come from ([`NamespaceLookup`]);
//! * [`patch`]: the JSONPatch for a pod or a pod template ([`pod_patch`]);
//! * [`admission`]: AdmissionReview v1 in, AdmissionReview v1 out;
//! * [`manifest`]: multi-document YAML injection;
//! * [`server`]: the HTTPS webhook server and the health endpoints;
//! * [`identity`]: the mesh identity service (workload certificates for sidecars);
//! * [`kubernetes`]: the Kubernetes API client (TokenReview, Namespaces);
//! * [`metrics`]: the Prometheus metrics on the health listener's `/metrics`.

pub mod admission;
pub mod config;
pub mod identity;
pub mod kubernetes;
pub mod manifest;
pub mod metrics;
pub mod namespace;
pub mod patch;
pub mod server;
pub mod settings;

pub use config::{Config, ConfigError};
pub use namespace::{KubeNamespaces, LookupError, NamespaceLookup, StaticNamespaces};
pub use patch::{apply, pod_patch, Denial, Outcome, PatchOp};
pub use settings::{Mode, PodSettings};
