//! The mesh CA: a root, an issuing intermediate, and issuance of short-lived workload
//! certificates from certificate signing requests.
//!
//! # Why this shape
//!
//! * **Root + intermediate.** Workload certificates are signed by the intermediate; sidecars
//!   trust only the root. The intermediate's key is the one the identity service must keep
//!   online (in a Kubernetes Secret), so it can be replaced ([`MeshCa::rotate_intermediate`])
//!   without touching any sidecar's trust bundle; the root key can be kept out of the cluster
//!   ([`CaPem::root_key`] is optional).
//! * **Issuance from a CSR.** The workload generates its key ([`generate_key_and_csr`]) and
//!   sends only the CSR, so its private key never leaves the pod. The CSR proves possession of
//!   the key (its signature is checked); everything else it asks for (subject, SANs, key
//!   usages, extensions) is ignored: [`MeshCa::issue_from_csr`] writes the identity the
//!   *caller* names, which the identity service takes from a validated ServiceAccount token.
//!   A CSR cannot talk its way into another identity. The identity service goes one step
//!   further with [`MeshCa::issue_matching_csr`]: a CSR that asks for any other name is
//!   refused ([`Error::CsrIdentityMismatch`]), with the CSR parsed once for both.
//! * **Short lifetimes.** Workload certificates live 24 hours by default
//!   ([`DEFAULT_WORKLOAD_LIFETIME`]) and carry no revocation information: a stolen key is
//!   useful for at most a day. The cost is that every sidecar renews about twice a day, and
//!   a CA outage longer than a certificate's remaining life breaks the mesh (so renew at half
//!   life). `not_before` is back-dated by [`CLOCK_SKEW_ALLOWANCE`] so a peer whose clock is a
//!   little behind does not refuse a certificate just issued.
//!
//! Keys are ECDSA P-256 (fast to sign and verify with ring, small certificates); the CA signs
//! with ring through rcgen.
//!
//! Workload certificates follow the SPIFFE X.509-SVID profile: exactly one URI SAN (the
//! [`SpiffeId`]), not a CA, key usage `digitalSignature`, extended key usages `serverAuth`
//! and `clientAuth` (every sidecar is both). The CA certificates carry the trust domain as
//! `spiffe://<trust-domain>`, which is how [`MeshCa::from_pem`] recovers it.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::cert::CertificateInfo;
use crate::cert::{certs_from_pem, certs_to_pem, encode_pem, looks_like_pem, parse_x509};
use crate::error::{Error, Result};
use crate::identity::TrustBundle;
use crate::spiffe::{SpiffeId, TrustDomain};

/// Default lifetime of a workload certificate.
pub const DEFAULT_WORKLOAD_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Default lifetime of the issuing intermediate.
pub const DEFAULT_INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Default lifetime of the root.
pub const DEFAULT_ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far `not_before` is back-dated, for peers whose clocks lag.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);
/// The smallest RSA modulus accepted in a CSR.
pub const MIN_RSA_BITS: usize = 2048;

/// Lifetimes of a new CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOptions {
    pub root_lifetime: Duration,
    pub intermediate_lifetime: Duration,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            root_lifetime: DEFAULT_ROOT_LIFETIME,
            intermediate_lifetime: DEFAULT_INTERMEDIATE_LIFETIME,
        }
    }
}

/// The CA as PEM text, one field per key of the Kubernetes Secret that holds it
/// (suggested keys: `root-cert.pem`, `root-key.pem`, `ca-cert.pem`, `ca-key.pem`,
/// `extra-roots.pem`).
#[derive(Clone, PartialEq, Eq)]
pub struct CaPem {
    pub root_cert: String,
    /// Needed only to issue a new intermediate; may be kept out of the cluster.
    pub root_key: Option<String>,
    pub intermediate_cert: String,
    pub intermediate_key: String,
    /// Other roots still trusted (a root being rotated out or in), possibly empty.
    pub extra_roots: String,
}

impl std::fmt::Debug for CaPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPem")
            .field("root_cert", &self.root_cert)
            .field("root_key", &self.root_key.as_ref().map(|_| "[elided]"))
            .field("intermediate_cert", &self.intermediate_cert)
            .field("intermediate_key", &"[elided]")
            .field("extra_roots", &self.extra_roots)
            .finish()
    }
}

/// A workload certificate just issued, with the intermediate that completes its chain.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub spiffe_id: SpiffeId,
    /// Serial, validity and identity of the leaf.
    pub info: CertificateInfo,
    /// `[leaf, intermediate]`, never empty.
    chain: Vec<CertificateDer<'static>>,
}

