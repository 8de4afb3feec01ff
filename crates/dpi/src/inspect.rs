//! Per-request inspection, in explicit phases: head, body chunks, end, verdict.
//!
//! [`RequestInspection`] is the one place that decides which parts of a request go to the
//! engine and under which [`Target`]; the HTTP/1 stream driver ([`crate::stream`]), the HTTP/2
//! path in the proxy and `picket scan` all go through it, so they reach the same decision.
//!
//! Nothing is forwarded before it is inspected, so the body is held (up to
//! [`InspectConfig::body_limit`], 1 MiB by default) and inspected whole at the end: a pattern
//! split across TCP segments, chunks or DATA frames is therefore found, and so is one placed
//! after any amount of padding below the limit. Memory per request is bounded by that limit plus
//! the decompression limit. Past the limit, [`OverLimit`] decides: fail-open inspects what it
//! holds and lets the rest through unseen (an alert names it), fail-closed refuses.

use picket_signatures::{Action, Anomaly, Engine, Hit, RequestContext, Scratch, Target};

use crate::chunked::ChunkedLimits;
use crate::decode::{self, ContentCoding, DecodeLimits};
use crate::fields::{ExtractLimits, FieldSink};
use crate::grpc::MessageDecoder;
use crate::http1::{Head, HeadLimits};
use crate::{form, json, multipart, xml};

/// What to do with a body larger than the inspection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Inspect the first `body_limit` bytes; the rest passes uninspected (logged as an alert).
    FailOpen,
    /// Refuse the request.
    FailClosed,
}

/// Every bound that inspection of one request respects.
#[derive(Debug, Clone)]
pub struct InspectConfig {
    pub head: HeadLimits,
    pub chunked: ChunkedLimits,
    /// Body bytes held and inspected per request (after transfer decoding, before content
    /// decoding).
    pub body_limit: usize,
    pub over_limit: OverLimit,
    pub decode: DecodeLimits,
    pub extract: ExtractLimits,
    /// Largest gRPC message inspected.
    pub grpc_max_message: usize,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            head: HeadLimits::default(),
            chunked: ChunkedLimits::default(),
            body_limit: 1 << 20,
            over_limit: OverLimit::FailOpen,
            decode: DecodeLimits::default(),
            extract: ExtractLimits::default(),
            grpc_max_message: 4 << 20,
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    Allow,
    /// Findings whose action is `alert` only: log, forward.
    Alert,
    /// At least one finding whose action is `block`.
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Alert => "alert",
            Decision::Block => "block",
        }
    }
}

/// The findings for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub hits: Vec<Hit>,
}

impl Verdict {
    pub fn decision(&self) -> Decision {
        if self.hits.iter().any(|h| h.action == Action::Block) {
            Decision::Block
        } else if self.hits.is_empty() {
            Decision::Allow
        } else {
            Decision::Alert
        }
    }

    /// The finding a block log names: the first blocking one, else the first.
    pub fn primary(&self) -> Option<&Hit> {
        self.hits
            .iter()
            .find(|h| h.action == Action::Block)
            .or_else(|| self.hits.first())
    }
}

/// The shape of a body, from its Content-Type (or, when that says nothing, its first byte).
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyKind {
    Json,
    Xml,
    Form,
    Multipart(Vec<u8>),
    Grpc,
    Other,
}

fn body_kind(content_type: Option<&[u8]>, body: &[u8]) -> BodyKind {
    let ct = content_type.unwrap_or(b"");
    let essence: Vec<u8> = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii()
        .to_ascii_lowercase();
    let e = essence.as_slice();
    if e == b"application/json" || e.ends_with(b"+json") || e == b"text/json" {
        BodyKind::Json
    } else if e == b"application/xml" || e == b"text/xml" || e.ends_with(b"+xml") {
        BodyKind::Xml
    } else if e == b"application/x-www-form-urlencoded" {
        BodyKind::Form
    } else if e.starts_with(b"multipart/") {
        match multipart::boundary(ct) {
            Some(b) => BodyKind::Multipart(b),
            None => BodyKind::Other,
        }
    } else if e.starts_with(b"application/grpc") {
        BodyKind::Grpc
    } else if e.is_empty() || e == b"text/plain" {
        // Clients that omit or misstate the type still reach parsers that sniff it.
        match body.trim_ascii_start().first() {
            Some(b'{') | Some(b'[') => BodyKind::Json,
            Some(b'<') => BodyKind::Xml,
            _ => BodyKind::Other,
        }
    } else {
        BodyKind::Other
    }
}

