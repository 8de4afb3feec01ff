//! Suricata/Snort-style HTTP rules into picket signatures.
//!
//! One rule per line (`#` comments and blank lines skipped; multi-line rules are not read). A
//! rule converts when every option means something a picket signature can say exactly:
//!
//! * the conditions (`content`, negated `content:!`, `pcre`, negated `pcre:!`) must all look at
//!   one HTTP request buffer, because a picket signature confirms on one value;
//! * a signature is "one of its literals occurs (ASCII case-insensitively) AND its regex
//!   matches AND its `not_regex` does not", all on the same view of the same value. So a rule
//!   converts with at most two positive conditions, one of which must be expressible by the
//!   literal alone (a `nocase` content, or a content without ASCII letters), plus any number
//!   of negated ones (joined into `not_regex`: "not A and not B" is "not (A or B)");
//! * on buffers picket splits into several values (`http.uri`: path and query; `http.header`:
//!   one value per header) only a single positive condition converts: "A and B in the URI"
//!   is not "A and B in the path, or A and B in the query", and "not A in the URI" is not
//!   "not A in this part".
//!
//! See `docs/packs.md` ("Importing rules") for the buffer-to-target table and its known
//! differences.

use std::collections::HashMap;

use super::pcre::{self, PcreFlags};
use super::{
    bytes_regex, check_signature, is_valid_id, ImportError, Imported, Outcome, RuleReport,
    SignatureSpec,
};
use crate::pack::{Action, Severity};
use crate::transform::Transform;

/// How rules become signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuricataOptions {
    /// Signature ids are `<prefix>-<sid>`.
    pub id_prefix: String,
    /// The action of every signature; `None` keeps the rule's (`alert` → `alert`, `drop` and
    /// `reject` → `block`).
    pub action: Option<Action>,
}

impl Default for SuricataOptions {
    fn default() -> Self {
        SuricataOptions {
            id_prefix: "SURI".to_string(),
            action: None,
        }
    }
}

/// The HTTP request buffers the importer maps onto picket targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buffer {
    Uri,
    RawUri,
    Header,
    Body,
    Method,
    Cookie,
    UserAgent,
    ContentType,
    Referer,
    RequestLine,
    Host,
}

impl Buffer {
    fn name(self) -> &'static str {
        match self {
            Buffer::Uri => "http.uri",
            Buffer::RawUri => "http.uri.raw",
            Buffer::Header => "http.header",
            Buffer::Body => "http.request_body",
            Buffer::Method => "http.method",
            Buffer::Cookie => "http.cookie",
            Buffer::UserAgent => "http.user_agent",
            Buffer::ContentType => "http.content_type",
            Buffer::Referer => "http.referer",
            Buffer::RequestLine => "http.request_line",
            Buffer::Host => "http.host",
        }
    }

    fn targets(self) -> &'static [&'static str] {
        match self {
            Buffer::Uri | Buffer::RawUri => &["path", "query"],
            Buffer::Header => &["header"],
            Buffer::Body => &["body"],
            Buffer::Method => &["method"],
            Buffer::Cookie => &["header:cookie"],
            Buffer::UserAgent => &["header:user-agent"],
            Buffer::ContentType => &["header:content-type"],
            Buffer::Referer => &["header:referer"],
            Buffer::RequestLine => &["request_line"],
            Buffer::Host => &["header:host"],
        }
    }

    fn transforms(self) -> Vec<Transform> {
        match self {
            Buffer::Uri => vec![Transform::UrlDecode],
            // Suricata's http.host is lowercased; so is the view the regex confirms on.
            Buffer::Host => vec![Transform::Lowercase],
            _ => Vec::new(),
        }
    }

    /// Whether picket sees the buffer as one value per request.
    fn single_value(self) -> bool {
        !matches!(self, Buffer::Uri | Buffer::RawUri | Buffer::Header)
    }

    /// The documented difference that applies to every rule on this buffer.
    fn note(self) -> Option<&'static str> {
        Some(match self {
            Buffer::Uri => "http.uri: picket percent-decodes path and query (up to 4 rounds, '+' as space) but does not collapse ./ and ../",
            Buffer::RawUri => "http.uri.raw: path and query are scanned as two values",
            Buffer::Header => "http.header: picket scans header values one at a time, not header names",
            Buffer::Body => "http.request_body: picket also decodes gzip/deflate and UTF-16 bodies and inspects up to its body limit",
            Buffer::Host => "http.host: picket matches the Host header (lowercased, port included), not a host taken from an absolute-form URI",
            _ => return None,
        })
    }

    fn sticky(name: &str) -> Option<Buffer> {
        Some(match name {
            "http.uri" => Buffer::Uri,
            "http.uri.raw" => Buffer::RawUri,
            "http.header" => Buffer::Header,
            "http.request_body" => Buffer::Body,
            "http.method" => Buffer::Method,
            "http.cookie" => Buffer::Cookie,
            "http.user_agent" => Buffer::UserAgent,
            "http.content_type" => Buffer::ContentType,
            "http.referer" => Buffer::Referer,
            "http.request_line" => Buffer::RequestLine,
            "http.host" => Buffer::Host,
            _ => return None,
        })
    }

    fn modifier(name: &str) -> Option<Buffer> {
        Some(match name {
            "http_uri" => Buffer::Uri,
            "http_raw_uri" => Buffer::RawUri,
            "http_header" => Buffer::Header,
            "http_client_body" => Buffer::Body,
            "http_method" => Buffer::Method,
            "http_cookie" => Buffer::Cookie,
            "http_user_agent" => Buffer::UserAgent,
            "http_content_type" => Buffer::ContentType,
            "http_referer" => Buffer::Referer,
            "http_request_line" => Buffer::RequestLine,
            "http_host" => Buffer::Host,
            _ => return None,
        })
    }
}

