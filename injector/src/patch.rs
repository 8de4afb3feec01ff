//! Generating the JSONPatch that injects picket into a pod or a pod template.
//!
//! [`pod_patch`] looks at one pod-shaped object (`metadata` + `spec`: a Pod, or the pod
//! template of a workload) found at a JSON Pointer `prefix` of a document, and returns the
//! RFC 6902 operations, with paths under that prefix, that add:
//!
//! * the init container `picket-init` (the redirect rules), first among init containers;
//! * the sidecar `picket-proxy`: with `nativeSidecar`, an init container with
//!   `restartPolicy: Always` right after `picket-init` and a startup probe on `/readyz`, so
//!   that the kubelet starts the app only once the proxy is ready, stops the proxy after the
//!   app, and Jobs complete; otherwise the first regular container, with a `postStart` hook
//!   `picket wait-ready --timeout 60s` that holds the next containers until it is ready;
//! * the volumes `picket-pack` (the pack ConfigMap) and `picket-token` (a projected
//!   ServiceAccount token, audience `picket`, 1 h);
//! * the marker annotation `picket.dev/injected: "<version>"`;
//! * and it rewrites the app's HTTP and TCP probes (see [`APP_HEALTH_PREFIX`]).
//!
//! The webhook returns these operations for the Pod (prefix `""`); `picket-injector inject`
//! applies them to each workload's template. Both go through this one function.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, PodSpec, Probe,
    ProjectedVolumeSource, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::settings::{self, InvalidAnnotation, PodSettings, ANNOTATION_INJECTED};
use crate::Config;

/// The value of the marker annotation.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const PROXY_UID: i64 = 2102;
pub const OUTBOUND_CAPTURE_PORT: i32 = 15001;
pub const INBOUND_CAPTURE_PORT: i32 = 15006;
pub const ADMIN_PORT: i32 = 15090;
pub const INIT_CONTAINER: &str = "picket-init";
pub const PROXY_CONTAINER: &str = "picket-proxy";
pub const PACK_VOLUME: &str = "picket-pack";
pub const TOKEN_VOLUME: &str = "picket-token";
pub const PACK_DIR: &str = "/etc/picket/pack";
pub const PACK_FILE: &str = "/etc/picket/pack/pack.toml";
/// Trusted pack public keys (config `packKeysConfigMap`), given to the sidecar as a directory.
pub const PACK_KEYS_VOLUME: &str = "picket-pack-keys";
pub const PACK_KEYS_DIR: &str = "/etc/picket/pack-keys";
pub const TOKEN_DIR: &str = "/var/run/secrets/picket";
pub const TOKEN_AUDIENCE: &str = "picket";
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// The command of the non-native sidecar's `postStart` hook.
pub const WAIT_READY_COMMAND: [&str; 4] = ["picket", "wait-ready", "--timeout", "60s"];
/// Set (with a regular sidecar, unless present) to the first app container, so that
/// `kubectl logs` and `kubectl exec` do not default to `picket-proxy`.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";
/// The sidecar environment variable holding the app's original probes.
pub const APP_PROBES_ENV: &str = "PICKET_APP_PROBES";

/// The sidecar's environment variable with the mesh trust bundle (PEM), set when the injector
/// serves a mesh CA (`serve --mesh-ca-dir`).
pub const IDENTITY_CA_ENV: &str = "PICKET_IDENTITY_CA";

/// Probe rewriting.
///
/// Once inbound traffic is redirected to the proxy and requires mesh mTLS, the kubelet's
/// plain HTTP or TCP probes of the app would fail. So each app container's `httpGet` and
/// `tcpSocket` liveness, readiness and startup probe becomes an `httpGet` on the proxy's admin
/// port 15090 (excluded from inbound capture), path
/// `/app-health/<container>/<livez|readyz|startupz>`, keeping its timing fields; the original
/// handler goes into the sidecar's environment variable `PICKET_APP_PROBES`, a JSON object
/// from that path to `{"httpGet": {…}}` or `{"tcpSocket": {…}}`, with a named port resolved to
/// its number. The proxy answers those paths by running the original probe against
/// 127.0.0.1 (its own traffic is not captured), and returns its outcome. `exec` and `grpc`
/// probes, probes with a `host` (they do not target the pod) and probes whose named port
/// the container does not declare are left alone.
pub const APP_HEALTH_PREFIX: &str = "/app-health/";

/// One RFC 6902 operation. Only `add` and `replace` are generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    pub value: Value,
}

