//! The compiled form of a pack: what the proxy and `picket scan` run every value through.
//!
//! # How a value is scanned
//!
//! 1. The *views* the value's [`Target`] needs are computed. A view is a distinct chain of
//!    transformations (`url_decode` then `shell`, say) used by at least one signature that looks
//!    at that target. Most values need no decoding at all, so every transformation first checks
//!    cheaply whether it would change anything; views whose bytes come out identical are
//!    grouped, and each distinct byte string is scanned once. A value of up to 256 bytes is
//!    first classified in one pass ([`ByteClasses`]): when none of its target's
//!    transformations would change it (most header values, parameters and cookies) the view
//!    computation is skipped altogether, and otherwise the classes settle the transformations
//!    that cannot apply without running their checks.
//! 2. One [`LiteralMatcher`] holds the literals of every signature of every view. Each literal
//!    remembers its view, and a hit counts only when the scanned bytes are that view's. So a
//!    benign value costs one prefilter pass whatever the number of signatures and views.
//! 3. Only signatures whose literal hit (and whose targets and header names fit) run their
//!    regex, on the same view's bytes. A signature without a regex is confirmed by its literal.
//! 4. Exclusions from the pack decide whether the finding is dropped or its action changed.
//!
//! `lowercase` is left out of the views used for literal matching (literals are ASCII
//! case-insensitive already, and an extra view would cost a second pass over most values); it
//! is applied only to the bytes a regex confirms on.

use std::collections::HashMap;

use crate::anomaly::Anomaly;
use crate::matcher::LiteralMatcher;
use crate::pack::{build_regex, Action, Detection, ExclusionEffect, Pack, PackError, Signature};
use crate::target::{Target, TargetSet};
use crate::transform::{ByteClasses, Transform};

/// Values up to this long get a [`ByteClasses`] pass (see [`Engine::scan`]).
const CLASSIFY_MAX: usize = 256;

/// The most distinct transformation chains a pack may use (views are tracked in a `u64` mask).
pub const MAX_VIEWS: usize = 64;

/// Why a validated pack could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("signature {id}: regex too large to compile: {reason}")]
    Regex { id: String, reason: String },
    #[error(
        "the pack uses {count} distinct transformation chains; at most {MAX_VIEWS} are supported"
    )]
    TooManyViews { count: usize },
    #[error("{0}")]
    Pack(#[from] PackError),
}

/// What a block log and `/pack` say about the loaded pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub name: String,
    pub version: String,
    pub source: String,
    /// Enabled signatures (pattern and anomaly).
    pub signatures: usize,
    pub exclusions: usize,
}

/// Facts about the request a value belongs to that exclusions can depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContext<'a> {
    /// The Host / :authority, as sent.
    pub host: &'a [u8],
    /// The path, without query.
    pub path: &'a [u8],
}

/// One confirmed finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`Engine::signatures`].
    pub signature: u32,
    /// The action after exclusions.
    pub action: Action,
    pub target: Target,
    /// e.g. `header:user-agent`, `body:json:string`.
    pub location: String,
    /// A bounded, printable excerpt of what matched (context omitted for secret-bearing
    /// locations such as Authorization and Cookie).
    pub excerpt: String,
}

struct PatternSig {
    /// Index into `Engine::signatures`.
    sig: u32,
    targets: TargetSet,
    header_names: Vec<Box<[u8]>>,
    lowercase: bool,
    regex: Option<regex::bytes::Regex>,
    not_regex: Option<regex::bytes::Regex>,
}

struct View {
    transforms: Vec<Transform>,
}

struct LiteralEntry {
    view: u8,
    patterns: Vec<u32>,
}

struct CompiledExclusion {
    all: bool,
    signatures: Vec<u32>,
    host: Option<Vec<u8>>,
    path_prefix: Option<Vec<u8>>,
    location: ExclusionLocation,
    effect: ExclusionEffect,
}

enum ExclusionLocation {
    Any,
    Arg(Vec<u8>),
    Header(Vec<u8>),
    Cookie(Vec<u8>),
}