/// Why a buffer keyword the importer does not map cannot be converted.
fn unmapped_buffer(name: &str) -> Option<String> {
    let response = [
        "http.stat_code",
        "http.stat_msg",
        "http.server",
        "http.location",
        "http.set_cookie",
        "http_server_body",
        "http_stat_code",
        "http_stat_msg",
        "http_raw_server_body",
        "file_data",
        "file.data",
    ];
    if name.starts_with("http.response") || response.contains(&name) {
        return Some(format!(
            "`{name}` inspects the HTTP response (or served files); picket inspects requests"
        ));
    }
    if name.starts_with("http.") || name.starts_with("http_") {
        return Some(format!(
            "buffer `{name}` has no picket target (mapped: http.uri, http.uri.raw, http.header, \
             http.request_body, http.method, http.cookie, http.user_agent, http.content_type, \
             http.referer, http.request_line, http.host)"
        ));
    }
    None
}

#[derive(Debug, Clone)]
enum Kind {
    Content {
        bytes: Vec<u8>,
        nocase: bool,
        startswith: bool,
        endswith: bool,
        depth: Option<u64>,
        offset: Option<u64>,
    },
    Pcre {
        regex: String,
        literal: Option<Vec<u8>>,
        /// Matches within the URI exactly where it matches within its path or its query:
        /// not anchored to the subject's edges and unable to match `?`.
        splits_at_query: bool,
        /// Stays within one header value (or name) of the http.header buffer: not anchored,
        /// and unable to match `:`, space, CR or LF.
        within_header_value: bool,
    },
}

#[derive(Debug, Clone)]
struct Cond {
    buffer: Option<Buffer>,
    negated: bool,
    kind: Kind,
}

impl Cond {
    fn describe(&self) -> String {
        let neg = if self.negated { "!" } else { "" };
        match &self.kind {
            Kind::Content { bytes, .. } => {
                format!(
                    "content:{neg}\"{}\"",
                    crate::engine::excerpt_bytes(bytes, 40)
                )
            }
            Kind::Pcre { .. } => format!("pcre:{neg}…"),
        }
    }

    /// The regex that holds exactly when this (positive) condition holds.
    fn regex(&self) -> String {
        match &self.kind {
            Kind::Content {
                bytes,
                nocase,
                startswith,
                endswith,
                ..
            } => {
                let mut r = String::new();
                if *startswith {
                    r.push_str("\\A");
                }
                r.push_str(&bytes_regex(bytes, *nocase));
                if *endswith {
                    r.push_str("\\z");
                }
                r
            }
            Kind::Pcre { regex, .. } => regex.clone(),
        }
    }

