//! The injector's configuration file (JSON; the Helm chart renders it with `toJson`).
//!
//! ```json
//! {
//!   "proxyImage": "ghcr.io/example/picket:0.1.0",      // required
//!   "initImage": "ghcr.io/example/picket:0.1.0",       // required
//!   "imagePullPolicy": "IfNotPresent",
//!   "packConfigMap": "picket-pack",
//!   "mode": "protect",
//!   "nativeSidecar": true,
//!   "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
//!   "trustDomain": "cluster.local",
//!   "identityAddress": "picket-injector.picket-system.svc:15012",
//!   "excludeInboundPorts": "",
//!   "excludeOutboundPorts": "",
//!   "excludeOutboundCidrs": "",
//!   "namespaces": {"shop": {"picket.dev/mode": "monitor"}}
//! }
//! ```
//!
//! Every field but the two images has the default shown. Unknown fields are refused, so a
//! misspelt key is an error at start-up rather than a silently ignored setting. `namespaces`
//! holds the namespace annotations the webhook uses until it reads them from the API server
//! (see [`crate::namespace`]).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

use crate::settings::{parse_cidrs, parse_mode, parse_ports, Mode};

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid configuration: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration, with defaults applied.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub proxy_image: String,
    pub init_image: String,
    #[serde(default = "default_pull_policy")]
    pub image_pull_policy: String,
    #[serde(default = "default_pack_config_map")]
    pub pack_config_map: String,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "default_true")]
    pub native_sidecar: bool,
    #[serde(default = "default_resources")]
    pub resources: ResourceRequirements,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    #[serde(default = "default_identity_address")]
    pub identity_address: String,
    #[serde(default)]
    pub exclude_inbound_ports: String,
    #[serde(default)]
    pub exclude_outbound_ports: String,
    #[serde(default)]
    pub exclude_outbound_cidrs: String,
    /// Static namespace annotations, namespace name → annotations.
    #[serde(default)]
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// A ConfigMap of trusted pack public keys (`*.pub`), mounted into the sidecar and given to
    /// it as `--pack-pubkey DIR`.
    #[serde(default)]
    pub pack_keys_config_map: Option<String>,
    /// The sidecar refuses packs without a valid signature (`--require-signed-pack`).
    #[serde(default)]
    pub require_signed_pack: bool,
    /// The sidecar accepts packs older than the one in force (`--allow-pack-rollback`).
    #[serde(default)]
    pub allow_pack_rollback: bool,
    /// PEM trust bundle of the mesh CA, given to every sidecar as `PICKET_IDENTITY_CA` so it
    /// can verify the identity service before its first certificate. Not read from the file:
    /// `serve --mesh-ca-dir` sets it from the CA it serves.
    #[serde(skip)]
    pub identity_ca: Option<String>,
}

fn default_pull_policy() -> String {
    "IfNotPresent".into()
}
fn default_pack_config_map() -> String {
    "picket-pack".into()
}
fn default_mode() -> String {
    "protect".into()
}
fn default_true() -> bool {
    true
}
fn default_trust_domain() -> String {
    "cluster.local".into()
}
fn default_identity_address() -> String {
    "picket-injector.picket-system.svc:15012".into()
}

/// Requests 100m CPU and 64Mi memory, limits memory to 256Mi.
pub fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("100m".into())),
            ("memory".to_string(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("256Mi".into()),
        )])),
        ..Default::default()
    }
}

impl Config {
    /// A configuration with these images and every other field at its default.
    pub fn with_images(proxy_image: &str, init_image: &str) -> Config {
        Config {
            proxy_image: proxy_image.into(),
            init_image: init_image.into(),
            image_pull_policy: default_pull_policy(),
            pack_config_map: default_pack_config_map(),
            mode: default_mode(),
            native_sidecar: true,
            resources: default_resources(),
            trust_domain: default_trust_domain(),
            identity_address: default_identity_address(),
            exclude_inbound_ports: String::new(),
            exclude_outbound_ports: String::new(),
            exclude_outbound_cidrs: String::new(),
            namespaces: BTreeMap::new(),
            pack_keys_config_map: None,
            require_signed_pack: false,
            allow_pack_rollback: false,
            identity_ca: None,
        }
    }

    /// Parses and checks a configuration from JSON text.
    pub fn from_json(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_string(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_json(&text, &path.display().to_string())
    }

    /// Checks the values the patch relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str, why: String| ConfigError::Invalid(format!("{what}: {why}"));
        if self.proxy_image.trim().is_empty() {
            return Err(bad("proxyImage", "must not be empty".into()));
        }
        if self.init_image.trim().is_empty() {
            return Err(bad("initImage", "must not be empty".into()));
        }
        if !matches!(
            self.image_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return Err(bad(
                "imagePullPolicy",
                format!(
                    "{:?} is not Always, IfNotPresent or Never",
                    self.image_pull_policy
                ),
            ));
        }
        if self.pack_config_map.trim().is_empty() {
            return Err(bad("packConfigMap", "must not be empty".into()));
        }
        parse_mode(&self.mode).map_err(|e| bad("mode", e))?;
        parse_ports(&self.exclude_inbound_ports).map_err(|e| bad("excludeInboundPorts", e))?;
        parse_ports(&self.exclude_outbound_ports).map_err(|e| bad("excludeOutboundPorts", e))?;
        parse_cidrs(&self.exclude_outbound_cidrs).map_err(|e| bad("excludeOutboundCidrs", e))?;
        if self.trust_domain.trim().is_empty() {
            return Err(bad("trustDomain", "must not be empty".into()));
        }
        if self
            .pack_keys_config_map
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(bad(
                "packKeysConfigMap",
                "must not be empty when given".into(),
            ));
        }
        if self.require_signed_pack && self.pack_keys_config_map.is_none() {
            return Err(bad(
                "requireSignedPack",
                "needs packKeysConfigMap (the sidecar must know which keys to trust)".into(),
            ));
        }
        Ok(())
    }

    /// The default mode (checked by [`Config::validate`]).
    pub fn default_mode(&self) -> Mode {
        parse_mode(&self.mode).unwrap_or(Mode::Protect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_everything_but_the_images() {
        let c = Config::from_json(r#"{"proxyImage":"p:1","initImage":"i:1"}"#, "t").unwrap();
        assert_eq!(c, Config::with_images("p:1", "i:1"));
        assert!(c.native_sidecar);
        assert_eq!(c.pack_config_map, "picket-pack");
        assert_eq!(
            c.identity_address,
            "picket-injector.picket-system.svc:15012"
        );
    }

    #[test]
    fn missing_image_unknown_field_and_bad_values_are_refused() {
        assert!(Config::from_json(r#"{"proxyImage":"p:1"}"#, "t").is_err());
        let e = Config::from_json(r#"{"proxyImage":"p","initImage":"i","mdoe":"x"}"#, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mdoe"), "{e}");
        let e = Config::from_json(r#"{"proxyImage":"p","initImage":"i","mode":"block"}"#, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mode"), "{e}");
        let e = Config::from_json(
            r#"{"proxyImage":"p","initImage":"i","excludeOutboundPorts":"80,99999"}"#,
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("excludeOutboundPorts") && e.contains("99999"),
            "{e}"
        );
    }
}
