//! The signature pack format: parsing and validation.
//!
//! A pack is a TOML document that people write and review, so it is parsed with spans and every
//! problem is reported as `file:line: signature ID: what is wrong`, all problems at once. A pack
//! with any problem is rejected whole: a half-loaded pack would silently drop protection.
//!
//! ```toml
//! [pack]
//! name = "picket-default"
//! version = "2026.11.23"
//!
//! [[signature]]
//! id = "PKT-SHELLSHOCK-001"
//! name = "Shellshock function definition"
//! severity = "critical"                 # info | low | medium | high | critical
//! references = ["CVE-2014-6271"]
//! targets = ["header", "arg", "cookie"] # see `Target`; `header:NAME` narrows to one header
//! transforms = ["url_decode"]           # applied in order before matching; see `Transform`
//! literals = ["() {"]                   # prefilter; ASCII case-insensitive
//! regex = '\(\)\s*\{[^}]*\}\s*;'        # optional confirmation on the same transformed view
//! not_regex = '^x-legit'                # optional: drop the finding when this matches too
//! action = "block"                      # block (default) | alert
//!
//! [[signature]]                         # protocol anomalies have no literals or targets
//! id = "PKT-PROTO-CLTE"
//! name = "Content-Length and Transfer-Encoding together"
//! severity = "high"
//! anomaly = "REQUEST_CONTENT_LENGTH_TRANSFER_ENCODING"
//!
//! [[exclusion]]                         # tuning without editing signatures
//! signatures = ["PKT-SHELL-CMD"]        # or ["*"]
//! host = "docs.example.com"             # optional: exact, or "*.example.com"
//! path_prefix = "/api/posts"            # optional
//! arg = "content"                       # optional: a parameter, form field, JSON key, XML name
//! action = "disable"                    # disable | alert | block
//! reason = "the CMS stores tutorials that quote shell commands"
//! ```
//!
//! Exclusions may also live in an overlay file beside the pack (only `[[exclusion]]` tables), so
//! operators tune a vendor pack without editing it; see [`Pack::apply_overlay`].

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::anomaly::Anomaly;
use crate::target::{Target, TargetSet};
use crate::transform::Transform;

/// How bad a signature's finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What a signature's match does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Log only (`event: "alert"`); the request goes on.
    Alert,
    /// Refuse the request (in protect mode).
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Block => "block",
        }
    }
}

/// What an exclusion does to the signatures it names, where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionEffect {
    Disable,
    SetAction(Action),
}

/// What a signature looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// Literals (prefilter) and an optional confirming regex over transformed values.
    Pattern {
        targets: TargetSet,
        /// Lowercased header names when `header:NAME` was used without plain `header`; empty
        /// means every header (if `header` is a target at all).
        header_names: Vec<String>,
        transforms: Vec<Transform>,
        /// Prefilter literals as bytes (from `literals`, and `hex_literals` for binary ones).
        literals: Vec<Vec<u8>>,
        regex: Option<String>,
        /// A finding is dropped when this also matches the same view: how a pack says "but not
        /// in this shape" without look-around, which the linear-time regex engine does not have.
        not_regex: Option<String>,
    },
    /// A protocol anomaly found structurally by the inspectors.
    Anomaly(Anomaly),
}

/// One validated signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub references: Vec<String>,
    pub description: Option<String>,
    pub detection: Detection,
    pub action: Action,
    /// `false` when the pack (or an overlay) disables it; it is compiled out.
    pub enabled: bool,
    /// Line in the pack file, for messages.
    pub line: usize,
}

/// One validated exclusion rule. All conditions given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// Signature ids, or `*` for all.
    pub signatures: Vec<String>,
    /// Lowercase; `*.example.com` matches subdomains.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    /// A parameter / form field / JSON key / XML element or attribute / multipart field name.
    pub arg: Option<String>,
    /// A header name (lowercase).
    pub header: Option<String>,
    /// A cookie name.
    pub cookie: Option<String>,
    pub effect: ExclusionEffect,
    pub reason: Option<String>,
    /// Where it was declared (`file:line`), shown in `/pack`.
    pub origin: String,
}

/// A validated pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub signatures: Vec<Signature>,
    pub exclusions: Vec<Exclusion>,
    /// The file name it was read from (`<builtin>` for the embedded pack).
    pub source: String,
}