    /// The literal that alone says exactly what this condition says (literals are ASCII
    /// case-insensitive and unanchored).
    fn exact_literal(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Content {
                bytes,
                nocase,
                startswith: false,
                endswith: false,
                ..
            } if !self.negated && (*nocase || !bytes.iter().any(u8::is_ascii_alphabetic)) => {
                Some(bytes)
            }
            _ => None,
        }
    }

    /// A literal every match of this condition contains (for the prefilter).
    fn implied_literal(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Content { bytes, .. } => Some(bytes),
            Kind::Pcre { literal, .. } => literal.as_deref(),
        }
    }
}

/// The options of one rule, split but not interpreted: `(name, value)`.
fn split_options(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("rule ends with a backslash".into()),
                }
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            ';' if !in_quotes => {
                let opt = cur.trim();
                if !opt.is_empty() {
                    out.push(opt.to_string());
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quoted string in the options".into());
    }
    if !cur.trim().is_empty() {
        return Err(format!("option `{}` is not terminated by ';'", cur.trim()));
    }
    Ok(out
        .into_iter()
        .map(|o| match o.split_once(':') {
            Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
            None => (o, None),
        })
        .collect())
}

/// `"…"` with rule escapes (`\"`, `\;`, `\\`, …) and `|41 42|` hex blocks, into bytes.
fn content_bytes(v: &str) -> Result<Vec<u8>, String> {
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format!("content value {v} is not a quoted string"))?;
    let mut bytes = Vec::new();
    let mut in_hex = false;
    let mut hex = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if in_hex {
            match c {
                '|' => {
                    if hex.len() % 2 != 0 {
                        return Err(format!("odd number of hex digits in |{hex}|"));
                    }
                    for i in (0..hex.len()).step_by(2) {
                        let b = u8::from_str_radix(&hex[i..i + 2], 16)
                            .map_err(|_| format!("bad hex in |{hex}|"))?;
                        bytes.push(b);
                    }
                    hex.clear();
                    in_hex = false;
                }
                c if c.is_ascii_whitespace() => {}
                c if c.is_ascii_hexdigit() => hex.push(c),
                c => return Err(format!("{c:?} inside a |hex| block")),
            }
            continue;
        }
        let c = match c {
            '|' => {
                in_hex = true;
                continue;
            }
            '\\' => chars.next().ok_or("content ends with a backslash")?,
            c => c,
        };
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    if in_hex {
        return Err("unterminated |hex| block".into());
    }
    if bytes.is_empty() {
        return Err("empty content".into());
    }
    Ok(bytes)
}