/// A compiled pack. Cheap to share (`Arc<Engine>`); scanning needs only `&self` and a
/// per-caller [`Scratch`].
pub struct Engine {
    info: PackInfo,
    pack: Pack,
    signatures: Vec<Signature>,
    patterns: Vec<PatternSig>,
    views: Vec<View>,
    views_for_target: [Vec<u8>; Target::ALL.len()],
    /// Per target: the mask of all its views, and every transformation its views use, so that
    /// a value none of them would change is settled with one [`ByteClasses`] pass.
    mask_for_target: [u64; Target::ALL.len()],
    transforms_for_target: [Vec<Transform>; Target::ALL.len()],
    matcher: LiteralMatcher,
    literals: Vec<LiteralEntry>,
    anomalies: HashMap<Anomaly, u32>,
    exclusions: Vec<CompiledExclusion>,
}

/// Reusable buffers for scanning, one per task or thread, so scanning does not allocate in the
/// common case.
#[derive(Default)]
pub struct Scratch {
    /// Transformed views of the current value; `n_bufs` of them are live.
    bufs: Vec<Vec<u8>>,
    n_bufs: usize,
    tmp: Vec<u8>,
    lowered: Vec<u8>,
    /// `(input buffer, transform, output buffer)` already computed for the current value:
    /// chains that share a prefix, or whose transforms changed nothing, share the work.
    memo: Vec<(usize, Transform, usize)>,
    /// Distinct byte strings to scan, each with the mask of views that produce it.
    distinct: Vec<(usize, u64)>,
    candidates: Vec<Candidate>,
}

impl Scratch {
    /// Lets go of any buffer grown past `keep` bytes (a large body's views), so that what a
    /// long-lived owner (one per connection) keeps between values stays small; buffers within
    /// `keep` stay for reuse.
    pub fn trim(&mut self, keep: usize) {
        fn trim_buf(buf: &mut Vec<u8>, keep: usize) {
            if buf.capacity() > keep {
                *buf = Vec::new();
            }
        }
        for buf in &mut self.bufs {
            trim_buf(buf, keep);
        }
        trim_buf(&mut self.tmp, keep);
        trim_buf(&mut self.lowered, keep);
    }
}

#[derive(Clone, Copy)]
struct Candidate {
    pattern: u32,
    /// [`RAW`] for the value itself, else an index into `Scratch::bufs`.
    buf: usize,
    start: usize,
    end: usize,
}

const RAW: usize = usize::MAX;

/// The built-in default pack's source.
pub const DEFAULT_PACK: &str = include_str!("../packs/default.toml");

impl Engine {
    /// Parses, validates and compiles a pack.
    pub fn from_toml(src: &str, file: &str) -> Result<Engine, CompileError> {
        Engine::compile(Pack::parse(src, file)?)
    }

    /// The engine of the built-in default pack.
    pub fn builtin() -> Result<Engine, CompileError> {
        Engine::from_toml(DEFAULT_PACK, "<builtin>")
    }

