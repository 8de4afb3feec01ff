//! Patch generation on realistic pods (shapes from the Kubernetes documentation's examples),
//! each patch applied with json-patch and the result checked field by field and read back
//! as a `k8s_openapi` Pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use picket_injector::patch::{escape_pointer_token, VERSION};
use picket_injector::{apply, pod_patch, Config, Denial, Outcome, PatchOp};
use serde_json::{json, Value};

fn config() -> Config {
    Config::with_images(
        "registry.example/picket:0.1.0",
        "registry.example/picket:0.1.0",
    )
}

fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Generates the patch for `pod` and applies it; returns the patched pod and the patch.
fn inject_with(
    pod: &Value,
    namespace: &BTreeMap<String, String>,
    config: &Config,
) -> (Value, Vec<PatchOp>) {
    let outcome = pod_patch("", pod, "shop", namespace, config).expect("not denied");
    let Outcome::Inject { patch, .. } = outcome else {
        panic!("expected injection, got {outcome:?}");
    };
    let mut doc = pod.clone();
    apply(&mut doc, &patch).expect("patch applies");
    // The result is a valid Pod for the Kubernetes API types.
    let typed: Pod = serde_json::from_value(doc.clone()).expect("a Pod");
    assert!(typed.spec.is_some());
    (doc, patch)
}

fn inject(pod: &Value) -> (Value, Vec<PatchOp>) {
    inject_with(pod, &BTreeMap::new(), &config())
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect()
}

fn arg_after(container: &Value, flag: &str) -> Option<String> {
    let a = args(container);
    a.iter().position(|x| x == flag).map(|i| a[i + 1].clone())
}

/// Two containers sharing a volume (the "communicate between containers in the same pod"
/// example), with probes of every kind; no annotations, no init containers.
fn two_container_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "two-containers", "namespace": "shop"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "shared-data", "emptyDir": {}}],
            "containers": [
                {
                    "name": "nginx-container",
                    "image": "nginx",
                    "ports": [{"name": "http", "containerPort": 80}],
                    "volumeMounts": [{"name": "shared-data", "mountPath": "/usr/share/nginx/html"}],
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http",
                                    "httpHeaders": [{"name": "Custom-Header", "value": "Awesome"}]},
                        "initialDelaySeconds": 3, "periodSeconds": 3
                    },
                    "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 15, "periodSeconds": 10},
                    "startupProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "failureThreshold": 30}
                },
                {
                    "name": "debian-container",
                    "image": "debian",
                    "volumeMounts": [{"name": "shared-data", "mountPath": "/pod-data"}],
                    "command": ["/bin/sh"],
                    "args": ["-c", "echo Hello from the debian container > /pod-data/index.html"],
                    "livenessProbe": {"grpc": {"port": 2379}, "initialDelaySeconds": 10}
                }
            ]
        }
    })
}