impl PatchOp {
    fn add(path: String, value: Value) -> Self {
        PatchOp {
            op: "add".into(),
            path,
            value,
        }
    }
    fn replace(path: String, value: Value) -> Self {
        PatchOp {
            op: "replace".into(),
            path,
            value,
        }
    }
}

/// What to do with a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Inject: apply these operations.
    Inject {
        patch: Vec<PatchOp>,
        settings: PodSettings,
    },
    /// Leave the pod as it is, for this reason.
    Skip(String),
}

/// Why a pod is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denial {
    #[error(transparent)]
    InvalidAnnotation(#[from] InvalidAnnotation),
    #[error("the pod cannot be read: {0}")]
    InvalidPod(String),
    #[error("the pod already has a {kind} named {name:?}, which picket needs")]
    NameConflict { kind: &'static str, name: String },
}

/// Escapes one JSON Pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The operations that inject picket into the pod-shaped object `template` (with `metadata`
/// and `spec`), found at JSON Pointer `prefix` (`""` for a Pod), in `namespace`, whose
/// annotations are `namespace_annotations`.
pub fn pod_patch(
    prefix: &str,
    template: &Value,
    namespace: &str,
    namespace_annotations: &BTreeMap<String, String>,
    config: &Config,
) -> Result<Outcome, Denial> {
    let meta: ObjectMeta = match template.get("metadata") {
        None | Some(Value::Null) => ObjectMeta::default(),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| Denial::InvalidPod(format!("metadata: {e}")))?,
    };
    let annotations = meta.annotations.clone().unwrap_or_default();
    if let Some(v) = annotations.get(ANNOTATION_INJECTED) {
        return Ok(Outcome::Skip(format!(
            "already injected ({ANNOTATION_INJECTED}: {v:?})"
        )));
    }
    let spec: PodSpec = match template.get("spec") {
        None | Some(Value::Null) => return Err(Denial::InvalidPod("no spec".into())),
        Some(s) => serde_json::from_value(s.clone())
            .map_err(|e| Denial::InvalidPod(format!("spec: {e}")))?,
    };
    if spec.host_network == Some(true) {
        return Ok(Outcome::Skip(
            "hostNetwork pod (redirect rules would apply to the node)".into(),
        ));
    }
    let settings = settings::resolve(&annotations, namespace, namespace_annotations, config)?;
    if !settings.inject {
        return Ok(Outcome::Skip(format!(
            "{}: \"false\"",
            settings::ANNOTATION_INJECT
        )));
    }
    check_names(&spec)?;

    let mut ops = Vec::new();
    // Probe rewrites first: they address the app containers by their original index,
    // which the insertion of a regular sidecar container would shift.
    let mut app_probes = BTreeMap::new();
    for (i, c) in spec.containers.iter().enumerate() {
        for (field, kind, probe) in [
            ("livenessProbe", "livez", &c.liveness_probe),
            ("readinessProbe", "readyz", &c.readiness_probe),
            ("startupProbe", "startupz", &c.startup_probe),
        ] {
            let Some(probe) = probe else { continue };
            let Some(original) = original_probe_target(probe, c) else {
                continue;
            };
            let path = format!("{APP_HEALTH_PREFIX}{}/{kind}", c.name);
            let rewritten = Probe {
                exec: None,
                grpc: None,
                tcp_socket: None,
                http_get: Some(HTTPGetAction {
                    path: Some(path.clone()),
                    port: IntOrString::Int(ADMIN_PORT),
                    scheme: Some("HTTP".into()),
                    ..Default::default()
                }),
                ..probe.clone()
            };
            app_probes.insert(path, original);
            ops.push(PatchOp::replace(
                format!("{prefix}/spec/containers/{i}/{field}"),
                to_value(&rewritten)?,
            ));
        }
    }

    // The marker annotation; with a regular sidecar placed first, also the container that
    // `kubectl logs`/`exec` pick by default, unless the pod names one.
    let mut new_annotations = serde_json::Map::new();
    new_annotations.insert(ANNOTATION_INJECTED.into(), json!(VERSION));
    if !config.native_sidecar && !annotations.contains_key(DEFAULT_CONTAINER_ANNOTATION) {
        if let Some(first) = spec.containers.first() {
            new_annotations.insert(DEFAULT_CONTAINER_ANNOTATION.into(), json!(first.name));
        }
    }
    match template.get("metadata") {
        None | Some(Value::Null) => ops.push(PatchOp::add(
            format!("{prefix}/metadata"),
            json!({ "annotations": new_annotations }),
        )),
        Some(m) if m.get("annotations").is_none_or(Value::is_null) => ops.push(PatchOp::add(
            format!("{prefix}/metadata/annotations"),
            Value::Object(new_annotations),
        )),
        Some(_) => {
            for (key, value) in new_annotations {
                ops.push(PatchOp::add(
                    format!(
                        "{prefix}/metadata/annotations/{}",
                        escape_pointer_token(&key)
                    ),
                    value,
                ));
            }
        }
    }

    let init = to_value(&init_container(config, &settings))?;
    let proxy = to_value(&proxy_container(config, &settings, &app_probes)?)?;
    let mut new_inits = vec![init];
    if config.native_sidecar {
        new_inits.push(proxy.clone());
    }
    if spec.init_containers.as_ref().is_none_or(Vec::is_empty) {
        ops.push(PatchOp::add(
            format!("{prefix}/spec/initContainers"),
            Value::Array(new_inits),
        ));
    } else {
        for (i, c) in new_inits.into_iter().enumerate() {
            ops.push(PatchOp::add(format!("{prefix}/spec/initContainers/{i}"), c));
        }
    }
    if !config.native_sidecar {
        ops.push(PatchOp::add(format!("{prefix}/spec/containers/0"), proxy));
    }

    let volumes = volumes(config)
        .iter()
        .map(to_value)
        .collect::<Result<Vec<_>, _>>()?;
    if spec.volumes.is_none() {
        ops.push(PatchOp::add(
            format!("{prefix}/spec/volumes"),
            Value::Array(volumes),
        ));
    } else {
        for v in volumes {
            ops.push(PatchOp::add(format!("{prefix}/spec/volumes/-"), v));
        }
    }
    Ok(Outcome::Inject {
        patch: ops,
        settings,
    })
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, Denial> {
    serde_json::to_value(v).map_err(|e| Denial::InvalidPod(format!("serialising: {e}")))
}

fn check_names(spec: &PodSpec) -> Result<(), Denial> {
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        if c.name == INIT_CONTAINER || c.name == PROXY_CONTAINER {
            return Err(Denial::NameConflict {
                kind: "container",
                name: c.name.clone(),
            });
        }
    }
    for v in spec.volumes.iter().flatten() {
        if v.name == PACK_VOLUME || v.name == TOKEN_VOLUME || v.name == PACK_KEYS_VOLUME {
            return Err(Denial::NameConflict {
                kind: "volume",
                name: v.name.clone(),
            });
        }
    }
    Ok(())
}

