#![forbid(unsafe_code)]
//! picket's inspectors: no I/O, no tokio.

pub mod chunked;
pub mod decode;
pub mod fields;
pub mod form;
pub mod grpc;
pub mod http1;
pub mod json;
pub mod multipart;
pub mod protobuf;
pub mod xml;

pub use fields::{ExtractError, ExtractLimits, FieldSink};
pub mod inspect;
pub mod stream;

pub use inspect::{Decision, InspectConfig, OverLimit, RequestInspection, Verdict};
pub use stream::{inspect_bytes, Http1Inspector, InspectedRequest};