    /// Compiles a validated pack.
    pub fn compile(pack: Pack) -> Result<Engine, CompileError> {
        let signatures: Vec<Signature> = pack.enabled_signatures().cloned().collect();
        let mut views: Vec<View> = Vec::new();
        let mut view_index: HashMap<Vec<Transform>, u8> = HashMap::new();
        let mut views_for_target: [Vec<u8>; Target::ALL.len()] = Default::default();
        let mut patterns = Vec::new();
        let mut literal_index: HashMap<(u8, Vec<u8>), u32> = HashMap::new();
        let mut literals: Vec<LiteralEntry> = Vec::new();
        let mut literal_bytes: Vec<Vec<u8>> = Vec::new();
        let mut anomalies = HashMap::new();

        for (i, sig) in signatures.iter().enumerate() {
            let i = i as u32;
            match &sig.detection {
                Detection::Anomaly(a) => {
                    anomalies.entry(*a).or_insert(i);
                }
                Detection::Pattern {
                    targets,
                    header_names,
                    transforms,
                    literals: lits,
                    regex,
                    not_regex,
                } => {
                    let chain: Vec<Transform> = transforms
                        .iter()
                        .copied()
                        .filter(|t| *t != Transform::Lowercase)
                        .collect();
                    let lowercase = transforms.contains(&Transform::Lowercase);
                    let view = match view_index.get(&chain) {
                        Some(v) => *v,
                        None => {
                            if views.len() == MAX_VIEWS {
                                return Err(CompileError::TooManyViews {
                                    count: views.len() + 1,
                                });
                            }
                            let v = views.len() as u8;
                            views.push(View {
                                transforms: chain.clone(),
                            });
                            view_index.insert(chain, v);
                            v
                        }
                    };
                    for t in targets.iter() {
                        let list = &mut views_for_target[t as usize];
                        if !list.contains(&view) {
                            list.push(view);
                        }
                    }
                    let compile = |r: &Option<String>| -> Result<_, CompileError> {
                        r.as_deref()
                            .map(build_regex)
                            .transpose()
                            .map_err(|e| CompileError::Regex {
                                id: sig.id.clone(),
                                reason: e.to_string(),
                            })
                    };
                    let regex = compile(regex)?;
                    let not_regex = compile(not_regex)?;
                    let p = patterns.len() as u32;
                    patterns.push(PatternSig {
                        sig: i,
                        targets: *targets,
                        header_names: header_names
                            .iter()
                            .map(|h| h.as_bytes().to_vec().into_boxed_slice())
                            .collect(),
                        lowercase,
                        regex,
                        not_regex,
                    });
                    for lit in lits {
                        let key = (view, lit.to_ascii_lowercase());
                        let id = match literal_index.get(&key) {
                            Some(id) => *id,
                            None => {
                                let id = literals.len() as u32;
                                literal_bytes.push(key.1.clone());
                                literals.push(LiteralEntry {
                                    view,
                                    patterns: Vec::new(),
                                });
                                literal_index.insert(key, id);
                                id
                            }
                        };
                        let entry = &mut literals[id as usize];
                        if !entry.patterns.contains(&p) {
                            entry.patterns.push(p);
                        }
                    }
                }
            }
        }

        let ids: HashMap<&str, u32> = signatures
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i as u32))
            .collect();
        let exclusions = pack
            .exclusions
            .iter()
            .map(|e| CompiledExclusion {
                all: e.signatures.iter().any(|s| s == "*"),
                // Ids of disabled signatures are simply absent: nothing to exclude.
                signatures: e
                    .signatures
                    .iter()
                    .filter_map(|s| ids.get(s.as_str()).copied())
                    .collect(),
                host: e.host.as_ref().map(|h| h.as_bytes().to_vec()),
                path_prefix: e.path_prefix.as_ref().map(|p| p.as_bytes().to_vec()),
                location: if let Some(a) = &e.arg {
                    ExclusionLocation::Arg(a.as_bytes().to_vec())
                } else if let Some(h) = &e.header {
                    ExclusionLocation::Header(h.as_bytes().to_vec())
                } else if let Some(c) = &e.cookie {
                    ExclusionLocation::Cookie(c.as_bytes().to_vec())
                } else {
                    ExclusionLocation::Any
                },
                effect: e.effect,
            })
            .collect();

        let mut mask_for_target = [0u64; Target::ALL.len()];
        let mut transforms_for_target: [Vec<Transform>; Target::ALL.len()] = Default::default();
        for t in Target::ALL {
            for &v in &views_for_target[t as usize] {
                mask_for_target[t as usize] |= 1 << v;
                for &tr in &views[v as usize].transforms {
                    if !transforms_for_target[t as usize].contains(&tr) {
                        transforms_for_target[t as usize].push(tr);
                    }
                }
            }
        }

        let info = PackInfo {
            name: pack.name.clone(),
            version: pack.version.clone(),
            source: pack.source.clone(),
            signatures: signatures.len(),
            exclusions: pack.exclusions.len(),
        };
        Ok(Engine {
            info,
            pack,
            signatures,
            patterns,
            views,
            views_for_target,
            mask_for_target,
            transforms_for_target,
            matcher: LiteralMatcher::new(&literal_bytes, true),
            literals,
            anomalies,
            exclusions,
        })
    }

    pub fn info(&self) -> &PackInfo {
        &self.info
    }

    /// The pack this engine was compiled from (for `/pack` and tooling).
    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// The enabled signatures; [`Hit::signature`] indexes this.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Whether any enabled signature looks at this target (lets callers skip extraction work).
    pub fn wants(&self, target: Target) -> bool {
        !self.views_for_target[target as usize].is_empty()
    }

    /// Scans one value and appends confirmed findings to `hits`.
    pub fn scan(
        &self,
        req: &RequestContext<'_>,
        target: Target,
        name: &[u8],
        value: &[u8],
        scratch: &mut Scratch,
        hits: &mut Vec<Hit>,
    ) {
        let views = &self.views_for_target[target as usize];
        if views.is_empty() || value.is_empty() {
            return;
        }
        let Scratch {
            bufs,
            n_bufs,
            tmp,
            lowered,
            memo,
            distinct,
            candidates,
        } = scratch;
        candidates.clear();
        memo.clear();
        distinct.clear();
        *n_bufs = 0;
        let transforms = &self.transforms_for_target[target as usize];
        // Short values (headers, parameters, cookies, most JSON strings) are classified in one
        // pass; on long ones the transformations' own checks, which stop at the first byte
        // that matters and use `memchr`, are cheaper than a full classifying pass.
        let classes = if transforms.is_empty() || value.len() > CLASSIFY_MAX {
            None
        } else {
            Some(ByteClasses::of(value))
        };
        if transforms.is_empty()
            || classes.is_some_and(|c| transforms.iter().all(|t| t.unchanged_by(c)))
        {
            // Every view is the value as it is (the common case): one buffer, every view.
            distinct.push((RAW, self.mask_for_target[target as usize]));
        } else {
            self.compute_views(views, value, classes, bufs, n_bufs, tmp, memo, distinct);
        }

        for &(buf, mask) in distinct.iter() {
            let bytes: &[u8] = if buf == RAW { value } else { &bufs[buf] };
            self.matcher.for_each_match(bytes, |m| {
                let entry = &self.literals[m.literal as usize];
                if mask & (1 << entry.view) == 0 {
                    return;
                }
                for &p in &entry.patterns {
                    let pat = &self.patterns[p as usize];
                    if !pat.targets.contains(target)
                        || candidates.iter().any(|c| c.pattern == p)
                        || (target == Target::Header
                            && !pat.header_names.is_empty()
                            && !pat
                                .header_names
                                .iter()
                                .any(|h| h.eq_ignore_ascii_case(name)))
                    {
                        continue;
                    }
                    candidates.push(Candidate {
                        pattern: p,
                        buf,
                        start: m.start,
                        end: m.end,
                    });
                }
            });
        }

        for c in candidates.iter() {
            let pat = &self.patterns[c.pattern as usize];
            let bytes: &[u8] = if c.buf == RAW { value } else { &bufs[c.buf] };
            let hay: &[u8] = if pat.lowercase && (pat.regex.is_some() || pat.not_regex.is_some()) {
                lowered.clear();
                lowered.extend(bytes.iter().map(u8::to_ascii_lowercase));
                lowered
            } else {
                bytes
            };
            let span = match &pat.regex {
                None => (c.start, c.end),
                Some(re) => match re.find(hay) {
                    Some(m) => (m.start(), m.end()),
                    None => continue,
                },
            };
            if pat.not_regex.as_ref().is_some_and(|re| re.is_match(hay)) {
                continue;
            }
            let bytes = hay;
            let Some(action) = self.effective_action(pat.sig, req, target, name) else {
                continue;
            };
            let mut location = String::new();
            target.write_location(name, &mut location);
            hits.push(Hit {
                signature: pat.sig,
                action,
                target,
                location,
                excerpt: excerpt(bytes, span, is_secret(target, name)),
            });
        }
    }

    /// The distinct byte strings a value's views come to, each with the mask of the views
    /// that produce it; transformations the value's [`ByteClasses`] rule out are not run.
    #[allow(clippy::too_many_arguments)]
    fn compute_views(
        &self,
        views: &[u8],
        value: &[u8],
        classes: Option<ByteClasses>,
        bufs: &mut Vec<Vec<u8>>,
        n_bufs: &mut usize,
        tmp: &mut Vec<u8>,
        memo: &mut Vec<(usize, Transform, usize)>,
        distinct: &mut Vec<(usize, u64)>,
    ) {
        for &v in views {
            let mut cur = RAW;
            for &t in &self.views[v as usize].transforms {
                if let Some(&(_, _, out)) = memo.iter().find(|m| m.0 == cur && m.1 == t) {
                    cur = out;
                    continue;
                }
                let src: &[u8] = if cur == RAW { value } else { &bufs[cur] };
                let changed = match classes {
                    Some(c) if cur == RAW => !t.unchanged_by(c) && t.apply_classified(src, tmp),
                    _ => t.apply(src, tmp),
                };
                let out = if !changed {
                    cur
                } else if let Some(i) = (0..*n_bufs).find(|&i| bufs[i] == *tmp) {
                    i
                } else {
                    if bufs.len() == *n_bufs {
                        bufs.push(Vec::new());
                    }
                    std::mem::swap(&mut bufs[*n_bufs], tmp);
                    *n_bufs += 1;
                    *n_bufs - 1
                };
                memo.push((cur, t, out));
                cur = out;
            }
            match distinct.iter_mut().find(|d| d.0 == cur) {
                Some(d) => d.1 |= 1 << v,
                None => distinct.push((cur, 1 << v)),
            }
        }
    }

    /// Reports a protocol anomaly: a hit if an enabled signature names it and no exclusion
    /// disables it here.
    pub fn anomaly(
        &self,
        req: &RequestContext<'_>,
        anomaly: Anomaly,
        excerpt: &[u8],
    ) -> Option<Hit> {
        let sig = *self.anomalies.get(&anomaly)?;
        let action = self.effective_action(sig, req, Target::RequestLine, b"")?;
        Some(Hit {
            signature: sig,
            action,
            target: Target::RequestLine,
            location: anomaly.location().to_string(),
            excerpt: excerpt_bytes(excerpt, 160),
        })
    }

    /// The action of signature `sig` for a finding at this place, or `None` if an exclusion
    /// disables it. A disabling exclusion wins; otherwise the last matching action change does.
    fn effective_action(
        &self,
        sig: u32,
        req: &RequestContext<'_>,
        target: Target,
        name: &[u8],
    ) -> Option<Action> {
        let mut action = self.signatures[sig as usize].action;
        for ex in &self.exclusions {
            if !(ex.all || ex.signatures.contains(&sig)) || !ex.applies(req, target, name) {
                continue;
            }
            match ex.effect {
                ExclusionEffect::Disable => return None,
                ExclusionEffect::SetAction(a) => action = a,
            }
        }
        Some(action)
    }
}

