//! HTTP/1.x request-head parsing with protocol-anomaly checks.
//!
//! # Why a second parser
//!
//! The proxy forwards requests with hyper, and hyper (like most production parsers) is lenient:
//! it accepts a request with both `Content-Length` and `Transfer-Encoding` (hyperium/hyper#3860),
//! trims odd whitespace, accepts bare-LF line endings, and so on. Each of those normalisations is
//! a place where picket, hyper and the upstream server can disagree about where a request ends or
//! what its headers are — the root of request smuggling and of signature evasion. So the proxy
//! looks at the *raw* bytes the client sent, before hyper sees them, with this parser, which
//! never normalises silently: anything a lenient parser would repair is reported as a named
//! [`Anomaly`] (names follow Suricata's libhtp events), and the message framing it derives
//! ([`Framing`]) is conservative — any doubt about where the body ends gives
//! [`Framing::Invalid`], which must not be forwarded.
//!
//! The parser never fails and never panics: [`parse_head`] always returns a [`Head`] describing
//! what it could parse, plus the anomalies. Decisions (block, alert) belong to the signature pack,
//! where every anomaly is an ordinary signature an operator can disable.
//!
//! # Cost
//!
//! [`find_head_end`] is one `memchr` pass for `\n` over the bytes not searched before (pass the
//! previous buffer length as `search_from`), with an O(1) look-back per line: O(n) in total however
//! the head arrives. [`parse_head`] makes one `memchr` pass per line, one table-driven pass over
//! the whole head for control bytes, and a pass over each header name; a typical 500-byte head
//! parses in a few hundred nanoseconds. It allocates once (the `Vec` of header ranges, at most
//! [`HeadLimits::max_headers`] entries), plus a small `Vec` when anomalies are found; header names
//! and values are byte ranges into the raw head the [`Head`] owns.
//!
//! # Limits
//!
//! The caller enforces [`HeadLimits::max_head`] while reading: when [`find_head_end`] still
//! returns `None` with more than `max_head` bytes buffered, stop reading and pass what was read to
//! [`parse_head`], which reports [`Anomaly::HeadTooLarge`] and [`Anomaly::Truncated`]. Header
//! fields past [`HeadLimits::max_headers`] are still checked (anomalies, framing, Host) but are not
//! stored, so memory stays bounded whatever the input.

use memchr::{memchr, memrchr};
use picket_signatures::Anomaly;

/// Size limits for one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line, in bytes, without its line ending. Default 8 KiB.
    pub max_request_line: usize,
    /// Longest header line, in bytes, without its line ending. Default 16 KiB (an 8 KiB JWT in
    /// `Authorization` is legal and common).
    pub max_header_line: usize,
    /// Most header fields. Default 100.
    pub max_headers: usize,
    /// Largest head (request line, header fields and the empty line). Default 64 KiB.
    pub max_head: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 8 * 1024,
            max_header_line: 16 * 1024,
            max_headers: 100,
            max_head: 64 * 1024,
        }
    }
}

/// Finds the end of the request head in `buf`.
///
/// Returns `Some(n)` when `buf[..n]` is a complete head, including the empty line that ends it
/// (CRLF CRLF, or LF LF and the mixed forms, which [`parse_head`] reports as
/// [`Anomaly::BareLf`]), and `None` when more bytes are needed. Empty lines before the request line
/// do not end the head (RFC 9112 §2.2 lets a server skip them); they stay part of it.
///
/// `search_from` makes repeated calls cheap as bytes arrive: pass the length `buf` had at the
/// previous call that returned `None` (0 the first time). Bytes before it are not searched again;
/// the test for a line ending only looks backwards, so nothing found earlier can change. A hint
/// past the end of `buf` is clamped.
pub fn find_head_end(buf: &[u8], search_from: usize) -> Option<usize> {
    let mut pos = search_from.min(buf.len());
    while let Some(off) = buf.get(pos..).and_then(|rest| memchr(b'\n', rest)) {
        let lf = pos + off;
        if ends_head(buf, lf) {
            return Some(lf + 1);
        }
        pos = lf + 1;
    }
    None
}

/// Whether the LF at `lf` ends an empty line that follows a non-empty line.
///
/// The head ends at the first empty line after at least one non-empty line. That line is always
/// directly preceded by a non-empty line (an empty line in between would come first), so a local
/// test of the two lines before `lf` is enough.
fn ends_head(buf: &[u8], lf: usize) -> bool {
    let at = |i: usize| buf.get(i).copied();
    // The LF that ends the line before the (possibly) empty line.
    let prev_lf = if lf >= 1 && at(lf - 1) == Some(b'\n') {
        lf - 1
    } else if lf >= 2 && at(lf - 1) == Some(b'\r') && at(lf - 2) == Some(b'\n') {
        lf - 2
    } else {
        return false;
    };
    // Is the line ending at `prev_lf` non-empty? Empty means it starts at the beginning of the
    // buffer or right after another LF, with at most one CR in it.
    match prev_lf.checked_sub(1).map(at) {
        None | Some(None) | Some(Some(b'\n')) => false,
        Some(Some(b'\r')) => !(prev_lf == 1 || at(prev_lf - 2) == Some(b'\n')),
        Some(Some(_)) => true,
    }
}

/// The HTTP version of the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
    /// Anything else (reported as [`Anomaly::InvalidVersion`]).
    Other,
}

/// How the request body is delimited (RFC 9112 §6.3, read conservatively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` (a request has no
    /// read-until-close body).
    None,
    /// A body of exactly this many bytes.
    ContentLength(u64),
    /// A chunked body (see [`crate::chunked`]).
    Chunked,
    /// Ambiguous or invalid framing (CL+TE, duplicate or malformed `Content-Length`, any
    /// `Transfer-Encoding` other than one plain `chunked`, …): where the body ends depends on the
    /// parser, so the request cannot be forwarded safely.
    Invalid,
}

/// The form of the request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `scheme://authority/path?query` (requests to a proxy).
    Absolute,
    /// `host:port`, for CONNECT.
    Authority,
    /// `*`, for server-wide OPTIONS.
    Asterisk,
    /// None of the above, or a form the method does not allow (reported as
    /// [`Anomaly::InvalidRequestLine`]).
    Invalid,
}

/// A byte range into the raw head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start..self.end).unwrap_or(&[])
    }

    fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// The sub-span `[from, to)` relative to this span's start.
    fn sub(self, from: usize, to: usize) -> Span {
        Span::new(self.start + from, self.start + to)
    }
}

/// One header field of a [`Head`]: byte ranges into its raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField {
    name: Span,
    value: Span,
}

impl HeaderField {
    /// The name as sent (case preserved, whitespace before the colon excluded). For a line
    /// without a colon ([`Anomaly::MissingColon`]), the whole line.
    pub fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        self.name.get(raw)
    }

    /// The value, without leading and trailing whitespace. An obs-fold continuation
    /// ([`Anomaly::ObsFold`]) is included as sent, line ending and all, so it is still inspected.
    pub fn value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        self.value.get(raw)
    }
}

/// A parsed request head. It owns the raw bytes; everything else is a view of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    raw: Vec<u8>,
    head_len: usize,
    complete: bool,
    request_line: Span,
    method: Span,
    target: Span,
    path: Span,
    query: Option<Span>,
    authority: Option<Span>,
    form: TargetForm,
    version: Version,
    headers: Vec<HeaderField>,
    field_lines: usize,
    framing: Framing,
    anomalies: Vec<Anomaly>,
}

