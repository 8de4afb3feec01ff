#![forbid(unsafe_code)]
//! picket's inspectors: everything between raw request bytes and the signature engine, with no
//! I/O and no async runtime, so that every parser can be fuzzed and benchmarked alone.
//!
//! A request travels through these modules in one direction:
//!
//! * [`stream`] finds requests in an HTTP/1 byte stream (keep-alive, pipelining) whatever way
//!   the bytes are cut, using [`http1`] for heads (parsed from the raw bytes, with every
//!   malformation named as an [`Anomaly`](picket_signatures::Anomaly)) and [`chunked`] for
//!   chunked bodies;
//! * [`inspect`] is the per-request state (phases: head, body chunks, finish → [`Verdict`]):
//!   it decides which part of a request is scanned under which target, decodes content
//!   codings through [`decode`], and hands bodies to the extractors [`json`], [`xml`],
//!   [`form`], [`multipart`], [`grpc`] and [`protobuf`] through the [`FieldSink`] interface.
//!
//! One module looks the other way: [`response`] follows where HTTP/1 *responses* end on an
//! upstream connection (it inspects nothing), so the proxy knows when the connection can be
//! reused.
//!
//! Every buffer a peer can grow is bounded by [`InspectConfig`]; every malformed input is a
//! named anomaly or a typed error, never a panic.

pub mod chunked;
pub mod decode;
pub mod fields;
pub mod form;
pub mod grpc;
pub mod http1;
pub mod json;
pub mod multipart;
pub mod protobuf;
pub mod response;
pub mod xml;

pub mod inspect;
pub mod stream;

pub use fields::{ExtractError, ExtractLimits, FieldSink};
pub use inspect::{Decision, InspectConfig, OverLimit, RequestInspection, Verdict};
pub use response::{RequestMeta, ResponseError, ResponseFramer, ResponseLimits};
pub use stream::{inspect_bytes, AwaitingBody, Http1Inspector, InspectedRequest, StreamState};
