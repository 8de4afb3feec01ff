//! Importing rules from other engines into a picket pack: pure functions from rule text to
//! signatures plus a report. No I/O; `picket pack import` reads the files and writes the pack.
//!
//! * [`suricata`] converts Suricata/Snort-style HTTP rules (`content`, `pcre`, the HTTP sticky
//!   buffers and the older `http_*` content modifiers);
//! * [`phrases`] turns ModSecurity phrase files (the `.data` files of `@pmFromFile`) into one
//!   signature whose literals are the phrases.
//!
//! The rule of the importer is that a rule is converted only into a signature that matches what
//! the rule matches — not more, not less — within the documented differences between the
//! source engine's buffers and picket's targets (`docs/packs.md`, "Importing rules"). Anything
//! else (positional modifiers, flow state, response buffers, PCRE features the linear-time
//! regex engine lacks, conditions a single signature cannot combine) makes the rule
//! *unconvertible*, and the report says which option and why.
//!
//! Every generated signature is compiled on its own with [`Engine::from_toml`] before it is
//! accepted, and [`Imported::to_toml`] compiles the whole pack again, so the output always
//! passes picket's own validation.

use std::fmt;

use crate::engine::{CompileError, Engine};
pub(crate) use crate::pack::is_valid_id;
use crate::pack::{Action, Severity};
use crate::transform::Transform;

pub mod pcre;
pub mod phrases;
pub mod suricata;

pub use phrases::{import_phrases, PhraseOptions};
pub use suricata::{import_suricata, SuricataOptions};

/// Why an import could not produce a pack at all (per-rule problems go into the report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("invalid signature id {0:?}: 1 to 64 of A-Z a-z 0-9 - _ .")]
    InvalidId(String),
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error("no targets given")]
    NoTargets,
    #[error("name is empty")]
    EmptyName,
    #[error("no phrases found in the input")]
    NoPhrases,
    #[error("the generated signature does not compile: {0}")]
    Signature(String),
    #[error("the generated pack does not compile: {0}")]
    Generated(#[from] CompileError),
}

/// The `[pack]` header of the generated pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackMeta {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
}

/// One generated signature, in the shape of a `[[signature]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSpec {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub references: Vec<String>,
    pub description: Option<String>,
    /// Pack target names (`path`, `header:user-agent`, …).
    pub targets: Vec<String>,
    pub transforms: Vec<Transform>,
    /// Literal bytes; written as `literals` when UTF-8, else as `hex_literals`.
    pub literals: Vec<Vec<u8>>,
    pub regex: Option<String>,
    pub not_regex: Option<String>,
    pub action: Action,
}

/// What became of one source rule (or phrase line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Converted into the signature with this id. `notes` are the documented differences
    /// between the source buffer and picket's targets that apply to this rule.
    Converted { id: String, notes: Vec<String> },
    /// Not converted, and why.
    Unconvertible { reason: String },
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleReport {
    /// The input file name as the caller gave it.
    pub file: String,
    /// 1-based line of the rule in that file.
    pub line: usize,
    /// What the rule is called in its own format, e.g. `sid 2100001` or `phrase`.
    pub rule: String,
    pub outcome: Outcome,
}

impl fmt::Display for RuleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.file, self.line, self.rule)?;
        match &self.outcome {
            Outcome::Converted { id, notes } => {
                write!(f, "converted to {id}")?;
                if !notes.is_empty() {
                    write!(f, " (note: {})", notes.join("; "))?;
                }
                Ok(())
            }
            Outcome::Unconvertible { reason } => write!(f, "not converted: {reason}"),
        }
    }
}

/// The result of an import: the signatures and the report, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub signatures: Vec<SignatureSpec>,
    pub report: Vec<RuleReport>,
}

impl Imported {
    /// How many report entries were converted.
    pub fn converted(&self) -> usize {
        self.report
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Converted { .. }))
            .count()
    }

    /// How many report entries could not be converted.
    pub fn unconvertible(&self) -> usize {
        self.report.len() - self.converted()
    }

    /// The pack as TOML, checked by compiling it with picket's own parser and engine.
    pub fn to_toml(&self, meta: &PackMeta) -> Result<String, ImportError> {
        let src = render_pack(meta, &self.signatures);
        Engine::from_toml(&src, "<import>")?;
        Ok(src)
    }
}

/// Writes a pack document. Strings are TOML basic strings with every control character escaped.
pub fn render_pack(meta: &PackMeta, signatures: &[SignatureSpec]) -> String {
    let mut s = String::new();
    s.push_str("[pack]\n");
    s.push_str(&format!("name = {}\n", toml_str(&meta.name)));
    s.push_str(&format!("version = {}\n", toml_str(&meta.version)));
    if let Some(d) = &meta.description {
        s.push_str(&format!("description = {}\n", toml_str(d)));
    }
    for sig in signatures {
        s.push('\n');
        render_signature(sig, &mut s);
    }
    s
}