impl CompiledExclusion {
    fn applies(&self, req: &RequestContext<'_>, target: Target, name: &[u8]) -> bool {
        if let Some(h) = &self.host {
            if !host_matches(h, req.host) {
                return false;
            }
        }
        if let Some(p) = &self.path_prefix {
            if !req.path.starts_with(p) {
                return false;
            }
        }
        match &self.location {
            ExclusionLocation::Any => true,
            ExclusionLocation::Arg(a) => {
                matches!(
                    target,
                    Target::Arg
                        | Target::FormField
                        | Target::MultipartPart
                        | Target::JsonString
                        | Target::XmlText
                        | Target::XmlAttribute
                        | Target::GrpcString
                ) && name == a.as_slice()
            }
            ExclusionLocation::Header(h) => {
                target == Target::Header && name.eq_ignore_ascii_case(h)
            }
            ExclusionLocation::Cookie(c) => target == Target::Cookie && name == c.as_slice(),
        }
    }
}

/// `pattern` is lowercase; `*.example.com` matches any subdomain. A port on the host is ignored.
fn host_matches(pattern: &[u8], host: &[u8]) -> bool {
    let host = match host.iter().rposition(|&b| b == b':') {
        // Strip a port, but not the colons of a bracketed IPv6 literal.
        Some(i) if !host.ends_with(b"]") => &host[..i],
        _ => host,
    };
    match pattern.strip_prefix(b"*.") {
        Some(suffix) => {
            host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host[host.len() - suffix.len() - 1] == b'.'
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// Values of these places are credentials: a log keeps only what matched.
fn is_secret(target: Target, name: &[u8]) -> bool {
    const SECRET_HEADERS: [&[u8]; 5] = [
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"x-api-key",
        b"x-auth-token",
    ];
    target == Target::Cookie
        || (target == Target::Header && SECRET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)))
}

const EXCERPT_CONTEXT: usize = 32;
const EXCERPT_MATCH: usize = 96;

fn excerpt(bytes: &[u8], (start, end): (usize, usize), secret: bool) -> String {
    let end = end
        .min(bytes.len())
        .min(start.saturating_add(EXCERPT_MATCH));
    let start = start.min(end);
    let (from, to) = if secret {
        (start, end)
    } else {
        (
            start.saturating_sub(EXCERPT_CONTEXT),
            (end + EXCERPT_CONTEXT).min(bytes.len()),
        )
    };
    let mut s = String::new();
    if from > 0 {
        s.push('…');
    }
    push_escaped(&bytes[from..to], &mut s);
    if to < bytes.len() {
        s.push('…');
    }
    s
}

/// The first `max` bytes, escaped.
pub fn excerpt_bytes(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    push_escaped(&bytes[..bytes.len().min(max)], &mut s);
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// Printable ASCII as is, everything else as `\xHH`, so an excerpt is always one safe line.
fn push_escaped(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK: &str = r#"
[pack]
name = "t"
version = "7"

[[signature]]
id = "SS"
name = "shellshock"
severity = "critical"
targets = ["header", "arg"]
literals = ["() {"]
regex = '\(\)\s*\{[^}]*\}\s*;'

[[signature]]
id = "UA"
name = "ua only"
severity = "low"
targets = ["header:user-agent"]
literals = ["sqlmap"]
action = "alert"

[[signature]]
id = "JNDI"
name = "jndi"
severity = "critical"
targets = ["arg", "header"]
transforms = ["url_decode", "lowercase"]
literals = ["${jndi:"]
regex = '\$\{jndi:(ldap|rmi|dns)'

[[signature]]
id = "CLTE"
name = "cl te"
severity = "high"
anomaly = "REQUEST_CONTENT_LENGTH_TRANSFER_ENCODING"

[[exclusion]]
signatures = ["SS"]
host = "*.example.com"
path_prefix = "/cgi"
arg = "q"
action = "alert"
"#;

    fn scan(e: &Engine, req: &RequestContext<'_>, t: Target, name: &str, v: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        e.scan(
            req,
            t,
            name.as_bytes(),
            v.as_bytes(),
            &mut Scratch::default(),
            &mut hits,
        );
        hits
    }

    #[test]
    fn literal_then_regex_then_target() {
        let e = Engine::from_toml(PACK, "t.toml").unwrap();
        let req = RequestContext::default();
        let h = scan(&e, &req, Target::Header, "referer", "() { :; }; /bin/id");
        assert_eq!(h.len(), 1);
        assert_eq!(e.signatures()[h[0].signature as usize].id, "SS");
        assert_eq!(h[0].location, "header:referer");
        assert_eq!(h[0].action, Action::Block);
        // Literal without the regex's shape: no finding.
        assert!(scan(&e, &req, Target::Header, "referer", "f() {x}").is_empty());
        // Target not listed.
        assert!(scan(&e, &req, Target::Cookie, "a", "() { :; };").is_empty());
        // Named header only.
        assert_eq!(
            scan(&e, &req, Target::Header, "User-Agent", "SQLMap/1.0").len(),
            1
        );
        assert!(scan(&e, &req, Target::Header, "x-tool", "sqlmap").is_empty());
    }

    #[test]
    fn secrets_are_not_copied_into_excerpts() {
        let e = Engine::from_toml(PACK, "t.toml").unwrap();
        let h = scan(
            &e,
            &RequestContext::default(),
            Target::Header,
            "authorization",
            "Bearer SECRETTOKEN () { :; }; x",
        );
        assert_eq!(h[0].excerpt, "…() { :; };…");
    }

    #[test]
    fn exclusions_apply_only_where_they_say() {
        let e = Engine::from_toml(PACK, "t.toml").unwrap();
        let v = "() { :; }; id";
        let at = |host: &str, path: &str, name: &str| {
            let req = RequestContext {
                host: host.as_bytes(),
                path: path.as_bytes(),
            };
            scan(&e, &req, Target::Arg, name, v)[0].action
        };
        assert_eq!(at("a.example.com:8080", "/cgi-bin/x", "q"), Action::Alert);
        assert_eq!(at("example.com", "/cgi-bin/x", "q"), Action::Block);
        assert_eq!(at("a.example.com", "/api", "q"), Action::Block);
        assert_eq!(at("a.example.com", "/cgi", "p"), Action::Block);
    }

    #[test]
    fn anomalies_map_to_their_signature() {
        let e = Engine::from_toml(PACK, "t.toml").unwrap();
        let h = e
            .anomaly(
                &RequestContext::default(),
                Anomaly::ContentLengthAndTransferEncoding,
                b"POST / HTTP/1.1\r\n",
            )
            .unwrap();
        assert_eq!(e.signatures()[h.signature as usize].id, "CLTE");
        assert!(e
            .anomaly(&RequestContext::default(), Anomaly::BareLf, b"")
            .is_none());
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches(b"*.example.com", b"a.b.Example.com"));
        assert!(!host_matches(b"*.example.com", b"example.com"));
        assert!(!host_matches(b"*.example.com", b"aexample.com"));
        assert!(host_matches(b"example.com", b"EXAMPLE.com:443"));
        assert!(host_matches(b"[::1]", b"[::1]"));
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;

    #[test]
    fn builtin_pack_compiles_and_covers_every_anomaly() {
        let e = Engine::builtin().unwrap_or_else(|err| panic!("{err}"));
        for &a in Anomaly::ALL {
            assert!(e.anomalies.contains_key(&a), "no signature for {a}");
        }
        assert!(e.info().signatures > 40);
    }
}