/// One problem in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIssue {
    pub file: String,
    pub line: usize,
    pub signature: Option<String>,
    pub message: String,
}

impl fmt::Display for PackIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(id) = &self.signature {
            write!(f, "signature {id}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A rejected pack: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PackError {
    pub issues: Vec<PackIssue>,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

// ---- raw, span-carrying form -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    pack: Spanned<RawHeader>,
    #[serde(default)]
    signature: Vec<Spanned<RawSignature>>,
    #[serde(default)]
    exclusion: Vec<Spanned<RawExclusion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    #[serde(default)]
    exclusion: Vec<Spanned<RawExclusion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    version: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    id: Spanned<String>,
    name: String,
    severity: Spanned<String>,
    #[serde(default)]
    references: Vec<String>,
    description: Option<String>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    #[serde(default)]
    transforms: Vec<Spanned<String>>,
    #[serde(default)]
    literals: Vec<Spanned<String>>,
    #[serde(default)]
    hex_literals: Vec<Spanned<String>>,
    regex: Option<Spanned<String>>,
    not_regex: Option<Spanned<String>>,
    anomaly: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    signatures: Vec<Spanned<String>>,
    host: Option<String>,
    path_prefix: Option<String>,
    arg: Option<String>,
    header: Option<String>,
    cookie: Option<String>,
    action: Spanned<String>,
    reason: Option<String>,
}

/// Maps byte offsets to 1-based line numbers.
struct Lines<'a> {
    file: &'a str,
    starts: Vec<usize>,
    issues: Vec<PackIssue>,
}

impl<'a> Lines<'a> {
    fn new(file: &'a str, src: &str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines {
            file,
            starts,
            issues: Vec::new(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn issue(&mut self, offset: usize, signature: Option<&str>, message: impl Into<String>) {
        let line = self.line(offset);
        self.issues.push(PackIssue {
            file: self.file.to_string(),
            line,
            signature: signature.map(str::to_string),
            message: message.into(),
        });
    }

    fn finish<T>(self, value: T) -> Result<T, PackError> {
        if self.issues.is_empty() {
            Ok(value)
        } else {
            Err(PackError {
                issues: self.issues,
            })
        }
    }
}

/// Regex limits: a pack author's regex must not be able to eat the proxy's memory.
pub(crate) const REGEX_SIZE_LIMIT: usize = 2 << 20;
pub(crate) const REGEX_DFA_SIZE_LIMIT: usize = 4 << 20;

pub(crate) fn build_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Pack {
    /// Parses and validates a pack. `file` names it in error messages.
    pub fn parse(src: &str, file: &str) -> Result<Pack, PackError> {
        let mut lines = Lines::new(file, src);
        let raw: RawPack = match toml::from_str(src) {
            Ok(r) => r,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                lines.issue(offset, None, e.message().to_string());
                return lines.finish(Pack::empty(file));
            }
        };
        let header_line = lines.line(raw.pack.span().start);
        let header = raw.pack.into_inner();
        if header.name.trim().is_empty() {
            lines.issue_at_line(header_line, "pack name is empty");
        }
        if header.version.trim().is_empty() {
            lines.issue_at_line(header_line, "pack version is empty");
        }

        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut signatures = Vec::with_capacity(raw.signature.len());
        for spanned in raw.signature {
            let start = spanned.span().start;
            let sig = spanned.into_inner();
            if let Some(s) = validate_signature(sig, start, &mut lines, &mut seen) {
                signatures.push(s);
            }
        }
        let ids: HashMap<&str, ()> = signatures.iter().map(|s| (s.id.as_str(), ())).collect();
        let mut exclusions = Vec::new();
        for spanned in raw.exclusion {
            let start = spanned.span().start;
            if let Some(e) = validate_exclusion(spanned.into_inner(), start, &ids, &mut lines) {
                exclusions.push(e);
            }
        }
        let pack = Pack {
            name: header.name,
            version: header.version,
            description: header.description,
            signatures,
            exclusions,
            source: file.to_string(),
        };
        lines.finish(pack)
    }

    fn empty(file: &str) -> Pack {
        Pack {
            name: String::new(),
            version: String::new(),
            description: None,
            signatures: Vec::new(),
            exclusions: Vec::new(),
            source: file.to_string(),
        }
    }

    /// Adds the exclusions of an overlay file (a TOML document with only `[[exclusion]]`
    /// tables). The overlay is validated against this pack's signature ids; on any problem the
    /// pack is left unchanged.
    pub fn apply_overlay(&mut self, src: &str, file: &str) -> Result<(), PackError> {
        let mut lines = Lines::new(file, src);
        let raw: RawOverlay = match toml::from_str(src) {
            Ok(r) => r,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                lines.issue(offset, None, e.message().to_string());
                return lines.finish(());
            }
        };
        let ids: HashMap<&str, ()> = self
            .signatures
            .iter()
            .map(|s| (s.id.as_str(), ()))
            .collect();
        let mut added = Vec::new();
        for spanned in raw.exclusion {
            let start = spanned.span().start;
            if let Some(e) = validate_exclusion(spanned.into_inner(), start, &ids, &mut lines) {
                added.push(e);
            }
        }
        lines.finish(())?;
        self.exclusions.extend(added);
        Ok(())
    }

