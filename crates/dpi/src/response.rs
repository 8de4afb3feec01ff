//! Where HTTP/1 responses end, for upstream connection reuse (RFC 9112 §6.3).
//!
//! # Why
//!
//! picket relays responses as a byte stream and never inspects them. To give an upstream
//! connection back to a pool when its client leaves, it must know that every response it
//! relayed is complete, that nothing else is buffered, and that the server meant the connection
//! to stay open. [`ResponseFramer`] answers that and nothing more: it is told the method of each
//! request forwarded, in order (pipelining), is fed the response bytes in chunks of any size,
//! and reports how many responses ended, whether the connection is still reusable and whether
//! it stands at a response boundary.
//!
//! # Rules
//!
//! * A head is a status line and field lines up to an empty line, at most
//!   [`ResponseLimits::max_head`] bytes; a malformed or oversized head is a
//!   [`ResponseError`] and the connection is not reusable (it is never a reason to cut the
//!   response: the bytes are relayed whatever the framer says).
//! * `1xx` other than `101` are interim: another head follows for the same request. `101`
//!   switches protocols: never reusable.
//! * No body: a response to `HEAD`, `1xx`, `204`, `304`. A `2xx` to `CONNECT` is a tunnel: not
//!   reusable.
//! * `Transfer-Encoding` with `chunked` last: a chunked body (trailers included), decoded by
//!   [`crate::chunked`]; any other transfer coding, or no length at all, is close-delimited: not
//!   reusable. `Content-Length` (equal duplicates allowed) otherwise; `Transfer-Encoding` with
//!   `Content-Length` is ambiguous: not reusable.
//! * `Connection: close`, HTTP/1.0 without `Connection: keep-alive`, or a request that itself
//!   asked to close: the response is framed, but the connection is not reusable.
//! * Bytes with no request waiting for them (a server-first greeting, junk after a response)
//!   make the connection not reusable.
//!
//! Once not reusable, the framer stops looking: its counts stay where they were. No I/O, no
//! allocation past the head buffer; the result does not depend on how the input is split.

use std::collections::VecDeque;

use crate::chunked::{ChunkedDecoder, ChunkedLimits, ChunkedStatus};

/// Bounds of one response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Largest head, status line and final empty line included. Default 64 KiB.
    pub max_head: usize,
    /// Most requests forwarded and not answered yet. Default 256.
    pub max_outstanding: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head: 64 << 10,
            max_outstanding: 256,
        }
    }
}

/// What the framer needs to know of a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta {
    /// `HEAD`: the response has no body.
    pub head: bool,
    /// `CONNECT`: a 2xx response opens a tunnel.
    pub connect: bool,
    /// The request itself lets the connection stay open ([`crate::http1::Head::keep_alive`]).
    pub keep_alive: bool,
}

impl RequestMeta {
    /// From a request method and whether the request keeps the connection open.
    pub fn new(method: &[u8], keep_alive: bool) -> RequestMeta {
        RequestMeta {
            head: method.eq_ignore_ascii_case(b"HEAD"),
            connect: method.eq_ignore_ascii_case(b"CONNECT"),
            keep_alive,
        }
    }
}

/// Why the connection stopped being reusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response head larger than the limit")]
    HeadTooLarge,
    #[error("malformed response status line")]
    BadStatusLine,
    #[error("malformed response field line")]
    BadFieldLine,
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    #[error("Transfer-Encoding together with Content-Length")]
    AmbiguousFraming,
    #[error("malformed chunked response body")]
    BadChunked,
    #[error("response bytes with no request waiting for them")]
    Unsolicited,
    #[error("too many requests waiting for a response")]
    TooManyOutstanding,
    #[error("response body delimited by the connection close")]
    CloseDelimited,
    #[error("the server closes the connection after this response")]
    ConnectionClose,
    #[error("the connection switched protocols or became a tunnel")]
    Tunnel,
    #[error("the upstream closed the connection")]
    Closed,
}

#[derive(Debug, Clone)]
enum State {
    /// Reading a head; `line` is the length of the current line so far (CR excluded).
    Head {
        line: usize,
    },
    Length {
        remaining: u64,
    },
    Chunked(Box<ChunkedDecoder>),
    /// Not reusable any more: nothing is tracked.
    Stopped(ResponseError),
}

/// Follows the responses on one upstream connection. See the module docs.
#[derive(Debug, Clone)]
pub struct ResponseFramer {
    limits: ResponseLimits,
    pending: VecDeque<RequestMeta>,
    head: Vec<u8>,
    state: State,
    completed: u64,
    /// The current response (once its head is read) leaves the connection open.
    keep_alive: bool,
}

impl Default for ResponseFramer {
    fn default() -> Self {
        ResponseFramer::new(ResponseLimits::default())
    }
}