/// Inspection state for one request. Create it, call [`head`](Self::head) once, then
/// [`body_chunk`](Self::body_chunk) for each piece of the (transfer-decoded) body, then
/// [`finish`](Self::finish).
pub struct RequestInspection<'e> {
    engine: &'e Engine,
    cfg: &'e InspectConfig,
    scratch: Scratch,
    hits: Vec<Hit>,
    host: Vec<u8>,
    path: Vec<u8>,
    content_type: Option<Vec<u8>>,
    content_encoding: Option<Vec<u8>>,
    grpc_encoding: Option<Vec<u8>>,
    body: Vec<u8>,
    /// A lowercased header name, reused from header to header.
    name_buf: Vec<u8>,
    body_seen: u64,
    over_limit: bool,
    /// The body was judged early (see [`judge_held_body`](Self::judge_held_body)); what
    /// arrives after is only counted.
    judged: bool,
}

impl<'e> RequestInspection<'e> {
    pub fn new(engine: &'e Engine, cfg: &'e InspectConfig) -> Self {
        RequestInspection::with_scratch(engine, cfg, Scratch::default())
    }

    /// The same, reusing the scanning buffers of an earlier request (see
    /// [`finish_reusing`](Self::finish_reusing)): a connection's requests then allocate no
    /// new buffers once the first has warmed them up.
    pub fn with_scratch(engine: &'e Engine, cfg: &'e InspectConfig, scratch: Scratch) -> Self {
        RequestInspection {
            engine,
            cfg,
            scratch,
            hits: Vec::new(),
            host: Vec::new(),
            path: Vec::new(),
            content_type: None,
            content_encoding: None,
            grpc_encoding: None,
            body: Vec::new(),
            name_buf: Vec::new(),
            body_seen: 0,
            over_limit: false,
            judged: false,
        }
    }

    /// Phase 1: an HTTP/1 head as the client sent it.
    pub fn head(&mut self, head: &Head) {
        self.host = head.host().unwrap_or(b"").to_vec();
        self.path = head.path().to_vec();
        for &a in head.anomalies() {
            self.anomaly(a, head.request_line());
        }
        self.scan(Target::RequestLine, b"", head.request_line());
        self.scan(Target::Method, b"", head.method());
        self.request_target(head.path(), head.query());
        for (name, value) in head.headers() {
            self.header(name, value);
        }
    }

