#![forbid(unsafe_code)]
//! The `picket` binary's library: the proxy's gateway mode ([`gateway`]) with its block log
//! ([`blocklog`]), the offline scanner ([`scan`]) and pack loading ([`packs`]), all on the
//! same engine and inspectors.

pub mod admin;
pub mod authz;
pub mod blocklog;
pub mod conn_io;
pub mod detect;
pub mod gateway;
pub mod http2;
pub mod http_client;
pub mod identity;
pub mod mesh;
pub mod mesh_probe;
pub mod metrics;
pub mod packs;
pub mod pool;
pub mod prefixed;
pub mod probes;
pub mod reload;
pub mod scan;
