//! Signed packs: ed25519 detached signatures over a pack's exact bytes, the text files keys and
//! signatures live in, and the policy a sidecar applies before it loads (or reloads) a pack.
//!
//! Everything here takes bytes and returns values; reading and writing files is the caller's
//! job. The file formats are documented in `docs/packs.md` ("Signing"):
//!
//! ```text
//! picket-secret-key v1          picket-public-key v1          picket-signature v1
//! key-id: 3f1c9a0b7d2e4f60      key-id: 3f1c9a0b7d2e4f60      key-id: 3f1c9a0b7d2e4f60
//! secret: <base64, 32 bytes>    public: <base64, 32 bytes>    signature: <base64, 64 bytes>
//! ```
//!
//! A key id is the first 8 bytes of the SHA-512 of the 32-byte public key, in lowercase hex.
//! Signatures are verified with [`VerifyingKey::verify_strict`], which also refuses weak
//! (small-order) keys and non-canonical signatures.

use std::cmp::Ordering;
use std::fmt;

use base64::Engine as _;
use ed25519_dalek::{Digest, Sha512, Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;

/// First line of a secret key file.
pub const SECRET_KEY_HEADER: &str = "picket-secret-key v1";
/// First line of a public key file.
pub const PUBLIC_KEY_HEADER: &str = "picket-public-key v1";
/// First line of a signature file.
pub const SIGNATURE_HEADER: &str = "picket-signature v1";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Names a public key: the first 8 bytes of SHA-512 over its 32 bytes, shown in lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    fn of(public: &[u8; 32]) -> KeyId {
        let digest = Sha512::digest(public);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Parses 16 hex digits.
    pub fn parse(s: &str) -> Option<KeyId> {
        let b = s.as_bytes();
        if b.len() != 16 {
            return None;
        }
        let mut id = [0u8; 8];
        for (i, pair) in b.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            id[i] = (hi * 16 + lo) as u8;
        }
        Some(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Which of the three file kinds a [`FormatError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    SecretKey,
    PublicKey,
    Signature,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::SecretKey => "secret key",
            FileKind::PublicKey => "public key",
            FileKind::Signature => "signature",
        })
    }
}

/// What is wrong in a key or signature file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatProblem {
    #[error("not UTF-8 text")]
    NotText,
    #[error("empty")]
    Empty,
    #[error("first line is {found:?}, expected {expected:?}")]
    Header {
        expected: &'static str,
        found: String,
    },
    #[error("line {line}: not a `name: value` field")]
    NotAField { line: usize },
    #[error("line {line}: unknown field {name:?}")]
    UnknownField { line: usize, name: String },
    #[error("line {line}: field {name:?} given twice")]
    DuplicateField { line: usize, name: &'static str },
    #[error("no field {0:?}")]
    MissingField(&'static str),
    #[error("field {field:?} is not base64: {reason}")]
    Base64 { field: &'static str, reason: String },
    #[error("field {field:?} holds {got} bytes, expected {expected} (truncated?)")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("field \"key-id\" is not 16 hex digits: {0:?}")]
    KeyIdSyntax(String),
    #[error("key-id {declared} does not match the key, whose id is {actual}")]
    KeyIdMismatch { declared: KeyId, actual: KeyId },
    #[error("not a valid ed25519 public key")]
    InvalidKey,
}

/// A key or signature file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} file: {problem}")]
pub struct FormatError {
    pub kind: FileKind,
    pub problem: FormatProblem,
}

/// The operating system could not provide randomness for a new key.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a new key: {0}")]
pub struct KeygenError(#[from] rand_core::Error);

/// The fields of a key or signature file, after the header line.
struct Fields<'a> {
    kind: FileKind,
    values: Vec<(&'static str, &'a str)>,
}

impl<'a> Fields<'a> {
    /// Reads `header` then `name: value` lines, each of `names` at most once (all required).
    /// Blank lines and lines starting with `#` are ignored; line ends may be CRLF.
    fn parse(
        kind: FileKind,
        bytes: &'a [u8],
        header: &'static str,
        names: &[&'static str],
    ) -> Result<Fields<'a>, FormatError> {
        let err = |problem| FormatError { kind, problem };
        let text = std::str::from_utf8(bytes).map_err(|_| err(FormatProblem::NotText))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            None => return Err(err(FormatProblem::Empty)),
            Some((_, first)) if first == header => {}
            Some((_, first)) => {
                return Err(err(FormatProblem::Header {
                    expected: header,
                    found: first.chars().take(60).collect(),
                }))
            }
        }
        let mut values: Vec<(&'static str, &'a str)> = Vec::with_capacity(names.len());
        for (line, l) in lines {
            let (name, value) = l
                .split_once(':')
                .ok_or(err(FormatProblem::NotAField { line }))?;
            let name = name.trim();
            let Some(&known) = names.iter().find(|n| **n == name) else {
                return Err(err(FormatProblem::UnknownField {
                    line,
                    name: name.chars().take(60).collect(),
                }));
            };
            if values.iter().any(|(n, _)| *n == known) {
                return Err(err(FormatProblem::DuplicateField { line, name: known }));
            }
            values.push((known, value.trim()));
        }
        for n in names {
            if !values.iter().any(|(v, _)| v == n) {
                return Err(err(FormatProblem::MissingField(n)));
            }
        }
        Ok(Fields { kind, values })
    }

    fn get(&self, name: &'static str) -> &'a str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }

    fn err(&self, problem: FormatProblem) -> FormatError {
        FormatError {
            kind: self.kind,
            problem,
        }
    }

    fn bytes<const N: usize>(&self, name: &'static str) -> Result<[u8; N], FormatError> {
        let decoded = B64.decode(self.get(name)).map_err(|e| {
            self.err(FormatProblem::Base64 {
                field: name,
                reason: e.to_string(),
            })
        })?;
        <[u8; N]>::try_from(decoded.as_slice()).map_err(|_| {
            self.err(FormatProblem::Length {
                field: name,
                expected: N,
                got: decoded.len(),
            })
        })
    }

    fn key_id(&self) -> Result<KeyId, FormatError> {
        let s = self.get("key-id");
        KeyId::parse(s)
            .ok_or_else(|| self.err(FormatProblem::KeyIdSyntax(s.chars().take(40).collect())))
    }

    /// The declared key id, which must be `actual`'s.
    fn check_key_id(&self, actual: KeyId) -> Result<(), FormatError> {
        let declared = self.key_id()?;
        if declared != actual {
            return Err(self.err(FormatProblem::KeyIdMismatch { declared, actual }));
        }
        Ok(())
    }
}

/// A public key that may sign packs.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

impl PublicKey {
    /// The key from its 32 bytes; `None` if they are not a point on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        Some(PublicKey {
            id: KeyId::of(bytes),
            key,
        })
    }

    /// Reads a public key file.
    pub fn parse(file: &[u8]) -> Result<PublicKey, FormatError> {
        let f = Fields::parse(
            FileKind::PublicKey,
            file,
            PUBLIC_KEY_HEADER,
            &["key-id", "public"],
        )?;
        let bytes: [u8; 32] = f.bytes("public")?;
        let key = PublicKey::from_bytes(&bytes).ok_or(f.err(FormatProblem::InvalidKey))?;
        f.check_key_id(key.id)?;
        Ok(key)
    }

    /// The public key file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{PUBLIC_KEY_HEADER}\nkey-id: {}\npublic: {}\n",
            self.id,
            B64.encode(self.key.as_bytes())
        )
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Whether `signature` is this key's over exactly `pack` (strict ed25519 verification).
    pub fn verifies(&self, pack: &[u8], signature: &PackSignature) -> bool {
        signature.key_id == self.id && self.key.verify_strict(pack, &signature.sig).is_ok()
    }
}