/// `"/pattern/flags"` into a condition (buffer from the flags, if any).
fn parse_pcre(v: &str, negated: bool) -> Result<Cond, String> {
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| "pcre value is not a quoted string".to_string())?;
    let body = inner
        .strip_prefix('/')
        .ok_or("pcre must be written /pattern/flags")?;
    let end = body
        .rfind('/')
        .ok_or("pcre must be written /pattern/flags")?;
    let (pattern, flag_str) = (&body[..end], &body[end + 1..]);
    let mut flags = PcreFlags::default();
    let mut buffer = None;
    for f in flag_str.chars() {
        let b = match f {
            'i' => {
                flags.caseless = true;
                continue;
            }
            's' => {
                flags.dotall = true;
                continue;
            }
            'm' => {
                flags.multiline = true;
                continue;
            }
            'x' => {
                flags.extended = true;
                continue;
            }
            'A' => {
                flags.anchored = true;
                continue;
            }
            'E' => {
                flags.dollar_endonly = true;
                continue;
            }
            'G' => {
                flags.ungreedy = true;
                continue;
            }
            // Raises PCRE's match limits: changes no result picket would compute.
            'O' => continue,
            'U' => Buffer::Uri,
            'I' => Buffer::RawUri,
            'H' => Buffer::Header,
            'P' => Buffer::Body,
            'M' => Buffer::Method,
            'C' => Buffer::Cookie,
            'V' => Buffer::UserAgent,
            'R' => {
                return Err(
                    "pcre flag R matches relative to the previous match; picket has no relative positions"
                        .into(),
                )
            }
            'D' => {
                return Err(
                    "pcre flag D selects the raw header buffer, which has no picket target".into(),
                )
            }
            'K' => {
                return Err(
                    "pcre flag K selects the raw cookie buffer, which has no picket target".into(),
                )
            }
            'S' | 'Y' => {
                return Err(format!(
                    "pcre flag {f} inspects the HTTP response; picket inspects requests"
                ))
            }
            'W' => Buffer::Host,
            'Z' => {
                return Err(
                    "pcre flag Z selects the raw host buffer, which has no picket target".into(),
                )
            }
            'Q' => return Err("pcre flag Q selects file_data, which has no picket target".into()),
            'B' => return Err("pcre flag B matches the raw packet bytes".into()),
            f => return Err(format!("unknown pcre flag {f:?}")),
        };
        if buffer.is_some_and(|x| x != b) {
            return Err("pcre has more than one buffer flag".into());
        }
        buffer = Some(b);
    }
    let t = pcre::translate(pattern, flags).map_err(|e| format!("pcre: {e}"))?;
    let splits_at_query = !t.edge_anchored && !t.can_match_any(b"?");
    // The space too: a match could start at the separator's space (`Name: value`).
    let within_header_value = !t.edge_anchored && !t.can_match_any(b": \r\n");
    Ok(Cond {
        buffer,
        negated,
        kind: Kind::Pcre {
            regex: t.regex,
            literal: t.required_literal,
            splits_at_query,
            within_header_value,
        },
    })
}

/// A documented severity for a Suricata `classtype`.
pub fn classtype_severity(classtype: &str) -> Option<Severity> {
    Some(match classtype {
        "attempted-admin"
        | "successful-admin"
        | "shellcode-detect"
        | "trojan-activity"
        | "command-and-control"
        | "exploit-kit"
        | "domain-c2" => Severity::Critical,
        "web-application-attack"
        | "attempted-user"
        | "successful-user"
        | "unsuccessful-user"
        | "credential-theft"
        | "targeted-activity"
        | "successful-recon-largescale"
        | "denial-of-service"
        | "successful-dos" => Severity::High,
        "web-application-activity"
        | "attempted-dos"
        | "misc-attack"
        | "bad-unknown"
        | "suspicious-filename-detect"
        | "policy-violation"
        | "successful-recon-limited"
        | "default-login-attempt"
        | "coin-mining"
        | "social-engineering"
        | "external-ip-check"
        | "pup-activity" => Severity::Medium,
        "attempted-recon"
        | "suspicious-login"
        | "misc-activity"
        | "string-detect"
        | "unusual-client-port-connection"
        | "network-scan"
        | "rpc-portmap-decode"
        | "non-standard-protocol"
        | "system-call-detect"
        | "inappropriate-content" => Severity::Low,
        "not-suspicious"
        | "protocol-command-decode"
        | "unknown"
        | "icmp-event"
        | "tcp-connection" => Severity::Info,
        _ => return None,
    })
}

/// A documented severity for a Suricata `priority` (1 is the most severe).
pub fn priority_severity(priority: u32) -> Severity {
    match priority {
        0 | 1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Info,
    }
}

fn reference(v: &str) -> String {
    let (kind, val) = match v.split_once(',') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => return v.trim().to_string(),
    };
    match kind.to_ascii_lowercase().as_str() {
        "cve" => {
            let val = val
                .strip_prefix("CVE-")
                .or_else(|| val.strip_prefix("cve-"))
                .unwrap_or(val);
            format!("CVE-{val}")
        }
        "url" if val.contains("://") => val.to_string(),
        "url" => format!("http://{val}"),
        k => format!("{k}:{val}"),
    }
}

