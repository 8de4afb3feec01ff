//! Inspection of a raw HTTP/1 byte stream: requests found one after the other (keep-alive and
//! pipelining), each judged on its own, whatever way the bytes were cut into pieces.
//!
//! The driver owns the framing: it finds each head with [`find_head_end`], parses it from the
//! raw bytes (so the anomaly checks see what the client sent, not what a lenient parser would
//! have made of it), then follows Content-Length or chunked framing to the end of the body. A
//! request whose framing is ambiguous (CL and TE together, a bad length) cannot be delimited
//! safely, so the stream is *desynchronised* from then on: nothing after it is trusted to be a
//! new request, which is exactly the smuggling a proxy must not enable. The proxy closes such a
//! connection; here, the remaining bytes are counted and ignored.

use picket_signatures::{Anomaly, Engine, Scratch};

use crate::chunked::{ChunkedDecoder, ChunkedStatus};
use crate::http1::{find_head_end, parse_head, Framing, Head};
use crate::inspect::{InspectConfig, RequestInspection, Verdict};

/// One request found in the stream, with its verdict.
#[derive(Debug, Clone)]
pub struct InspectedRequest {
    pub head: Head,
    pub verdict: Verdict,
    /// Body bytes (after transfer decoding) the request carried.
    pub body_len: u64,
    /// Bytes of the stream the request occupied as sent (empty lines before it, head, framed
    /// body): what a proxy forwards once the verdict allows it.
    pub wire_len: u64,
}

/// Where the stream is between requests, for a caller's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Between requests: nothing of the next one has arrived.
    Idle,
    /// Part of a head has arrived.
    Head,
    /// The head is complete; the body is arriving.
    Body,
    /// Framing could not be trusted; nothing more is parsed.
    Desynchronised,
}

enum State<'e> {
    /// Waiting for (the rest of) a head; `scanned` is where the terminator search resumes.
    Head { scanned: usize },
    Length {
        head: Head,
        inspection: RequestInspection<'e>,
        remaining: u64,
        head_wire: u64,
    },
    Chunked {
        head: Head,
        inspection: RequestInspection<'e>,
        decoder: ChunkedDecoder,
        head_wire: u64,
    },
    /// Framing could not be trusted; everything else is ignored.
    Desynchronised,
}

/// A request whose head is complete and judged while its body is still arriving: what a proxy
/// needs to let `Expect: 100-continue` work (forward the inspected head so the server can answer
/// 100, while the body stays held until it is inspected too).
#[derive(Debug, Clone, Copy)]
pub struct AwaitingBody<'a> {
    pub head: &'a Head,
    /// Stream bytes of the head (with any empty lines before it).
    pub head_wire_len: u64,
    /// Whether the head alone already blocks the request.
    pub head_blocked: bool,
}

/// Capacity of a scanning buffer kept from one request to the next.
const SCRATCH_KEEP: usize = 2 << 10;

/// Streaming HTTP/1 request inspection over arbitrary pieces of a connection's bytes.
pub struct Http1Inspector<'e> {
    engine: &'e Engine,
    cfg: &'e InspectConfig,
    state: State<'e>,
    /// Bytes of a head not yet complete (bounded by the head limit).
    buf: Vec<u8>,
    ignored: u64,
    /// Stream bytes taken by the request in progress.
    wire: u64,
    /// Scanning buffers handed from one request to the next.
    spare: Scratch,
}

impl<'e> Http1Inspector<'e> {
    pub fn new(engine: &'e Engine, cfg: &'e InspectConfig) -> Self {
        Http1Inspector {
            engine,
            cfg,
            state: State::Head { scanned: 0 },
            buf: Vec::new(),
            ignored: 0,
            wire: 0,
            spare: Scratch::default(),
        }
    }