/// A key that signs packs. Its `Debug` does not show the secret.
pub struct SecretKey {
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key().id)
    }
}

impl SecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, KeygenError> {
        use rand_core::RngCore as _;
        let mut seed = [0u8; 32];
        rand_core::OsRng.try_fill_bytes(&mut seed)?;
        let key = SecretKey::from_seed(&seed);
        seed.fill(0);
        Ok(key)
    }

    /// The key whose 32-byte ed25519 seed is `seed` (for tests and for keys kept elsewhere).
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Reads a secret key file (its `key-id` must be the key's).
    pub fn parse(file: &[u8]) -> Result<SecretKey, FormatError> {
        let f = Fields::parse(
            FileKind::SecretKey,
            file,
            SECRET_KEY_HEADER,
            &["key-id", "secret"],
        )?;
        let mut seed: [u8; 32] = f.bytes("secret")?;
        let key = SecretKey::from_seed(&seed);
        seed.fill(0);
        f.check_key_id(key.public_key().id)?;
        Ok(key)
    }

    /// The secret key file's text. Keep it readable by its owner only.
    pub fn to_text(&self) -> String {
        format!(
            "{SECRET_KEY_HEADER}\nkey-id: {}\nsecret: {}\n",
            self.public_key().id,
            B64.encode(self.key.as_bytes())
        )
    }

    pub fn public_key(&self) -> PublicKey {
        let key = self.key.verifying_key();
        PublicKey {
            id: KeyId::of(key.as_bytes()),
            key,
        }
    }

    /// Signs exactly these pack bytes.
    pub fn sign(&self, pack: &[u8]) -> PackSignature {
        PackSignature {
            key_id: self.public_key().id,
            sig: self.key.sign(pack),
        }
    }
}

