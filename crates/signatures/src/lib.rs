#![forbid(unsafe_code)]
pub mod anomaly;
pub mod engine;
pub mod matcher;
pub mod pack;
pub mod target;
pub mod transform;
pub use anomaly::Anomaly;
pub use engine::{Engine, Hit, PackInfo, RequestContext, Scratch};
pub use pack::{Action, Pack, PackError, Severity, Signature};
pub use target::{Target, TargetSet};
pub use transform::Transform;