fn render_signature(sig: &SignatureSpec, s: &mut String) {
    let list = |items: &mut dyn Iterator<Item = String>| {
        let v: Vec<String> = items.collect();
        format!("[{}]", v.join(", "))
    };
    s.push_str("[[signature]]\n");
    s.push_str(&format!("id = {}\n", toml_str(&sig.id)));
    s.push_str(&format!("name = {}\n", toml_str(&sig.name)));
    s.push_str(&format!("severity = {}\n", toml_str(sig.severity.as_str())));
    if !sig.references.is_empty() {
        let refs = list(&mut sig.references.iter().map(|r| toml_str(r)));
        s.push_str(&format!("references = {refs}\n"));
    }
    if let Some(d) = &sig.description {
        s.push_str(&format!("description = {}\n", toml_str(d)));
    }
    let targets = list(&mut sig.targets.iter().map(|t| toml_str(t)));
    s.push_str(&format!("targets = {targets}\n"));
    if !sig.transforms.is_empty() {
        let t = list(&mut sig.transforms.iter().map(|t| toml_str(t.pack_name())));
        s.push_str(&format!("transforms = {t}\n"));
    }
    let (text, hex): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) = sig
        .literals
        .iter()
        .partition(|l| std::str::from_utf8(l).is_ok());
    if !text.is_empty() {
        let l = list(&mut text.iter().map(|l| toml_str(&String::from_utf8_lossy(l))));
        s.push_str(&format!("literals = {l}\n"));
    }
    if !hex.is_empty() {
        let l = list(&mut hex.iter().map(|l| {
            let h: String = l.iter().map(|b| format!("{b:02x}")).collect();
            toml_str(&h)
        }));
        s.push_str(&format!("hex_literals = {l}\n"));
    }
    if let Some(r) = &sig.regex {
        s.push_str(&format!("regex = {}\n", toml_str(r)));
    }
    if let Some(r) = &sig.not_regex {
        s.push_str(&format!("not_regex = {}\n", toml_str(r)));
    }
    s.push_str(&format!("action = {}\n", toml_str(sig.action.as_str())));
}

/// A TOML basic string: `"` and `\` escaped, every control character as `\uXXXX`.
pub fn toml_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Compiles one signature alone, so that a bad one is reported against its rule instead of
/// sinking the whole pack.
pub(crate) fn check_signature(sig: &SignatureSpec) -> Result<(), String> {
    let meta = PackMeta {
        name: "check".into(),
        version: "0".into(),
        description: None,
    };
    Engine::from_toml(&render_pack(&meta, std::slice::from_ref(sig)), "<import>")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A regex that matches exactly `bytes` (ASCII case-insensitively when `nocase`). Every byte
/// that is not an ASCII letter, digit or space is written as `\xHH`, which the engine's
/// byte-oriented regexes (Unicode off) read as that byte.
pub(crate) fn bytes_regex(bytes: &[u8], nocase: bool) -> String {
    let mut s = String::new();
    if nocase {
        s.push_str("(?i:");
    }
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b' ' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
    if nocase {
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_str("x\r\ny\u{7f}"), r#""x\u000D\u000Ay\u007F""#);
    }

    #[test]
    fn rendered_pack_round_trips_through_the_parser() {
        let sig = SignatureSpec {
            id: "T-1".into(),
            name: "quote \" and \\ and \t".into(),
            severity: Severity::High,
            references: vec!["CVE-2014-6271".into()],
            description: Some("d".into()),
            targets: vec!["header:user-agent".into(), "path".into()],
            transforms: vec![Transform::UrlDecode],
            literals: vec![b"() {".to_vec(), vec![0xff, 0x00]],
            regex: Some(bytes_regex(b"A\"\\\xff", false)),
            not_regex: Some(bytes_regex(b"zz", true)),
            action: Action::Alert,
        };
        let meta = PackMeta {
            name: "n".into(),
            version: "1".into(),
            description: None,
        };
        let src = render_pack(&meta, std::slice::from_ref(&sig));
        let e = Engine::from_toml(&src, "t").unwrap_or_else(|e| panic!("{e}\n{src}"));
        let s = &e.signatures()[0];
        assert_eq!(s.name, sig.name);
        assert_eq!(s.action, Action::Alert);
        match &s.detection {
            crate::pack::Detection::Pattern {
                literals, regex, ..
            } => {
                assert_eq!(literals, &vec![b"() {".to_vec(), vec![0xff, 0x00]]);
                let re = crate::pack::build_regex(regex.as_deref().unwrap()).unwrap();
                assert!(re.is_match(b"xA\"\\\xffy"));
                assert!(!re.is_match(b"xa\"\\\xffy"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod conversion_tests;