impl IssuedCertificate {
    /// The chain the workload presents in its handshakes: `[leaf, intermediate]`.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn leaf(&self) -> &CertificateDer<'static> {
        // Only `issue` builds this type, always with two certificates.
        &self.chain[0]
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        certs_to_pem(&self.chain)
    }
}

/// A workload's freshly generated key and the CSR for it (see [`generate_key_and_csr`]).
pub struct WorkloadCsr {
    /// The private key, PKCS#8 PEM. Keep it in the pod.
    pub key_pem: String,
    pub csr_pem: String,
    pub csr_der: Vec<u8>,
}

impl std::fmt::Debug for WorkloadCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadCsr")
            .field("key_pem", &"[elided]")
            .field("csr_pem", &self.csr_pem)
            .finish()
    }
}

/// A TLS server certificate for DNS names, issued by the mesh CA with a key generated here
/// (see [`MeshCa::issue_server_certificate`]): the identity service's own serving
/// certificate.
pub struct ServerCertificate {
    /// `[leaf, intermediate]`.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    /// Serial and validity of the leaf.
    pub info: CertificateInfo,
}

impl ServerCertificate {
    /// The private key (PKCS#8 DER).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        certs_to_pem(&self.chain)
    }

    /// When to re-issue: half-way through the validity period
    /// ([`CertificateInfo::renew_at`]).
    pub fn renew_at(&self) -> SystemTime {
        self.info.renew_at()
    }
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain", &self.chain.len())
            .field("key", &"[elided]")
            .field("not_before", &self.info.not_before)
            .field("not_after", &self.info.not_after)
            .finish()
    }
}

/// The names a CSR asks for (see [`csr_requested_names`]). The CA never writes them into a
/// certificate; the identity service compares them with the identity it established, to
/// refuse a request that asks for someone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrNames {
    /// URI SANs, as written.
    pub uris: Vec<String>,
    /// Every other SAN (DNS name, IP address, e-mail, …), as `x509-parser` prints it
    /// (`DNSName(a.example)`).
    pub other_sans: Vec<String>,
    /// The subject's common names.
    pub common_names: Vec<String>,
}

impl CsrNames {
    /// Whether the CSR asks for nothing but `id`: every URI SAN is `id`, there is no other
    /// SAN, and a common name, if any, that looks like a SPIFFE id is `id`.
    pub fn only_names(&self, id: &SpiffeId) -> bool {
        self.uris.iter().all(|u| u == id.as_str())
            && self.other_sans.is_empty()
            && self
                .common_names
                .iter()
                .all(|cn| !cn.to_ascii_lowercase().starts_with("spiffe:") || cn == id.as_str())
    }

    /// Every name asked for, for a message: the URI SANs, the other SANs, then `CN=<name>`
    /// for each common name, separated by `, `.
    pub fn describe(&self) -> String {
        let mut asked: Vec<String> = self.uris.clone();
        asked.extend(self.other_sans.iter().cloned());
        asked.extend(self.common_names.iter().map(|c| format!("CN={c}")));
        asked.join(", ")
    }
}

/// Parses a CSR (PEM or DER), checks its self-signature, and returns the names it asks for.
/// (To check the names and issue in one go, with one parse, see
/// [`MeshCa::issue_matching_csr`].)
pub fn csr_requested_names(csr: &[u8]) -> Result<CsrNames> {
    let der = csr_der(csr)?;
    Ok(names_of(&parse_csr(&der)?))
}

/// The names a parsed CSR asks for.
fn names_of(req: &X509CertificationRequest<'_>) -> CsrNames {
    let mut names = CsrNames::default();
    for cn in req.certification_request_info.subject.iter_common_name() {
        names.common_names.push(
            cn.as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| String::from_utf8_lossy(cn.as_slice()).into_owned()),
        );
    }
    if let Some(extensions) = req.requested_extensions() {
        for ext in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(u) => names.uris.push((*u).to_string()),
                        other => names.other_sans.push(other.to_string()),
                    }
                }
            }
        }
    }
    names
}

/// The workload side of issuance: a new ECDSA P-256 key and a CSR signed with it.
///
/// `requested` only decorates the CSR (as a URI SAN, for logs and humans): the CA ignores it
/// and issues for the identity it has established itself.
pub fn generate_key_and_csr(requested: Option<&SpiffeId>) -> Result<WorkloadCsr> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(id) = requested {
        params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    }
    let csr = params.serialize_request(&key)?;
    Ok(WorkloadCsr {
        key_pem: key.serialize_pem(),
        csr_pem: csr.pem()?,
        csr_der: csr.der().to_vec(),
    })
}