/// A detached signature over a pack's bytes (the `PACK.sig` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSignature {
    key_id: KeyId,
    sig: Signature,
}

impl PackSignature {
    /// Reads a signature file.
    pub fn parse(file: &[u8]) -> Result<PackSignature, FormatError> {
        let f = Fields::parse(
            FileKind::Signature,
            file,
            SIGNATURE_HEADER,
            &["key-id", "signature"],
        )?;
        let key_id = f.key_id()?;
        let bytes: [u8; 64] = f.bytes("signature")?;
        Ok(PackSignature {
            key_id,
            sig: Signature::from_bytes(&bytes),
        })
    }

    /// The signature file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{SIGNATURE_HEADER}\nkey-id: {}\nsignature: {}\n",
            self.key_id,
            B64.encode(self.sig.to_bytes())
        )
    }

    /// The id of the key that claims to have made it.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}

/// A pack version read as dot-separated decimal numbers (`2026.11.23.2`), compared numerically
/// segment by segment; missing trailing segments count as 0 (`2026.11.23` = `2026.11.23.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackVersion(Vec<u64>);

impl PackVersion {
    /// `None` when the version is not of that shape (`2026.11.23-rc1`, `v2`, `1..2`, ``).
    pub fn parse(s: &str) -> Option<PackVersion> {
        s.split('.')
            .map(|seg| {
                if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    seg.parse::<u64>().ok()
                }
            })
            .collect::<Option<Vec<u64>>>()
            .map(PackVersion)
    }

    pub fn segments(&self) -> &[u64] {
        &self.0
    }
}

impl Ord for PackVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for PackVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a candidate pack is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the pack is not signed and a signature is required")]
    Unsigned,
    #[error("bad signature: it was not made by key {key_id} over these bytes (the pack or the signature was altered, or another key claims that id)")]
    BadSignature { key_id: KeyId },
    #[error("signed by key {key_id}, which is not trusted")]
    UntrustedKey { key_id: KeyId },
    #[error(transparent)]
    Malformed(#[from] FormatError),
    #[error("cannot read the candidate pack's version: {0}")]
    CandidateVersion(String),
    #[error("pack version {candidate} is older than {in_force}, the version in force (rollback refused)")]
    Rollback { candidate: String, in_force: String },
    #[error("pack version {version:?} is not dot-separated numbers, so it cannot be compared with {in_force:?}, the version in force (rollback check refused it)")]
    UncomparableVersion { version: String, in_force: String },
}

/// What the sidecar requires of a pack before loading it.
#[derive(Debug, Clone, Default)]
pub struct PackPolicy {
    /// Keys whose signatures are accepted.
    pub trusted: Vec<PublicKey>,
    /// Refuse a pack that comes without a signature. A signature that is present is always
    /// checked, required or not.
    pub require_signature: bool,
    /// Accept a pack whose version is older than the one in force.
    pub allow_rollback: bool,
}

/// A pack the policy accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The trusted key that signed it; `None` for an unsigned pack the policy lets through.
    pub signer: Option<KeyId>,
}

#[derive(Deserialize)]
struct VersionOnly {
    pack: VersionHeader,
}

#[derive(Deserialize)]
struct VersionHeader {
    version: String,
}

