//! ModSecurity phrase files (the `.data` files of `@pmFromFile`) into one signature.
//!
//! A phrase file has one phrase per line; lines starting with `#` and blank lines are skipped,
//! and each phrase is trimmed of surrounding whitespace (a trailing `\r` included). `@pm`
//! matches when any phrase occurs anywhere in the value, ASCII case-insensitively: exactly a
//! picket signature whose literals are the phrases and which has no regex. Several files make
//! one signature, as `@pmFromFile a.data b.data` does. Where to look, and the id, name and
//! severity, are the caller's choice (ModSecurity says that in the rule, not in the file).

use std::collections::HashMap;

use super::{
    check_signature, is_valid_id, ImportError, Imported, Outcome, RuleReport, SignatureSpec,
};
use crate::pack::{Action, Severity};
use crate::target::Target;
use crate::transform::Transform;

/// The targets used when the caller names none: the request's parameters wherever they are
/// carried (ModSecurity's `ARGS`).
pub const DEFAULT_PHRASE_TARGETS: &[&str] = &[
    "arg",
    "form",
    "multipart",
    "json:string",
    "xml:text",
    "xml:attribute",
    "grpc:string",
];

/// What the phrase signature is and where it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseOptions {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    /// Pack target names; `header:NAME` allowed.
    pub targets: Vec<String>,
    pub transforms: Vec<Transform>,
    pub references: Vec<String>,
    pub action: Action,
}

impl PhraseOptions {
    /// Defaults: severity medium, [`DEFAULT_PHRASE_TARGETS`], no transforms, action block.
    pub fn new(id: &str, name: &str) -> PhraseOptions {
        PhraseOptions {
            id: id.to_string(),
            name: name.to_string(),
            severity: Severity::Medium,
            targets: DEFAULT_PHRASE_TARGETS
                .iter()
                .map(|t| t.to_string())
                .collect(),
            transforms: Vec::new(),
            references: Vec::new(),
            action: Action::Block,
        }
    }
}

fn valid_target(t: &str) -> bool {
    match t.strip_prefix("header:") {
        Some(h) => !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
        None => Target::from_pack_name(t).is_some(),
    }
}

/// Converts the phrase files of `sources` (`(file name, text)` pairs) into one signature.
/// Every phrase line gets a report entry; a phrase repeated (ignoring ASCII case) is kept once.
pub fn import_phrases(
    sources: &[(&str, &str)],
    opts: &PhraseOptions,
) -> Result<Imported, ImportError> {
    if !is_valid_id(&opts.id) {
        return Err(ImportError::InvalidId(opts.id.clone()));
    }
    if opts.name.trim().is_empty() {
        return Err(ImportError::EmptyName);
    }
    if opts.targets.is_empty() {
        return Err(ImportError::NoTargets);
    }
    if let Some(t) = opts.targets.iter().find(|t| !valid_target(t)) {
        return Err(ImportError::UnknownTarget(t.clone()));
    }
    let mut imported = Imported::default();
    let mut literals: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashMap<Vec<u8>, (String, usize)> = HashMap::new();
    for (file, text) in sources {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            let phrase = line.trim();
            if phrase.is_empty() || phrase.starts_with('#') {
                continue;
            }
            let key = phrase.as_bytes().to_ascii_lowercase();
            let notes = match seen.get(&key) {
                Some((f, l)) => vec![format!("same phrase as {f}:{l} (kept once)")],
                None => {
                    seen.insert(key, (file.to_string(), n + 1));
                    literals.push(phrase.as_bytes().to_vec());
                    Vec::new()
                }
            };
            imported.report.push(RuleReport {
                file: file.to_string(),
                line: n + 1,
                rule: "phrase".to_string(),
                outcome: Outcome::Converted {
                    id: opts.id.clone(),
                    notes,
                },
            });
        }
    }
    if literals.is_empty() {
        return Err(ImportError::NoPhrases);
    }
    let files: Vec<&str> = sources.iter().map(|(f, _)| *f).collect();
    let spec = SignatureSpec {
        id: opts.id.clone(),
        name: opts.name.clone(),
        severity: opts.severity,
        references: opts.references.clone(),
        description: Some(format!(
            "Imported from ModSecurity phrase file(s) {} ({} phrases, matched as @pm does)",
            files.join(", "),
            literals.len()
        )),
        targets: opts.targets.clone(),
        transforms: opts.transforms.clone(),
        literals,
        regex: None,
        not_regex: None,
        action: opts.action,
    };
    check_signature(&spec).map_err(ImportError::Signature)?;
    imported.signatures.push(spec);
    Ok(imported)
}