/// The mesh certificate authority. See the module docs.
#[derive(Debug)]
pub struct MeshCa {
    trust_domain: TrustDomain,
    root: CertificateDer<'static>,
    root_issuer: Option<Issuer<'static, KeyPair>>,
    intermediate: CertificateDer<'static>,
    intermediate_not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl MeshCa {
    /// A new root and intermediate for `trust_domain`.
    pub fn generate(trust_domain: TrustDomain, options: &CaOptions) -> Result<Self> {
        let now = SystemTime::now();
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let root_params = ca_params(
            &trust_domain,
            "picket mesh root CA",
            BasicConstraints::Constrained(1),
            now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now),
            add(now, options.root_lifetime)?,
        )?;
        let root = root_params.self_signed(&root_key)?.der().clone();
        let root_issuer = Issuer::new(root_params, root_key);
        let (intermediate, issuer) =
            new_intermediate(&trust_domain, &root_issuer, options.intermediate_lifetime)?;
        let intermediate_not_after = CertificateInfo::parse(&intermediate)?.not_after;
        Ok(MeshCa {
            trust_domain,
            root,
            root_issuer: Some(root_issuer),
            intermediate,
            intermediate_not_after,
            issuer,
            extra_roots: Vec::new(),
        })
    }

    /// Loads a CA saved with [`MeshCa::to_pem`], checking that each key belongs to its
    /// certificate, that both certificates are CAs and that the root signed the intermediate.
    pub fn from_pem(pem: &CaPem) -> Result<Self> {
        let root = single_cert(&pem.root_cert, "root")?;
        let intermediate = single_cert(&pem.intermediate_cert, "intermediate")?;
        let root_x = parse_x509(&root)?;
        let int_x = parse_x509(&intermediate)?;
        if !root_x.is_ca() || !int_x.is_ca() {
            return Err(Error::InvalidCa(
                "root and intermediate must both be CA certificates".into(),
            ));
        }
        int_x
            .verify_signature(Some(root_x.public_key()))
            .map_err(|_| Error::InvalidCa("the root did not sign the intermediate".into()))?;
        let trust_domain = trust_domain_of(&int_x)?;
        if trust_domain_of(&root_x)? != trust_domain {
            return Err(Error::InvalidCa(
                "root and intermediate name different trust domains".into(),
            ));
        }
        let int_key = load_key(&pem.intermediate_key, int_x.public_key().raw)?;
        let issuer = Issuer::from_ca_cert_der(&intermediate, int_key)?;
        let root_issuer = match &pem.root_key {
            Some(k) => Some(Issuer::from_ca_cert_der(
                &root,
                load_key(k, root_x.public_key().raw)?,
            )?),
            None => None,
        };
        let extra_roots = if pem.extra_roots.trim().is_empty() {
            Vec::new()
        } else {
            certs_from_pem(pem.extra_roots.as_bytes())?
        };
        let intermediate_not_after = CertificateInfo::parse(&intermediate)?.not_after;
        Ok(MeshCa {
            trust_domain,
            root,
            root_issuer,
            intermediate,
            intermediate_not_after,
            issuer,
            extra_roots,
        })
    }

    /// The CA as PEM text (private keys included: store it as a Secret).
    pub fn to_pem(&self) -> CaPem {
        CaPem {
            root_cert: encode_pem("CERTIFICATE", &self.root),
            root_key: self.root_issuer.as_ref().map(|i| i.key().serialize_pem()),
            intermediate_cert: encode_pem("CERTIFICATE", &self.intermediate),
            intermediate_key: self.issuer.key().serialize_pem(),
            extra_roots: certs_to_pem(&self.extra_roots),
        }
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    pub fn intermediate(&self) -> &CertificateDer<'static> {
        &self.intermediate
    }

    /// The roots sidecars should trust: this CA's root, then the extra roots.
    pub fn trust_bundle(&self) -> Result<TrustBundle> {
        let mut roots = vec![self.root.clone()];
        roots.extend(self.extra_roots.iter().cloned());
        TrustBundle::new(roots)
    }

    /// Also trust `root` (the other root during a root rotation).
    pub fn add_extra_root(&mut self, root: CertificateDer<'static>) {
        if !self.extra_roots.contains(&root) && root != self.root {
            self.extra_roots.push(root);
        }
    }

    /// Replaces the intermediate with a new one (new key) signed by the root. Certificates
    /// issued before keep verifying as long as their chain still holds the old intermediate,
    /// which they carry themselves. Needs the root key.
    pub fn rotate_intermediate(&mut self, lifetime: Duration) -> Result<()> {
        let root_issuer = self
            .root_issuer
            .as_ref()
            .ok_or_else(|| Error::InvalidCa("the root key is not loaded".into()))?;
        let (intermediate, issuer) = new_intermediate(&self.trust_domain, root_issuer, lifetime)?;
        self.intermediate_not_after = CertificateInfo::parse(&intermediate)?.not_after;
        self.intermediate = intermediate;
        self.issuer = issuer;
        Ok(())
    }