    /// The request whose body is arriving, if any.
    pub fn awaiting_body(&self) -> Option<AwaitingBody<'_>> {
        match &self.state {
            State::Length {
                head,
                inspection,
                head_wire,
                ..
            }
            | State::Chunked {
                head,
                inspection,
                head_wire,
                ..
            } => Some(AwaitingBody {
                head,
                head_wire_len: *head_wire,
                head_blocked: inspection.blocked(),
            }),
            _ => None,
        }
    }

    /// For a proxy that streams bodies past the inspection limit instead of holding them: when
    /// the body of the request in progress has gone past the limit, judges the request on its
    /// head and the part of the body that was held, and returns that verdict as a snapshot
    /// (`body_len` and `wire_len` so far). From then on [`streaming_body`](Self::streaming_body)
    /// is true: the rest of the body is followed for framing and counted, never held, and the
    /// request is reported once more, with its final verdict (trailers included), when it ends.
    /// `None` when there is nothing new to judge.
    pub fn judge_over_limit(&mut self) -> Option<InspectedRequest> {
        let wire_len = self.wire;
        match &mut self.state {
            State::Length {
                head, inspection, ..
            }
            | State::Chunked {
                head, inspection, ..
            } if inspection.over_limit() => {
                inspection.judge_held_body();
                Some(InspectedRequest {
                    head: head.clone(),
                    verdict: inspection.verdict_so_far(),
                    body_len: inspection.body_seen(),
                    wire_len,
                })
            }
            _ => None,
        }
    }

    /// Whether the request in progress was judged by
    /// [`judge_over_limit`](Self::judge_over_limit): every byte that arrives until it ends
    /// belongs to its body (or trailers) and may be forwarded as it comes.
    pub fn streaming_body(&self) -> bool {
        match &self.state {
            State::Length { inspection, .. } | State::Chunked { inspection, .. } => {
                inspection.judged()
            }
            _ => false,
        }
    }

    /// Where the stream stands (for header and body timeouts).
    pub fn state(&self) -> StreamState {
        match self.state {
            // Empty lines between requests (a CRLF some clients send after a body) do not start
            // a request.
            State::Head { .. } if self.buf.is_empty() => StreamState::Idle,
            State::Head { .. } => StreamState::Head,
            State::Length { .. } | State::Chunked { .. } => StreamState::Body,
            State::Desynchronised => StreamState::Desynchronised,
        }
    }

    /// Bytes ignored after the stream desynchronised.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Feeds the next piece of the stream; every request it completes is appended to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<InspectedRequest>) {
        while !input.is_empty() {
            match std::mem::replace(&mut self.state, State::Desynchronised) {
                State::Desynchronised => {
                    self.ignored += input.len() as u64;
                    return;
                }
                State::Head { scanned } => {
                    if self.buf.is_empty() {
                        // RFC 9112 §2.2: empty lines before a request line are ignored (some
                        // clients send a CRLF after a body).
                        let skip = input
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        input = &input[skip..];
                        self.wire += skip as u64;
                        if input.is_empty() {
                            self.state = State::Head { scanned: 0 };
                            return;
                        }
                    }
                    // Only as much as the head may still need is copied; the rest stays in
                    // `input` for the body.
                    let room = (self.cfg.head.max_head + 4).saturating_sub(self.buf.len());
                    let take = input.len().min(room.max(1));
                    if self.buf.is_empty() {
                        // The whole head in one piece (the common case): no copy into `buf`,
                        // which then never holds more than a head split across pieces.
                        if let Some(end) = find_head_end(&input[..take], 0) {
                            self.wire += end as u64;
                            let raw = input[..end].to_vec();
                            input = &input[end..];
                            self.start_request(raw, out);
                            continue;
                        }
                    }
                    let search_from = scanned.saturating_sub(3);
                    self.buf.extend_from_slice(&input[..take]);
                    match find_head_end(&self.buf, search_from) {
                        Some(end) => {
                            // Bytes after the head go back to the input.
                            let extra = self.buf.len() - end;
                            input = &input[take - extra..];
                            self.wire += (take - extra) as u64;
                            // The buffer becomes the head: nothing is copied again, and no
                            // capacity stays behind with the connection.
                            let mut raw = std::mem::take(&mut self.buf);
                            raw.truncate(end);
                            self.start_request(raw, out);
                        }
                        None if self.buf.len() > self.cfg.head.max_head => {
                            // Over the limit without an end: judge what there is, then stop
                            // trusting the stream.
                            let raw = std::mem::take(&mut self.buf);
                            input = &input[take..];
                            self.wire += take as u64;
                            self.oversized_head(raw, out);
                            self.ignored += input.len() as u64;
                            return;
                        }
                        None => {
                            input = &input[take..];
                            self.wire += take as u64;
                            self.state = State::Head {
                                scanned: self.buf.len(),
                            };
                        }
                    }
                }
                State::Length {
                    head,
                    mut inspection,
                    remaining,
                    head_wire,
                } => {
                    let n = (remaining.min(input.len() as u64)) as usize;
                    inspection.body_chunk(&input[..n]);
                    input = &input[n..];
                    self.wire += n as u64;
                    if remaining - n as u64 == 0 {
                        self.finish_request(head, inspection, out);
                    } else {
                        self.state = State::Length {
                            head,
                            inspection,
                            remaining: remaining - n as u64,
                            head_wire,
                        };
                    }
                }
                State::Chunked {
                    head,
                    mut inspection,
                    mut decoder,
                    head_wire,
                } => {
                    let status = decoder.push(input, &mut |data| inspection.body_chunk(data));
                    match status {
                        Ok(ChunkedStatus::NeedMore) => {
                            self.wire += input.len() as u64;
                            self.state = State::Chunked {
                                head,
                                inspection,
                                decoder,
                                head_wire,
                            };
                            return;
                        }
                        Ok(ChunkedStatus::Done { consumed }) => {
                            let consumed = consumed.min(input.len());
                            input = &input[consumed..];
                            self.wire += consumed as u64;
                            let trailers = decoder.trailers().to_vec();
                            inspection.trailers(trailer_fields(&trailers));
                            self.finish_request(head, inspection, out);
                        }
                        Err(e) => {
                            inspection.anomaly(e.anomaly(), head.request_line());
                            self.wire += input.len() as u64;
                            self.finish_request(head, inspection, out);
                            self.state = State::Desynchronised;
                        }
                    }
                }
            }
        }
    }

    /// The stream ended: a request still in progress is judged as it stands (a truncated head
    /// is parsed and inspected too, so an attack in an incomplete request is still named).
    pub fn finish(mut self, out: &mut Vec<InspectedRequest>) {
        match std::mem::replace(&mut self.state, State::Desynchronised) {
            State::Head { .. } => {
                if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                    let raw = std::mem::take(&mut self.buf);
                    out.push(self.judge_head_only(raw, Anomaly::Truncated));
                }
            }
            State::Length {
                head,
                mut inspection,
                ..
            }
            | State::Chunked {
                head,
                mut inspection,
                ..
            } => {
                inspection.anomaly(Anomaly::Truncated, head.request_line());
                let body_len = inspection.body_seen();
                out.push(InspectedRequest {
                    head,
                    verdict: inspection.finish(),
                    body_len,
                    wire_len: self.wire,
                });
            }
            State::Desynchronised => {}
        }
    }

    fn start_request(&mut self, raw: Vec<u8>, out: &mut Vec<InspectedRequest>) {
        let head = parse_head(raw, &self.cfg.head);
        let mut inspection =
            RequestInspection::with_scratch(self.engine, self.cfg, std::mem::take(&mut self.spare));
        inspection.head(&head);
        match head.framing() {
            Framing::None | Framing::ContentLength(0) => {
                self.finish_request(head, inspection, out);
            }
            Framing::ContentLength(n) => {
                self.state = State::Length {
                    head,
                    inspection,
                    remaining: n,
                    head_wire: self.wire,
                };
            }
            Framing::Chunked => {
                self.state = State::Chunked {
                    head,
                    inspection,
                    decoder: ChunkedDecoder::new(self.cfg.chunked),
                    head_wire: self.wire,
                };
            }
            Framing::Invalid => {
                // The head's anomalies already name why; the body cannot be delimited.
                out.push(InspectedRequest {
                    head,
                    verdict: inspection.finish(),
                    body_len: 0,
                    wire_len: std::mem::take(&mut self.wire),
                });
                self.state = State::Desynchronised;
            }
        }
    }

    fn oversized_head(&mut self, raw: Vec<u8>, out: &mut Vec<InspectedRequest>) {
        out.push(self.judge_head_only(raw, Anomaly::HeadTooLarge));
        self.state = State::Desynchronised;
    }

    /// Judges a head that will have no body (it is cut short or too large): parsed and
    /// inspected as it stands, with the anomaly that says why.
    fn judge_head_only(&mut self, raw: Vec<u8>, why: Anomaly) -> InspectedRequest {
        let head = parse_head(raw, &self.cfg.head);
        let mut inspection =
            RequestInspection::with_scratch(self.engine, self.cfg, std::mem::take(&mut self.spare));
        inspection.head(&head);
        inspection.anomaly(why, head.request_line());
        InspectedRequest {
            head,
            verdict: inspection.finish(),
            body_len: 0,
            wire_len: std::mem::take(&mut self.wire),
        }
    }

    fn finish_request(
        &mut self,
        head: Head,
        inspection: RequestInspection<'e>,
        out: &mut Vec<InspectedRequest>,
    ) {
        let body_len = inspection.body_seen();
        let (verdict, mut scratch) = inspection.finish_reusing();
        // Views of a head's values stay for the next request; a body's are let go, so an idle
        // keep-alive connection does not keep them (issue 3: RSS at 1,000 connections).
        scratch.trim(SCRATCH_KEEP);
        self.spare = scratch;
        out.push(InspectedRequest {
            head,
            verdict,
            body_len,
            wire_len: std::mem::take(&mut self.wire),
        });
        self.state = State::Head { scanned: 0 };
    }
}

/// Splits a raw trailer section into (name, value) fields; malformed lines are passed whole as
/// a value so they are still inspected.
fn trailer_fields(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    raw.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(|l| match l.iter().position(|&b| b == b':') {
            Some(i) => (&l[..i], l[i + 1..].trim_ascii()),
            None => (&b""[..], l),
        })
        .collect()
}

/// Inspects a complete byte string (a file, a JSONL record) as one stream.
pub fn inspect_bytes(engine: &Engine, cfg: &InspectConfig, raw: &[u8]) -> Vec<InspectedRequest> {
    let mut out = Vec::new();
    let mut inspector = Http1Inspector::new(engine, cfg);
    inspector.push(raw, &mut out);
    inspector.finish(&mut out);
    out
}