impl Head {
    /// The raw bytes given to [`parse_head`].
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Length of the head within [`Head::raw`], through its terminating empty line (all of `raw`
    /// when the head is incomplete).
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Whether the head ended with an empty line (else it is reported as [`Anomaly::Truncated`]).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The request line, without its line ending.
    pub fn request_line(&self) -> &[u8] {
        self.request_line.get(&self.raw)
    }

    /// The method, as sent.
    pub fn method(&self) -> &[u8] {
        self.method.get(&self.raw)
    }

    /// The request target, as sent.
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.raw)
    }

    /// The form of the request target.
    pub fn target_form(&self) -> TargetForm {
        self.form
    }

    /// The path of the target, still percent-encoded: up to `?` or `#`. `/` for an
    /// absolute-form target with an empty path, `*` for asterisk-form, empty for authority-form.
    pub fn path(&self) -> &[u8] {
        if self.form == TargetForm::Absolute && self.path.len() == 0 {
            return b"/";
        }
        self.path.get(&self.raw)
    }

    /// The query of the target, without the `?`, still percent-encoded.
    pub fn query(&self) -> Option<&[u8]> {
        self.query.map(|q| q.get(&self.raw))
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields in order: (name as sent, value without surrounding whitespace).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(move |h| (h.name(&self.raw), h.value(&self.raw)))
    }

    /// The stored header fields (at most [`HeadLimits::max_headers`]).
    pub fn fields(&self) -> &[HeaderField] {
        &self.headers
    }

    /// Number of header field lines in the head, including any past the limit that were not
    /// stored (obs-fold continuation lines are not counted).
    pub fn field_line_count(&self) -> usize {
        self.field_lines
    }

    /// The value of the first header field called `name` (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name(&self.raw).eq_ignore_ascii_case(name))
            .map(|h| h.value(&self.raw))
    }

    /// The values of all header fields called `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers().filter_map(move |(n, v)| {
            if n.eq_ignore_ascii_case(name) {
                Some(v)
            } else {
                None
            }
        })
    }

    /// The first `Host` field.
    pub fn host(&self) -> Option<&[u8]> {
        self.header(b"host")
    }

    /// The authority the request is for (RFC 9112 §3.3): the target's for absolute-form and
    /// authority-form, else the first `Host` field. Userinfo is not removed.
    pub fn authority(&self) -> Option<&[u8]> {
        match self.authority {
            Some(a) => Some(a.get(&self.raw)),
            None => self.host(),
        }
    }

    /// The first `Content-Type` field.
    pub fn content_type(&self) -> Option<&[u8]> {
        self.header(b"content-type")
    }

    /// The first `Content-Encoding` field (see [`Head::header_all`] for repeated fields).
    pub fn content_encoding(&self) -> Option<&[u8]> {
        self.header(b"content-encoding")
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The anomalies found, each at most once, in [`Anomaly`] declaration order.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// Whether `anomaly` was found.
    pub fn has_anomaly(&self, anomaly: Anomaly) -> bool {
        self.anomalies.contains(&anomaly)
    }

    /// Whether the client waits for `100 Continue` before sending the body (HTTP/1.1 with
    /// `Expect: 100-continue`).
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header_all(b"expect")
                .any(|v| v.eq_ignore_ascii_case(b"100-continue"))
    }

    /// Whether this is an HTTP/1.1 protocol upgrade (`Connection: upgrade` and an `Upgrade`
    /// field). CONNECT is not an upgrade in this sense; see [`Head::target_form`].
    pub fn is_upgrade(&self) -> bool {
        self.version == Version::Http11
            && self.connection_has(b"upgrade")
            && self.header(b"upgrade").is_some()
    }

    /// Whether the connection stays open after this request: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has(b"close"),
            Version::Http10 => self.connection_has(b"keep-alive") && !self.connection_has(b"close"),
            Version::Other => false,
        }
    }

    /// Whether a `Connection` field lists `token` (case-insensitive).
    pub fn connection_has(&self, token: &[u8]) -> bool {
        self.header_all(b"connection").any(|v| {
            v.split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(token))
        })
    }
}

/// Methods that are not reported as [`Anomaly::InvalidMethod`]: RFC 9110, PATCH, WebDAV.
pub const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
    b"MKCALENDAR",
];

/// RFC 9110 `tchar`.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Bytes the control scan must look at: controls (including CR, LF, HTAB, NUL) and DEL.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[0x7f] = true;
    t
};

/// An RFC 9110 token character.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or(&[])
}

/// Whitespace a lenient parser may take as a request-line separator.
fn is_loose_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | b'\r')
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// A plain decimal number (`1*DIGIT`), without overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Header fields whose handling decides framing or routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    ContentLength,
    TransferEncoding,
    Host,
}

fn kind_of(name: &[u8]) -> Kind {
    match name.len() {
        4 if name.eq_ignore_ascii_case(b"host") => Kind::Host,
        14 if name.eq_ignore_ascii_case(b"content-length") => Kind::ContentLength,
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Kind::TransferEncoding,
        _ => Kind::Other,
    }
}

/// What a lenient parser might make of a malformed name or line: skips leading bytes that are
/// not token characters and looks for a framing or Host field name at the start.
fn loose_kind(s: &[u8]) -> Kind {
    let start = s.iter().position(|&b| is_tchar(b)).unwrap_or(s.len());
    let s = s.get(start..).unwrap_or(&[]);
    let end = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
    kind_of(s.get(..end).unwrap_or(&[]))
}

/// The one `Transfer-Encoding` value accepted: `chunked`, lowercase, with nothing around it but
/// spaces. Other transfer codings (`gzip, chunked`) are legal but unused by real clients, and a
/// body under a coding the inspector does not decode would go uninspected, so they are reported.
fn te_value_ok(raw_value: &[u8]) -> bool {
    let start = raw_value
        .iter()
        .position(|&b| b != b' ')
        .unwrap_or(raw_value.len());
    let end = raw_value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    raw_value.get(start..end) == Some(b"chunked".as_slice())
}

/// The value of one hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether every `%` in `s` is followed by two hex digits.
fn percent_ok(s: &[u8]) -> bool {
    let mut pos = 0;
    while let Some(off) = s.get(pos..).and_then(|r| memchr(b'%', r)) {
        let i = pos + off;
        let ok = matches!(
            (
                s.get(i + 1).copied().and_then(hex_val),
                s.get(i + 2).copied().and_then(hex_val)
            ),
            (Some(_), Some(_))
        );
        if !ok {
            return false;
        }
        pos = i + 3;
    }
    true
}

/// The bytes of `s` with `%XX` decoded (a `%` not followed by two hex digits stays as is).
struct PercentDecoded<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Iterator for PercentDecoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.s.get(self.pos)?;
        if b == b'%' {
            let hi = self.s.get(self.pos + 1).copied().and_then(hex_val);
            let lo = self.s.get(self.pos + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                self.pos += 3;
                return Some(hi << 4 | lo);
            }
        }
        self.pos += 1;
        Some(b)
    }
}

