//! Protocol anomalies: malformed requests that the inspectors detect structurally rather than by
//! pattern. Each one is named in a pack by an `anomaly = "NAME"` signature, so an operator can
//! disable it or turn it into an alert like any other signature.
//!
//! Names follow Suricata's libhtp HTTP events where one exists (`DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST`,
//! `INVALID_REQUEST_FIELD_FOLDING`, …), so operators recognise them; the rest are named in the same
//! style.

use std::fmt;

macro_rules! anomalies {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// A named protocol anomaly.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Anomaly {
            $( $(#[$doc])* $variant, )*
        }

        impl Anomaly {
            /// Every anomaly, in declaration order.
            pub const ALL: &'static [Anomaly] = &[ $( Anomaly::$variant, )* ];

            /// The name used in packs, logs and `picket scan` output.
            pub fn name(self) -> &'static str {
                match self { $( Anomaly::$variant => $name, )* }
            }

            /// Looks an anomaly up by its pack name.
            pub fn from_name(s: &str) -> Option<Anomaly> {
                match s { $( $name => Some(Anomaly::$variant), )* _ => None }
            }
        }
    };
}

anomalies! {
    /// Both Content-Length and Transfer-Encoding are present (request smuggling, CL.TE / TE.CL).
    ContentLengthAndTransferEncoding => "REQUEST_CONTENT_LENGTH_TRANSFER_ENCODING",
    /// More than one Content-Length field (or a comma list of lengths).
    DuplicateContentLength => "DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST",
    /// A Content-Length that is not a plain decimal number (sign, spaces inside, hex, overflow).
    InvalidContentLength => "INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST",
    /// Transfer-Encoding other than a single, final, lowercase `chunked` (`chunked, identity`,
    /// `xchunked`, ` chunked`, `Chunked`, repeated fields, or any TE on HTTP/1.0).
    InvalidTransferEncoding => "INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST",
    /// A header continued on the next line by leading whitespace (obs-fold).
    ObsFold => "INVALID_REQUEST_FIELD_FOLDING",
    /// A CR not followed by LF in the head.
    BareCr => "REQUEST_BARE_CR",
    /// A line of the head ended by LF alone.
    BareLf => "REQUEST_BARE_LF",
    /// A NUL byte in the head.
    NulByte => "REQUEST_NUL_BYTE",
    /// Another control byte (other than HTAB) in the head.
    ControlCharacter => "REQUEST_CONTROL_CHARACTER",
    /// A header name with a byte that is not a token character.
    InvalidHeaderName => "REQUEST_HEADER_INVALID",
    /// A header line without a colon.
    MissingColon => "REQUEST_FIELD_MISSING_COLON",
    /// Whitespace between a header name and its colon.
    WhitespaceBeforeColon => "REQUEST_HEADER_WHITESPACE_BEFORE_COLON",
    /// The request line is longer than the configured limit.
    RequestLineTooLong => "REQUEST_LINE_TOO_LONG",
    /// A header line is longer than the configured limit.
    HeaderLineTooLong => "REQUEST_FIELD_TOO_LONG",
    /// More header fields than the configured limit.
    TooManyHeaders => "REQUEST_TOO_MANY_HEADERS",
    /// The head (request line and headers) is larger than the configured limit.
    HeadTooLarge => "REQUEST_HEAD_TOO_LARGE",
    /// The request line is not `METHOD SP TARGET SP VERSION`.
    InvalidRequestLine => "REQUEST_LINE_INVALID",
    /// The method is not a token, or not one of the known methods.
    InvalidMethod => "REQUEST_METHOD_INVALID",
    /// The version is not HTTP/1.0 or HTTP/1.1.
    InvalidVersion => "REQUEST_PROTOCOL_INVALID",
    /// HTTP/1.1 request without a Host field.
    MissingHost => "MISSING_HOST_HEADER",
    /// Several Host fields, or a Host that disagrees with an absolute-form target.
    AmbiguousHost => "HOST_HEADER_AMBIGUOUS",
    /// A `%` in the path or query not followed by two hex digits.
    InvalidPercentEncoding => "URI_INVALID_PERCENT_ENCODING",
    /// An overlong or otherwise invalid UTF-8 sequence in the percent-decoded path (`%c0%af`).
    OverlongUtf8 => "URI_OVERLONG_UTF8",
    /// A chunk-size line that is not hex, too long, or overflows.
    InvalidChunkLength => "INVALID_REQUEST_CHUNK_LEN",
    /// A Content-Encoding the inspector cannot decode, or a stream that fails to decode.
    ContentDecodingFailed => "GZIP_DECOMPRESSION_FAILED",
    /// Decompressed output over the size or ratio limit (a decompression bomb).
    CompressionBomb => "COMPRESSION_BOMB",
    /// More than the allowed number of stacked Content-Encodings.
    TooManyEncodingLayers => "TOO_MANY_ENCODING_LAYERS",
    /// The body is larger than the inspection limit; the rest was not inspected.
    BodyOverInspectionLimit => "REQUEST_BODY_OVER_INSPECTION_LIMIT",
    /// A body that claims a structured type (JSON, XML, multipart, gRPC) but does not parse.
    MalformedBody => "REQUEST_BODY_MALFORMED",
    /// An XML document with an entity declaration that references other entities (expansion bomb).
    XmlEntityExpansion => "XML_ENTITY_EXPANSION",
    /// A gRPC message over the configured size, or a truncated length-prefixed frame.
    GrpcFrameInvalid => "GRPC_FRAME_INVALID",
    /// The stream ended in the middle of the head or the body.
    Truncated => "REQUEST_LINE_INCOMPLETE",
}

impl Anomaly {
    /// Where in the request the anomaly is, as a log location.
    pub fn location(self) -> &'static str {
        match self {
            Anomaly::InvalidChunkLength => "body:chunked",
            Anomaly::ContentDecodingFailed
            | Anomaly::CompressionBomb
            | Anomaly::TooManyEncodingLayers => "body:content-encoding",
            Anomaly::BodyOverInspectionLimit | Anomaly::MalformedBody => "body",
            Anomaly::XmlEntityExpansion => "body:xml:doctype",
            Anomaly::GrpcFrameInvalid => "grpc:frame",
            Anomaly::Truncated => "stream",
            _ => "head",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &a in Anomaly::ALL {
            assert!(seen.insert(a.name()), "duplicate name {}", a.name());
            assert_eq!(Anomaly::from_name(a.name()), Some(a));
        }
        assert_eq!(Anomaly::from_name("NOT_AN_ANOMALY"), None);
    }
}