    /// Signatures that take part in matching.
    pub fn enabled_signatures(&self) -> impl Iterator<Item = &Signature> {
        self.signatures.iter().filter(|s| s.enabled)
    }
}

impl Lines<'_> {
    fn issue_at_line(&mut self, line: usize, message: &str) {
        self.issues.push(PackIssue {
            file: self.file.to_string(),
            line,
            signature: None,
            message: message.to_string(),
        });
    }
}

fn validate_signature(
    sig: RawSignature,
    start: usize,
    lines: &mut Lines<'_>,
    seen: &mut HashMap<String, usize>,
) -> Option<Signature> {
    let before = lines.issues.len();
    let id = sig.id.get_ref().clone();
    let id_at = sig.id.span().start;
    let sid = Some(id.as_str());
    if !is_valid_id(&id) {
        lines.issue(
            id_at,
            sid,
            "id must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
        );
    }
    let line = lines.line(start);
    if let Some(first) = seen.get(&id) {
        let msg = format!("duplicate id (first declared on line {first})");
        lines.issue(id_at, sid, msg);
    } else {
        seen.insert(id.clone(), line);
    }
    if sig.name.trim().is_empty() {
        lines.issue(start, sid, "name is empty");
    }
    let severity = Severity::parse(sig.severity.get_ref()).unwrap_or_else(|| {
        let msg = format!(
            "unknown severity {:?} (expected info, low, medium, high or critical)",
            sig.severity.get_ref()
        );
        lines.issue(sig.severity.span().start, sid, msg);
        Severity::Info
    });
    let action = match &sig.action {
        None => Action::Block,
        Some(a) => match a.get_ref().as_str() {
            "block" => Action::Block,
            "alert" => Action::Alert,
            other => {
                let msg = format!("unknown action {other:?} (expected block or alert)");
                lines.issue(a.span().start, sid, msg);
                Action::Block
            }
        },
    };

    let detection = if let Some(anomaly) = &sig.anomaly {
        let has_pattern_fields = !sig.targets.is_empty()
            || !sig.literals.is_empty()
            || !sig.hex_literals.is_empty()
            || !sig.transforms.is_empty()
            || sig.regex.is_some()
            || sig.not_regex.is_some();
        if has_pattern_fields {
            lines.issue(
                anomaly.span().start,
                sid,
                "an anomaly signature takes no targets, transforms, literals or regex",
            );
        }
        match Anomaly::from_name(anomaly.get_ref()) {
            Some(a) => Detection::Anomaly(a),
            None => {
                let msg = format!("unknown anomaly {:?}", anomaly.get_ref());
                lines.issue(anomaly.span().start, sid, msg);
                return None;
            }
        }
    } else {
        let mut targets = TargetSet::EMPTY;
        let mut header_names = Vec::new();
        let mut all_headers = false;
        if sig.targets.is_empty() {
            lines.issue(start, sid, "no targets (where should it look?)");
        }
        for t in &sig.targets {
            let s = t.get_ref().as_str();
            if let Some(h) = s.strip_prefix("header:") {
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    let msg = format!("invalid header name in target {s:?}");
                    lines.issue(t.span().start, sid, msg);
                }
                targets.insert(Target::Header);
                header_names.push(h.to_ascii_lowercase());
            } else if let Some(target) = Target::from_pack_name(s) {
                if target == Target::Header {
                    all_headers = true;
                }
                targets.insert(target);
            } else {
                let msg = format!("unknown target {s:?}");
                lines.issue(t.span().start, sid, msg);
            }
        }
        if all_headers {
            header_names.clear();
        }
        let mut transforms = Vec::new();
        for t in &sig.transforms {
            match Transform::from_pack_name(t.get_ref()) {
                Some(tr) => transforms.push(tr),
                None => {
                    let msg = format!("unknown transformation {:?}", t.get_ref());
                    lines.issue(t.span().start, sid, msg);
                }
            }
        }
        if sig.literals.is_empty() && sig.hex_literals.is_empty() {
            lines.issue(
                start,
                sid,
                "no literals: every pattern signature needs at least one for the prefilter",
            );
        }
        let mut literals = Vec::new();
        for l in &sig.literals {
            if l.get_ref().is_empty() {
                lines.issue(l.span().start, sid, "empty literal");
            } else {
                literals.push(l.get_ref().as_bytes().to_vec());
            }
        }
        for l in &sig.hex_literals {
            match decode_hex(l.get_ref()) {
                Some(bytes) if !bytes.is_empty() => literals.push(bytes),
                _ => {
                    let msg = format!(
                        "hex literal {:?} is not an even number of hex digits",
                        l.get_ref()
                    );
                    lines.issue(l.span().start, sid, msg);
                }
            }
        }
        let mut regex_field = |r: &Option<Spanned<String>>, field: &str| match r {
            None => None,
            Some(r) => {
                if let Err(e) = build_regex(r.get_ref()) {
                    let msg = format!("{field} does not compile: {}", one_line(&e.to_string()));
                    lines.issue(r.span().start, sid, msg);
                }
                Some(r.get_ref().clone())
            }
        };
        let regex = regex_field(&sig.regex, "regex");
        let not_regex = regex_field(&sig.not_regex, "not_regex");
        Detection::Pattern {
            targets,
            header_names,
            transforms,
            literals,
            regex,
            not_regex,
        }
    };
    if lines.issues.len() > before {
        return None;
    }
    Some(Signature {
        id,
        name: sig.name,
        severity,
        references: sig.references,
        description: sig.description,
        detection,
        action,
        enabled: sig.enabled.unwrap_or(true),
        line,
    })
}

