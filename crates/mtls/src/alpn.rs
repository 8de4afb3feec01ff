//! ALPN on mesh connections: which picket protocol version, and which application protocol
//! the tunnel carries.
//!
//! # Scheme
//!
//! Every ALPN id on a mesh connection is `picket/<version>+<application>`:
//!
//! | id | carries |
//! |---|---|
//! | `picket/1+h2` | HTTP/2 (and gRPC), as the client workload sent it |
//! | `picket/1+http/1.1` | HTTP/1.x |
//! | `picket/1+tcp` | an opaque byte stream (a protocol picket does not inspect, or the workload's own TLS) |
//!
//! The outbound sidecar detects the application protocol on the plaintext the workload sent
//! and offers **exactly one** id; the inbound sidecar accepts every id of every version it
//! speaks ([`MeshProtocol::ALL`]). So:
//!
//! * the inbound sidecar knows what the tunnel carries without sniffing it again, and an
//!   HTTP/2 connection with prior knowledge needs no guessing;
//! * a client that is not a picket sidecar (no ALPN, or another protocol's) is recognised at
//!   once: [`negotiated_protocol`] fails with [`Error::MissingAlpn`] / [`Error::UnknownAlpn`]
//!   and the sidecar closes the connection; rustls itself refuses a client whose offer
//!   shares no id with the server's list (`no_application_protocol` alert);
//! * the version prefix lets `picket/2+…` be rolled out beside `picket/1+…`: a new server
//!   accepts both, a new client offers the version its peer is known to speak.
//!
//! The ALPN the *workload* negotiated inside its own TLS (if any) is not visible here: such
//! traffic is `picket/1+tcp`.
use rustls::CommonState;

use crate::error::{Error, Result};

/// The application protocol a mesh connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeshProtocol {
    Http2,
    Http1,
    Opaque,
}

impl MeshProtocol {
    /// Every protocol, in the server's preference order.
    pub const ALL: [MeshProtocol; 3] = [
        MeshProtocol::Http2,
        MeshProtocol::Http1,
        MeshProtocol::Opaque,
    ];

    /// The ALPN id on the mesh connection.
    pub fn alpn_id(self) -> &'static [u8] {
        match self {
            MeshProtocol::Http2 => b"picket/1+h2",
            MeshProtocol::Http1 => b"picket/1+http/1.1",
            MeshProtocol::Opaque => b"picket/1+tcp",
        }
    }

    /// The protocol an ALPN id names, if it is one of picket's.
    pub fn from_alpn(id: &[u8]) -> Option<Self> {
        MeshProtocol::ALL.into_iter().find(|p| p.alpn_id() == id)
    }

    /// The standard ALPN id of the application protocol (for the upstream connection, when
    /// the inbound sidecar speaks TLS to its workload), `None` for opaque streams.
    pub fn application_alpn(self) -> Option<&'static [u8]> {
        match self {
            MeshProtocol::Http2 => Some(b"h2"),
            MeshProtocol::Http1 => Some(b"http/1.1"),
            MeshProtocol::Opaque => None,
        }
    }
}

/// The mesh protocol a completed handshake agreed on.
pub fn negotiated_protocol(conn: &CommonState) -> Result<MeshProtocol> {
    let id = conn.alpn_protocol().ok_or(Error::MissingAlpn)?;
    MeshProtocol::from_alpn(id)
        .ok_or_else(|| Error::UnknownAlpn(String::from_utf8_lossy(id).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_distinct() {
        for p in MeshProtocol::ALL {
            assert_eq!(MeshProtocol::from_alpn(p.alpn_id()), Some(p));
            assert!(p.alpn_id().starts_with(b"picket/1+"));
        }
        assert_eq!(MeshProtocol::from_alpn(b"h2"), None);
        assert_eq!(MeshProtocol::from_alpn(b"picket/1"), None);
        assert_eq!(MeshProtocol::from_alpn(b"picket/2+h2"), None);
        assert_eq!(MeshProtocol::Http2.application_alpn(), Some(&b"h2"[..]));
        assert_eq!(MeshProtocol::Opaque.application_alpn(), None);
    }
}