fn is_any_or_var(s: &str) -> bool {
    s == "any"
        || s.strip_prefix('$').is_some_and(|v| {
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

struct Parsed {
    sid: Option<u64>,
    result: Result<(SignatureSpec, Vec<String>), String>,
}

fn parse_rule(line: &str, opts: &SuricataOptions) -> Parsed {
    let Some(open) = line.find('(') else {
        return Parsed {
            sid: None,
            result: Err("no '(' options: not a rule".into()),
        };
    };
    let body = line[open + 1..].trim_end();
    let Some(body) = body.strip_suffix(')') else {
        return Parsed {
            sid: None,
            result: Err("rule does not end with ')' (multi-line rules are not supported)".into()),
        };
    };
    let options = match split_options(body) {
        Ok(o) => o,
        Err(e) => {
            return Parsed {
                sid: None,
                result: Err(e),
            }
        }
    };
    let sid = options
        .iter()
        .find(|(n, _)| n == "sid")
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| v.parse::<u64>().ok());
    Parsed {
        sid,
        result: convert(&line[..open], &options, sid, opts),
    }
}

fn convert(
    head: &str,
    options: &[(String, Option<String>)],
    sid: Option<u64>,
    opts: &SuricataOptions,
) -> Result<(SignatureSpec, Vec<String>), String> {
    let mut notes = Vec::new();
    let h: Vec<&str> = head.split_whitespace().collect();
    let [action, proto, src, sport, dir, dst, dport] = h.as_slice() else {
        return Err(format!(
            "rule header `{}` is not `action proto src sport -> dst dport`",
            head.trim()
        ));
    };
    let rule_action = match *action {
        "alert" => Action::Alert,
        "drop" | "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Block,
        "pass" => {
            return Err(
                "`pass` rules allow traffic; picket expresses that with [[exclusion]] tables"
                    .into(),
            )
        }
        a => return Err(format!("unknown rule action `{a}`")),
    };
    match *proto {
        "http" | "http1" | "tcp" => {}
        p => {
            return Err(format!(
                "protocol `{p}`: picket inspects HTTP/1.x requests only"
            ))
        }
    }
    if *dir != "->" {
        return Err(format!(
            "direction `{dir}`: only `->` (client to server) rules convert"
        ));
    }
    let mut vars = Vec::new();
    for a in [src, sport, dst, dport] {
        if !is_any_or_var(a) {
            return Err(format!(
                "the rule is limited to address or port `{a}`; a picket signature applies to every request picket inspects"
            ));
        }
        if *a != "any" {
            vars.push(*a);
        }
    }
    if !vars.is_empty() {
        notes.push(format!(
            "{} not kept: picket applies the signature to every request it inspects",
            vars.join(" ")
        ));
    }

    let mut msg = None;
    let mut classtype = None;
    let mut priority = None;
    let mut rev = None;
    let mut references = Vec::new();
    let mut conds: Vec<Cond> = Vec::new();
    let mut sticky: Option<Buffer> = None;

    for (name, value) in options {
        let value = value.as_deref();
        let need = |what: &str| -> Result<&str, String> {
            value.ok_or_else(|| format!("`{name}` needs a value ({what})"))
        };
        let last_content = |conds: &mut Vec<Cond>| -> Result<usize, String> {
            match conds.last() {
                Some(Cond {
                    kind: Kind::Content { .. },
                    ..
                }) => Ok(conds.len() - 1),
                _ => Err(format!("`{name}` does not follow a content")),
            }
        };
        match name.as_str() {
            "msg" => {
                let v = need("a quoted string")?;
                let v = v
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or(v);
                msg = Some(unescape(v));
            }
            "sid" => {}
            "rev" => rev = value.map(str::to_string),
            "gid" | "metadata" | "target" | "fast_pattern" | "prefilter" => {}
            "classtype" => classtype = value.map(str::to_string),
            "priority" => {
                priority = Some(
                    need("a number")?
                        .parse::<u32>()
                        .map_err(|_| "priority is not a number".to_string())?,
                )
            }
            "reference" => references.push(reference(need("type,id")?)),
            "flow" => {
                for f in need("flow options")?.split(',').map(str::trim) {
                    match f {
                        "established" | "to_server" | "from_client" | "stateless" => {}
                        "to_client" | "from_server" => {
                            return Err(format!(
                                "flow:{f} matches responses; picket inspects requests"
                            ))
                        }
                        f => return Err(format!("flow:{f} has no picket equivalent")),
                    }
                }
            }
            "content" | "uricontent" => {
                let v = need("a quoted string")?;
                let (negated, v) = match v.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, v),
                };
                conds.push(Cond {
                    // Snort's `uricontent` is `content` + `http_uri`.
                    buffer: if name == "uricontent" {
                        Some(Buffer::Uri)
                    } else {
                        sticky
                    },
                    negated,
                    kind: Kind::Content {
                        bytes: content_bytes(v)?,
                        nocase: false,
                        startswith: false,
                        endswith: false,
                        depth: None,
                        offset: None,
                    },
                });
            }
            "pcre" => {
                let v = need("/pattern/flags")?;
                let (negated, v) = match v.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, v),
                };
                let mut c = parse_pcre(v, negated)?;
                match (c.buffer, sticky) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(format!(
                            "pcre buffer flag ({}) contradicts the sticky buffer {}",
                            a.name(),
                            b.name()
                        ))
                    }
                    (None, s) => c.buffer = s,
                    _ => {}
                }
                conds.push(c);
            }
            "nocase" | "startswith" | "endswith" => {
                let i = last_content(&mut conds)?;
                if let Kind::Content {
                    nocase,
                    startswith,
                    endswith,
                    ..
                } = &mut conds[i].kind
                {
                    match name.as_str() {
                        "nocase" => *nocase = true,
                        "startswith" => *startswith = true,
                        _ => *endswith = true,
                    }
                }
            }
            "depth" | "offset" => {
                let i = last_content(&mut conds)?;
                let n = need("a number")?
                    .parse::<u64>()
                    .map_err(|_| format!("`{name}` is not a number (variables are not supported)"))?;
                if let Kind::Content { depth, offset, .. } = &mut conds[i].kind {
                    if name == "depth" {
                        *depth = Some(n);
                    } else {
                        *offset = Some(n);
                    }
                }
            }
            "distance" | "within" => {
                return Err(format!(
                    "`{name}` positions a content relative to the previous match; picket has no relative positions"
                ))
            }
            "rawbytes" => return Err("`rawbytes` matches the raw packet bytes".into()),
            "isdataat" | "byte_test" | "byte_jump" | "byte_extract" | "byte_math" | "bsize"
            | "dsize" | "urilen" | "entropy" => {
                return Err(format!(
                    "`{name}` tests positions, lengths or numbers, which picket signatures cannot express"
                ))
            }
            "flowbits" | "xbits" | "flowint" | "hostbits" => {
                return Err(format!(
                    "`{name}` depends on state kept across packets or requests; a picket signature judges one request"
                ))
            }
            "threshold" | "detection_filter" => {
                return Err(format!(
                    "`{name}` is rate-based; a picket signature judges one request on its own"
                ))
            }
            "noalert" => return Err("`noalert` rules never alert".into()),
            n => {
                if let Some(b) = Buffer::sticky(n) {
                    sticky = Some(b);
                } else if let Some(b) = Buffer::modifier(n) {
                    let i = last_content(&mut conds)?;
                    if conds[i].buffer.is_some_and(|x| x != b) {
                        return Err(format!(
                            "`{n}` modifies a content that already has a sticky buffer"
                        ));
                    }
                    conds[i].buffer = Some(b);
                } else if let Some(why) = unmapped_buffer(n) {
                    return Err(why);
                } else {
                    return Err(format!("option `{n}` is not supported by the importer"));
                }
            }
        }
    }

    let sid = sid.ok_or("no numeric sid")?;
    let msg = msg.unwrap_or_else(|| format!("Suricata sid {sid}"));
    if conds.is_empty() {
        return Err("no content or pcre: nothing to match".into());
    }
    // depth/offset: only "depth = length at offset 0" (the content starts the buffer) is exact.
    for c in &mut conds {
        if let Kind::Content {
            bytes,
            startswith,
            depth,
            offset,
            ..
        } = &mut c.kind
        {
            match (*depth, offset.unwrap_or(0)) {
                (None, 0) => {}
                (Some(d), 0) if d == bytes.len() as u64 => *startswith = true,
                _ => {
                    return Err(
                        "`depth`/`offset` limit where a content may occur; picket literals match anywhere (only depth equal to the content length at offset 0, i.e. startswith, converts)"
                            .into(),
                    )
                }
            }
        }
    }
    let mut buffer = None;
    for c in &conds {
        let Some(b) = c.buffer else {
            return Err(format!(
                "{} has no HTTP buffer: it matches the raw stream, which picket does not scan",
                c.describe()
            ));
        };
        match buffer {
            None => buffer = Some(b),
            Some(x) if x != b => {
                return Err(format!(
                    "conditions on {} and {} must hold together; a picket signature confirms within one value",
                    x.name(),
                    b.name()
                ))
            }
            _ => {}
        }
    }
    let buffer = buffer.ok_or("no condition")?;
    let (pos, neg): (Vec<&Cond>, Vec<&Cond>) = conds.iter().partition(|c| !c.negated);
    let mut targets: Vec<String> = buffer.targets().iter().map(|t| t.to_string()).collect();
    if !buffer.single_value() {
        if !neg.is_empty() {
            return Err(format!(
                "negated condition on {}, which picket scans as several values (\"not in this value\" is not \"not in the buffer\")",
                buffer.name()
            ));
        }
        if pos.len() > 1 {
            return Err(format!(
                "{} conditions on {}, which picket scans as several values: requiring them in one value would be narrower",
                pos.len(),
                buffer.name()
            ));
        }
    }
    for c in &conds {
        if let Kind::Content {
            startswith,
            endswith,
            ..
        } = c.kind
        {
            match buffer {
                b if b.single_value() => {}
                // The URI starts with the path: anchoring in the path alone is exact (a
                // content with '?' is refused below).
                Buffer::Uri | Buffer::RawUri if startswith && !endswith => {
                    targets = vec!["path".to_string()];
                }
                b if startswith || endswith => {
                    return Err(format!(
                        "startswith/endswith on {}, which picket scans as several values",
                        b.name()
                    ))
                }
                _ => {}
            }
        }
    }
    if matches!(buffer, Buffer::Uri | Buffer::RawUri) {
        for c in &pos {
            match &c.kind {
                Kind::Content { bytes, .. } if bytes.contains(&b'?') => {
                    return Err(format!(
                        "{} spans path and query, which picket scans as separate values",
                        c.describe()
                    ))
                }
                Kind::Pcre {
                    splits_at_query: false,
                    ..
                } => {
                    return Err(format!(
                        "pcre on {}: picket scans path and query as separate values, and this pattern can match a '?' or is anchored (^, $, \\A, \\z, flag A), so it cannot be split exactly",
                        buffer.name()
                    ))
                }
                _ => {}
            }
        }
    }
    if buffer == Buffer::Header {
        for c in &pos {
            match &c.kind {
                Kind::Content { bytes, .. } if may_leave_header_value(bytes) => {
                    return Err(format!(
                        "{} can match across a line break or a header's `Name: ` separator; picket's header target sees one value at a time",
                        c.describe()
                    ))
                }
                Kind::Pcre {
                    within_header_value: false,
                    ..
                } => {
                    return Err(
                        "pcre on http.header runs over all header lines at once, and this pattern can match ':', a space, CR or LF or is anchored (^, $, \\A, \\z, flag A); picket's header target sees one value at a time"
                            .into(),
                    )
                }
                _ => {}
            }
        }
    }
    if buffer == Buffer::Host {
        // picket's Host value keeps the port Suricata strips: only conditions that cannot
        // reach into ":port" are exact.
        for c in &conds {
            match &c.kind {
                Kind::Content {
                    bytes, endswith, ..
                } => {
                    if bytes.contains(&b':') || bytes.iter().all(u8::is_ascii_digit) {
                        return Err(format!(
                            "{} on http.host could match the port, which Suricata strips and picket keeps",
                            c.describe()
                        ));
                    }
                    if *endswith {
                        return Err(
                            "endswith on http.host: picket's Host value may end with a port".into(),
                        );
                    }
                }
                Kind::Pcre { .. } => {
                    return Err(
                        "pcre on http.host: picket's Host value keeps the port Suricata strips"
                            .into(),
                    )
                }
            }
        }
    }
    if pos.is_empty() {
        return Err("only negated conditions: a picket signature needs a positive literal".into());
    }
    let (literal, regex) = match pos.as_slice() {
        [one] => match one.exact_literal() {
            Some(l) => (l.to_vec(), None),
            None => match one.implied_literal() {
                Some(l) => (l.to_vec(), Some(one.regex())),
                None => {
                    return Err(
                        "the pcre has no literal every match must contain, and picket's prefilter needs one (add a content)"
                            .into(),
                    )
                }
            },
        },
        [a, b] => match (a.exact_literal(), b.exact_literal()) {
            (Some(l), _) => (l.to_vec(), Some(b.regex())),
            (None, Some(l)) => (l.to_vec(), Some(a.regex())),
            (None, None) => {
                return Err(
                    "two conditions of which neither is a case-insensitive content: picket has one literal and one regex per signature, and Rust regex has no look-ahead to AND two patterns"
                        .into(),
                )
            }
        },
        more => {
            return Err(format!(
                "{} positive conditions: a picket signature can require one literal and one regex",
                more.len()
            ))
        }
    };
    let not_regex = match neg.as_slice() {
        [] => None,
        [one] => Some(one.regex()),
        many => Some(
            many.iter()
                .map(|c| format!("(?:{})", c.regex()))
                .collect::<Vec<_>>()
                .join("|"),
        ),
    };
    if let Some(n) = buffer.note() {
        notes.push(n.to_string());
    }
    let severity = match (priority, classtype.as_deref()) {
        (Some(p), _) => priority_severity(p),
        (None, Some(c)) => classtype_severity(c).unwrap_or(Severity::Medium),
        (None, None) => Severity::Medium,
    };
    let id = format!("{}-{sid}", opts.id_prefix);
    let mut description = format!("Imported from Suricata rule sid {sid}");
    if let Some(r) = rev {
        description.push_str(&format!(" rev {r}"));
    }
    if let Some(c) = classtype {
        description.push_str(&format!(" (classtype {c})"));
    }
    let spec = SignatureSpec {
        id,
        name: msg,
        severity,
        references,
        description: Some(description),
        targets,
        transforms: buffer.transforms(),
        literals: vec![literal],
        regex,
        not_regex,
        action: opts.action.unwrap_or(rule_action),
    };
    check_signature(&spec).map_err(|e| format!("the generated signature does not compile: {e}"))?;
    Ok((spec, notes))
}