#[test]
fn multi_container_pod_native_sidecar() {
    let pod = two_container_pod();
    let (out, patch) = inject(&pod);

    // Marker annotation, created with the annotations map.
    assert_eq!(
        out["metadata"]["annotations"]["picket.dev/injected"],
        VERSION
    );
    assert!(patch
        .iter()
        .any(|op| op.op == "add" && op.path == "/metadata/annotations"));
    // Init containers created: picket-init, then the native sidecar.
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        ["picket-init", "picket-proxy"]
    );
    assert!(patch.iter().any(|op| op.path == "/spec/initContainers"));
    // App containers unchanged in number and order.
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["nginx-container", "debian-container"]
    );

    let init = &out["spec"]["initContainers"][0];
    assert_eq!(init["image"], "registry.example/picket:0.1.0");
    assert_eq!(init["command"], json!(["picket"]));
    assert_eq!(
        args(init),
        [
            "init",
            "--proxy-uid",
            "2102",
            "--inbound-capture-port",
            "15006",
            "--outbound-capture-port",
            "15001",
            "--exclude-inbound-ports",
            "15090"
        ]
    );
    let sc = &init["securityContext"];
    assert_eq!(sc["capabilities"]["add"], json!(["NET_ADMIN", "NET_RAW"]));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(sc["runAsNonRoot"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);

    let proxy = &out["spec"]["initContainers"][1];
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(
        args(proxy),
        [
            "proxy",
            "--mode",
            "protect",
            "--pack",
            "/etc/picket/pack/pack.toml",
            "--log-format",
            "json"
        ]
    );
    let sc = &proxy["securityContext"];
    assert_eq!(sc["runAsUser"], 2102);
    assert_eq!(sc["runAsGroup"], 2102);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(sc["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(proxy["readinessProbe"]["httpGet"]["port"], 15090);
    assert_eq!(proxy["startupProbe"]["httpGet"]["path"], "/readyz");
    assert!(proxy.get("lifecycle").is_none());
    let ports: Vec<(i64, &str)> = proxy["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerPort"].as_i64().unwrap(),
                p["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (15001, "picket-outbound"),
            (15006, "picket-inbound"),
            (15090, "picket-admin")
        ]
    );
    assert_eq!(proxy["resources"]["requests"]["cpu"], "100m");
    assert_eq!(proxy["resources"]["limits"]["memory"], "256Mi");
    for (name, path) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ] {
        assert_eq!(
            env(proxy, name).unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            path
        );
    }
    assert_eq!(
        proxy["volumeMounts"],
        json!([
            {"name": "picket-pack", "mountPath": "/etc/picket/pack", "readOnly": true},
            {"name": "picket-token", "mountPath": "/var/run/secrets/picket", "readOnly": true}
        ])
    );

    // Volumes: the pod's own first, then ours.
    assert_eq!(
        names(&out["spec"]["volumes"]),
        ["shared-data", "picket-pack", "picket-token"]
    );
    assert_eq!(
        out["spec"]["volumes"][1]["configMap"]["name"],
        "picket-pack"
    );
    assert_eq!(
        out["spec"]["volumes"][2]["projected"]["sources"][0]["serviceAccountToken"],
        json!({"audience": "picket", "expirationSeconds": 3600, "path": "token"})
    );

    // Probes: HTTP and TCP rewritten (timing kept), exec and grpc untouched.
    let nginx = &out["spec"]["containers"][0];
    assert_eq!(
        nginx["livenessProbe"],
        json!({"httpGet": {"path": "/app-health/nginx-container/livez", "port": 15090, "scheme": "HTTP"},
               "initialDelaySeconds": 3, "periodSeconds": 3})
    );
    assert_eq!(
        nginx["readinessProbe"],
        json!({"httpGet": {"path": "/app-health/nginx-container/readyz", "port": 15090, "scheme": "HTTP"},
               "initialDelaySeconds": 15, "periodSeconds": 10})
    );
    assert_eq!(
        nginx["startupProbe"],
        pod["spec"]["containers"][0]["startupProbe"]
    );
    assert_eq!(
        out["spec"]["containers"][1]["livenessProbe"],
        pod["spec"]["containers"][1]["livenessProbe"]
    );
    // The originals, named port resolved, in PICKET_APP_PROBES.
    let probes: Value = serde_json::from_str(
        env(proxy, "PICKET_APP_PROBES").unwrap()["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        probes,
        json!({
            "/app-health/nginx-container/livez": {"httpGet": {"path": "/healthz", "port": 80,
                "httpHeaders": [{"name": "Custom-Header", "value": "Awesome"}]}},
            "/app-health/nginx-container/readyz": {"tcpSocket": {"port": 80}}
        })
    );
    // Everything else of the app containers is as it was.
    for (i, c) in pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for field in ["name", "image", "ports", "volumeMounts", "command", "args"] {
            assert_eq!(
                out["spec"]["containers"][i].get(field),
                c.get(field),
                "{field}"
            );
        }
    }
    assert_eq!(out["spec"]["restartPolicy"], "Never");
}