impl PackPolicy {
    /// Decides on a candidate pack: `pack` its exact bytes, `signature` the bytes of its
    /// signature file if there is one, `in_force` the version of the pack currently loaded
    /// (`None` at first load). The signature is checked first, then the version.
    pub fn check(
        &self,
        pack: &[u8],
        signature: Option<&[u8]>,
        in_force: Option<&str>,
    ) -> Result<Accepted, PolicyError> {
        let signer = match signature {
            None if self.require_signature => return Err(PolicyError::Unsigned),
            None => None,
            Some(file) => Some(self.verify(pack, &PackSignature::parse(file)?)?),
        };
        if let (Some(in_force), false) = (in_force, self.allow_rollback) {
            let candidate = candidate_version(pack)?;
            let uncomparable = |v: &str| PolicyError::UncomparableVersion {
                version: v.to_string(),
                in_force: in_force.to_string(),
            };
            let new = PackVersion::parse(&candidate).ok_or_else(|| uncomparable(&candidate))?;
            let old = PackVersion::parse(in_force).ok_or_else(|| uncomparable(in_force))?;
            if new < old {
                return Err(PolicyError::Rollback {
                    candidate,
                    in_force: in_force.to_string(),
                });
            }
        }
        Ok(Accepted { signer })
    }

    /// The trusted key that made `signature` over `pack`.
    pub fn verify(&self, pack: &[u8], signature: &PackSignature) -> Result<KeyId, PolicyError> {
        let key_id = signature.key_id;
        let mut candidates = self.trusted.iter().filter(|k| k.id == key_id).peekable();
        if candidates.peek().is_none() {
            return Err(PolicyError::UntrustedKey { key_id });
        }
        if candidates.any(|k| k.verifies(pack, signature)) {
            Ok(key_id)
        } else {
            Err(PolicyError::BadSignature { key_id })
        }
    }
}

