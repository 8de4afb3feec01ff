//! The interface between the extractors and the engine: every value an extractor finds in a
//! body is handed to a [`FieldSink`] with the [`Target`] it belongs to and its name, so the
//! extractors know nothing of signatures and can be fuzzed alone.

use picket_signatures::{Anomaly, Target};

/// Receives the values extracted from a request.
pub trait FieldSink {
    /// One extracted value. `name` is the field's name where the format has one (JSON key, XML
    /// element or attribute name, form field name, protobuf field path such as `1.3`), else empty.
    fn field(&mut self, target: Target, name: &[u8], value: &[u8]);

    /// A structural anomaly found while extracting (for example an XML entity-expansion bomb).
    fn anomaly(&mut self, anomaly: Anomaly) {
        let _ = anomaly;
    }
}

/// Bounds on the work an extractor does for one body, whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Maximum nesting depth (JSON containers, XML elements, protobuf messages, multipart
    /// nesting). Deeper input is reported as [`ExtractError::DepthExceeded`].
    pub max_depth: usize,
    /// Maximum number of values handed to the sink for one body.
    pub max_fields: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_depth: 64,
            max_fields: 100_000,
        }
    }
}

/// Why an extractor stopped before the end of its input. Whatever was emitted before the error
/// stands; the caller still scans the raw body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("malformed JSON at byte {offset}: {reason}")]
    Json { offset: usize, reason: &'static str },
    #[error("malformed XML at byte {offset}: {reason}")]
    Xml { offset: usize, reason: String },
    #[error("malformed multipart body: {reason}")]
    Multipart { reason: &'static str },
    #[error("malformed protobuf at byte {offset}: {reason}")]
    Protobuf { offset: usize, reason: &'static str },
    #[error("invalid gRPC framing: {reason}")]
    Grpc { reason: &'static str },
    #[error("nesting deeper than {limit}")]
    DepthExceeded { limit: usize },
    #[error("more than {limit} fields")]
    TooManyFields { limit: usize },
}

impl<F: FnMut(Target, &[u8], &[u8])> FieldSink for F {
    fn field(&mut self, target: Target, name: &[u8], value: &[u8]) {
        self(target, name, value)
    }
}