/// Whether a content could match in Suricata's http.header buffer (`Name: value\r\n` lines)
/// other than inside one value or one name: across a line break (it has CR or LF), across the
/// `: ` separator (a `:` at its end or before a space), or from the separator's space into the
/// value (it starts with a space). A `:` followed by another byte (`jndi:ldap`) cannot be the
/// separator's colon.
fn may_leave_header_value(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b' ')
        || bytes.iter().any(|&b| b == b'\r' || b == b'\n')
        || bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b':' && matches!(bytes.get(i + 1), None | Some(b' ')))
}

/// Undoes the rule-level escapes (`\"`, `\;`, `\\`) of a `msg`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Converts the rules of `sources` (`(file name, text)` pairs). Duplicate sids are reported
/// (the first wins).
pub fn import_suricata(
    sources: &[(&str, &str)],
    opts: &SuricataOptions,
) -> Result<Imported, ImportError> {
    let probe = format!("{}-1", opts.id_prefix);
    if !is_valid_id(&probe) {
        return Err(ImportError::InvalidId(opts.id_prefix.clone()));
    }
    let mut imported = Imported::default();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for (file, text) in sources {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = parse_rule(line, opts);
            let rule = match parsed.sid {
                Some(s) => format!("sid {s}"),
                None => "rule".to_string(),
            };
            let outcome = match parsed.result {
                Ok((spec, notes)) => match seen.get(&spec.id) {
                    Some((f, l)) => Outcome::Unconvertible {
                        reason: format!("duplicate sid (first at {f}:{l})"),
                    },
                    None => {
                        seen.insert(spec.id.clone(), (file.to_string(), n + 1));
                        let id = spec.id.clone();
                        imported.signatures.push(spec);
                        Outcome::Converted { id, notes }
                    }
                },
                Err(reason) => Outcome::Unconvertible { reason },
            };
            imported.report.push(RuleReport {
                file: file.to_string(),
                line: n + 1,
                rule,
                outcome,
            });
        }
    }
    Ok(imported)
}