impl ResponseFramer {
    pub fn new(limits: ResponseLimits) -> ResponseFramer {
        ResponseFramer {
            limits,
            pending: VecDeque::new(),
            head: Vec::new(),
            state: State::Head { line: 0 },
            completed: 0,
            keep_alive: true,
        }
    }

    /// A request went upstream (call before its first byte is written, so its response can
    /// never arrive first).
    pub fn request(&mut self, meta: RequestMeta) {
        if self.is_stopped() {
            return;
        }
        if self.pending.len() >= self.limits.max_outstanding {
            self.stop(ResponseError::TooManyOutstanding);
            return;
        }
        self.pending.push_back(meta);
    }

    /// Responses that ended so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Requests forwarded whose response has not ended.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Whether the connection may still carry another request.
    pub fn reusable(&self) -> bool {
        !self.is_stopped()
    }

    /// Why it is not reusable (`None` while it is).
    pub fn error(&self) -> Option<ResponseError> {
        match self.state {
            State::Stopped(e) => Some(e),
            _ => None,
        }
    }

    /// Between responses: no part of a response read and not finished.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Head { line: 0 }) && self.head.is_empty()
    }

    /// Reusable, at a boundary, and every forwarded request answered: the connection can go
    /// back to a pool.
    pub fn idle(&self) -> bool {
        self.reusable() && self.at_boundary() && self.pending.is_empty()
    }

    /// The connection will not be reused, for a reason found outside the framer (the upstream
    /// closed, a request was streamed past the inspection limit, the relay was cut).
    pub fn stop(&mut self, why: ResponseError) {
        if !self.is_stopped() {
            self.state = State::Stopped(why);
            self.head = Vec::new();
        }
    }

    fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped(_))
    }

    /// Feeds response bytes, in order.
    pub fn push(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match &mut self.state {
                State::Stopped(_) => return,
                State::Head { line } => {
                    if self.pending.is_empty() {
                        self.stop(ResponseError::Unsolicited);
                        return;
                    }
                    // Up to and including the next LF.
                    let (piece, end) = match memchr::memchr(b'\n', input) {
                        Some(i) => (&input[..=i], true),
                        None => (input, false),
                    };
                    input = &input[piece.len()..];
                    if self.head.len() + piece.len() > self.limits.max_head {
                        self.stop(ResponseError::HeadTooLarge);
                        return;
                    }
                    self.head.extend_from_slice(piece);
                    if !end {
                        *line += piece.len();
                        continue;
                    }
                    let this_line = *line + piece.len();
                    *line = 0;
                    // The line just ended is empty (LF or CRLF): the head is complete.
                    let empty = this_line == 1 || (this_line == 2 && self.head.ends_with(b"\r\n"));
                    if empty && self.head.len() > this_line {
                        let head = std::mem::take(&mut self.head);
                        if let Err(e) = self.on_head(&head) {
                            self.stop(e);
                            return;
                        }
                        // Keep the allocation for the next head.
                        self.head = head;
                        self.head.clear();
                    } else if empty {
                        // Blank lines before a status line: tolerated (RFC 9112 §2.2), but
                        // they are junk, not a response.
                        self.head.clear();
                    }
                }
                State::Length { remaining } => {
                    let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                    *remaining -= n as u64;
                    input = &input[n..];
                    if *remaining == 0 {
                        self.response_done();
                    }
                }
                State::Chunked(d) => match d.push(input, &mut |_| {}) {
                    Ok(ChunkedStatus::NeedMore) => return,
                    Ok(ChunkedStatus::Done { consumed }) => {
                        input = &input[consumed..];
                        self.response_done();
                    }
                    Err(_) => {
                        self.stop(ResponseError::BadChunked);
                        return;
                    }
                },
            }
        }
    }

    /// The current response ended.
    fn response_done(&mut self) {
        self.pending.pop_front();
        self.completed += 1;
        self.state = State::Head { line: 0 };
        if !self.keep_alive {
            self.stop(ResponseError::ConnectionClose);
        }
    }

    /// A complete head (final empty line included).
    fn on_head(&mut self, raw: &[u8]) -> Result<(), ResponseError> {
        let Some(&req) = self.pending.front() else {
            return Err(ResponseError::Unsolicited);
        };
        let mut lines = raw
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().ok_or(ResponseError::BadStatusLine)?;
        let (http10, status) = parse_status_line(status_line)?;
        let mut content_length: Option<u64> = None;
        let mut te_seen = false;
        let mut chunked_last = false;
        let mut close = false;
        let mut keep_alive_token = false;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                // obs-fold
                return Err(ResponseError::BadFieldLine);
            }
            let colon = memchr::memchr(b':', line).ok_or(ResponseError::BadFieldLine)?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|&b| crate::http1::is_tchar(b)) {
                return Err(ResponseError::BadFieldLine);
            }
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                for v in value.split(|&b| b == b',') {
                    let n = parse_length(trim(v)).ok_or(ResponseError::BadContentLength)?;
                    if content_length.is_some_and(|c| c != n) {
                        return Err(ResponseError::BadContentLength);
                    }
                    content_length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te_seen = true;
                for coding in value.split(|&b| b == b',') {
                    let coding = trim(coding);
                    if !coding.is_empty() {
                        chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                    }
                }
            } else if name.eq_ignore_ascii_case(b"connection") {
                for t in value.split(|&b| b == b',') {
                    let t = trim(t);
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        if (100..200).contains(&status) {
            if status == 101 {
                return Err(ResponseError::Tunnel);
            }
            // Interim: the final response to the same request follows.
            return Ok(());
        }
        self.keep_alive = req.keep_alive && !close && (!http10 || keep_alive_token);
        if req.connect && (200..300).contains(&status) {
            return Err(ResponseError::Tunnel);
        }
        if req.head || status == 204 || status == 304 {
            self.response_done();
            return Ok(());
        }
        if te_seen {
            if content_length.is_some() {
                return Err(ResponseError::AmbiguousFraming);
            }
            if !chunked_last {
                return Err(ResponseError::CloseDelimited);
            }
            self.state = State::Chunked(Box::new(ChunkedDecoder::new(ChunkedLimits::default())));
            return Ok(());
        }
        match content_length {
            Some(0) => self.response_done(),
            Some(n) => self.state = State::Length { remaining: n },
            None => return Err(ResponseError::CloseDelimited),
        }
        Ok(())
    }
}