/// Whether the percent-decoded `path` is valid UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing past U+10FFFF). No allocation: the decoded bytes are validated as they
/// are produced.
fn decoded_utf8_ok(path: &[u8]) -> bool {
    if path.is_ascii() && memchr(b'%', path).is_none() {
        return true;
    }
    let mut need = 0u8;
    let (mut lo, mut hi) = (0x80u8, 0xbfu8);
    for b in (PercentDecoded { s: path, pos: 0 }) {
        if need == 0 {
            (need, lo, hi) = match b {
                0x00..=0x7f => continue,
                0xc2..=0xdf => (1, 0x80, 0xbf),
                0xe0 => (2, 0xa0, 0xbf),
                0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
                0xed => (2, 0x80, 0x9f),
                0xf0 => (3, 0x90, 0xbf),
                0xf1..=0xf3 => (3, 0x80, 0xbf),
                0xf4 => (3, 0x80, 0x8f),
                _ => return false,
            };
        } else {
            if b < lo || b > hi {
                return false;
            }
            need -= 1;
            (lo, hi) = (0x80, 0xbf);
        }
    }
    need == 0
}

/// Splits `host[:port]` (with `[v6]` literals); an empty port counts as absent.
fn split_host_port(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if s.first() == Some(&b'[') {
        memchr(b']', s).and_then(|i| match s.get(i + 1) {
            Some(b':') => Some(i + 1),
            _ => None,
        })
    } else {
        memrchr(b':', s)
    };
    match colon {
        Some(i) => {
            let host = s.get(..i).unwrap_or(&[]);
            match s.get(i + 1..) {
                Some(p) if !p.is_empty() => (host, Some(p)),
                _ => (host, None),
            }
        }
        None => (s, None),
    }
}

/// Whether an absolute-form authority and a Host value name the same host and port.
fn same_authority(scheme: &[u8], authority: &[u8], host: &[u8]) -> bool {
    let authority = match memrchr(b'@', authority) {
        Some(i) => authority.get(i + 1..).unwrap_or(&[]),
        None => authority,
    };
    let default_port = if scheme.eq_ignore_ascii_case(b"https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case(b"http") {
        Some(80)
    } else {
        None
    };
    let (ah, ap) = split_host_port(authority);
    let (hh, hp) = split_host_port(host);
    let port = |p: Option<&[u8]>| match p {
        Some(p) => parse_decimal(p),
        None => default_port,
    };
    ah.eq_ignore_ascii_case(hh) && (ap == hp || port(ap).is_some_and(|a| Some(a) == port(hp)))
}

/// Whether `s` is `host:port` for CONNECT.
fn is_authority_form(s: &[u8]) -> bool {
    let (host, port) = split_host_port(s);
    !host.is_empty()
        && memchr(b'/', host).is_none()
        && memchr(b'@', host).is_none()
        && port.is_some_and(|p| p.len() <= 5 && parse_decimal(p).is_some())
}

/// The anomaly set of one head, each at most once.
#[derive(Default)]
struct Flags(Vec<Anomaly>);

impl Flags {
    fn set(&mut self, a: Anomaly) {
        if !self.0.contains(&a) {
            self.0.push(a);
        }
    }

    fn has(&self, a: Anomaly) -> bool {
        self.0.contains(&a)
    }
}

/// The request line, as far as it could be split.
struct RequestLine {
    method: Span,
    target: Span,
    version: Span,
}

/// Splits a request line. Strictly it is `METHOD SP TARGET SP VERSION`; anything else is
/// reported, and the parts are then taken as a lenient parser would: first word, last word, and
/// everything between as the target.
fn split_request_line(raw: &[u8], line: Span, flags: &mut Flags) -> RequestLine {
    let bytes = line.get(raw);
    // Up to the first two and the last word, as (start, end) relative to the line.
    let mut words: [(usize, usize); 3] = [(0, 0); 3];
    let mut last = (0, 0);
    let mut count = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i).is_some_and(|&b| is_loose_ws(b)) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes.get(i).is_some_and(|&b| is_loose_ws(b)) {
            i += 1;
        }
        if let Some(w) = words.get_mut(count) {
            *w = (start, i);
        }
        last = (start, i);
        count += 1;
    }
    let [w0, w1, w2] = words;
    let strict = count == 3
        && w0.0 == 0
        && w1.0 == w0.1 + 1
        && w2.0 == w1.1 + 1
        && w2.1 == bytes.len()
        && bytes.get(w0.1) == Some(&b' ')
        && bytes.get(w1.1) == Some(&b' ');
    if !strict {
        flags.set(Anomaly::InvalidRequestLine);
    }
    let empty = line.sub(bytes.len(), bytes.len());
    match count {
        0 => RequestLine {
            method: empty,
            target: empty,
            version: empty,
        },
        1 => RequestLine {
            method: line.sub(w0.0, w0.1),
            target: empty,
            version: empty,
        },
        2 => RequestLine {
            method: line.sub(w0.0, w0.1),
            target: line.sub(w1.0, w1.1),
            version: empty,
        },
        _ => {
            // The target runs from the second word to the end of the second-to-last one.
            let before_last = bytes.get(..last.0).unwrap_or(&[]);
            let target_end = before_last
                .iter()
                .rposition(|&b| !is_loose_ws(b))
                .map_or(w1.1, |p| p + 1);
            RequestLine {
                method: line.sub(w0.0, w0.1),
                target: line.sub(w1.0, target_end.max(w1.1)),
                version: line.sub(last.0, last.1),
            }
        }
    }
}

/// Path, query and authority of a target, and its form.
struct TargetParts {
    form: TargetForm,
    path: Span,
    query: Option<Span>,
    authority: Option<Span>,
    scheme: Span,
}

fn split_target(raw: &[u8], method: &[u8], target: Span) -> TargetParts {
    let t = target.get(raw);
    let empty = target.sub(0, 0);
    let mut parts = TargetParts {
        form: TargetForm::Invalid,
        path: empty,
        query: None,
        authority: None,
        scheme: empty,
    };
    if method == b"CONNECT" {
        if is_authority_form(t) {
            parts.form = TargetForm::Authority;
            parts.authority = Some(target);
        }
        return parts;
    }
    if t == b"*" {
        parts.path = target;
        if method == b"OPTIONS" {
            parts.form = TargetForm::Asterisk;
        }
        return parts;
    }
    // Where the path starts; for absolute-form, after the authority.
    let mut path_start = 0;
    if t.first() == Some(&b'/') {
        parts.form = TargetForm::Origin;
    } else if let Some(colon) = memchr(b':', t) {
        let scheme = t.get(..colon).unwrap_or(&[]);
        let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if scheme_ok && t.get(colon + 1..colon + 3) == Some(b"//".as_slice()) {
            let auth_start = colon + 3;
            let auth_len = t
                .get(auth_start..)
                .unwrap_or(&[])
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(t.len() - auth_start);
            parts.form = TargetForm::Absolute;
            parts.scheme = target.sub(0, colon);
            parts.authority = Some(target.sub(auth_start, auth_start + auth_len));
            path_start = auth_start + auth_len;
        }
    }
    let rest = t.get(path_start..).unwrap_or(&[]);
    let frag = memchr(b'#', rest).unwrap_or(rest.len());
    let rest = rest.get(..frag).unwrap_or(&[]);
    match memchr(b'?', rest) {
        Some(q) => {
            parts.path = target.sub(path_start, path_start + q);
            parts.query = Some(target.sub(path_start + q + 1, path_start + frag));
        }
        None => parts.path = target.sub(path_start, path_start + frag),
    }
    parts
}

/// Framing and Host bookkeeping while the header lines are read.
#[derive(Default)]
struct FieldState {
    cl_fields: usize,
    cl_value: Option<u64>,
    cl_list: bool,
    cl_invalid: bool,
    te_fields: usize,
    te_invalid: bool,
    host_fields: usize,
    host: Option<Span>,
}

