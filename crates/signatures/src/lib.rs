#![forbid(unsafe_code)]
//! picket's signatures: the pack format, and the engine a pack compiles into. No I/O.
//!
//! * [`pack`] parses and validates a TOML pack (every problem located as `file:line`), with
//!   exclusions and overlays for tuning;
//! * [`transform`] computes the views a value is matched in (URL and HTML decoding, the shell
//!   and cmd command-line normal forms, base64, …);
//! * [`matcher`] finds every literal of every signature in one pass (a hashed four-byte window
//!   filter, nearly flat in the number of literals);
//! * [`engine`] ties them together: per value, the distinct views it needs, one prefilter pass
//!   per distinct view, regex confirmation only for candidates, exclusions last;
//! * [`signing`] signs and verifies packs (ed25519, detached), reads and writes key and
//!   signature files, and holds the [`PackPolicy`] a sidecar applies before loading a pack;
//! * [`import`] converts Suricata/Snort HTTP rules and ModSecurity phrase files into pack
//!   signatures, with a report of what could not be converted and why;
//! * [`target`] and [`anomaly`] name where a value came from and the protocol anomalies the
//!   inspectors in `picket-dpi` report.
pub mod anomaly;
pub mod engine;
pub mod import;
pub mod matcher;
pub mod pack;
pub mod signing;
pub mod target;
pub mod transform;
pub use anomaly::Anomaly;
pub use engine::{Engine, Hit, PackInfo, RequestContext, Scratch};
pub use pack::{Action, Pack, PackError, Severity, Signature};
pub use signing::{
    KeyId, PackPolicy, PackSignature, PackVersion, PolicyError, PublicKey, SecretKey,
};
pub use target::{Target, TargetSet};
pub use transform::Transform;
