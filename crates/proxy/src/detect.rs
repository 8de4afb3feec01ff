//! Protocol detection on the first bytes a client sends.
//!
//! One decision per connection, made on as few bytes as possible: an HTTP/1 request line
//! begins with a method token and a space (an unknown token counts when its line carries an
//! HTTP version), HTTP/2 with prior knowledge with its fixed preface, TLS with a handshake
//! record header (`16 03 0x`). Anything else is opaque TCP.
//!
//! Server-speaks-first protocols (SMTP, MySQL, FTP…) do not stall here, and not because of a
//! timeout: picket connects the upstream as soon as it accepts and relays the server's bytes
//! from the start, so the greeting reaches the client while detection is still waiting for the
//! client's first bytes. Detection therefore never *falls back* to opaque on a timer: that
//! would let a client connect, wait, and then send an attack uninspected. The proxy only counts
//! and logs connections whose client stays silent longer than the detection timeout.
//!
//! The one exception is an upstream reached through mesh mTLS (`--mesh-upstream`): its
//! handshake names the protocol, so it is connected after detection, and a client silent at
//! the detection timeout gets an opaque (`picket/1+tcp`) tunnel then. That is not a way
//! around inspection: the picket on the other end detects and inspects the tunnel's bytes
//! again ([`crate::mesh`]).

use picket_dpi::http1::KNOWN_METHODS;

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c preface).
    H2,
    /// A TLS ClientHello.
    Tls,
    /// Anything else.
    Opaque,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2 => "h2",
            Protocol::Tls => "tls",
            Protocol::Opaque => "opaque",
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest method token we recognise, plus one for the space.
const MAX_METHOD: usize = 16;

/// How far an unknown upper-case token's line is read looking for ` HTTP/`: a request line
/// with an unknown method is still HTTP (and inspected, named as an invalid method), while
/// `EHLO mail.example.org` is SMTP.
const MAX_FIRST_LINE: usize = 8 << 10;

/// Decides from the first bytes, or returns `None` when more bytes are needed.
pub fn detect(first: &[u8]) -> Option<Protocol> {
    // Empty lines before a request line are legal HTTP/1 (RFC 9112 §2.2).
    let start = first
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let bytes = &first[start..];
    // Nothing but empty lines for a whole line's worth: the HTTP/1 path (which skips them
    // without holding them) decides, so neither a buffer nor an uninspected tunnel grows
    // from them.
    if bytes.is_empty() && start >= MAX_FIRST_LINE {
        return Some(Protocol::Http1);
    }
    let &b0 = bytes.first()?;
    if b0 == 0x16 {
        return match bytes.get(1) {
            None => None,
            Some(0x03) => Some(Protocol::Tls),
            Some(_) => Some(Protocol::Opaque),
        };
    }
    if start == 0 && (H2_PREFACE.starts_with(bytes) || bytes.starts_with(H2_PREFACE)) {
        return if bytes.len() >= H2_PREFACE.len() {
            Some(Protocol::H2)
        } else {
            None
        };
    }
    // A method: upper-case letters (and `-`, for WebDAV's VERSION-CONTROL), then a space.
    let mut token_end = None;
    for (i, &b) in bytes.iter().enumerate().take(MAX_METHOD) {
        if b == b' ' {
            token_end = Some(i);
            break;
        }
        if !(b.is_ascii_uppercase() || b == b'-' || b == b'_') {
            return Some(Protocol::Opaque);
        }
    }
    let Some(end) = token_end else {
        return if bytes.len() >= MAX_METHOD {
            Some(Protocol::Opaque)
        } else {
            None
        };
    };
    if end == 0 {
        return Some(Protocol::Opaque);
    }
    if KNOWN_METHODS.contains(&&bytes[..end]) {
        return Some(Protocol::Http1);
    }
    // An unknown token: HTTP only if its line carries an HTTP version.
    match bytes.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = &bytes[..nl];
            Some(if memchr::memmem::find(line, b" HTTP/").is_some() {
                Protocol::Http1
            } else {
                Protocol::Opaque
            })
        }
        None if bytes.len() >= MAX_FIRST_LINE => Some(Protocol::Opaque),
        None => None,
    }
}

/// Whether a connection's first bytes open a TLS handshake record (`16 03`), as [`detect`]
/// would call them [`Protocol::Tls`]; `None` while there are too few to tell.
pub fn is_tls_handshake(first: &[u8]) -> Option<bool> {
    match first {
        [] | [0x16] => None,
        [0x16, 0x03, ..] => Some(true),
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_empty_lines_go_to_http1_inspection() {
        assert_eq!(detect(&b"\r\n".repeat(64)), None);
        assert_eq!(
            detect(&b"\r\n".repeat(MAX_FIRST_LINE)),
            Some(Protocol::Http1)
        );
    }

    #[test]
    fn decides_on_few_bytes() {
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"GE"), None);
        assert_eq!(detect(b"GET "), Some(Protocol::Http1));
        assert_eq!(detect(b"\r\nPOST /x HTTP/1.1"), Some(Protocol::Http1));
        assert_eq!(detect(b"PROPFIND /"), Some(Protocol::Http1));
        assert_eq!(detect(b"PRI * HTTP/2"), None);
        assert_eq!(detect(H2_PREFACE), Some(Protocol::H2));
        assert_eq!(detect(b"\x16"), None);
        assert_eq!(detect(b"\x16\x03\x01\x02\x00"), Some(Protocol::Tls));
        assert_eq!(detect(b"EHLO mail.example.org\r\n"), Some(Protocol::Opaque));
        assert_eq!(detect(b"EHLO mail.exa"), None);
        assert_eq!(detect(b"FOO /x HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(
            detect(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
            Some(Protocol::Opaque)
        );
        assert_eq!(detect(b"*1\r\n$4\r\nPING\r\n"), Some(Protocol::Opaque));
        assert_eq!(detect(b"get / HTTP/1.1"), Some(Protocol::Opaque));
        assert_eq!(is_tls_handshake(b"\x16"), None);
        assert_eq!(is_tls_handshake(b"\x16\x03\x01"), Some(true));
        assert_eq!(is_tls_handshake(b"GET /"), Some(false));
        assert_eq!(is_tls_handshake(b"\x16\x00"), Some(false));
    }
}