/// The init-containers example (myapp-pod waiting for two services), with pod and
/// container security contexts, injected with a regular (non-native) sidecar.
#[test]
fn pod_with_init_containers_and_security_contexts_regular_sidecar() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "myapp-pod", "labels": {"app.kubernetes.io/name": "MyApp"},
                     "annotations": {"kubernetes.io/description": "init example"}},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "runAsNonRoot": true},
            "containers": [
                {"name": "sidecar-logger", "image": "busybox:1.28", "command": ["sh", "-c", "tail -F /var/log/app.log"]},
                {"name": "myapp-container", "image": "busybox:1.28",
                 "command": ["sh", "-c", "echo The app is running! && sleep 3600"],
                 "securityContext": {"allowPrivilegeEscalation": false},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5}}
            ],
            "initContainers": [
                {"name": "init-myservice", "image": "busybox:1.28",
                 "command": ["sh", "-c", "until nslookup myservice; do echo waiting; sleep 2; done"]},
                {"name": "init-mydb", "image": "busybox:1.28",
                 "command": ["sh", "-c", "until nslookup mydb; do echo waiting; sleep 2; done"]}
            ]
        }
    });
    let mut config = config();
    config.native_sidecar = false;
    let (out, patch) = inject_with(&pod, &BTreeMap::new(), &config);

    // Ours first, the pod's kept in order.
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        ["picket-init", "init-myservice", "init-mydb"]
    );
    assert!(patch.iter().any(|op| op.path == "/spec/initContainers/0"));
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["picket-proxy", "sidecar-logger", "myapp-container"]
    );
    let proxy = &out["spec"]["containers"][0];
    assert!(proxy.get("restartPolicy").is_none());
    assert!(proxy.get("startupProbe").is_none());
    assert_eq!(
        proxy["lifecycle"]["postStart"]["exec"]["command"],
        json!(["picket", "wait-ready", "--timeout", "60s"])
    );
    // The probe was rewritten on the right container despite the index shift.
    let app = &out["spec"]["containers"][2];
    assert_eq!(
        app["readinessProbe"]["httpGet"]["path"],
        "/app-health/myapp-container/readyz"
    );
    assert_eq!(app["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(
        app["securityContext"],
        json!({"allowPrivilegeEscalation": false})
    );
    assert!(out["spec"]["containers"][1].get("readinessProbe").is_none());
    // Existing annotations kept, the marker added beside them (escaped path).
    assert_eq!(
        out["metadata"]["annotations"]["kubernetes.io/description"],
        "init example"
    );
    assert_eq!(
        out["metadata"]["annotations"]["picket.dev/injected"],
        VERSION
    );
    assert!(patch
        .iter()
        .any(|op| op.path == "/metadata/annotations/picket.dev~1injected" && op.value == VERSION));
    // kubectl logs/exec still default to the first app container.
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
        "sidecar-logger"
    );
    assert!(patch
        .iter()
        .any(|op| op.path == "/metadata/annotations/kubectl.kubernetes.io~1default-container"));
    // The pod-level security context is untouched; ours override it per container.
    assert_eq!(
        out["spec"]["securityContext"],
        pod["spec"]["securityContext"]
    );
    assert_eq!(
        out["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"],
        false
    );
    assert_eq!(
        out["spec"]["initContainers"][0]["securityContext"]["runAsUser"],
        0
    );
    assert_eq!(proxy["securityContext"]["runAsUser"], 2102);
    // No volumes before: the array is created.
    assert_eq!(
        names(&out["spec"]["volumes"]),
        ["picket-pack", "picket-token"]
    );
    assert!(patch
        .iter()
        .any(|op| op.op == "add" && op.path == "/spec/volumes"));
}

#[test]
fn host_network_marker_and_opt_out_are_skipped() {
    let mut host = two_container_pod();
    host["spec"]["hostNetwork"] = json!(true);
    let out = pod_patch("", &host, "shop", &BTreeMap::new(), &config()).unwrap();
    assert!(
        matches!(&out, Outcome::Skip(r) if r.contains("hostNetwork")),
        "{out:?}"
    );

    let mut marked = two_container_pod();
    marked["metadata"]["annotations"] = json!({"picket.dev/injected": "0.0.9"});
    let out = pod_patch("", &marked, "shop", &BTreeMap::new(), &config()).unwrap();
    assert!(
        matches!(&out, Outcome::Skip(r) if r.contains("already injected")),
        "{out:?}"
    );

    // Injecting the injected pod again changes nothing.
    let (once, _) = inject(&two_container_pod());
    let out = pod_patch("", &once, "shop", &BTreeMap::new(), &config()).unwrap();
    assert!(matches!(out, Outcome::Skip(_)));

    let mut opted_out = two_container_pod();
    opted_out["metadata"]["annotations"] = json!({"picket.dev/inject": "false"});
    let out = pod_patch("", &opted_out, "shop", &BTreeMap::new(), &config()).unwrap();
    assert!(
        matches!(&out, Outcome::Skip(r) if r.contains("picket.dev/inject")),
        "{out:?}"
    );
    // Opt-out inherited from the namespace, overridden by the pod.
    let ns_out = ns(&[("picket.dev/inject", "false")]);
    let out = pod_patch("", &two_container_pod(), "shop", &ns_out, &config()).unwrap();
    assert!(matches!(out, Outcome::Skip(_)));
    let mut opted_in = two_container_pod();
    opted_in["metadata"]["annotations"] = json!({"picket.dev/inject": "true"});
    let out = pod_patch("", &opted_in, "shop", &ns_out, &config()).unwrap();
    assert!(matches!(out, Outcome::Inject { .. }));
}

