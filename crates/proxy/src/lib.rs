#![forbid(unsafe_code)]
//! The `picket` binary's library: the offline scanner and pack tooling today; the sidecar
//! proxy builds on the same engine and inspectors.

pub mod packs;
pub mod scan;