    /// Phase 1 for requests that arrive already parsed (HTTP/2, gRPC): pseudo-headers as
    /// method, path and query; the rest as headers.
    pub fn head_fields<'a>(
        &mut self,
        method: &[u8],
        path_and_query: &[u8],
        authority: &[u8],
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) {
        self.host = authority.to_vec();
        let (path, query) = match path_and_query.iter().position(|&b| b == b'?') {
            Some(i) => (&path_and_query[..i], Some(&path_and_query[i + 1..])),
            None => (path_and_query, None),
        };
        self.path = path.to_vec();
        self.scan(Target::Method, b"", method);
        self.request_target(path, query);
        for (name, value) in headers {
            self.header(name, value);
        }
    }

    fn request_target(&mut self, path: &[u8], query: Option<&[u8]>) {
        self.scan(Target::Path, b"", path);
        if let Some(q) = query {
            self.scan(Target::Query, b"", q);
            if self.engine.wants(Target::Arg) {
                let limits = self.cfg.extract;
                let mut sink = ScanSink {
                    inspection: self,
                    anomalies: Vec::new(),
                };
                // A malformed query is still scanned whole above; nothing more to report.
                let _ = form::extract_urlencoded(q, Target::Arg, &limits, &mut sink);
            }
        }
    }

    fn header(&mut self, name: &[u8], value: &[u8]) {
        // The lowercased name goes into a buffer kept across headers (no allocation each).
        let mut lower = std::mem::take(&mut self.name_buf);
        lower.clear();
        lower.extend(name.iter().map(u8::to_ascii_lowercase));
        self.header_lower(&lower, value);
        self.name_buf = lower;
    }

    fn header_lower(&mut self, lower: &[u8], value: &[u8]) {
        self.scan(Target::Header, lower, value);
        match lower {
            b"cookie" => {
                for pair in value.split(|&b| b == b';') {
                    let pair = pair.trim_ascii();
                    let (n, v) = match pair.iter().position(|&b| b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (&b""[..], pair),
                    };
                    self.scan(Target::Cookie, n, v);
                }
            }
            b"content-type" => self.content_type = Some(value.to_vec()),
            b"content-encoding" => self.content_encoding = Some(value.to_vec()),
            b"grpc-encoding" => self.grpc_encoding = Some(value.to_vec()),
            _ => {}
        }
    }

    /// Trailers of a chunked body (or HTTP/2 trailers): inspected as headers.
    pub fn trailers<'a>(&mut self, fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        for (n, v) in fields {
            let lower = n.to_ascii_lowercase();
            self.scan(Target::Header, &lower, v);
        }
    }

    /// Phase 2: a piece of the body, after transfer decoding. Bytes past the limit are counted,
    /// not held.
    pub fn body_chunk(&mut self, data: &[u8]) {
        self.body_seen += data.len() as u64;
        if self.judged {
            return;
        }
        let room = self.cfg.body_limit.saturating_sub(self.body.len());
        if data.len() > room {
            self.over_limit = true;
        }
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Whether the body has gone past the inspection limit and has not been judged yet.
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Whether the body was judged early and the rest of it is only counted.
    pub fn judged(&self) -> bool {
        self.judged
    }

    /// Phase 3 ahead of time, for a body past the limit that the caller will stream on rather
    /// than hold (fail-open, or monitor mode): records the over-limit finding now (blocking
    /// under fail-closed) and inspects the part of the body that was held. Later body bytes
    /// are counted, not held or inspected; trailers are still inspected. Idempotent.
    pub fn judge_held_body(&mut self) {
        if self.judged {
            return;
        }
        self.judged = true;
        self.over_limit = false;
        self.over_limit_now();
        let body = std::mem::take(&mut self.body);
        if !body.is_empty() {
            self.inspect_body(&body);
        }
    }

    /// The findings so far, as a verdict.
    pub fn verdict_so_far(&self) -> Verdict {
        Verdict {
            hits: self.hits.clone(),
        }
    }

    /// Bytes of body seen so far (held or not).
    pub fn body_seen(&self) -> u64 {
        self.body_seen
    }

    /// Whether a block is already certain (lets a caller stop reading early).
    pub fn blocked(&self) -> bool {
        self.hits.iter().any(|h| h.action == Action::Block)
    }

    /// A protocol anomaly found by the caller (a framing error, a truncated stream).
    pub fn anomaly(&mut self, anomaly: Anomaly, excerpt: &[u8]) {
        self.anomaly_with(anomaly, excerpt, |_| {});
    }

    /// Reports an anomaly, letting `adjust` change its finding (its action) before it counts.
    fn anomaly_with(&mut self, anomaly: Anomaly, excerpt: &[u8], adjust: impl FnOnce(&mut Hit)) {
        let req = RequestContext {
            host: &self.host,
            path: &self.path,
        };
        if let Some(mut hit) = self.engine.anomaly(&req, anomaly, excerpt) {
            adjust(&mut hit);
            if !self.hits.iter().any(|h| h.signature == hit.signature) {
                self.hits.push(hit);
            }
        }
    }

    /// Phase 2 for gRPC over HTTP/2: one whole length-prefixed message (prefix included),
    /// inspected now rather than at the end of the body, because a streaming call may never
    /// end while its messages must be forwarded as they come. The caller holds the message
    /// until this returns and forwards it only if [`blocked`](Self::blocked) stays false.
    pub fn grpc_message(&mut self, message: &[u8]) {
        self.body_seen += message.len() as u64;
        self.scan(Target::Body, b"", message);
        let limits = self.cfg.extract;
        let coding = match self.grpc_encoding.as_deref() {
            None => Ok(vec![ContentCoding::Identity]),
            Some(e) => ContentCoding::from_header(e),
        };
        let cfg = self.cfg;
        let mut sink = ScanSink {
            inspection: self,
            anomalies: Vec::new(),
        };
        match coding {
            Ok(c) => {
                let mut dec = MessageDecoder::new(
                    c.first().copied().unwrap_or(ContentCoding::Identity),
                    cfg.grpc_max_message,
                    cfg.decode,
                );
                if dec
                    .push(message, &limits, &mut sink)
                    .and_then(|()| dec.finish(&mut sink))
                    .is_err()
                {
                    sink.anomalies.push(Anomaly::GrpcFrameInvalid);
                }
            }
            Err(e) => sink.anomalies.push(e.anomaly()),
        }
        for a in std::mem::take(&mut sink.anomalies) {
            sink.inspection.anomaly(a, b"");
        }
    }

    /// A body (or one gRPC message) too large to hold, which the caller will not hold: the
    /// over-limit finding is recorded now — blocking under fail-closed, an alert under
    /// fail-open — instead of at [`finish`](Self::finish).
    pub fn over_limit_now(&mut self) {
        let fail_closed = self.cfg.over_limit == OverLimit::FailClosed;
        self.anomaly_with(Anomaly::BodyOverInspectionLimit, b"", |hit| {
            if fail_closed {
                hit.action = Action::Block;
            }
        });
    }

    /// The decision the findings so far add up to.
    pub fn decision(&self) -> Decision {
        if self.blocked() {
            Decision::Block
        } else if self.hits.is_empty() {
            Decision::Allow
        } else {
            Decision::Alert
        }
    }

    /// Phases 3 and 4: inspects the held body and returns the verdict.
    pub fn finish(self) -> Verdict {
        self.finish_reusing().0
    }

    /// [`finish`](Self::finish), handing back the scanning buffers for the next request.
    pub fn finish_reusing(mut self) -> (Verdict, Scratch) {
        if self.over_limit {
            // Fail-closed turns the (by default alert-only) finding into a refusal.
            self.over_limit_now();
        }
        if !self.body.is_empty() {
            let body = std::mem::take(&mut self.body);
            self.inspect_body(&body);
        }
        (Verdict { hits: self.hits }, self.scratch)
    }

    fn inspect_body(&mut self, raw: &[u8]) {
        let decoded;
        let content_encoding = self.content_encoding.take();
        let body: &[u8] = match content_encoding.as_deref() {
            None => raw,
            Some(ce) => match ContentCoding::from_header(ce)
                .and_then(|codings| decode::decode(&codings, raw, &self.cfg.decode))
            {
                Ok(d) => {
                    decoded = d;
                    &decoded
                }
                Err(e) => {
                    self.anomaly(e.anomaly(), ce);
                    raw
                }
            },
        };
        let transcoded;
        let body: &[u8] = match utf16_to_utf8(body) {
            Some(t) => {
                transcoded = t;
                &transcoded
            }
            None => body,
        };
        self.scan(Target::Body, b"", body);
        let kind = body_kind(self.content_type.as_deref(), body);
        if kind == BodyKind::Other {
            return;
        }
        let limits = self.cfg.extract;
        let grpc_encoding = self.grpc_encoding.clone();
        let mut sink = ScanSink {
            inspection: self,
            anomalies: Vec::new(),
        };
        let result = match &kind {
            BodyKind::Json => json::extract(body, &limits, &mut sink),
            BodyKind::Xml => xml::extract(body, &limits, &mut sink),
            BodyKind::Form => form::extract_urlencoded(body, Target::FormField, &limits, &mut sink),
            BodyKind::Multipart(b) => multipart::extract(body, b, &limits, &mut sink),
            BodyKind::Grpc => {
                let coding = match grpc_encoding.as_deref() {
                    None => Ok(vec![ContentCoding::Identity]),
                    Some(e) => ContentCoding::from_header(e),
                };
                match coding {
                    Ok(c) => {
                        let cfg = sink.inspection.cfg;
                        let mut dec = MessageDecoder::new(
                            c.first().copied().unwrap_or(ContentCoding::Identity),
                            cfg.grpc_max_message,
                            cfg.decode,
                        );
                        dec.push(body, &limits, &mut sink)
                            .and_then(|()| dec.finish(&mut sink))
                    }
                    Err(e) => {
                        sink.anomalies.push(e.anomaly());
                        Ok(())
                    }
                }
            }
            BodyKind::Other => Ok(()),
        };
        if result.is_err() {
            sink.anomalies.push(match kind {
                BodyKind::Grpc => Anomaly::GrpcFrameInvalid,
                _ => Anomaly::MalformedBody,
            });
        }
        for a in std::mem::take(&mut sink.anomalies) {
            sink.inspection.anomaly(a, b"");
        }
    }

    /// Scans a value, and its name too where the name is peer-chosen data (parameter names
    /// carry payloads: Spring's `class.module.classLoader`, PHP's `a[$(id)]`).
    fn scan_named(&mut self, target: Target, name: &[u8], value: &[u8]) {
        self.scan(target, name, value);
        if matches!(target, Target::Arg | Target::FormField | Target::JsonString)
            && !name.is_empty()
        {
            self.scan(target, name, name);
        }
    }

    fn scan(&mut self, target: Target, name: &[u8], value: &[u8]) {
        let req = RequestContext {
            host: &self.host,
            path: &self.path,
        };
        let before = self.hits.len();
        self.engine
            .scan(&req, target, name, value, &mut self.scratch, &mut self.hits);
        // One finding per signature per request is enough for a verdict and a log line.
        let mut i = before;
        while i < self.hits.len() {
            let sig = self.hits[i].signature;
            if self.hits[..i].iter().any(|h| h.signature == sig) {
                self.hits.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// A body that starts with a UTF-16 byte-order mark (or, without one, `<\0?\0` / `\0<\0?`:
/// an XML declaration in UTF-16) is transcoded to UTF-8, because XML and JSON parsers accept
/// UTF-16 and a payload in it would otherwise pass as unreadable bytes. Unpaired surrogates
/// become U+FFFD. The output is at most 1.5 × the input.
fn utf16_to_utf8(body: &[u8]) -> Option<Vec<u8>> {
    let (little, skip) = match body {
        [0xff, 0xfe, ..] => (true, 2),
        [0xfe, 0xff, ..] => (false, 2),
        [b'<', 0, b'?', 0, ..] => (true, 0),
        [0, b'<', 0, b'?', ..] => (false, 0),
        _ => return None,
    };
    let units = body[skip..].chunks_exact(2).map(|p| {
        if little {
            u16::from_le_bytes([p[0], p[1]])
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    });
    let mut out = String::with_capacity(body.len());
    for c in char::decode_utf16(units) {
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Some(out.into_bytes())
}

/// Scans each extracted value as it comes (the body is owned apart from the inspection, so the
/// extractor and the engine can both be borrowed at once); anomalies wait for the end.
struct ScanSink<'a, 'e> {
    inspection: &'a mut RequestInspection<'e>,
    anomalies: Vec<Anomaly>,
}

impl FieldSink for ScanSink<'_, '_> {
    fn field(&mut self, target: Target, name: &[u8], value: &[u8]) {
        self.inspection.scan_named(target, name, value);
    }

    fn anomaly(&mut self, anomaly: Anomaly) {
        self.anomalies.push(anomaly);
    }
}