#[test]
fn namespace_annotations_are_inherited_unless_the_pod_overrides_them() {
    let namespace = ns(&[
        ("picket.dev/mode", "monitor"),
        ("picket.dev/exclude-outbound-ports", "5432, 6379"),
        ("picket.dev/exclude-outbound-cidrs", "169.254.169.254"),
        ("picket.dev/exclude-inbound-ports", "9100"),
    ]);
    // Inherited.
    let (out, _) = inject_with(&two_container_pod(), &namespace, &config());
    let init = &out["spec"]["initContainers"][0];
    let proxy = &out["spec"]["initContainers"][1];
    assert_eq!(arg_after(proxy, "--mode").as_deref(), Some("monitor"));
    assert_eq!(
        arg_after(init, "--exclude-outbound-ports").as_deref(),
        Some("5432,6379")
    );
    assert_eq!(
        arg_after(init, "--exclude-outbound-cidrs").as_deref(),
        Some("169.254.169.254/32")
    );
    assert_eq!(
        arg_after(init, "--exclude-inbound-ports").as_deref(),
        Some("15090,9100")
    );
    // The sidecar announces the same ports as plaintext on its mesh port.
    assert_eq!(
        arg_after(proxy, "--exclude-inbound-ports").as_deref(),
        Some("9100")
    );

    // Overridden by the pod: mode, and an empty list clears the namespace's.
    let mut pod = two_container_pod();
    pod["metadata"]["annotations"] = json!({
        "picket.dev/mode": "protect",
        "picket.dev/exclude-outbound-ports": "",
        "picket.dev/exclude-outbound-cidrs": "10.0.0.0/8,fd00::/8",
    });
    let (out, _) = inject_with(&pod, &namespace, &config());
    let init = &out["spec"]["initContainers"][0];
    let proxy = &out["spec"]["initContainers"][1];
    assert_eq!(arg_after(proxy, "--mode").as_deref(), Some("protect"));
    assert_eq!(arg_after(init, "--exclude-outbound-ports"), None);
    assert_eq!(
        arg_after(init, "--exclude-outbound-cidrs").as_deref(),
        Some("10.0.0.0/8,fd00::/8")
    );
    // Not overridden: still inherited.
    assert_eq!(
        arg_after(init, "--exclude-inbound-ports").as_deref(),
        Some("15090,9100")
    );
    // The pod's annotations are kept as they were.
    assert_eq!(out["metadata"]["annotations"]["picket.dev/mode"], "protect");
}

#[test]
fn invalid_annotations_and_name_clashes_are_denied_with_a_clear_message() {
    for (key, value) in [
        ("picket.dev/mode", "block"),
        ("picket.dev/exclude-inbound-ports", "80,http"),
        ("picket.dev/exclude-outbound-ports", "70000"),
        ("picket.dev/exclude-outbound-cidrs", "10.0.0.0/33"),
        ("picket.dev/inject", "yes"),
    ] {
        let mut pod = two_container_pod();
        pod["metadata"]["annotations"] = json!({ key: value });
        let err = pod_patch("", &pod, "shop", &BTreeMap::new(), &config()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Denial::InvalidAnnotation(_)));
        assert!(
            message.contains(key) && message.contains("pod"),
            "{message}"
        );
    }
    let err = pod_patch(
        "",
        &two_container_pod(),
        "shop",
        &ns(&[("picket.dev/mode", "audit")]),
        &config(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("namespace shop") && err.contains("\"audit\""),
        "{err}"
    );

    let mut pod = two_container_pod();
    pod["spec"]["containers"][1]["name"] = json!("picket-proxy");
    let err = pod_patch("", &pod, "shop", &BTreeMap::new(), &config()).unwrap_err();
    assert_eq!(
        err,
        Denial::NameConflict {
            kind: "container",
            name: "picket-proxy".into()
        }
    );
    let mut pod = two_container_pod();
    pod["spec"]["volumes"] = json!([{"name": "picket-token", "emptyDir": {}}]);
    assert!(matches!(
        pod_patch("", &pod, "shop", &BTreeMap::new(), &config()),
        Err(Denial::NameConflict { kind: "volume", .. })
    ));
    let no_spec = json!({"metadata": {"name": "x"}});
    assert!(matches!(
        pod_patch("", &no_spec, "shop", &BTreeMap::new(), &config()),
        Err(Denial::InvalidPod(_))
    ));
}

