//! AdmissionReview handling in process: every kind of request of the table in
//! `picket_injector::admission`.

use std::collections::BTreeMap;

use base64::Engine as _;
use picket_injector::admission::{review, BadRequest};
use picket_injector::{apply, Config, PatchOp, StaticNamespaces};
use serde_json::{json, Value};

fn config() -> Config {
    Config::with_images("picket:test", "picket:test")
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d4b9c-", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                 "readinessProbe": {"tcpSocket": {"port": 80}}}]}
    })
}

fn review_of(object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false
        }
    })
}

async fn run(body: &[u8], namespaces: &StaticNamespaces) -> Result<Value, BadRequest> {
    review(body, namespaces, &config()).await.map(|(v, _)| v)
}

#[tokio::test]
async fn a_pod_gets_a_base64_json_patch() {
    let body = serde_json::to_vec(&review_of(pod())).unwrap();
    let (out, decision) = review(&body, &StaticNamespaces::default(), &config())
        .await
        .unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    let response = &out["response"];
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: Vec<PatchOp> = serde_json::from_slice(&bytes).unwrap();
    let mut doc = pod();
    apply(&mut doc, &patch).unwrap();
    assert_eq!(doc["spec"]["initContainers"][0]["name"], "picket-init");
    assert_eq!(
        doc["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/app-health/web/readyz"
    );
    assert_eq!(decision.decision, "inject");
    assert_eq!(decision.namespace, "shop");
    assert_eq!(decision.pod, "web-7d4b9c-*");
}

#[tokio::test]
async fn namespace_annotations_come_from_the_lookup() {
    let namespaces = StaticNamespaces::new(BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("picket.dev/mode".to_string(), "monitor".to_string())]),
    )]));
    let body = serde_json::to_vec(&review_of(pod())).unwrap();
    let out = run(&body, &namespaces).await.unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out["response"]["patch"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(r#""--mode","monitor""#), "{text}");
}

#[tokio::test]
async fn unparsable_bodies_are_bad_requests() {
    let ns = StaticNamespaces::default();
    let e = run(b"{not json", &ns).await.unwrap_err();
    assert!(e.0.contains("not JSON"), "{e}");
    let e = run(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        &ns,
    )
    .await
    .unwrap_err();
    assert!(e.0.contains("no \"request\""), "{e}");
    let e = run(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":{}}}"#,
        &ns,
    )
    .await
    .unwrap_err();
    assert!(e.0.contains("uid"), "{e}");
}

#[tokio::test]
async fn wrong_version_invalid_pod_and_bad_annotation_are_denied() {
    let ns = StaticNamespaces::default();
    let mut old = review_of(pod());
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let out = run(&serde_json::to_vec(&old).unwrap(), &ns).await.unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(
        out["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert!(out["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("v1beta1"));

    let mut bad = pod();
    bad["metadata"]["annotations"] = json!({"picket.dev/exclude-outbound-ports": "53,dns"});
    let out = run(&serde_json::to_vec(&review_of(bad)).unwrap(), &ns)
        .await
        .unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["code"], 400);
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("picket.dev/exclude-outbound-ports") && message.contains("\"dns\""),
        "{message}"
    );
    assert!(out["response"].get("patch").is_none());

    let mut broken = pod();
    broken["spec"]["containers"] = json!("nginx");
    let out = run(&serde_json::to_vec(&review_of(broken)).unwrap(), &ns)
        .await
        .unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert!(out["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("spec"));

    let mut no_object = review_of(pod());
    no_object["request"]["object"] = Value::Null;
    let out = run(&serde_json::to_vec(&no_object).unwrap(), &ns)
        .await
        .unwrap();
    assert_eq!(out["response"]["allowed"], false);
}

#[tokio::test]
async fn other_kinds_operations_and_skips_are_allowed_without_patch() {
    let ns = StaticNamespaces::default();
    let mut deployment = review_of(json!({"kind": "Deployment"}));
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let mut update = review_of(pod());
    update["request"]["operation"] = json!("UPDATE");
    let mut sub = review_of(pod());
    sub["request"]["subResource"] = json!("ephemeralcontainers");
    let mut host = pod();
    host["spec"]["hostNetwork"] = json!(true);
    let mut marked = pod();
    marked["metadata"]["annotations"] = json!({"picket.dev/injected": "0.1.0"});
    for review in [deployment, update, sub, review_of(host), review_of(marked)] {
        let out = run(&serde_json::to_vec(&review).unwrap(), &ns)
            .await
            .unwrap();
        assert_eq!(out["response"]["allowed"], true, "{review}");
        assert!(out["response"].get("patch").is_none(), "{review}");
        assert!(out["response"].get("patchType").is_none(), "{review}");
    }
}

/// A lookup that cannot answer (the API server unreachable, say).
struct Unreachable;

impl picket_injector::NamespaceLookup for Unreachable {
    fn annotations<'a>(
        &'a self,
        namespace: &'a str,
    ) -> picket_injector::namespace::LookupFuture<'a> {
        Box::pin(async move {
            Err(picket_injector::LookupError {
                namespace: namespace.to_string(),
                reason: "connection refused".into(),
            })
        })
    }
}

#[tokio::test]
async fn a_failed_namespace_lookup_denies_the_pod() {
    let body = serde_json::to_vec(&review_of(pod())).unwrap();
    let (out, decision) = review(&body, &Unreachable, &config()).await.unwrap();
    assert_eq!(out["response"]["allowed"], false);
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("namespace shop") && message.contains("connection refused"),
        "{message}"
    );
    assert_eq!(decision.decision, "deny");
}