impl FieldState {
    fn content_length(&mut self, value: &[u8]) {
        self.cl_fields += 1;
        if memchr(b',', value).is_some() {
            self.cl_list = true;
        }
        for element in value.split(|&b| b == b',') {
            match parse_decimal(trim_ows(element)) {
                Some(n) => {
                    self.cl_value.get_or_insert(n);
                }
                None => self.cl_invalid = true,
            }
        }
    }
}

/// Parses a request head (normally `buf[..n]` after [`find_head_end`] returned `Some(n)`).
///
/// Never fails: the [`Head`] describes what could be parsed, and [`Head::anomalies`] what was
/// wrong. Bytes after the terminating empty line, if any, are kept in [`Head::raw`] but not
/// parsed (see [`Head::head_len`]).
pub fn parse_head(raw: Vec<u8>, limits: &HeadLimits) -> Head {
    let buf = raw.as_slice();
    let mut flags = Flags::default();
    let mut headers: Vec<HeaderField> = Vec::with_capacity(limits.max_headers.min(32));
    let mut fields = FieldState::default();
    let mut field_lines = 0usize;
    let mut request_line: Option<Span> = None;
    // The kind of the last stored or counted field, and its index in `headers` if stored, for
    // obs-fold continuations.
    let mut last_field: Option<(Kind, Option<usize>)> = None;
    let mut complete = false;
    let mut head_len = buf.len();
    let mut pos = 0;

    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or(&[]);
        let (line_end, next, has_lf) = match memchr(b'\n', rest) {
            Some(i) => (pos + i, pos + i + 1, true),
            None => (buf.len(), buf.len(), false),
        };
        let mut content_end = line_end;
        if content_end > pos && buf.get(content_end - 1) == Some(&b'\r') {
            // CRLF, or a CR at the very end of an incomplete head.
            content_end -= 1;
        } else if has_lf {
            flags.set(Anomaly::BareLf);
        }
        let line = Span::new(pos, content_end);
        pos = next;

        if line.len() == 0 {
            if !has_lf {
                break;
            }
            if request_line.is_some() {
                complete = true;
                head_len = next;
                break;
            }
            // An empty line before the request line: skipped (RFC 9112 §2.2).
            continue;
        }

        if request_line.is_none() {
            if line.len() > limits.max_request_line {
                flags.set(Anomaly::RequestLineTooLong);
            }
            request_line = Some(line);
            continue;
        }

        // A header field line.
        let bytes = line.get(buf);
        if line.len() > limits.max_header_line {
            flags.set(Anomaly::HeaderLineTooLong);
        }
        if bytes.first().is_some_and(|&b| is_ows(b)) {
            // obs-fold: a lenient parser appends this to the previous field's value.
            flags.set(Anomaly::ObsFold);
            if let Some((kind, idx)) = last_field {
                if let Some(h) = idx.and_then(|i| headers.get_mut(i)) {
                    if let Some(last) = bytes.iter().rposition(|&b| !is_ows(b)) {
                        h.value.end = line.start + last + 1;
                    }
                }
                flag_suspicious(kind, &mut flags);
            }
            // A parser without obs-fold support may read the line as a field of its own.
            flag_suspicious(loose_kind(bytes), &mut flags);
            continue;
        }

        field_lines += 1;
        if field_lines > limits.max_headers {
            flags.set(Anomaly::TooManyHeaders);
        }
        let store = headers.len() < limits.max_headers;

        // Names are short: a plain loop beats memchr's set-up cost here.
        let Some(colon) = bytes.iter().position(|&b| b == b':') else {
            flags.set(Anomaly::MissingColon);
            flag_suspicious(loose_kind(bytes), &mut flags);
            if store {
                headers.push(HeaderField {
                    name: line,
                    value: line.sub(line.len(), line.len()),
                });
                last_field = Some((Kind::Other, Some(headers.len() - 1)));
            } else {
                last_field = Some((Kind::Other, None));
            }
            continue;
        };

        let raw_name = bytes.get(..colon).unwrap_or(&[]);
        let name_len = raw_name
            .iter()
            .rposition(|&b| !is_ows(b))
            .map_or(0, |i| i + 1);
        let name = raw_name.get(..name_len).unwrap_or(&[]);
        let mut suspicious = false;
        if name_len != raw_name.len() {
            flags.set(Anomaly::WhitespaceBeforeColon);
            suspicious = true;
        }
        let mut kind = kind_of(name);
        if !is_token(name) {
            flags.set(Anomaly::InvalidHeaderName);
            suspicious = true;
            kind = loose_kind(name);
        }

        let raw_value = bytes.get(colon + 1..).unwrap_or(&[]);
        let lead = raw_value
            .iter()
            .position(|&b| !is_ows(b))
            .unwrap_or(raw_value.len());
        let value = trim_ows(raw_value);
        let value_span = line.sub(colon + 1 + lead, colon + 1 + lead + value.len());

        match kind {
            Kind::ContentLength => {
                fields.content_length(value);
                if suspicious {
                    fields.cl_invalid = true;
                }
            }
            Kind::TransferEncoding => {
                fields.te_fields += 1;
                if suspicious || !te_value_ok(raw_value) {
                    fields.te_invalid = true;
                }
            }
            Kind::Host => {
                fields.host_fields += 1;
                if suspicious {
                    flags.set(Anomaly::AmbiguousHost);
                }
                fields.host.get_or_insert(value_span);
            }
            Kind::Other => {}
        }

        if store {
            headers.push(HeaderField {
                name: line.sub(0, name_len),
                value: value_span,
            });
            last_field = Some((kind, Some(headers.len() - 1)));
        } else {
            last_field = Some((kind, None));
        }
    }

    if !complete {
        flags.set(Anomaly::Truncated);
    }
    if head_len > limits.max_head {
        flags.set(Anomaly::HeadTooLarge);
    }

    scan_bytes(buf.get(..head_len).unwrap_or(&[]), &mut flags);

    // Request line.
    let request_line = request_line.unwrap_or_default();
    let rl = split_request_line(buf, request_line, &mut flags);
    let method = rl.method.get(buf);
    if !is_token(method) || !KNOWN_METHODS.contains(&method) {
        flags.set(Anomaly::InvalidMethod);
    }
    let version = match rl.version.get(buf) {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => {
            flags.set(Anomaly::InvalidVersion);
            Version::Other
        }
    };
    let parts = split_target(buf, method, rl.target);
    if parts.form == TargetForm::Invalid {
        flags.set(Anomaly::InvalidRequestLine);
    }
    let path = parts.path.get(buf);
    if !percent_ok(path) || parts.query.is_some_and(|q| !percent_ok(q.get(buf))) {
        flags.set(Anomaly::InvalidPercentEncoding);
    }
    if !decoded_utf8_ok(path) {
        flags.set(Anomaly::OverlongUtf8);
    }

    // Host.
    if fields.host_fields > 1 {
        flags.set(Anomaly::AmbiguousHost);
    }
    if version == Version::Http11 && fields.host_fields == 0 {
        flags.set(Anomaly::MissingHost);
    }
    if parts.form == TargetForm::Absolute {
        if let (Some(authority), Some(host)) = (parts.authority, fields.host) {
            if !same_authority(parts.scheme.get(buf), authority.get(buf), host.get(buf)) {
                flags.set(Anomaly::AmbiguousHost);
            }
        }
    }

    // Framing (RFC 9112 §6.3, conservatively).
    if fields.cl_fields > 0 && fields.te_fields > 0 {
        flags.set(Anomaly::ContentLengthAndTransferEncoding);
    }
    if fields.cl_fields > 1 || fields.cl_list {
        flags.set(Anomaly::DuplicateContentLength);
    }
    if fields.cl_invalid {
        flags.set(Anomaly::InvalidContentLength);
    }
    if fields.te_fields > 1
        || fields.te_invalid
        || (fields.te_fields > 0 && version == Version::Http10)
    {
        flags.set(Anomaly::InvalidTransferEncoding);
    }
    let framing = if [
        Anomaly::ContentLengthAndTransferEncoding,
        Anomaly::DuplicateContentLength,
        Anomaly::InvalidContentLength,
        Anomaly::InvalidTransferEncoding,
    ]
    .iter()
    .any(|&a| flags.has(a))
    {
        Framing::Invalid
    } else if fields.te_fields == 1 {
        Framing::Chunked
    } else if let (1, Some(n)) = (fields.cl_fields, fields.cl_value) {
        Framing::ContentLength(n)
    } else {
        Framing::None
    };

    let mut anomalies = flags.0;
    anomalies.sort_unstable();
    Head {
        head_len,
        complete,
        request_line,
        method: rl.method,
        target: rl.target,
        path: parts.path,
        query: parts.query,
        authority: parts.authority,
        form: parts.form,
        version,
        headers,
        field_lines,
        framing,
        anomalies,
        raw,
    }
}