    /// Issues a workload certificate for `id`, valid from now (less
    /// [`CLOCK_SKEW_ALLOWANCE`]) for `lifetime`, for the key in `csr` (PEM or DER).
    ///
    /// Only the CSR's public key and signature are used; see the module docs. The lifetime is
    /// cut to the intermediate's own expiry.
    pub fn issue_from_csr(
        &self,
        csr: &[u8],
        id: &SpiffeId,
        lifetime: Duration,
    ) -> Result<IssuedCertificate> {
        self.issue_for(csr, id, lifetime, CsrNameCheck::Ignore)
    }

    /// Like [`MeshCa::issue_from_csr`], but first refuses a CSR that asks for any name other
    /// than `id` ([`CsrNames::only_names`]) with [`Error::CsrIdentityMismatch`]; a CSR that
    /// asks for no name, or for exactly `id`, is issued. The CSR is parsed and its signature
    /// checked once. This is the identity service's call: a request for someone else is
    /// refused outright rather than silently issued for the caller.
    pub fn issue_matching_csr(
        &self,
        csr: &[u8],
        id: &SpiffeId,
        lifetime: Duration,
    ) -> Result<IssuedCertificate> {
        self.issue_for(csr, id, lifetime, CsrNameCheck::OnlyId)
    }

    /// Issues for `lifetime` from now, less [`CLOCK_SKEW_ALLOWANCE`].
    fn issue_for(
        &self,
        csr: &[u8],
        id: &SpiffeId,
        lifetime: Duration,
        names: CsrNameCheck,
    ) -> Result<IssuedCertificate> {
        let now = SystemTime::now();
        let not_before = now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now);
        self.issue(csr, id, not_before, add(now, lifetime)?, names)
    }

    /// Like [`MeshCa::issue_from_csr`] with an explicit validity start (no skew allowance):
    /// valid from `not_before` for `lifetime`. For back-dating in tests and for callers that
    /// keep their own clock.
    pub fn issue_from_csr_at(
        &self,
        csr: &[u8],
        id: &SpiffeId,
        not_before: SystemTime,
        lifetime: Duration,
    ) -> Result<IssuedCertificate> {
        self.issue(
            csr,
            id,
            not_before,
            add(not_before, lifetime)?,
            CsrNameCheck::Ignore,
        )
    }

    /// Issues a TLS server certificate for `dns_names` (at least one), valid from now (less
    /// [`CLOCK_SKEW_ALLOWANCE`]) for `lifetime`, with a new ECDSA P-256 key. It carries DNS
    /// SANs only, no URI SAN, and extended key usage `serverAuth` only, so it can never pass
    /// for a workload identity and a workload certificate can never pass for it.
    pub fn issue_server_certificate(
        &self,
        dns_names: &[String],
        lifetime: Duration,
    ) -> Result<ServerCertificate> {
        let first = dns_names.first().ok_or(Error::NoDnsName)?;
        let now = SystemTime::now();
        let not_before = now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now);
        let sans = dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.as_str().try_into()?)))
            .collect::<Result<Vec<_>>>()?;
        let params = self.leaf_params(
            not_before,
            add(now, lifetime)?,
            Some(first),
            sans,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let (chain, info) = self.sign_leaf(&params, &key)?;
        Ok(ServerCertificate {
            chain,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            info,
        })
    }

    /// The parameters of every end-entity certificate this CA signs: valid from
    /// `not_before` to `not_after` cut to the intermediate's expiry, a random serial,
    /// `O=picket` (and `CN=common_name` if given), `sans`, not a CA, key usage
    /// `digitalSignature`, `ekus`, an authority key identifier.
    fn leaf_params(
        &self,
        not_before: SystemTime,
        not_after: SystemTime,
        common_name: Option<&str>,
        sans: Vec<SanType>,
        ekus: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<CertificateParams> {
        let not_after = not_after.min(self.intermediate_not_after);
        if not_after <= not_before {
            return Err(Error::InvalidLifetime);
        }
        let mut params = CertificateParams::default();
        params.not_before = offset_time(not_before)?;
        params.not_after = offset_time(not_after)?;
        params.serial_number = Some(random_serial()?);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "picket");
        if let Some(cn) = common_name {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// Signs `params` for `key` with the intermediate: `[leaf, intermediate]` and the leaf's
    /// info.
    fn sign_leaf(
        &self,
        params: &CertificateParams,
        key: &impl rcgen::PublicKeyData,
    ) -> Result<(Vec<CertificateDer<'static>>, CertificateInfo)> {
        let leaf = params.signed_by(key, &self.issuer)?.der().clone();
        let info = CertificateInfo::parse(&leaf)?;
        Ok((vec![leaf, self.intermediate.clone()], info))
    }

    fn issue(
        &self,
        csr: &[u8],
        id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
        check: CsrNameCheck,
    ) -> Result<IssuedCertificate> {
        if id.trust_domain() != &self.trust_domain {
            return Err(Error::ForeignTrustDomain {
                id: Box::new(id.clone()),
                expected: self.trust_domain.clone(),
            });
        }
        let der = csr_der(csr)?;
        let req = parse_csr(&der)?;
        if check == CsrNameCheck::OnlyId {
            let asked = names_of(&req);
            if !asked.only_names(id) {
                return Err(Error::CsrIdentityMismatch {
                    asked: Box::new(asked),
                    id: Box::new(id.clone()),
                });
            }
        }
        let public_key = csr_public_key(&req)?;
        let params = self.leaf_params(
            not_before,
            not_after,
            None,
            vec![SanType::URI(id.as_str().try_into()?)],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        let (chain, info) = self.sign_leaf(&params, &public_key)?;
        Ok(IssuedCertificate {
            spiffe_id: id.clone(),
            chain,
            info,
        })
    }
}

/// The DER of a CSR given as PEM or DER.
fn csr_der(csr: &[u8]) -> Result<Vec<u8>> {
    if looks_like_pem(csr) {
        Ok(CertificateSigningRequestDer::from_pem_slice(csr)
            .map_err(|e| match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    Error::MissingPem("CERTIFICATE REQUEST")
                }
                e => Error::BadPem(e.to_string()),
            })?
            .as_ref()
            .to_vec())
    } else {
        Ok(csr.to_vec())
    }
}