/// The `[pack] version` of a candidate (nothing else of it is validated here).
fn candidate_version(pack: &[u8]) -> Result<String, PolicyError> {
    let text = std::str::from_utf8(pack)
        .map_err(|_| PolicyError::CandidateVersion("the pack is not UTF-8".into()))?;
    let v: VersionOnly =
        toml::from_str(text).map_err(|e| PolicyError::CandidateVersion(e.message().to_string()))?;
    Ok(v.pack.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK_V2: &[u8] = b"[pack]\nname = \"t\"\nversion = \"2026.11.23.2\"\n";

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    fn policy(trusted: &[&SecretKey]) -> PackPolicy {
        PackPolicy {
            trusted: trusted.iter().map(|k| k.public_key()).collect(),
            require_signature: true,
            allow_rollback: false,
        }
    }

    fn pack(version: &str) -> Vec<u8> {
        format!("[pack]\nname = \"t\"\nversion = \"{version}\"\n").into_bytes()
    }

    #[test]
    fn key_files_round_trip() {
        let k = key(7);
        let back = SecretKey::parse(k.to_text().as_bytes()).unwrap();
        assert_eq!(back.key.as_bytes(), k.key.as_bytes());
        let p = PublicKey::parse(k.public_key().to_text().as_bytes()).unwrap();
        assert_eq!(p, k.public_key());
        assert_eq!(p.id().to_string().len(), 16);
        assert_eq!(KeyId::parse(&p.id().to_string()), Some(p.id()));
        // Different keys, different ids.
        assert_ne!(key(8).public_key().id(), p.id());
        // Comments, blank lines, CRLF and field order do not matter.
        let text = k.public_key().to_text();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(1, 2);
        let shuffled = format!("# picket key\r\n\r\n{}\r\n", lines.join("\r\n"));
        assert_eq!(PublicKey::parse(shuffled.as_bytes()).unwrap(), p);
    }

    #[test]
    fn generated_keys_differ_and_work() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let sig = a.sign(PACK_V2);
        assert!(a.public_key().verifies(PACK_V2, &sig));
        assert!(!b.public_key().verifies(PACK_V2, &sig));
    }

    #[test]
    fn signature_round_trip_verifies() {
        let k = key(1);
        let sig = k.sign(PACK_V2).to_text();
        let got = policy(&[&key(2), &k])
            .check(PACK_V2, Some(sig.as_bytes()), None)
            .unwrap();
        assert_eq!(got.signer, Some(k.public_key().id()));
        assert_eq!(
            PackSignature::parse(sig.as_bytes()).unwrap().key_id(),
            k.public_key().id()
        );
    }

    #[test]
    fn every_tampered_byte_is_refused() {
        let k = key(1);
        let sig = k.sign(PACK_V2).to_text();
        let p = policy(&[&k]);
        for i in 0..PACK_V2.len() {
            let mut t = PACK_V2.to_vec();
            t[i] ^= 0x01;
            assert_eq!(
                p.check(&t, Some(sig.as_bytes()), None),
                Err(PolicyError::BadSignature {
                    key_id: k.public_key().id()
                }),
                "byte {i}"
            );
        }
        // An appended byte (a trailing newline) too.
        let mut longer = PACK_V2.to_vec();
        longer.push(b'\n');
        assert!(matches!(
            p.check(&longer, Some(sig.as_bytes()), None),
            Err(PolicyError::BadSignature { .. })
        ));
        // And a flipped bit of the signature itself.
        let mut s = PackSignature::parse(sig.as_bytes()).unwrap();
        let mut bytes = s.sig.to_bytes();
        bytes[10] ^= 0x80;
        s.sig = Signature::from_bytes(&bytes);
        assert!(matches!(
            p.check(PACK_V2, Some(s.to_text().as_bytes()), None),
            Err(PolicyError::BadSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_with_a_trusted_id_is_a_bad_signature() {
        // Signed by key 2 but claiming key 1's id: key 1 is trusted, the signature is not its.
        let forged = PackSignature {
            key_id: key(1).public_key().id(),
            sig: key(2).sign(PACK_V2).sig,
        };
        assert_eq!(
            policy(&[&key(1)]).check(PACK_V2, Some(forged.to_text().as_bytes()), None),
            Err(PolicyError::BadSignature {
                key_id: key(1).public_key().id()
            })
        );
    }

    #[test]
    fn untrusted_key_is_refused() {
        let sig = key(3).sign(PACK_V2).to_text();
        let err = policy(&[&key(1), &key(2)])
            .check(PACK_V2, Some(sig.as_bytes()), None)
            .unwrap_err();
        assert_eq!(
            err,
            PolicyError::UntrustedKey {
                key_id: key(3).public_key().id()
            }
        );
        assert!(err.to_string().contains("not trusted"), "{err}");
        // No trusted keys at all: still untrusted, even when signatures are optional.
        let open = PackPolicy::default();
        assert!(matches!(
            open.check(PACK_V2, Some(sig.as_bytes()), None),
            Err(PolicyError::UntrustedKey { .. })
        ));
    }

    #[test]
    fn unsigned_is_refused_only_when_required() {
        let mut p = policy(&[&key(1)]);
        assert_eq!(p.check(PACK_V2, None, None), Err(PolicyError::Unsigned));
        p.require_signature = false;
        assert_eq!(p.check(PACK_V2, None, None), Ok(Accepted { signer: None }));
    }

    fn problem(r: Result<impl fmt::Debug, FormatError>) -> FormatProblem {
        r.unwrap_err().problem
    }

    #[test]
    fn truncated_and_malformed_files_are_named() {
        let k = key(1);
        let sig = k.sign(PACK_V2).to_text();
        // Cut inside the base64 of the signature.
        let cut = &sig.as_bytes()[..sig.len() - 20];
        let e = PackSignature::parse(cut).unwrap_err();
        assert_eq!(e.kind, FileKind::Signature);
        assert!(
            matches!(
                e.problem,
                FormatProblem::Base64 { .. } | FormatProblem::Length { .. }
            ),
            "{e}"
        );
        // Cut on a base64 boundary: valid base64, too short.
        let text = format!(
            "{SIGNATURE_HEADER}\nkey-id: {}\nsignature: {}\n",
            k.public_key().id(),
            B64.encode([0u8; 48])
        );
        assert_eq!(
            problem(PackSignature::parse(text.as_bytes())),
            FormatProblem::Length {
                field: "signature",
                expected: 64,
                got: 48
            }
        );
        // Cut before the signature line.
        let first_two: String = sig.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            problem(PackSignature::parse(first_two.as_bytes())),
            FormatProblem::MissingField("signature")
        );
        assert_eq!(problem(PackSignature::parse(b"")), FormatProblem::Empty);
        assert_eq!(
            problem(PackSignature::parse(b"\xff\xfe")),
            FormatProblem::NotText
        );
        // A public key handed over as a signature.
        assert!(matches!(
            problem(PackSignature::parse(k.public_key().to_text().as_bytes())),
            FormatProblem::Header { .. }
        ));
        let pubtext = k.public_key().to_text();
        assert!(matches!(
            problem(PublicKey::parse(
                pubtext.replace("public:", "publik:").as_bytes()
            )),
            FormatProblem::UnknownField { line: 3, .. }
        ));
        assert!(matches!(
            problem(PublicKey::parse(format!("{pubtext}garbage\n").as_bytes())),
            FormatProblem::NotAField { line: 4 }
        ));
        assert!(matches!(
            problem(PublicKey::parse(
                format!("{pubtext}key-id: 0000000000000000\n").as_bytes()
            )),
            FormatProblem::DuplicateField { name: "key-id", .. }
        ));
        // A key id that is not the key's.
        let other = key(2).public_key().id().to_string();
        let lying = pubtext.replace(&k.public_key().id().to_string(), &other);
        assert!(matches!(
            problem(PublicKey::parse(lying.as_bytes())),
            FormatProblem::KeyIdMismatch { .. }
        ));
        let bad_id = pubtext.replace(&k.public_key().id().to_string(), "xyz");
        assert_eq!(
            problem(PublicKey::parse(bad_id.as_bytes())),
            FormatProblem::KeyIdSyntax("xyz".into())
        );
        // Secret key cut short.
        let sk = k.to_text();
        let short = &sk[..sk.len() - 10];
        assert_eq!(
            SecretKey::parse(short.as_bytes()).unwrap_err().kind,
            FileKind::SecretKey
        );
        // The policy reports a malformed signature as such.
        let e = policy(&[&k]).check(PACK_V2, Some(cut), None).unwrap_err();
        assert!(matches!(e, PolicyError::Malformed(_)), "{e:?}");
        assert!(
            e.to_string().starts_with("malformed signature file: "),
            "{e}"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| PackVersion::parse(s).unwrap();
        assert!(v("2026.11.23.10") > v("2026.11.23.9"));
        assert!(v("2026.11.23.2") > v("2026.11.23"));
        assert_eq!(v("2026.11.23"), v("2026.11.23").clone());
        assert_eq!(v("2026.11.23").cmp(&v("2026.11.23.0")), Ordering::Equal);
        assert!(v("10") > v("9.99"));
        for bad in ["", "v2", "1..2", "2026.11.23-rc1", "1.2.", " 1", "1.-2"] {
            assert_eq!(PackVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rollback_is_refused_unless_allowed() {
        let k = key(1);
        let old = pack("2026.11.23.1");
        let sig = k.sign(&old).to_text();
        let mut p = policy(&[&k]);
        assert_eq!(
            p.check(&old, Some(sig.as_bytes()), Some("2026.11.23.2")),
            Err(PolicyError::Rollback {
                candidate: "2026.11.23.1".into(),
                in_force: "2026.11.23.2".into()
            })
        );
        // First load: nothing to roll back from.
        assert!(p.check(&old, Some(sig.as_bytes()), None).is_ok());
        // Equal and newer versions pass.
        assert!(p
            .check(&old, Some(sig.as_bytes()), Some("2026.11.23.1"))
            .is_ok());
        assert!(p
            .check(&old, Some(sig.as_bytes()), Some("2026.11.23"))
            .is_ok());
        p.allow_rollback = true;
        assert!(p
            .check(&old, Some(sig.as_bytes()), Some("2026.11.23.2"))
            .is_ok());
    }

    #[test]
    fn uncomparable_versions_are_refused_unless_rollback_is_allowed() {
        let mut p = PackPolicy::default();
        let e = p
            .check(&pack("2026.11.23-hotfix"), None, Some("2026.11.23.2"))
            .unwrap_err();
        assert_eq!(
            e,
            PolicyError::UncomparableVersion {
                version: "2026.11.23-hotfix".into(),
                in_force: "2026.11.23.2".into()
            }
        );
        assert!(e.to_string().contains("cannot be compared"), "{e}");
        // The version in force may be the one that does not parse.
        assert!(matches!(
            p.check(&pack("2026.11.24"), None, Some("latest")),
            Err(PolicyError::UncomparableVersion { version, .. }) if version == "latest"
        ));
        assert!(matches!(
            p.check(b"not toml [", None, Some("1")),
            Err(PolicyError::CandidateVersion(_))
        ));
        p.allow_rollback = true;
        assert!(p
            .check(&pack("2026.11.23-hotfix"), None, Some("2026.11.23.2"))
            .is_ok());
    }
}