/// A malformed line that a lenient parser may read as a framing or Host field makes that field
/// ambiguous.
fn flag_suspicious(kind: Kind, flags: &mut Flags) {
    match kind {
        Kind::ContentLength => flags.set(Anomaly::InvalidContentLength),
        Kind::TransferEncoding => flags.set(Anomaly::InvalidTransferEncoding),
        Kind::Host => flags.set(Anomaly::AmbiguousHost),
        Kind::Other => {}
    }
}

/// One pass over the head for NUL, bare CR, other control bytes and DEL. A bare CR followed by
/// a framing field name is what a parser that ends lines at CR would see as a field, so it makes
/// the framing ambiguous.
fn scan_bytes(head: &[u8], flags: &mut Flags) {
    // Fast path: a branch-free pass the compiler vectorises; almost every head is clean.
    let ctl = head.iter().fold(0u8, |acc, &b| {
        acc | u8::from((b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f)
    });
    let bare_cr = head
        .iter()
        .zip(head.get(1..).unwrap_or(&[]))
        .fold(0u8, |acc, (&b, &next)| {
            acc | u8::from(b == b'\r' && next != b'\n')
        });
    if ctl | bare_cr == 0 {
        return;
    }
    for (i, &b) in head.iter().enumerate() {
        if !SPECIAL[b as usize] {
            continue;
        }
        match b {
            b'\n' | b'\t' => {}
            b'\r' => match head.get(i + 1) {
                Some(b'\n') | None => {}
                Some(_) => {
                    flags.set(Anomaly::BareCr);
                    let after = head.get(i + 1..).unwrap_or(&[]);
                    for (name, kind) in [
                        (b"content-length".as_slice(), Kind::ContentLength),
                        (b"transfer-encoding".as_slice(), Kind::TransferEncoding),
                    ] {
                        if starts_with_ignore_case(after, name) {
                            flag_suspicious(kind, flags);
                        }
                    }
                }
            },
            0 => flags.set(Anomaly::NulByte),
            _ => flags.set(Anomaly::ControlCharacter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Anomaly::*;

    fn parse(raw: &[u8]) -> Head {
        parse_head(raw.to_vec(), &HeadLimits::default())
    }

    fn anomalies(raw: &[u8]) -> Vec<Anomaly> {
        parse(raw).anomalies().to_vec()
    }

    /// A request line and header lines, CRLF-terminated, with the empty line.
    fn req(lines: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"\r\n");
        v
    }

    const BROWSER: &[u8] = b"GET /search?q=picket&lang=en HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Charset: utf-8, iso-8859-1;q=0.5\r\n\
Referer: https://www.example.com/\r\n\
Cookie: a=1; b=2; session=0123456789abcdef; theme=dark; consent=yes; _ga=GA1.2.3.4\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
\r\n";

    #[test]
    fn clean_browser_request() {
        let h = parse(BROWSER);
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert!(h.is_complete());
        assert_eq!(h.head_len(), BROWSER.len());
        assert_eq!(h.method(), b"GET");
        assert_eq!(h.target(), b"/search?q=picket&lang=en");
        assert_eq!(h.path(), b"/search");
        assert_eq!(h.query(), Some(&b"q=picket&lang=en"[..]));
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.target_form(), TargetForm::Origin);
        assert_eq!(h.request_line(), b"GET /search?q=picket&lang=en HTTP/1.1");
        assert_eq!(h.host(), Some(&b"www.example.com"[..]));
        assert_eq!(h.authority(), Some(&b"www.example.com"[..]));
        assert_eq!(h.header(b"ACCEPT-LANGUAGE"), Some(&b"en-GB,en;q=0.5"[..]));
        assert_eq!(h.headers().count(), 11);
        assert_eq!(h.field_line_count(), 11);
        assert_eq!(
            h.headers().next(),
            Some((&b"Host"[..], &b"www.example.com"[..]))
        );
        assert_eq!(h.framing(), Framing::None);
        assert!(h.keep_alive());
        assert!(!h.expects_continue());
        assert!(!h.is_upgrade());
        assert_eq!(h.content_type(), None);
    }

    #[test]
    fn post_with_content_length() {
        let h = parse(&req(&[
            "POST /api/v1/items HTTP/1.1",
            "Host: api.internal:8080",
            "Content-Type: application/json",
            "Content-Encoding: gzip",
            "Content-Length: 1234",
            "Expect: 100-continue",
        ]));
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.framing(), Framing::ContentLength(1234));
        assert_eq!(h.content_type(), Some(&b"application/json"[..]));
        assert_eq!(h.content_encoding(), Some(&b"gzip"[..]));
        assert!(h.expects_continue());
        assert_eq!(h.query(), None);
    }

    #[test]
    fn chunked_request() {
        let h = parse(&req(&[
            "POST /upload HTTP/1.1",
            "Host: a",
            "Transfer-Encoding: chunked",
            "Trailer: X-Checksum",
        ]));
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.framing(), Framing::Chunked);
        // Trailing spaces are tolerated.
        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked \r\n\r\n");
        assert_eq!(h.framing(), Framing::Chunked);
    }

    #[test]
    fn portswigger_cl_te() {
        let msg = b"POST / HTTP/1.1\r\nHost: vulnerable-website.com\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED";
        let n = find_head_end(msg, 0).unwrap();
        let h = parse_head(msg[..n].to_vec(), &HeadLimits::default());
        assert_eq!(h.anomalies(), &[ContentLengthAndTransferEncoding]);
        assert_eq!(h.framing(), Framing::Invalid);
        assert_eq!(&msg[n..], b"0\r\n\r\nSMUGGLED");
    }

    #[test]
    fn portswigger_te_cl() {
        let msg = b"POST / HTTP/1.1\r\nHost: vulnerable-website.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n";
        let n = find_head_end(msg, 0).unwrap();
        let h = parse_head(msg[..n].to_vec(), &HeadLimits::default());
        assert_eq!(h.anomalies(), &[ContentLengthAndTransferEncoding]);
        assert_eq!(h.framing(), Framing::Invalid);
    }

    #[test]
    fn te_obfuscations() {
        let cases: &[&[u8]] = &[
            b"Transfer-Encoding: xchunked",
            b"Transfer-Encoding: Chunked",
            b"Transfer-Encoding: CHUNKED",
            b"Transfer-Encoding: chunked, identity",
            b"Transfer-Encoding: identity, chunked",
            b"Transfer-Encoding: gzip, chunked",
            b"Transfer-Encoding: chunked;x",
            b"Transfer-Encoding: chunked,",
            b"Transfer-Encoding: identity",
            b"Transfer-Encoding:",
            b"Transfer-Encoding:\tchunked",
            b"Transfer-Encoding: chunked\t",
            b"Transfer-Encoding: \x0bchunked",
            b"Transfer-Encoding: \"chunked\"",
            b"Transfer-Encoding: chunked\r\nTransfer-encoding: x",
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        ];
        for case in cases {
            let mut raw = b"POST / HTTP/1.1\r\nHost: a\r\n".to_vec();
            raw.extend_from_slice(case);
            raw.extend_from_slice(b"\r\n\r\n");
            let h = parse(&raw);
            assert!(
                h.has_anomaly(InvalidTransferEncoding),
                "{:?}: {:?}",
                String::from_utf8_lossy(case),
                h.anomalies()
            );
            assert_eq!(
                h.framing(),
                Framing::Invalid,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn te_name_tricks() {
        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n");
        assert_eq!(
            h.anomalies(),
            &[InvalidTransferEncoding, WhitespaceBeforeColon]
        );
        assert_eq!(h.framing(), Framing::Invalid);
        assert_eq!(h.header(b"transfer-encoding"), Some(&b"chunked"[..]));

        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding\t: chunked\r\n\r\n");
        assert!(h.has_anomaly(ContentLengthAndTransferEncoding));
        assert_eq!(h.framing(), Framing::Invalid);

        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\n\x0bTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(
            h.anomalies(),
            &[InvalidTransferEncoding, ControlCharacter, InvalidHeaderName]
        );
        assert_eq!(h.framing(), Framing::Invalid);

        // Folded onto the previous line: a parser without obs-fold support sees a TE field.
        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.anomalies(), &[InvalidTransferEncoding, ObsFold]);
        assert_eq!(h.framing(), Framing::Invalid);

        // A TE value continued by obs-fold.
        let h = parse(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n , identity\r\n\r\n",
        );
        assert_eq!(h.anomalies(), &[InvalidTransferEncoding, ObsFold]);
        assert_eq!(h.framing(), Framing::Invalid);

        // Hidden behind a bare CR.
        let h = parse(b"POST / HTTP/1.1\r\nHost: a\r\nX: y\rTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.anomalies(), &[InvalidTransferEncoding, BareCr]);
        assert_eq!(h.framing(), Framing::Invalid);
    }

    #[test]
    fn te_on_http10() {
        let h = parse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.anomalies(), &[InvalidTransferEncoding]);
        assert_eq!(h.framing(), Framing::Invalid);
    }

    #[test]
    fn content_length_variants() {
        let bad = |v: &str| {
            let h = parse(&req(&[
                "POST / HTTP/1.1",
                "Host: a",
                &format!("Content-Length: {v}"),
            ]));
            assert_eq!(h.framing(), Framing::Invalid, "{v:?}");
            h.anomalies().to_vec()
        };
        for v in [
            "+5",
            "-1",
            "1 2",
            "0x10",
            "5a",
            "",
            "99999999999999999999999",
            "1_000",
            "\u{b}5",
        ] {
            assert!(bad(v).contains(&InvalidContentLength), "{v:?}");
        }
        assert_eq!(bad("5, 5"), vec![DuplicateContentLength]);
        assert_eq!(bad("5,6"), vec![DuplicateContentLength]);
        assert_eq!(
            bad("5,"),
            vec![DuplicateContentLength, InvalidContentLength]
        );
        let h = parse(&req(&[
            "POST / HTTP/1.1",
            "Host: a",
            "Content-Length: 5",
            "content-length: 5",
        ]));
        assert_eq!(h.anomalies(), &[DuplicateContentLength]);
        assert_eq!(h.framing(), Framing::Invalid);
        // Leading zeros and u64::MAX are plain decimals.
        let h = parse(&req(&["POST / HTTP/1.1", "Host: a", "Content-Length: 007"]));
        assert_eq!(h.framing(), Framing::ContentLength(7));
        let h = parse(&req(&[
            "POST / HTTP/1.1",
            "Host: a",
            "Content-Length: 18446744073709551615",
        ]));
        assert_eq!(h.framing(), Framing::ContentLength(u64::MAX));
        let h = parse(&req(&["POST / HTTP/1.1", "Host: a", "Content-Length : 5"]));
        assert_eq!(
            h.anomalies(),
            &[InvalidContentLength, WhitespaceBeforeColon]
        );
    }

    #[test]
    fn obs_fold() {
        let h = parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: first\r\n\tsecond  \r\nAccept: */*\r\n\r\n",
        );
        assert_eq!(h.anomalies(), &[ObsFold]);
        assert_eq!(h.header(b"x-long"), Some(&b"first\r\n\tsecond"[..]));
        assert_eq!(h.header(b"accept"), Some(&b"*/*"[..]));
        // Whitespace line right after the request line.
        let h = parse(b"GET / HTTP/1.1\r\n Host: evil\r\nHost: a\r\n\r\n");
        assert_eq!(h.anomalies(), &[ObsFold, AmbiguousHost]);
    }

    #[test]
    fn bare_lf_head() {
        let raw = b"GET / HTTP/1.1\nHost: a\nAccept: */*\n\n";
        assert_eq!(find_head_end(raw, 0), Some(raw.len()));
        let h = parse(raw);
        assert_eq!(h.anomalies(), &[BareLf]);
        assert_eq!(h.header(b"accept"), Some(&b"*/*"[..]));
        assert!(h.is_complete());
        // Mixed endings.
        let raw = b"GET / HTTP/1.1\r\nHost: a\n\r\n";
        assert_eq!(find_head_end(raw, 0), Some(raw.len()));
        assert_eq!(anomalies(raw), vec![BareLf]);
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\n";
        assert_eq!(find_head_end(raw, 0), Some(raw.len()));
        assert_eq!(anomalies(raw), vec![BareLf]);
    }

    #[test]
    fn bytes_in_head() {
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX: ab\0cd\r\n\r\n"),
            vec![NulByte]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
            vec![BareCr]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"),
            vec![ControlCharacter]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n"),
            vec![ControlCharacter]
        );
        assert_eq!(
            anomalies(b"GET /\x1b HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![ControlCharacter]
        );
        // HTAB and obs-text in a value are fine.
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \xe9\r\n\r\n"),
            vec![]
        );
    }

    #[test]
    fn header_names() {
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n"),
            vec![InvalidHeaderName]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n"),
            vec![InvalidHeaderName]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n"),
            vec![InvalidHeaderName]
        );
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n");
        assert_eq!(h.anomalies(), &[MissingColon]);
        assert_eq!(h.headers().nth(1), Some((&b"no colon here"[..], &b""[..])));
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nX-Y : 1\r\n\r\n"),
            vec![WhitespaceBeforeColon]
        );
    }

    #[test]
    fn header_count_limit() {
        let mut lines = vec!["GET / HTTP/1.1".to_string(), "Host: a".to_string()];
        for i in 0..99 {
            lines.push(format!("X-{i}: {i}"));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let h = parse(&req(&refs));
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.headers().count(), 100);
        lines.push("Content-Length: 5".to_string());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let h = parse(&req(&refs));
        assert_eq!(h.anomalies(), &[TooManyHeaders]);
        // Not stored, but still counted and used for framing.
        assert_eq!(h.headers().count(), 100);
        assert_eq!(h.field_line_count(), 101);
        assert_eq!(h.framing(), Framing::ContentLength(5));
    }

    #[test]
    fn big_jwt_and_cookies_are_clean() {
        let jwt = format!(
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.{}.{}",
            "A".repeat(7200),
            "b".repeat(1100)
        );
        let cookies: Vec<String> = (0..60).map(|i| format!("Cookie: c{i}=v{i}")).collect();
        let mut lines = vec!["GET /api HTTP/1.1", "Host: a", jwt.as_str()];
        lines.extend(cookies.iter().map(String::as_str));
        let h = parse(&req(&lines));
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert!(h.header(b"authorization").unwrap().len() > 8 * 1024);
    }

    #[test]
    fn size_limits() {
        let long_target = format!("GET /{} HTTP/1.1", "a".repeat(9000));
        assert_eq!(
            anomalies(&req(&[&long_target, "Host: a"])),
            vec![RequestLineTooLong]
        );
        let long_header = format!("X: {}", "a".repeat(17 * 1024));
        assert_eq!(
            anomalies(&req(&["GET / HTTP/1.1", "Host: a", &long_header])),
            vec![HeaderLineTooLong]
        );
        let headers: Vec<String> = (0..10)
            .map(|i| format!("X-{i}: {}", "a".repeat(8000)))
            .collect();
        let mut lines = vec!["GET / HTTP/1.1", "Host: a"];
        lines.extend(headers.iter().map(String::as_str));
        assert_eq!(anomalies(&req(&lines)), vec![HeadTooLarge]);
        let limits = HeadLimits {
            max_request_line: 10,
            max_header_line: 10,
            max_headers: 1,
            max_head: 20,
        };
        let h = parse_head(
            req(&["GET /abcdefgh HTTP/1.1", "Host: a", "X: 0123456789"]),
            &limits,
        );
        assert_eq!(
            h.anomalies(),
            &[
                RequestLineTooLong,
                HeaderLineTooLong,
                TooManyHeaders,
                HeadTooLarge
            ]
        );
    }

    #[test]
    fn request_line_shapes() {
        let rl = |line: &[u8]| {
            let mut raw = line.to_vec();
            raw.extend_from_slice(b"\r\nHost: a\r\n\r\n");
            parse(&raw)
        };
        for line in [
            &b"GET  / HTTP/1.1"[..],
            b" GET / HTTP/1.1",
            b"GET / HTTP/1.1 ",
            b"GET\t/\tHTTP/1.1",
        ] {
            let h = rl(line);
            assert_eq!(h.anomalies(), &[InvalidRequestLine], "{line:?}");
            assert_eq!(
                (h.method(), h.target(), h.version()),
                (&b"GET"[..], &b"/"[..], Version::Http11)
            );
        }
        let h = rl(b"GET /a b HTTP/1.1");
        assert_eq!(h.anomalies(), &[InvalidRequestLine]);
        assert_eq!(h.target(), b"/a b");
        let h = rl(b"GET /");
        assert_eq!(h.anomalies(), &[InvalidRequestLine, InvalidVersion]);
        assert_eq!(h.version(), Version::Other);
        assert_eq!(rl(b"GET / HTTP/1.2").anomalies(), &[InvalidVersion]);
        assert_eq!(rl(b"GET / http/1.1").anomalies(), &[InvalidVersion]);
        assert_eq!(rl(b"GET / HTTP/2.0").anomalies(), &[InvalidVersion]);
        assert_eq!(rl(b"get / HTTP/1.1").anomalies(), &[InvalidMethod]);
        assert_eq!(rl(b"FOO / HTTP/1.1").anomalies(), &[InvalidMethod]);
        assert_eq!(rl(b"G(T / HTTP/1.1").anomalies(), &[InvalidMethod]);
        assert_eq!(rl(b"GET foo HTTP/1.1").anomalies(), &[InvalidRequestLine]);
        assert_eq!(rl(b"GET * HTTP/1.1").anomalies(), &[InvalidRequestLine]);
        for m in ["PROPFIND", "MKCALENDAR", "PATCH", "DELETE", "TRACE", "HEAD"] {
            assert_eq!(
                rl(format!("{m} /x HTTP/1.1").as_bytes()).anomalies(),
                &[] as &[Anomaly]
            );
        }
        let h = rl(b"OPTIONS * HTTP/1.1");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(
            (h.target_form(), h.path()),
            (TargetForm::Asterisk, &b"*"[..])
        );
        let h = rl(b"CONNECT a:443 HTTP/1.1");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.target_form(), TargetForm::Authority);
        assert_eq!(h.authority(), Some(&b"a:443"[..]));
        assert_eq!(h.path(), b"");
        assert_eq!(
            rl(b"CONNECT [::1]:8443 HTTP/1.1").anomalies(),
            &[] as &[Anomaly]
        );
        assert_eq!(rl(b"CONNECT / HTTP/1.1").anomalies(), &[InvalidRequestLine]);
        assert_eq!(rl(b"CONNECT a HTTP/1.1").anomalies(), &[InvalidRequestLine]);
    }

    #[test]
    fn hosts() {
        assert_eq!(anomalies(b"GET / HTTP/1.1\r\n\r\n"), vec![MissingHost]);
        assert_eq!(anomalies(b"GET / HTTP/1.0\r\n\r\n"), vec![]);
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            vec![AmbiguousHost]
        );
        assert_eq!(
            anomalies(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            vec![AmbiguousHost]
        );
        let h = parse(b"GET http://Example.com/x?y=1 HTTP/1.1\r\nHost: example.com:80\r\n\r\n");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.target_form(), TargetForm::Absolute);
        assert_eq!((h.path(), h.query()), (&b"/x"[..], Some(&b"y=1"[..])));
        assert_eq!(h.authority(), Some(&b"Example.com"[..]));
        assert_eq!(h.host(), Some(&b"example.com:80"[..]));
        let h = parse(b"GET https://user@a.example:8443 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.path(), b"/");
        assert_eq!(
            anomalies(b"GET http://internal.admin/ HTTP/1.1\r\nHost: public.example\r\n\r\n"),
            vec![AmbiguousHost]
        );
        assert_eq!(
            anomalies(b"GET https://a/ HTTP/1.1\r\nHost: a:80\r\n\r\n"),
            vec![AmbiguousHost]
        );
        assert_eq!(
            anomalies(b"GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
            vec![]
        );
    }

    #[test]
    fn percent_and_utf8() {
        let uri = |t: &str| anomalies(format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(uri("/%c0%af"), vec![OverlongUtf8]);
        assert_eq!(uri("/..%c0%af..%c0%afetc/passwd"), vec![OverlongUtf8]);
        assert_eq!(uri("/%e0%80%af"), vec![OverlongUtf8]);
        assert_eq!(uri("/%ed%a0%80"), vec![OverlongUtf8]);
        assert_eq!(uri("/%f4%90%80%80"), vec![OverlongUtf8]);
        assert_eq!(uri("/%ff"), vec![OverlongUtf8]);
        assert_eq!(uri("/%c3"), vec![OverlongUtf8]);
        assert_eq!(uri("/%zz"), vec![InvalidPercentEncoding]);
        assert_eq!(uri("/%2"), vec![InvalidPercentEncoding]);
        assert_eq!(uri("/a?b=%2"), vec![InvalidPercentEncoding]);
        assert_eq!(uri("/a?b=%"), vec![InvalidPercentEncoding]);
        assert_eq!(uri("/caf%C3%A9/%F0%9F%98%80/%2e%2E/%25"), vec![]);
        // Latin-1 in a query is not a path matter.
        assert_eq!(uri("/a?name=%E9"), vec![]);
        assert_eq!(
            anomalies(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![]
        );
        assert_eq!(
            anomalies(b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n"),
            vec![OverlongUtf8]
        );
    }

    #[test]
    fn connection_semantics() {
        let h = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert!(h.keep_alive());
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(
            !parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n").keep_alive()
        );
        let h = parse(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert!(h.is_upgrade());
        assert!(!parse(b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
    }

    #[test]
    fn truncated_and_odd_inputs() {
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\n");
        assert_eq!(h.anomalies(), &[Truncated]);
        assert!(!h.is_complete());
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r");
        assert_eq!(h.anomalies(), &[Truncated]);
        assert_eq!(h.host(), Some(&b"a"[..]));
        let h = parse(b"");
        assert_eq!(
            h.anomalies(),
            &[InvalidRequestLine, InvalidMethod, InvalidVersion, Truncated]
        );
        // Leading empty lines are skipped, not reported.
        let raw = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(find_head_end(raw, 0), Some(raw.len()));
        let h = parse(raw);
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.method(), b"GET");
        // Bytes after the head are not parsed.
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nX: \0\r\n");
        assert_eq!(h.anomalies(), &[] as &[Anomaly]);
        assert_eq!(h.head_len(), 27);
    }

    #[test]
    fn anomalies_are_sorted_and_unique() {
        let h = parse(b"get /%zz%c0%af HTTP/1.2\nContent-Length: 1\r\nContent-Length: x\nTransfer-Encoding: Chunked\r\nTransfer-Encoding: chunked\r\nX\0(: \x01\rq\r\n fold\r\nHost: a\r\nHost: b\r\nnocolon\r\n");
        let a = h.anomalies();
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
        assert_eq!(
            a,
            &[
                ContentLengthAndTransferEncoding,
                DuplicateContentLength,
                InvalidContentLength,
                InvalidTransferEncoding,
                ObsFold,
                BareCr,
                BareLf,
                NulByte,
                ControlCharacter,
                InvalidHeaderName,
                MissingColon,
                InvalidMethod,
                InvalidVersion,
                AmbiguousHost,
                InvalidPercentEncoding,
                OverlongUtf8,
                Truncated,
            ]
        );
    }

    #[test]
    fn find_head_end_basics() {
        assert_eq!(find_head_end(b"", 0), None);
        assert_eq!(find_head_end(b"\r\n", 0), None);
        assert_eq!(find_head_end(b"\n\n\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nGET", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\r\n\r\n", 0), Some(19));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\r\n", 0), None);
        assert_eq!(find_head_end(b"x\n\n", 0), Some(3));
        assert_eq!(find_head_end(b"\rx\n\n", 0), Some(4));
        assert_eq!(find_head_end(b"\r\r\n\n", 0), Some(4));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 1000), None);
        // Incremental use with the hint.
        let msg = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 0..msg.len() {
            assert_eq!(find_head_end(&msg[..split], 0), None);
            assert_eq!(find_head_end(msg, split), Some(msg.len()), "{split}");
        }
    }

    /// Lines from which the property tests build heads: realistic, malformed and bare ones.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"Host: a".to_vec()),
            Just(b"Content-Length: 5".to_vec()),
            Just(b"Transfer-Encoding: chunked".to_vec()),
            Just(b" fold".to_vec()),
            Just(b"\r".to_vec()),
            Just(Vec::new()),
            prop::collection::vec(
                prop_oneof![
                    Just(b'a'),
                    Just(b':'),
                    Just(b' '),
                    Just(b'\r'),
                    Just(b'\n'),
                    Just(b'\t'),
                    Just(b'%'),
                    Just(0u8),
                    Just(0xc0u8),
                    any::<u8>()
                ],
                0..12
            ),
        ]
    }

    fn head_like() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec((line(), prop::bool::ANY), 0..12),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(lines, tail)| {
                let mut v = b"POST /x HTTP/1.1".to_vec();
                for (l, crlf) in lines {
                    v.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                    v.extend_from_slice(&l);
                }
                v.extend_from_slice(&tail);
                v
            })
    }

    proptest! {
        #[test]
        fn find_head_end_is_split_invariant(
            buf in prop_oneof![head_like(), prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..40)],
            mut cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let whole = find_head_end(&buf, 0);
            let mut cuts: Vec<usize> = cuts.iter_mut().map(|i| i.index(buf.len() + 1)).collect();
            cuts.push(buf.len());
            cuts.sort_unstable();
            let mut searched = 0;
            let mut found = None;
            for &cut in &cuts {
                if let Some(n) = find_head_end(&buf[..cut], searched) {
                    found = Some(n);
                    break;
                }
                searched = cut;
            }
            prop_assert_eq!(found, whole);
            if let Some(n) = whole {
                // The head found is the shortest prefix that is a head.
                prop_assert_eq!(find_head_end(&buf[..n - 1], 0), None);
            }
        }

        #[test]
        fn find_head_end_agrees_with_parse_head(raw in head_like()) {
            match find_head_end(&raw, 0) {
                Some(n) => {
                    let h = parse_head(raw[..n].to_vec(), &HeadLimits::default());
                    prop_assert!(h.is_complete());
                    prop_assert_eq!(h.head_len(), n);
                    let h = parse_head(raw.clone(), &HeadLimits::default());
                    prop_assert_eq!(h.head_len(), n);
                }
                None => prop_assert!(!parse_head(raw, &HeadLimits::default()).is_complete()),
            }
        }

        #[test]
        fn parse_head_never_panics(raw in prop_oneof![head_like(), prop::collection::vec(any::<u8>(), 0..600)]) {
            let h = parse_head(raw.clone(), &HeadLimits { max_request_line: 20, max_header_line: 20, max_headers: 3, max_head: 64 });
            let a = h.anomalies();
            prop_assert!(a.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(h.head_len() <= raw.len());
            prop_assert!(h.headers().count() <= 3);
            let _ = (h.method(), h.target(), h.path(), h.query(), h.version(), h.host(), h.authority());
            let _ = (h.framing(), h.expects_continue(), h.is_upgrade(), h.keep_alive(), h.request_line());
            for (n, v) in h.headers() {
                let _ = (n.len(), v.len());
            }
            let d = parse_head(raw, &HeadLimits::default());
            if d.framing() == Framing::Chunked || matches!(d.framing(), Framing::ContentLength(_)) {
                prop_assert!(!d.anomalies().iter().any(|a| matches!(a, ContentLengthAndTransferEncoding | DuplicateContentLength | InvalidContentLength | InvalidTransferEncoding)));
            }
        }
    }
}