/// Parses a CSR's DER and checks its self-signature.
fn parse_csr(der: &[u8]) -> Result<X509CertificationRequest<'_>> {
    let (rest, req) =
        X509CertificationRequest::from_der(der).map_err(|e| Error::CsrMalformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::CsrMalformed("trailing bytes after the CSR".into()));
    }
    req.verify_signature().map_err(|_| Error::CsrBadSignature)?;
    Ok(req)
}

/// Whether issuance looks at the names a CSR asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsrNameCheck {
    /// Only the key is read (the names are ignored, the caller's identity is written).
    Ignore,
    /// A CSR asking for any name but the identity is refused.
    OnlyId,
}

/// The public key of a parsed (signature-checked) CSR. Nothing else of the CSR is read.
fn csr_public_key(req: &X509CertificationRequest<'_>) -> Result<rcgen::SubjectPublicKeyInfo> {
    let spki = &req.certification_request_info.subject_pki;
    if let Ok(PublicKey::RSA(rsa)) = spki.parsed() {
        if rsa.key_size() < MIN_RSA_BITS {
            return Err(Error::UnsupportedKey);
        }
    }
    rcgen::SubjectPublicKeyInfo::from_der(spki.raw).map_err(|_| Error::UnsupportedKey)
}

fn ca_params(
    trust_domain: &TrustDomain,
    common_name: &str,
    constraints: BasicConstraints,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.not_before = offset_time(not_before)?;
    params.not_after = offset_time(not_after)?;
    let serial = random_serial()?;
    // A distinct subject for every CA certificate (the trust domain, and a tag from the
    // serial): two CAs with the same name would make chain building ambiguous, and a chain
    // from a foreign CA would fail as "bad signature" instead of "unknown issuer".
    let tag: String = serial.to_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    params.serial_number = Some(serial);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, format!("picket {trust_domain}"));
    dn.push(DnType::CommonName, format!("{common_name} {tag}"));
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI(trust_domain.uri().try_into()?)];
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn new_intermediate(
    trust_domain: &TrustDomain,
    root: &Issuer<'static, KeyPair>,
    lifetime: Duration,
) -> Result<(CertificateDer<'static>, Issuer<'static, KeyPair>)> {
    let now = SystemTime::now();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params(
        trust_domain,
        "picket mesh intermediate CA",
        BasicConstraints::Constrained(0),
        now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now),
        add(now, lifetime)?,
    )?;
    let der = params.signed_by(&key, root)?.der().clone();
    Ok((der, Issuer::new(params, key)))
}

fn single_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>> {
    let mut certs = certs_from_pem(pem.as_bytes())?;
    if certs.len() != 1 {
        return Err(Error::InvalidCa(format!(
            "expected one {what} certificate, found {}",
            certs.len()
        )));
    }
    Ok(certs.remove(0))
}

fn load_key(pem: &str, cert_spki: &[u8]) -> Result<KeyPair> {
    use rcgen::PublicKeyData;
    let key = KeyPair::from_pem(pem).map_err(|e| Error::BadKey(e.to_string()))?;
    if key.subject_public_key_info() != cert_spki {
        return Err(Error::KeyMismatch);
    }
    Ok(key)
}