#[test]
fn json_pointer_escaping_and_missing_maps() {
    assert_eq!(
        escape_pointer_token("picket.dev/injected"),
        "picket.dev~1injected"
    );
    assert_eq!(escape_pointer_token("a~b/c"), "a~0b~1c");
    // An annotation key with both '~' and '/' is kept as is next to the marker.
    let mut pod = two_container_pod();
    pod["metadata"]["annotations"] = json!({"example.com/odd~key": "v"});
    let (out, _) = inject(&pod);
    assert_eq!(
        out["metadata"]["annotations"],
        json!({"example.com/odd~key": "v", "picket.dev/injected": VERSION})
    );

    // A pod template with no metadata at all.
    let template = json!({"spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    let outcome = pod_patch("", &template, "shop", &BTreeMap::new(), &config()).unwrap();
    let Outcome::Inject { patch, .. } = outcome else {
        panic!()
    };
    assert_eq!(patch[0].path, "/metadata");
    let mut doc = template.clone();
    apply(&mut doc, &patch).unwrap();
    assert_eq!(
        doc["metadata"]["annotations"]["picket.dev/injected"],
        VERSION
    );

    // An empty initContainers array is replaced by ours.
    let mut pod = two_container_pod();
    pod["spec"]["initContainers"] = json!([]);
    let (out, _) = inject(&pod);
    assert_eq!(
        names(&out["spec"]["initContainers"]),
        ["picket-init", "picket-proxy"]
    );

    // The patch is all add/replace operations with escaped paths.
    let (_, patch) = inject(&two_container_pod());
    assert!(patch.iter().all(|op| op.op == "add" || op.op == "replace"));
    assert!(patch.iter().all(|op| !op.path.contains("picket.dev/")));
}

#[test]
fn probes_with_host_or_unknown_named_port_are_left_alone() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{
            "name": "app", "image": "app:1",
            "livenessProbe": {"httpGet": {"path": "/", "port": "missing"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 80, "host": "10.0.0.1"}},
            "startupProbe": {"tcpSocket": {"port": "admin"}}
        }]}
    });
    let (out, _) = inject(&pod);
    assert_eq!(out["spec"]["containers"][0], pod["spec"]["containers"][0]);
    assert!(env(&out["spec"]["initContainers"][1], "PICKET_APP_PROBES").is_none());
}

#[test]
fn template_prefix_paths() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": two_container_pod()}
    });
    let outcome = pod_patch(
        "/spec/template",
        &deployment["spec"]["template"],
        "shop",
        &BTreeMap::new(),
        &config(),
    )
    .unwrap();
    let Outcome::Inject { patch, .. } = outcome else {
        panic!()
    };
    assert!(patch
        .iter()
        .all(|op| op.path.starts_with("/spec/template/")));
    let mut doc = deployment.clone();
    apply(&mut doc, &patch).unwrap();
    assert_eq!(doc["metadata"], deployment["metadata"]);
    assert_eq!(
        names(&doc["spec"]["template"]["spec"]["initContainers"]),
        ["picket-init", "picket-proxy"]
    );
}

/// Pack signing from the config: the keys ConfigMap is mounted into the sidecar and given as
/// a directory of `*.pub` files; the policy flags follow the config.
#[test]
fn pack_signing_settings_reach_the_sidecar() {
    let mut cfg = config();
    cfg.pack_keys_config_map = Some("picket-pack-keys".into());
    cfg.require_signed_pack = true;
    let (doc, _) = inject_with(&two_container_pod(), &BTreeMap::new(), &cfg);
    let spec = &doc["spec"];
    let proxy = spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "picket-proxy")
        .expect("native sidecar");
    assert_eq!(
        arg_after(proxy, "--pack-pubkey").as_deref(),
        Some("/etc/picket/pack-keys")
    );
    let a = args(proxy);
    assert!(a.contains(&"--require-signed-pack".to_string()), "{a:?}");
    assert!(!a.contains(&"--allow-pack-rollback".to_string()), "{a:?}");
    let mount = proxy["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "picket-pack-keys")
        .expect("keys mount");
    assert_eq!(mount["mountPath"], "/etc/picket/pack-keys");
    assert_eq!(mount["readOnly"], true);
    let vol = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "picket-pack-keys")
        .expect("keys volume");
    assert_eq!(vol["configMap"]["name"], "picket-pack-keys");

    // Without the keys, nothing of it appears; requiring signatures without keys is refused.
    let (doc, _) = inject_with(&two_container_pod(), &BTreeMap::new(), &config());
    assert!(!doc.to_string().contains("pack-keys"));
    let mut bad = config();
    bad.require_signed_pack = true;
    assert!(bad.validate().is_err());
    let parsed = Config::from_json(
        r#"{"proxyImage": "p", "initImage": "i", "packKeysConfigMap": "k",
            "requireSignedPack": true, "allowPackRollback": true}"#,
        "test",
    )
    .expect("the chart's optional keys parse");
    assert!(parsed.allow_pack_rollback);
}
