//! `picket-injector inject`: the webhook's injection applied to manifests.
//!
//! Each document of a multi-document YAML stream is read as JSON data; for a `Pod` the
//! patch of [`crate::pod_patch`] is generated at the root, for a `Deployment`, `StatefulSet`,
//! `DaemonSet`, `ReplicaSet` or `Job` at `/spec/template`, for a `CronJob` at
//! `/spec/jobTemplate/spec/template`, and applied with `json-patch`; the items of a `List`
//! (`kubectl get -o yaml`) likewise. Other documents pass through unchanged. Namespace annotations come from the configuration's `namespaces` and
//! from the `Namespace` documents of the same stream (which take precedence).

use serde_json::Value;

use crate::namespace::StaticNamespaces;
use crate::patch::{apply, pod_patch, ApplyError, Denial, Outcome};
use crate::Config;

/// Errors of manual injection.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("document {index} ({what}) is refused: {denial}")]
    Denied {
        index: usize,
        what: String,
        denial: Denial,
    },
    #[error("document {index} ({what}): the patch does not apply: {source}")]
    Apply {
        index: usize,
        what: String,
        source: ApplyError,
    },
    #[error("cannot write YAML: {0}")]
    Write(String),
}

/// Where the pod template of a kind is, as a JSON Pointer; `None` for kinds without one.
pub fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub index: usize,
    /// `Kind namespace/name`.
    pub what: String,
    /// `injected`, `skipped: …` or `unchanged (no pod template)`.
    pub outcome: String,
}

fn describe(doc: &Value, namespace: &str) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind} {namespace}/{name}")
}

/// Injects every document in place.
pub fn inject_documents(
    docs: &mut [Value],
    config: &Config,
    namespaces: &StaticNamespaces,
    default_namespace: &str,
) -> Result<Vec<Note>, ManifestError> {
    let mut namespaces = namespaces.clone();
    for doc in docs.iter() {
        if doc.get("kind").and_then(Value::as_str) == Some("Namespace") {
            if let (Some(name), annotations) = (
                doc.pointer("/metadata/name").and_then(Value::as_str),
                doc.pointer("/metadata/annotations"),
            ) {
                let annotations = annotations
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                namespaces.insert(name, annotations);
            }
        }
    }
    let mut notes = Vec::new();
    for (index, doc) in docs.iter_mut().enumerate() {
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            // `kubectl get -o yaml` output: inject each item.
            if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
                for item in items {
                    inject_one(
                        item,
                        index,
                        config,
                        &namespaces,
                        default_namespace,
                        &mut notes,
                    )?;
                }
            }
            continue;
        }
        inject_one(
            doc,
            index,
            config,
            &namespaces,
            default_namespace,
            &mut notes,
        )?;
    }
    Ok(notes)
}

fn inject_one(
    doc: &mut Value,
    index: usize,
    config: &Config,
    namespaces: &StaticNamespaces,
    default_namespace: &str,
    notes: &mut Vec<Note>,
) -> Result<(), ManifestError> {
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(default_namespace)
        .to_string();
    let what = describe(doc, &namespace);
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some(pointer) = template_pointer(kind) else {
        notes.push(Note {
            index,
            what,
            outcome: "unchanged (no pod template)".into(),
        });
        return Ok(());
    };
    let Some(template) = doc.pointer(pointer) else {
        return Err(ManifestError::Denied {
            index,
            what,
            denial: Denial::InvalidPod(format!("no pod template at {pointer:?}")),
        });
    };
    let ns_annotations = namespaces.get(&namespace);
    let outcome =
        pod_patch(pointer, template, &namespace, &ns_annotations, config).map_err(|denial| {
            ManifestError::Denied {
                index,
                what: what.clone(),
                denial,
            }
        })?;
    match outcome {
        Outcome::Skip(reason) => notes.push(Note {
            index,
            what,
            outcome: format!("skipped: {reason}"),
        }),
        Outcome::Inject { patch, .. } => {
            apply(doc, &patch).map_err(|source| ManifestError::Apply {
                index,
                what: what.clone(),
                source,
            })?;
            notes.push(Note {
                index,
                what,
                outcome: "injected".into(),
            });
        }
    }
    Ok(())
}

/// Reads a multi-document YAML stream, injects it, and writes it back as YAML.
pub fn inject_yaml(
    text: &str,
    config: &Config,
    namespaces: &StaticNamespaces,
    default_namespace: &str,
) -> Result<(String, Vec<Note>), ManifestError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml(e.to_string()))?;
    let mut docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let notes = inject_documents(&mut docs, config, namespaces, default_namespace)?;
    let out =
        serde_saphyr::to_string_multiple(&docs).map_err(|e| ManifestError::Write(e.to_string()))?;
    Ok((out, notes))
}
