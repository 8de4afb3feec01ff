//! AdmissionReview (`admission.k8s.io/v1`) in, AdmissionReview out.
//!
//! How each kind of request is answered:
//!
//! | request | HTTP | response |
//! |---|---|---|
//! | body not JSON, no `request`, no `request.uid` | 400 | a JSON error `{"error": "…"}` (no AdmissionReview can be formed without a uid) |
//! | `apiVersion`/`kind` not `admission.k8s.io/v1` `AdmissionReview` | 200 | `allowed: false`, status 400 and a message |
//! | a kind other than core `v1` `Pod`, a subresource, an operation other than `CREATE` | 200 | `allowed: true`, no patch (the webhook only mutates pods it is meant to; refusing unrelated objects after a misconfiguration would break them) |
//! | a Pod that cannot be read, an invalid `picket.dev/*` annotation, a name clash, namespace annotations that cannot be read | 200 | `allowed: false`, status 400 and a message |
//! | a Pod to skip (`picket.dev/inject: "false"`, already injected, `hostNetwork`) | 200 | `allowed: true`, no patch |
//! | a Pod to inject | 200 | `allowed: true`, `patchType: JSONPatch`, `patch`: the base64 JSONPatch |
//!
//! Every decision is one JSON log line with `uid`, `namespace`, `pod` (the name, or the
//! `generateName` followed by `*`), `decision` (`inject`, `skip`, `allow`, `deny`) and
//! `reason`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::namespace::NamespaceLookup;
use crate::patch::{pod_patch, Outcome};
use crate::Config;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The part of an AdmissionRequest the webhook reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    #[serde(default)]
    kind: Option<Gvk>,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// The decision on one request, as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub uid: String,
    pub namespace: String,
    pub pod: String,
    /// `inject`, `skip`, `allow` or `deny`.
    pub decision: &'static str,
    pub reason: String,
}

/// A request that cannot be answered with an AdmissionReview.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Answers one AdmissionReview body: the response AdmissionReview and the decision, or a
/// [`BadRequest`]. Logs the decision.
pub async fn review(
    body: &[u8],
    lookup: &dyn NamespaceLookup,
    config: &Config,
) -> Result<(Value, Decision), BadRequest> {
    let result = review_inner(body, lookup, config).await;
    match &result {
        Ok((_, d)) => tracing::info!(
            target: "picket_injector::admission",
            uid = %d.uid,
            namespace = %d.namespace,
            pod = %d.pod,
            decision = d.decision,
            reason = %d.reason,
            "admission decision"
        ),
        Err(e) => tracing::warn!(
            target: "picket_injector::admission",
            decision = "bad_request",
            reason = %e,
            "admission request refused"
        ),
    }
    result
}

async fn review_inner(
    body: &[u8],
    lookup: &dyn NamespaceLookup,
    config: &Config,
) -> Result<(Value, Decision), BadRequest> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest(format!("the body is not JSON: {e}")))?;
    let Some(raw_request) = doc.get("request").filter(|r| !r.is_null()) else {
        return Err(BadRequest(
            "not an AdmissionReview request: no \"request\"".into(),
        ));
    };
    let request: Request = serde_json::from_value(raw_request.clone())
        .map_err(|e| BadRequest(format!("malformed AdmissionReview request: {e}")))?;
    let namespace = request
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            request
                .object
                .as_ref()
                .and_then(|o| o.pointer("/metadata/namespace"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "default".to_string());
    let mut decision = Decision {
        uid: request.uid.clone(),
        namespace: namespace.clone(),
        pod: pod_name(&request),
        decision: "deny",
        reason: String::new(),
    };
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != API_VERSION || kind != KIND {
        decision.reason = format!(
            "expected apiVersion {API_VERSION} kind {KIND}, got apiVersion {api_version:?} kind {kind:?}"
        );
        return Ok((deny(&decision), decision));
    }
    let is_pod = request
        .kind
        .as_ref()
        .is_some_and(|k| k.group.is_empty() && k.version == "v1" && k.kind == "Pod");
    if !is_pod {
        let what = request
            .kind
            .as_ref()
            .map(|k| format!("{}/{} {}", k.group, k.version, k.kind))
            .unwrap_or_else(|| "an object of no kind".into());
        decision.decision = "allow";
        decision.reason = format!("not a core v1 Pod but {what}");
        return Ok((allow(&decision, None), decision));
    }
    if let Some(sub) = request.sub_resource.as_deref().filter(|s| !s.is_empty()) {
        decision.decision = "allow";
        decision.reason = format!("subresource {sub}");
        return Ok((allow(&decision, None), decision));
    }
    let operation = request.operation.as_deref().unwrap_or("");
    if operation != "CREATE" {
        decision.decision = "allow";
        decision.reason = format!("operation {operation:?}, only CREATE is mutated");
        return Ok((allow(&decision, None), decision));
    }
    let Some(object) = request.object.as_ref().filter(|o| o.is_object()) else {
        decision.reason = "the request has no pod object".into();
        return Ok((deny(&decision), decision));
    };
    let ns_annotations = match lookup.annotations(&namespace).await {
        Ok(a) => a,
        Err(e) => {
            decision.reason = e.to_string();
            return Ok((deny(&decision), decision));
        }
    };
    match pod_patch("", object, &namespace, &ns_annotations, config) {
        Ok(Outcome::Skip(reason)) => {
            decision.decision = "skip";
            decision.reason = reason;
            Ok((allow(&decision, None), decision))
        }
        Ok(Outcome::Inject { patch, settings }) => {
            let bytes = serde_json::to_vec(&patch)
                .map_err(|e| BadRequest(format!("cannot serialise the patch: {e}")))?;
            decision.decision = "inject";
            decision.reason = format!("mode {}, {} patch operations", settings.mode, patch.len());
            Ok((allow(&decision, Some(&bytes)), decision))
        }
        Err(e) => {
            decision.reason = e.to_string();
            Ok((deny(&decision), decision))
        }
    }
}

fn pod_name(request: &Request) -> String {
    let meta = request.object.as_ref().and_then(|o| o.get("metadata"));
    let field = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    field("name")
        .or_else(|| request.name.clone().filter(|s| !s.is_empty()))
        .or_else(|| field("generateName").map(|g| format!("{g}*")))
        .unwrap_or_default()
}

fn allow(decision: &Decision, patch: Option<&[u8]>) -> Value {
    let mut response = json!({ "uid": decision.uid, "allowed": true });
    if let Some(patch) = patch {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    json!({ "apiVersion": API_VERSION, "kind": KIND, "response": response })
}

fn deny(decision: &Decision) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "response": {
            "uid": decision.uid,
            "allowed": false,
            "status": {
                "code": 400,
                "reason": "BadRequest",
                "message": format!("picket-injector: {}", decision.reason),
            }
        }
    })
}
