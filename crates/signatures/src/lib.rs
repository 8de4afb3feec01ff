#![forbid(unsafe_code)]
pub mod anomaly;
pub mod target;
pub mod transform;
pub use anomaly::Anomaly;
pub use target::{Target, TargetSet};
pub use transform::Transform;