/// The original handler of a probe that the proxy must run for the kubelet, or `None` to
/// leave the probe alone.
fn original_probe_target(probe: &Probe, c: &Container) -> Option<Value> {
    let resolve = |port: &IntOrString| -> Option<i32> {
        match port {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(name) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port),
        }
    };
    if let Some(h) = &probe.http_get {
        if h.host.is_some() {
            return None;
        }
        let port = resolve(&h.port)?;
        let mut h = h.clone();
        h.port = IntOrString::Int(port);
        return Some(json!({ "httpGet": h }));
    }
    if let Some(t) = &probe.tcp_socket {
        if t.host.is_some() {
            return None;
        }
        let port = resolve(&t.port)?;
        return Some(json!({ "tcpSocket": { "port": port } }));
    }
    None
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The arguments of `picket init`. The admin port is always excluded from inbound capture,
/// so that the kubelet's probes reach it.
pub fn init_args(settings: &PodSettings) -> Vec<String> {
    let mut args: Vec<String> = [
        "init",
        "--proxy-uid",
        &PROXY_UID.to_string(),
        "--inbound-capture-port",
        &INBOUND_CAPTURE_PORT.to_string(),
        "--outbound-capture-port",
        &OUTBOUND_CAPTURE_PORT.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut inbound = vec![ADMIN_PORT as u16];
    inbound.extend(
        settings
            .exclude_inbound_ports
            .iter()
            .filter(|p| **p != ADMIN_PORT as u16),
    );
    args.extend(["--exclude-inbound-ports".into(), join(&inbound)]);
    if !settings.exclude_outbound_ports.is_empty() {
        args.extend([
            "--exclude-outbound-ports".into(),
            join(&settings.exclude_outbound_ports),
        ]);
    }
    if !settings.exclude_outbound_cidrs.is_empty() {
        args.extend([
            "--exclude-outbound-cidrs".into(),
            settings.exclude_outbound_cidrs.join(","),
        ]);
    }
    args
}

fn init_container(config: &Config, settings: &PodSettings) -> Container {
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(config.init_image.clone()),
        image_pull_policy: Some(config.image_pull_policy.clone()),
        command: Some(vec!["picket".into()]),
        args: Some(init_args(settings)),
        resources: Some(config.resources.clone()),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(ADMIN_PORT),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(1),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn plain_env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..Default::default()
    }
}