fn trust_domain_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<TrustDomain> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::BadCertificate(e.to_string()))?
        .ok_or_else(|| Error::InvalidCa("CA certificate names no trust domain".into()))?;
    san.value
        .general_names
        .iter()
        .find_map(|n| match n {
            GeneralName::URI(u) => Some(TrustDomain::from_uri(u)),
            _ => None,
        })
        .ok_or_else(|| Error::InvalidCa("CA certificate names no trust domain".into()))?
        .map_err(Error::from)
}

fn add(t: SystemTime, d: Duration) -> Result<SystemTime> {
    if d.is_zero() {
        return Err(Error::InvalidLifetime);
    }
    t.checked_add(d).ok_or(Error::InvalidLifetime)
}

fn offset_time(t: SystemTime) -> Result<time::OffsetDateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).map_err(|_| Error::InvalidLifetime)?,
        Err(e) => -i64::try_from(e.duration().as_secs()).map_err(|_| Error::InvalidLifetime)?,
    };
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::InvalidLifetime)
}

/// 128 random bits, positive and with a non-zero first octet (so the DER INTEGER is minimal
/// and always 16 octets).
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    crate::config::provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Error::Tls(rustls::Error::FailedToGetRandomBytes))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> MeshCa {
        MeshCa::generate(TrustDomain::default(), &CaOptions::default()).unwrap()
    }

    fn id(ns: &str, sa: &str) -> SpiffeId {
        SpiffeId::in_default_domain(ns, sa).unwrap()
    }

    #[test]
    fn issues_for_the_callers_identity_not_the_csrs() {
        let ca = ca();
        let asked = id("kube-system", "admin");
        let csr = generate_key_and_csr(Some(&asked)).unwrap();
        let granted = id("shop", "cart");
        let issued = ca
            .issue_from_csr(csr.csr_pem.as_bytes(), &granted, DEFAULT_WORKLOAD_LIFETIME)
            .unwrap();
        assert_eq!(issued.info.spiffe_id.as_ref(), Some(&granted));
        assert_eq!(crate::cert::spiffe_id_of(issued.leaf()).unwrap(), granted);
        assert!(!issued.info.is_ca);
        assert_eq!(issued.chain().len(), 2);
        assert_eq!(&issued.chain()[1], ca.intermediate());
        assert_eq!(&issued.chain()[0], issued.leaf());
        // The subject is the CA's choice too, never the CSR's.
        let leaf = parse_x509(issued.leaf()).unwrap();
        let uris: Vec<String> = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(uris, vec![format!("URI({granted})")]);
    }

    #[test]
    fn lifetime_and_serial() {
        let ca = ca();
        let csr = generate_key_and_csr(None).unwrap();
        let before = SystemTime::now();
        let a = ca
            .issue_from_csr(&csr.csr_der, &id("a", "b"), Duration::from_secs(3600))
            .unwrap();
        let b = ca
            .issue_from_csr(&csr.csr_der, &id("a", "b"), DEFAULT_WORKLOAD_LIFETIME)
            .unwrap();
        let life = a.info.not_after.duration_since(before).unwrap();
        assert!(life <= Duration::from_secs(3601) && life >= Duration::from_secs(3590));
        let skew = before.duration_since(a.info.not_before).unwrap();
        assert!(skew >= CLOCK_SKEW_ALLOWANCE - Duration::from_secs(2));
        let day = b.info.not_after.duration_since(before).unwrap();
        assert!(day >= Duration::from_secs(24 * 3600 - 10));
        assert_eq!(a.info.serial.len(), 16);
        assert_ne!(a.info.serial, b.info.serial);
        // Never past the intermediate.
        let long = ca
            .issue_from_csr(
                &csr.csr_der,
                &id("a", "b"),
                Duration::from_secs(20 * 365 * 86400),
            )
            .unwrap();
        assert_eq!(long.info.not_after, ca.intermediate_not_after);
        assert!(matches!(
            ca.issue_from_csr(&csr.csr_der, &id("a", "b"), Duration::ZERO),
            Err(Error::InvalidLifetime)
        ));
    }

    #[test]
    fn issues_for_other_key_types() {
        let ca = ca();
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P384_SHA384] {
            let key = KeyPair::generate_for(alg).unwrap();
            let csr = CertificateParams::default()
                .serialize_request(&key)
                .unwrap();
            let issued = ca
                .issue_from_csr(csr.der(), &id("a", "b"), DEFAULT_WORKLOAD_LIFETIME)
                .unwrap();
            // The certificate certifies the CSR's key.
            let leaf = parse_x509(issued.leaf()).unwrap();
            use rcgen::PublicKeyData;
            assert_eq!(
                leaf.public_key().raw,
                key.subject_public_key_info().as_slice()
            );
            // And it is usable: the identity loads with the key.
            let pem = issued.chain_pem();
            crate::WorkloadIdentity::from_pem(pem.as_bytes(), key.serialize_pem().as_bytes())
                .unwrap();
        }
    }

    #[test]
    fn refuses_bad_csrs() {
        let ca = ca();
        let who = id("a", "b");
        let csr = generate_key_and_csr(None).unwrap();
        // Flip one bit of the signature (the last octet of the DER).
        let mut bad = csr.csr_der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            ca.issue_from_csr(&bad, &who, DEFAULT_WORKLOAD_LIFETIME),
            Err(Error::CsrBadSignature)
        ));
        assert!(matches!(
            ca.issue_from_csr(b"\x30\x03\x02\x01\x00", &who, DEFAULT_WORKLOAD_LIFETIME),
            Err(Error::CsrMalformed(_))
        ));
        assert!(matches!(
            ca.issue_from_csr(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                &who,
                DEFAULT_WORKLOAD_LIFETIME
            ),
            Err(Error::MissingPem("CERTIFICATE REQUEST"))
        ));
        let foreign = SpiffeId::new(TrustDomain::new("other.org").unwrap(), "a", "b").unwrap();
        assert!(matches!(
            ca.issue_from_csr(&csr.csr_der, &foreign, DEFAULT_WORKLOAD_LIFETIME),
            Err(Error::ForeignTrustDomain { .. })
        ));
    }

    #[test]
    fn server_certificate_names_dns_only_and_verifies() {
        let ca = ca();
        let names = vec![
            "picket-injector.picket-system.svc".to_string(),
            "localhost".into(),
        ];
        let cert = ca
            .issue_server_certificate(&names, Duration::from_secs(3600))
            .unwrap();
        assert_eq!(cert.chain.len(), 2);
        assert_eq!(&cert.chain[1], ca.intermediate());
        let leaf = parse_x509(&cert.chain[0]).unwrap();
        let sans: Vec<String> = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            sans,
            vec![
                "DNSName(picket-injector.picket-system.svc)".to_string(),
                "DNSName(localhost)".into()
            ]
        );
        // Never a workload identity.
        assert!(matches!(
            crate::cert::spiffe_id_of(&cert.chain[0]),
            Err(Error::NoSpiffeId)
        ));
        assert!(!leaf.is_ca());
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        // The key is the certificate's, and the chain verifies against the root.
        rustls::sign::CertifiedKey::from_der(
            cert.chain.clone(),
            cert.key(),
            &crate::config::provider(),
        )
        .unwrap();
        ca.trust_bundle()
            .unwrap()
            .verify_chain(&cert.chain, SystemTime::now())
            .unwrap();
        let life = cert
            .info
            .not_after
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(life <= Duration::from_secs(3600) && life > Duration::from_secs(3500));
        assert!(cert.renew_at() < cert.info.not_after && cert.renew_at() > cert.info.not_before);
        assert_eq!(cert.renew_at(), cert.info.renew_at());
        assert!(!format!("{cert:?}").contains("PRIVATE"));
        assert!(matches!(
            ca.issue_server_certificate(&[], Duration::from_secs(60)),
            Err(Error::NoDnsName)
        ));
    }

    #[test]
    fn csr_names_are_read_and_compared() {
        let me = id("shop", "cart");
        let plain = generate_key_and_csr(None).unwrap();
        let names = csr_requested_names(plain.csr_pem.as_bytes()).unwrap();
        assert_eq!(names, CsrNames::default());
        assert!(names.only_names(&me));
        let same = generate_key_and_csr(Some(&me)).unwrap();
        let names = csr_requested_names(&same.csr_der).unwrap();
        assert_eq!(names.uris, vec![me.to_string()]);
        assert!(names.only_names(&me));
        let other = generate_key_and_csr(Some(&id("kube-system", "admin"))).unwrap();
        assert!(!csr_requested_names(&other.csr_der).unwrap().only_names(&me));
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "spiffe://cluster.local/ns/a/sa/b");
        let csr = params.serialize_request(&key).unwrap();
        let names = csr_requested_names(csr.der()).unwrap();
        assert_eq!(names.other_sans, vec!["DNSName(evil.example)".to_string()]);
        assert_eq!(
            names.common_names,
            vec!["spiffe://cluster.local/ns/a/sa/b".to_string()]
        );
        assert!(!names.only_names(&me));
        // A bad signature is refused here too.
        let mut bad = plain.csr_der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            csr_requested_names(&bad),
            Err(Error::CsrBadSignature)
        ));
    }

    #[test]
    fn matching_csr_issues_for_its_identity_and_refuses_others() {
        let ca = ca();
        let me = id("shop", "cart");
        let ttl = DEFAULT_WORKLOAD_LIFETIME;
        // No name, or exactly the identity: issued for it.
        for csr in [
            generate_key_and_csr(None).unwrap(),
            generate_key_and_csr(Some(&me)).unwrap(),
        ] {
            let issued = ca
                .issue_matching_csr(csr.csr_pem.as_bytes(), &me, ttl)
                .unwrap();
            assert_eq!(issued.info.spiffe_id.as_ref(), Some(&me));
            assert_eq!(issued.chain().len(), 2);
        }
        // Another identity: refused, naming what was asked.
        let admin = id("kube-system", "admin");
        let other = generate_key_and_csr(Some(&admin)).unwrap();
        match ca.issue_matching_csr(&other.csr_der, &me, ttl) {
            Err(Error::CsrIdentityMismatch { asked, id }) => {
                assert_eq!(asked.uris, vec![admin.to_string()]);
                assert_eq!(*id, me);
                assert_eq!(asked.describe(), admin.to_string());
            }
            r => panic!("expected an identity mismatch, got {r:?}"),
        }
        // A DNS SAN and a SPIFFE-looking CN: refused too.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "spiffe://cluster.local/ns/a/sa/b");
        let csr = params.serialize_request(&key).unwrap();
        let err = ca.issue_matching_csr(csr.der(), &me, ttl).unwrap_err();
        assert!(matches!(err, Error::CsrIdentityMismatch { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "the CSR asks for DNSName(evil.example), CN=spiffe://cluster.local/ns/a/sa/b but the identity is {me}"
            )
        );
        // The CSR's signature is still checked, and before its names.
        let mut bad = other.csr_der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            ca.issue_matching_csr(&bad, &me, ttl),
            Err(Error::CsrBadSignature)
        ));
        assert!(matches!(
            ca.issue_matching_csr(b"\x30\x03\x02\x01\x00", &me, ttl),
            Err(Error::CsrMalformed(_))
        ));
    }

    #[test]
    fn pem_round_trip_keeps_issuing() {
        let ca = ca();
        let pem = ca.to_pem();
        assert!(!format!("{pem:?}").contains("PRIVATE KEY"));
        let back = MeshCa::from_pem(&pem).unwrap();
        assert_eq!(back.trust_domain(), ca.trust_domain());
        assert_eq!(back.root(), ca.root());
        assert_eq!(back.to_pem(), pem);
        let csr = generate_key_and_csr(None).unwrap();
        let issued = back
            .issue_from_csr(&csr.csr_der, &id("a", "b"), DEFAULT_WORKLOAD_LIFETIME)
            .unwrap();
        // The leaf verifies against the original CA's intermediate key.
        let leaf = parse_x509(issued.leaf()).unwrap();
        let int = parse_x509(ca.intermediate()).unwrap();
        assert!(leaf.verify_signature(Some(int.public_key())).is_ok());

        // Without the root key it still issues, but cannot rotate the intermediate.
        let mut no_root = MeshCa::from_pem(&CaPem {
            root_key: None,
            ..pem.clone()
        })
        .unwrap();
        assert!(no_root
            .rotate_intermediate(DEFAULT_INTERMEDIATE_LIFETIME)
            .is_err());
        let mut with_root = MeshCa::from_pem(&pem).unwrap();
        with_root
            .rotate_intermediate(DEFAULT_INTERMEDIATE_LIFETIME)
            .unwrap();
        assert_ne!(with_root.intermediate(), ca.intermediate());
    }

    #[test]
    fn from_pem_refuses_mismatched_material() {
        let a = ca().to_pem();
        let b = ca().to_pem();
        // b's intermediate key with a's intermediate certificate.
        let swapped_key = CaPem {
            intermediate_key: b.intermediate_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            MeshCa::from_pem(&swapped_key),
            Err(Error::KeyMismatch)
        ));
        // a's intermediate under b's root.
        let wrong_root = CaPem {
            root_cert: b.root_cert.clone(),
            root_key: b.root_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            MeshCa::from_pem(&wrong_root),
            Err(Error::InvalidCa(_))
        ));
        let garbage = CaPem {
            intermediate_key: "nope".into(),
            ..a.clone()
        };
        assert!(matches!(MeshCa::from_pem(&garbage), Err(Error::BadKey(_))));
        let leafy = CaPem {
            root_cert: String::new(),
            ..a
        };
        assert!(matches!(
            MeshCa::from_pem(&leafy),
            Err(Error::MissingPem(_))
        ));
    }
}
