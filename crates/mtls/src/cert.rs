//! Reading certificates: PEM in and out, and the few facts picket needs from an X.509
//! certificate (serial, validity, SPIFFE id), read with `x509-parser`.
//!
//! Chain validation is never done here: that is webpki's job, inside the rustls verifiers
//! ([`crate::verify`]). This module only reads fields, and it reads them from certificates
//! that may come from a peer, so every step returns an error instead of panicking.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::spiffe::SpiffeId;

/// Encodes `der` as one PEM section with the given label, 64 base64 characters a line.
pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// PEM for a list of certificates, in order.
pub fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    certs.iter().map(|c| encode_pem("CERTIFICATE", c)).collect()
}

fn pem_error(e: pem::Error) -> Error {
    Error::BadPem(e.to_string())
}

/// Every `CERTIFICATE` section of `pem`, in order; an error if there is none.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(Error::MissingPem("CERTIFICATE"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in `pem`.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::MissingPem("PRIVATE KEY"),
        e => pem_error(e),
    })
}

/// PEM text or raw DER: PEM if the input starts (after white space) with `-----BEGIN`.
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| input[i..].starts_with(b"-----BEGIN"))
}

pub(crate) fn parse_x509<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::BadCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::BadCertificate(
            "trailing bytes after the certificate".into(),
        ));
    }
    Ok(cert)
}

fn system_time(unix_seconds: i64) -> Result<SystemTime> {
    let d = Duration::from_secs(unix_seconds.unsigned_abs());
    if unix_seconds >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
    .ok_or_else(|| Error::BadCertificate("validity date out of range".into()))
}

/// The SPIFFE id of a parsed workload certificate: its one URI SAN, validated.
pub(crate) fn spiffe_id_of_parsed(cert: &X509Certificate<'_>) -> Result<SpiffeId> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::BadCertificate(e.to_string()))?
        .ok_or(Error::NoSpiffeId)?;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    let uri = uris.next().ok_or(Error::NoSpiffeId)?;
    if uris.next().is_some() {
        return Err(Error::MultipleUriSans);
    }
    Ok(SpiffeId::parse(uri)?)
}

/// The SPIFFE id a workload certificate (DER) carries.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId> {
    spiffe_id_of_parsed(&parse_x509(cert)?)
}

/// What picket reads from a certificate: enough to log, compare and schedule renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The serial number's content octets, big-endian.
    pub serial: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The certificate's SPIFFE id, when it carries exactly one valid one.
    pub spiffe_id: Option<SpiffeId>,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
}

impl CertificateInfo {
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self> {
        let cert = parse_x509(der)?;
        let validity = cert.validity();
        Ok(CertificateInfo {
            serial: cert.raw_serial().to_vec(),
            not_before: system_time(validity.not_before.timestamp())?,
            not_after: system_time(validity.not_after.timestamp())?,
            spiffe_id: spiffe_id_of_parsed(&cert).ok(),
            is_ca: cert.is_ca(),
        })
    }

    /// The serial as lower-case hex, as `openssl x509 -serial` prints it.
    pub fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// When to renew: half-way through the validity period, so that a CA outage of up to
    /// half a lifetime (12 hours by default) goes unnoticed by the mesh.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life / 2
    }

    /// `Ok` if `now` is inside [not_before, not_after], else which side it falls on.
    pub fn check_validity(&self, now: SystemTime) -> Result<()> {
        if now < self.not_before {
            Err(Error::CertificateNotYetValid)
        } else if now > self.not_after {
            Err(Error::CertificateExpired)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spiffe::SpiffeIdError;

    #[test]
    fn pem_round_trip() {
        let der = CertificateDer::from((0u8..=200).collect::<Vec<u8>>());
        let pem = certs_to_pem(&[der.clone(), der.clone()]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(
            certs_from_pem(pem.as_bytes()).unwrap(),
            vec![der.clone(), der]
        );
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(
            certs_from_pem(b"no pem here"),
            Err(Error::MissingPem("CERTIFICATE"))
        ));
        assert!(matches!(
            certs_from_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(Error::BadPem(_))
        ));
        assert!(matches!(
            certs_from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Err(Error::BadPem(_))
        ));
        assert!(matches!(
            key_from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(Error::MissingPem("PRIVATE KEY"))
        ));
        assert!(matches!(
            CertificateInfo::parse(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
            Err(Error::BadCertificate(_))
        ));
    }

    #[test]
    fn validity_checks_and_renewal_time() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let info = CertificateInfo {
            serial: vec![0x4a, 0x01],
            not_before: t0,
            not_after: t0 + Duration::from_secs(86400),
            spiffe_id: None,
            is_ca: false,
        };
        assert_eq!(info.serial_hex(), "4a01");
        assert_eq!(info.renew_at(), t0 + Duration::from_secs(43200));
        assert!(info.check_validity(t0).is_ok());
        assert!(info.check_validity(t0 + Duration::from_secs(86400)).is_ok());
        assert!(matches!(
            info.check_validity(t0 - Duration::from_secs(1)),
            Err(Error::CertificateNotYetValid)
        ));
        assert!(matches!(
            info.check_validity(t0 + Duration::from_secs(86401)),
            Err(Error::CertificateExpired)
        ));
        assert!(system_time(-5).unwrap() < UNIX_EPOCH);
    }

    fn self_signed(sans: Vec<rcgen::SanType>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn spiffe_id_needs_exactly_one_valid_uri_san() {
        use rcgen::SanType;
        let uri = |s: &str| SanType::URI(s.try_into().unwrap());
        let dns = SanType::DnsName("cart.shop.svc".try_into().unwrap());
        let good = "spiffe://cluster.local/ns/shop/sa/cart";
        assert_eq!(
            spiffe_id_of(&self_signed(vec![dns.clone(), uri(good)])).unwrap(),
            SpiffeId::parse(good).unwrap()
        );
        assert!(matches!(
            spiffe_id_of(&self_signed(vec![])),
            Err(Error::NoSpiffeId)
        ));
        assert!(matches!(
            spiffe_id_of(&self_signed(vec![dns])),
            Err(Error::NoSpiffeId)
        ));
        assert!(matches!(
            spiffe_id_of(&self_signed(vec![
                uri(good),
                uri("spiffe://cluster.local/ns/kube-system/sa/admin")
            ])),
            Err(Error::MultipleUriSans)
        ));
        assert!(matches!(
            spiffe_id_of(&self_signed(vec![uri(
                "spiffe://cluster.local/ns/shop/sa/cart/x"
            )])),
            Err(Error::SpiffeId(SpiffeIdError::WrongPath))
        ));
        let info = CertificateInfo::parse(&self_signed(vec![uri(good)])).unwrap();
        assert_eq!(info.spiffe_id, Some(SpiffeId::parse(good).unwrap()));
        assert!(!info.is_ca);
    }

    #[test]
    fn pem_detection() {
        assert!(looks_like_pem(b"\n  -----BEGIN CERTIFICATE REQUEST-----"));
        assert!(!looks_like_pem(&[0x30, 0x82, 0x01]));
        assert!(!looks_like_pem(b""));
    }
}