/// `HTTP/1.x SSS[ reason]` → (HTTP/1.0, status).
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), ResponseError> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(ResponseError::BadStatusLine)?;
    let (&minor, rest) = rest.split_first().ok_or(ResponseError::BadStatusLine)?;
    let http10 = match minor {
        b'0' => true,
        b'1' => false,
        _ => return Err(ResponseError::BadStatusLine),
    };
    let rest = rest
        .strip_prefix(b" ")
        .ok_or(ResponseError::BadStatusLine)?;
    if rest.len() < 3 || (rest.len() > 3 && rest[3] != b' ') {
        return Err(ResponseError::BadStatusLine);
    }
    let mut status = 0u16;
    for &d in &rest[..3] {
        if !d.is_ascii_digit() {
            return Err(ResponseError::BadStatusLine);
        }
        status = status * 10 + u16::from(d - b'0');
    }
    if status < 100 {
        return Err(ResponseError::BadStatusLine);
    }
    Ok((http10, status))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GET: RequestMeta = RequestMeta {
        head: false,
        connect: false,
        keep_alive: true,
    };

    fn framer(reqs: &[RequestMeta]) -> ResponseFramer {
        let mut f = ResponseFramer::default();
        for &r in reqs {
            f.request(r);
        }
        f
    }

    fn run(reqs: &[RequestMeta], bytes: &[u8]) -> ResponseFramer {
        let mut f = framer(reqs);
        f.push(bytes);
        f
    }

    #[test]
    fn content_length_then_idle() {
        let f = run(&[GET], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(f.completed(), 1);
        assert!(f.idle());
        let f = run(&[GET], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell");
        assert_eq!(f.completed(), 0);
        assert!(f.reusable() && !f.at_boundary() && !f.idle());
    }

    #[test]
    fn pipelined_responses_in_order() {
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let f = run(&[GET, GET, GET], resp);
        assert_eq!(f.completed(), 2);
        assert_eq!(f.outstanding(), 1);
        assert!(f.reusable() && f.at_boundary() && !f.idle());
    }

    #[test]
    fn chunked_with_trailers() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: 1\r\n\r\n";
        let f = run(&[GET], resp);
        assert_eq!(f.completed(), 1);
        assert!(f.idle());
        let f = run(&[GET], &resp[..resp.len() - 2]);
        assert_eq!(f.completed(), 0);
        assert!(!f.at_boundary());
    }

    #[test]
    fn head_204_304_have_no_body() {
        let head = RequestMeta::new(b"HEAD", true);
        let f = run(&[head], b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        assert!(f.idle());
        for status in ["204 No Content", "304 Not Modified"] {
            let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            let f = run(&[GET], resp.as_bytes());
            assert_eq!(f.completed(), 1, "{status}");
            assert!(f.idle(), "{status}");
        }
    }

    #[test]
    fn interim_responses_then_final() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let f = run(&[GET], &resp[..25]);
        assert_eq!(f.completed(), 0);
        assert_eq!(f.outstanding(), 1);
        let f = run(&[GET], resp);
        assert_eq!(f.completed(), 1);
        assert!(f.idle());
    }

    #[test]
    fn switching_protocols_and_connect_are_tunnels() {
        let f = run(
            &[GET],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        );
        assert_eq!(f.error(), Some(ResponseError::Tunnel));
        let connect = RequestMeta::new(b"CONNECT", true);
        let f = run(&[connect], b"HTTP/1.1 200 Connection Established\r\n\r\n");
        assert_eq!(f.error(), Some(ResponseError::Tunnel));
        // A refused CONNECT is an ordinary response.
        let f = run(
            &[connect],
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(f.idle());
    }

    #[test]
    fn close_delimited_and_connection_close() {
        let f = run(&[GET], b"HTTP/1.1 200 OK\r\n\r\nbody until close");
        assert_eq!(f.error(), Some(ResponseError::CloseDelimited));
        let f = run(
            &[GET],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        );
        assert_eq!(f.error(), Some(ResponseError::CloseDelimited));
        let f = run(
            &[GET],
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!(f.completed(), 1);
        assert_eq!(f.error(), Some(ResponseError::ConnectionClose));
        let f = run(&[GET], b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(f.error(), Some(ResponseError::ConnectionClose));
        let f = run(
            &[GET],
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
        );
        assert!(f.idle());
        // The request asked to close.
        let f = run(
            &[RequestMeta::new(b"GET", false)],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!(f.error(), Some(ResponseError::ConnectionClose));
    }

    #[test]
    fn malformed_heads_are_named() {
        let cases: &[(&[u8], ResponseError)] = &[
            (b"HTTP/2 200 OK\r\n\r\n", ResponseError::BadStatusLine),
            (b"HTTP/1.1 2000 OK\r\n\r\n", ResponseError::BadStatusLine),
            (b"SSH-2.0-OpenSSH\r\n\r\n", ResponseError::BadStatusLine),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                ResponseError::BadFieldLine,
            ),
            (
                b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
                ResponseError::BadFieldLine,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ResponseError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                ResponseError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ResponseError::AmbiguousFraming,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ResponseError::BadChunked,
            ),
        ];
        for (resp, want) in cases {
            let f = run(&[GET], resp);
            assert_eq!(f.error(), Some(*want), "{}", String::from_utf8_lossy(resp));
        }
        // Equal duplicates are fine.
        let f = run(&[GET], b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok");
        assert!(f.idle());
    }

    #[test]
    fn oversized_head_and_unsolicited_bytes() {
        let mut f = framer(&[GET]);
        f.push(b"HTTP/1.1 200 OK\r\n");
        for _ in 0..10_000 {
            f.push(b"x-filler: aaaaaaaaaa\r\n");
        }
        assert_eq!(f.error(), Some(ResponseError::HeadTooLarge));
        let f = run(&[], b"220 smtp ready\r\n");
        assert_eq!(f.error(), Some(ResponseError::Unsolicited));
        let f = run(&[GET], b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra");
        assert_eq!(f.error(), Some(ResponseError::Unsolicited));
        let mut f = ResponseFramer::new(ResponseLimits {
            max_outstanding: 2,
            ..ResponseLimits::default()
        });
        for _ in 0..3 {
            f.request(GET);
        }
        assert_eq!(f.error(), Some(ResponseError::TooManyOutstanding));
    }

    #[test]
    fn stop_is_final() {
        let mut f = framer(&[GET]);
        f.stop(ResponseError::Closed);
        f.push(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(f.completed(), 0);
        assert!(!f.reusable());
    }

    fn summary(f: &ResponseFramer) -> (u64, usize, bool, bool, Option<ResponseError>) {
        (
            f.completed(),
            f.outstanding(),
            f.reusable(),
            f.at_boundary(),
            f.error(),
        )
    }

    fn response() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
            Just(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nt: 1\r\n\r\n".to_vec()),
            Just(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            Just(b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n".to_vec()),
            Just(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx".to_vec()),
            Just(b"HTTP/1.1 200 OK\r\n\r\nclose-delimited".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(
            responses in proptest::collection::vec(response(), 1..5),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let bytes: Vec<u8> = responses.concat();
            let reqs = vec![GET; responses.len()];
            let whole = run(&reqs, &bytes);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut f = framer(&reqs);
            let mut start = 0;
            for p in points.into_iter().chain([bytes.len()]) {
                f.push(&bytes[start..p]);
                start = p;
            }
            prop_assert_eq!(summary(&f), summary(&whole));
            // Byte by byte too.
            let mut f = framer(&reqs);
            for b in &bytes {
                f.push(std::slice::from_ref(b));
            }
            prop_assert_eq!(summary(&f), summary(&whole));
        }
    }
}
