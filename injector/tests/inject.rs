//! `picket-injector inject` on multi-document YAML (a Namespace, a Deployment, a CronJob,
//! a Service), through the real binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

const MANIFESTS: &str = r#"
# The namespace's annotations apply to the workloads in it.
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    picket.dev/inject: enabled
  annotations:
    picket.dev/mode: monitor
    picket.dev/exclude-outbound-ports: "5432"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: shop
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
        livenessProbe:
          httpGet:
            path: /
            port: 80
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
  namespace: shop
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            picket.dev/mode: protect
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
---
apiVersion: v1
kind: Service
metadata:
  name: my-service
  namespace: shop
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
"#;

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picket-injector"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn check(out: &Output, native: bool) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(docs.len(), 4, "{text}");
    let original: Vec<Value> = serde_saphyr::from_multiple(MANIFESTS).unwrap();
    // Namespace and Service unchanged.
    assert_eq!(docs[0], original[0]);
    assert_eq!(docs[3], original[3]);

    let deployment = &docs[1];
    assert_eq!(deployment["metadata"], original[1]["metadata"]);
    assert_eq!(deployment["spec"]["replicas"], 3);
    let template = &deployment["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["picket.dev/injected"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(template["metadata"]["labels"]["app"], "nginx");
    let spec = &template["spec"];
    let (proxy, app) = if native {
        assert_eq!(
            names(&spec["initContainers"]),
            ["picket-init", "picket-proxy"]
        );
        assert_eq!(names(&spec["containers"]), ["nginx"]);
        (&spec["initContainers"][1], &spec["containers"][0])
    } else {
        assert_eq!(names(&spec["initContainers"]), ["picket-init"]);
        assert_eq!(names(&spec["containers"]), ["picket-proxy", "nginx"]);
        (&spec["containers"][0], &spec["containers"][1])
    };
    // Inherited from the Namespace document.
    assert_eq!(proxy["args"][2], "monitor");
    let init_args = &spec["initContainers"][0]["args"];
    let i = init_args
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a == "--exclude-outbound-ports")
        .unwrap();
    assert_eq!(init_args[i + 1], "5432");
    assert_eq!(
        app["livenessProbe"]["httpGet"]["path"],
        "/app-health/nginx/livez"
    );
    assert_eq!(names(&spec["volumes"]), ["picket-pack", "picket-token"]);
    // Typed check of the result.
    let d: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(deployment.clone()).unwrap();
    assert!(d.spec.template.spec.unwrap().init_containers.is_some());

    let cron = &docs[2];
    let template = &cron["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["picket.dev/mode"],
        "protect"
    );
    assert_eq!(
        template["metadata"]["annotations"]["picket.dev/injected"],
        env!("CARGO_PKG_VERSION")
    );
    let spec = &template["spec"];
    assert_eq!(spec["restartPolicy"], "OnFailure");
    let proxy = if native {
        &spec["initContainers"][1]
    } else {
        &spec["containers"][0]
    };
    // The pod's own annotation overrides the namespace's.
    assert_eq!(proxy["args"][2], "protect");
    assert_eq!(cron["spec"]["schedule"], "* * * * *");
    let c: k8s_openapi::api::batch::v1::CronJob = serde_json::from_value(cron.clone()).unwrap();
    assert_eq!(c.spec.schedule, "* * * * *");

    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(
        notes.contains("Deployment shop/nginx-deployment: injected"),
        "{notes}"
    );
    assert!(notes.contains("CronJob shop/hello: injected"), "{notes}");
    assert!(
        notes.contains("Service shop/my-service: unchanged"),
        "{notes}"
    );

    // Injecting the output again changes nothing.
    let again = run(&["inject", "-f", "-"], &text);
    assert!(again.status.success());
    let docs_again: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&again.stdout).unwrap()).unwrap();
    assert_eq!(docs_again, docs);
}

#[test]
fn inject_a_deployment_and_a_cronjob_from_stdin_and_from_a_file() {
    // Standard input, default configuration (native sidecar).
    let out = run(&["inject", "-f", "-"], MANIFESTS);
    check(&out, true);

    // A file, with a configuration file (regular sidecar).
    let dir = std::env::temp_dir().join(format!("picket-injector-inject-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifests = dir.join("app.yaml");
    std::fs::write(&manifests, MANIFESTS).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"proxyImage": "registry.example/picket:1", "initImage": "registry.example/picket-init:1",
               "nativeSidecar": false})
        .to_string(),
    )
    .unwrap();
    let out = run(
        &[
            "inject",
            "-f",
            manifests.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    check(&out, false);
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    let spec = &docs[1]["spec"]["template"]["spec"];
    assert_eq!(
        spec["initContainers"][0]["image"],
        "registry.example/picket-init:1"
    );
    assert_eq!(spec["containers"][0]["image"], "registry.example/picket:1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_annotation_and_bad_yaml_fail_with_a_message() {
    let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    picket.dev/exclude-outbound-cidrs: 10.0.0.0/40\nspec:\n  containers:\n  - name: a\n    image: a\n";
    let out = run(&["inject", "-f", "-"], bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Pod default/p") && err.contains("picket.dev/exclude-outbound-cidrs"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = run(&["inject", "-f", "-"], "kind: [unclosed\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid YAML"));

    let out = run(&["inject", "-f", "/nonexistent/app.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn items_of_a_list_are_injected() {
    // What `kubectl get deployments,services -o yaml` prints.
    let list = r#"
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: api
    namespace: shop
  spec:
    selector:
      matchLabels: {app: api}
    template:
      metadata:
        labels: {app: api}
      spec:
        containers:
        - name: api
          image: api:2
- apiVersion: v1
  kind: Service
  metadata:
    name: api
    namespace: shop
  spec:
    ports:
    - port: 80
"#;
    let out = run(&["inject", "-f", "-"], list);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    assert_eq!(docs.len(), 1);
    let items = docs[0]["items"].as_array().unwrap();
    assert_eq!(
        names(&items[0]["spec"]["template"]["spec"]["initContainers"]),
        ["picket-init", "picket-proxy"]
    );
    let original: Vec<Value> = serde_saphyr::from_multiple(list).unwrap();
    assert_eq!(items[1], original[0]["items"][1]);
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(notes.contains("Deployment shop/api: injected"), "{notes}");
}
