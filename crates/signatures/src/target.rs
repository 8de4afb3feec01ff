//! Where in a request a piece of inspected data came from.
//!
//! A signature lists the targets it looks at; the inspectors in `picket-dpi` tag every value they
//! hand to the engine with one. The pack spells targets as the lowercase names below
//! (`header:NAME` narrows `header` to one header name).

use std::fmt;

/// The kind of place a scanned value comes from. Kept small and `Copy` so that a signature's
/// target set is a bit mask ([`TargetSet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The whole request line as sent (`GET /a?b HTTP/1.1`).
    RequestLine,
    /// The method token.
    Method,
    /// The path part of the request target (no query).
    Path,
    /// The whole query string (after `?`).
    Query,
    /// One query parameter value (name given alongside).
    Arg,
    /// A header value (name given alongside, lowercased).
    Header,
    /// One cookie value (name given alongside).
    Cookie,
    /// The decoded body as a whole (after transfer and content decoding).
    Body,
    /// A urlencoded form field value.
    FormField,
    /// A multipart part: its content, its filename, its part headers.
    MultipartPart,
    /// XML character data (text and CDATA).
    XmlText,
    /// An XML attribute value.
    XmlAttribute,
    /// An XML DOCTYPE declaration, internal subset included.
    XmlDoctype,
    /// An XML processing instruction.
    XmlPi,
    /// A JSON string: keys and string values, escapes decoded.
    JsonString,
    /// A string found in a protobuf message (gRPC), nested messages included.
    GrpcString,
}

impl Target {
    /// Every target, in mask-bit order.
    pub const ALL: [Target; 16] = [
        Target::RequestLine,
        Target::Method,
        Target::Path,
        Target::Query,
        Target::Arg,
        Target::Header,
        Target::Cookie,
        Target::Body,
        Target::FormField,
        Target::MultipartPart,
        Target::XmlText,
        Target::XmlAttribute,
        Target::XmlDoctype,
        Target::XmlPi,
        Target::JsonString,
        Target::GrpcString,
    ];

    /// The name used in pack files.
    pub fn pack_name(self) -> &'static str {
        match self {
            Target::RequestLine => "request_line",
            Target::Method => "method",
            Target::Path => "path",
            Target::Query => "query",
            Target::Arg => "arg",
            Target::Header => "header",
            Target::Cookie => "cookie",
            Target::Body => "body",
            Target::FormField => "form",
            Target::MultipartPart => "multipart",
            Target::XmlText => "xml:text",
            Target::XmlAttribute => "xml:attribute",
            Target::XmlDoctype => "xml:doctype",
            Target::XmlPi => "xml:pi",
            Target::JsonString => "json:string",
            Target::GrpcString => "grpc:string",
        }
    }

    /// Parses a pack name (without any `:NAME` suffix for headers).
    pub fn from_pack_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.pack_name() == s)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Writes the location string used in block logs and `picket scan` output, e.g.
    /// `header:user-agent`, `body:xml:text`, `grpc:message`.
    pub fn write_location(self, name: &[u8], out: &mut String) {
        let named = |prefix: &str, out: &mut String| {
            out.push_str(prefix);
            out.push(':');
            push_name(name, out);
        };
        match self {
            Target::Arg => named("arg", out),
            Target::Header => named("header", out),
            Target::Cookie => named("cookie", out),
            Target::FormField => named("body:form", out),
            Target::MultipartPart => named("body:multipart", out),
            Target::XmlText => out.push_str("body:xml:text"),
            Target::XmlAttribute => out.push_str("body:xml:attribute"),
            Target::XmlDoctype => out.push_str("body:xml:doctype"),
            Target::XmlPi => out.push_str("body:xml:pi"),
            Target::JsonString => out.push_str("body:json:string"),
            Target::GrpcString => out.push_str("grpc:message"),
            other => out.push_str(other.pack_name()),
        }
    }
}

/// Field names come from the peer: keep them short and printable in logs.
fn push_name(name: &[u8], out: &mut String) {
    const MAX: usize = 64;
    for &b in name.iter().take(MAX) {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push('?');
        }
    }
    if name.len() > MAX {
        out.push('…');
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pack_name())
    }
}

/// A set of [`Target`]s as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TargetSet(u32);

impl TargetSet {
    pub const EMPTY: TargetSet = TargetSet(0);

    pub fn insert(&mut self, t: Target) {
        self.0 |= t.bit();
    }

    pub fn contains(self, t: Target) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Target> {
        Target::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl FromIterator<Target> for TargetSet {
    fn from_iter<I: IntoIterator<Item = Target>>(iter: I) -> Self {
        let mut s = TargetSet::EMPTY;
        for t in iter {
            s.insert(t);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names_round_trip() {
        for t in Target::ALL {
            assert_eq!(Target::from_pack_name(t.pack_name()), Some(t));
        }
        assert_eq!(Target::from_pack_name("headers"), None);
    }

    #[test]
    fn location_strings() {
        let mut s = String::new();
        Target::Header.write_location(b"user-agent", &mut s);
        assert_eq!(s, "header:user-agent");
        s.clear();
        Target::GrpcString.write_location(b"3", &mut s);
        assert_eq!(s, "grpc:message");
        s.clear();
        Target::Cookie.write_location(b"a b", &mut s);
        assert_eq!(s, "cookie:a?b");
    }
}