fn proxy_container(
    config: &Config,
    settings: &PodSettings,
    app_probes: &BTreeMap<String, Value>,
) -> Result<Container, Denial> {
    let port = |name: &str, n: i32| ContainerPort {
        name: Some(name.into()),
        container_port: n,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        plain_env("PICKET_TRUST_DOMAIN", config.trust_domain.clone()),
        plain_env("PICKET_IDENTITY_ADDRESS", config.identity_address.clone()),
    ];
    if let Some(ca) = &config.identity_ca {
        env.push(plain_env(IDENTITY_CA_ENV, ca.clone()));
    }
    if !app_probes.is_empty() {
        let text = serde_json::to_string(app_probes)
            .map_err(|e| Denial::InvalidPod(format!("serialising probes: {e}")))?;
        env.push(plain_env(APP_PROBES_ENV, text));
    }
    let mut c = Container {
        name: PROXY_CONTAINER.into(),
        image: Some(config.proxy_image.clone()),
        image_pull_policy: Some(config.image_pull_policy.clone()),
        command: Some(vec!["picket".into()]),
        args: Some(proxy_args(config, settings)),
        ports: Some(vec![
            port("picket-outbound", OUTBOUND_CAPTURE_PORT),
            port("picket-inbound", INBOUND_CAPTURE_PORT),
            port("picket-admin", ADMIN_PORT),
        ]),
        env: Some(env),
        resources: Some(config.resources.clone()),
        readiness_probe: Some(http_probe("/readyz", 2, 3)),
        security_context: Some(SecurityContext {
            run_as_user: Some(PROXY_UID),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: PACK_VOLUME.into(),
                mount_path: PACK_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: TOKEN_VOLUME.into(),
                mount_path: TOKEN_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    if config.pack_keys_config_map.is_some() {
        if let Some(mounts) = c.volume_mounts.as_mut() {
            mounts.push(VolumeMount {
                name: PACK_KEYS_VOLUME.into(),
                mount_path: PACK_KEYS_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    if config.native_sidecar {
        // The kubelet starts the next init container (and then the app) once a restartable
        // init container's startup probe has succeeded.
        c.restart_policy = Some("Always".into());
        c.startup_probe = Some(http_probe("/readyz", 1, 60));
    } else {
        c.lifecycle = Some(Lifecycle {
            post_start: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(WAIT_READY_COMMAND.iter().map(|s| s.to_string()).collect()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Ok(c)
}

/// The sidecar's command line.
fn proxy_args(config: &Config, settings: &PodSettings) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "proxy".into(),
        "--mode".into(),
        settings.mode.to_string(),
        "--pack".into(),
        PACK_FILE.into(),
        "--log-format".into(),
        "json".into(),
    ];
    if config.pack_keys_config_map.is_some() {
        args.extend(["--pack-pubkey".into(), PACK_KEYS_DIR.into()]);
    }
    if config.require_signed_pack {
        args.push("--require-signed-pack".into());
    }
    if config.allow_pack_rollback {
        args.push("--allow-pack-rollback".into());
    }
    // The inbound ports `picket init` leaves uncaptured: the proxy announces them on its mesh
    // port, so that meshed peers send to them in plaintext (nothing would terminate mTLS there).
    if !settings.exclude_inbound_ports.is_empty() {
        args.extend([
            "--exclude-inbound-ports".into(),
            join(&settings.exclude_inbound_ports),
        ]);
    }
    args
}

fn volumes(config: &Config) -> Vec<Volume> {
    let mut v = volumes_always(config);
    if let Some(keys) = &config.pack_keys_config_map {
        v.push(Volume {
            name: PACK_KEYS_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: keys.clone(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    v
}

fn volumes_always(config: &Config) -> Vec<Volume> {
    vec![
        Volume {
            name: PACK_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config.pack_config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: TOKEN_VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(TOKEN_AUDIENCE.into()),
                        expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                        path: "token".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
}

/// Applying a patch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("not a JSON patch: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    Patch(#[from] json_patch::PatchError),
}

/// Applies operations to a document with `json-patch` (all or nothing).
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), ApplyError> {
    let patch: json_patch::Patch = serde_json::from_value(serde_json::to_value(ops)?)?;
    json_patch::patch(doc, &patch)?;
    Ok(())
}