fn validate_exclusion(
    ex: RawExclusion,
    start: usize,
    ids: &HashMap<&str, ()>,
    lines: &mut Lines<'_>,
) -> Option<Exclusion> {
    let before = lines.issues.len();
    if ex.signatures.is_empty() {
        lines.issue(
            start,
            None,
            "exclusion names no signatures (use [\"*\"] for all)",
        );
    }
    for s in &ex.signatures {
        let id = s.get_ref().as_str();
        if id != "*" && !ids.contains_key(id) {
            let msg = format!("exclusion names unknown signature {id:?}");
            lines.issue(s.span().start, None, msg);
        }
    }
    let effect = match ex.action.get_ref().as_str() {
        "disable" => ExclusionEffect::Disable,
        "alert" => ExclusionEffect::SetAction(Action::Alert),
        "block" => ExclusionEffect::SetAction(Action::Block),
        other => {
            let msg =
                format!("unknown exclusion action {other:?} (expected disable, alert or block)");
            lines.issue(ex.action.span().start, None, msg);
            ExclusionEffect::Disable
        }
    };
    if let Some(p) = &ex.path_prefix {
        if !p.starts_with('/') {
            lines.issue(start, None, "path_prefix must start with '/'");
        }
    }
    if lines.issues.len() > before {
        return None;
    }
    Some(Exclusion {
        signatures: ex.signatures.into_iter().map(Spanned::into_inner).collect(),
        host: ex.host.map(|h| h.to_ascii_lowercase()),
        path_prefix: ex.path_prefix,
        arg: ex.arg,
        header: ex.header.map(|h| h.to_ascii_lowercase()),
        cookie: ex.cookie,
        effect,
        reason: ex.reason,
        origin: format!("{}:{}", lines.file, lines.line(start)),
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[pack]
name = "t"
version = "1"

[[signature]]
id = "A-1"
name = "a"
severity = "high"
targets = ["header:User-Agent", "arg"]
transforms = ["url_decode", "lowercase"]
literals = ["() {"]
regex = '\(\)\s*\{'

[[signature]]
id = "P-1"
name = "cl te"
severity = "high"
anomaly = "REQUEST_CONTENT_LENGTH_TRANSFER_ENCODING"
action = "alert"

[[exclusion]]
signatures = ["A-1"]
path_prefix = "/docs"
arg = "body"
action = "disable"
"#;

    #[test]
    fn parses_a_good_pack() {
        let p = Pack::parse(GOOD, "good.toml").unwrap();
        assert_eq!(p.signatures.len(), 2);
        match &p.signatures[0].detection {
            Detection::Pattern {
                targets,
                header_names,
                transforms,
                ..
            } => {
                assert!(targets.contains(Target::Header) && targets.contains(Target::Arg));
                assert_eq!(header_names, &["user-agent"]);
                assert_eq!(transforms, &[Transform::UrlDecode, Transform::Lowercase]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.signatures[1].action, Action::Alert);
        assert_eq!(p.exclusions[0].origin, "good.toml:22");
    }

    fn issues(src: &str) -> Vec<String> {
        Pack::parse(src, "p.toml")
            .unwrap_err()
            .issues
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn reports_each_problem_with_file_line_and_id() {
        let src = r#"[pack]
name = "t"
version = "1"

[[signature]]
id = "X"
name = "bad regex"
severity = "high"
targets = ["body"]
literals = ["a"]
regex = "(unclosed"

[[signature]]
id = "X"
name = "dup"
severity = "high"
targets = ["bodyy"]
transforms = ["rot13"]
literals = [""]

[[signature]]
id = "Y"
name = "no literals"
severity = "high"
targets = ["body"]

[[signature]]
id = "Z"
name = "bad anomaly"
severity = "high"
anomaly = "NOPE"
"#;
        let got = issues(src);
        assert!(
            got[0].starts_with("p.toml:11: signature X: regex does not compile"),
            "{got:?}"
        );
        assert_eq!(
            got[1],
            "p.toml:14: signature X: duplicate id (first declared on line 5)"
        );
        assert_eq!(got[2], "p.toml:17: signature X: unknown target \"bodyy\"");
        assert_eq!(
            got[3],
            "p.toml:18: signature X: unknown transformation \"rot13\""
        );
        assert_eq!(got[4], "p.toml:19: signature X: empty literal");
        assert!(
            got[5].starts_with("p.toml:21: signature Y: no literals"),
            "{got:?}"
        );
        assert_eq!(got[6], "p.toml:31: signature Z: unknown anomaly \"NOPE\"");
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn syntax_errors_and_unknown_fields_have_lines() {
        let got = issues(
            "[pack]\nname = \"t\"\nversion = \"1\"\n[[signature]]\nid = \"A\"\nnmae = \"x\"\n",
        );
        assert!(got[0].starts_with("p.toml:6:"), "{got:?}");
        let got = issues("[pack]\nname = \"t\"\nversion = 1\n");
        assert!(got[0].starts_with("p.toml:3:"), "{got:?}");
    }

    #[test]
    fn overlay_adds_exclusions_or_nothing() {
        let mut p = Pack::parse(GOOD, "good.toml").unwrap();
        let ok = "[[exclusion]]\nsignatures = [\"*\"]\nhost = \"Docs.Example.com\"\naction = \"alert\"\n";
        p.apply_overlay(ok, "o.toml").unwrap();
        assert_eq!(p.exclusions.len(), 2);
        assert_eq!(p.exclusions[1].host.as_deref(), Some("docs.example.com"));
        let bad = "[[exclusion]]\nsignatures = [\"NOPE\"]\naction = \"disable\"\n";
        let e = p.apply_overlay(bad, "o.toml").unwrap_err();
        assert_eq!(
            e.issues[0].to_string(),
            "o.toml:2: exclusion names unknown signature \"NOPE\""
        );
        assert_eq!(p.exclusions.len(), 2);
    }
}
