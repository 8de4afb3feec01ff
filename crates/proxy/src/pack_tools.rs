//! `picket pack keygen|sign|verify|test|diff`: signing packs, checking signatures, running a
//! pack over a labelled corpus like a rule regression run, and comparing two packs.
//!
//! Exit status: 0 success; 1 the answer is "no" (a signature that does not verify, thresholds
//! of `pack test` not met); 2 the command could not do its job (unreadable or invalid files,
//! an invalid pack, a key file that would be overwritten).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use picket::scan::{parse_record, scan_raw};
use picket_dpi::InspectConfig;
use picket_signatures::pack::{Detection, Exclusion, ExclusionEffect};
use picket_signatures::signing::FormatError;
use picket_signatures::{Engine, Pack, PackPolicy, PublicKey, SecretKey, Signature};
use serde::Serialize;

#[derive(Subcommand)]
pub enum PackTool {
    /// Make a signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub. Never
    /// overwrites.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a pack and sign its exact bytes, writing PACK.sig (or --out).
    Sign {
        /// Secret key file (from `picket pack keygen`).
        #[arg(long)]
        key: PathBuf,
        pack: PathBuf,
        /// Where to write the signature; PACK.sig by default.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a pack's signature against trusted public keys; say which key signed it.
    Verify {
        /// A trusted public key file; repeat for several.
        #[arg(long = "pubkey", required = true)]
        pubkeys: Vec<PathBuf>,
        pack: PathBuf,
        /// The signature file; PACK.sig by default.
        #[arg(long)]
        sig: Option<PathBuf>,
    },
    /// Run a pack over labelled requests (corpus JSONL: `raw` or `raw_b64`, and `family` for
    /// an attack or `category` for a benign request); report detections and false positives
    /// per signature, the totals, and the attacks nobody caught.
    Test {
        pack: PathBuf,
        /// Corpus files (JSONL).
        #[arg(required = true)]
        corpus: Vec<PathBuf>,
        /// Exclusion overlay files applied on top of the pack.
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
        /// One JSON document on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Fail (exit 1) when more benign requests than this are blocked: a fraction (0.005)
        /// or a percentage (0.5%).
        #[arg(long, value_parser = parse_rate)]
        max_fp_rate: Option<f64>,
        /// Fail (exit 1) when fewer attacks than this are blocked: a fraction (0.95) or a
        /// percentage (95%).
        #[arg(long, value_parser = parse_rate)]
        min_detection: Option<f64>,
        /// Body bytes inspected per request.
        #[arg(long, default_value_t = 1 << 20)]
        body_limit: usize,
    },
    /// Compare two packs: signatures added, removed and changed (with the fields that
    /// changed), exclusions added and removed, name and version.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// One JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one pack tool.
pub fn run(tool: PackTool) -> ExitCode {
    let (name, result) = match tool {
        PackTool::Keygen { out } => ("keygen", keygen(&out)),
        PackTool::Sign { key, pack, out } => ("sign", sign(&key, &pack, out)),
        PackTool::Verify { pubkeys, pack, sig } => ("verify", verify(&pubkeys, &pack, sig)),
        PackTool::Test {
            pack,
            corpus,
            overlays,
            json,
            max_fp_rate,
            min_detection,
            body_limit,
        } => (
            "test",
            test(&TestArgs {
                pack,
                corpus,
                overlays,
                json,
                max_fp_rate,
                min_detection,
                body_limit,
            }),
        ),
        PackTool::Diff { old, new, json } => ("diff", diff(&old, &new, json)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picket pack {name}: {e}");
            ExitCode::from(e.status())
        }
    }
}

/// Why a pack tool stopped.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },
    #[error("refusing to overwrite {0}")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    /// The answer is no; the message says why.
    #[error("{0}")]
    Refused(String),
}

impl ToolError {
    fn status(&self) -> u8 {
        match self {
            ToolError::Refused(_) => 1,
            _ => 2,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ToolError> {
    std::fs::read(path).map_err(|source| ToolError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// `path` with `suffix` appended to its file name (`pack.toml` → `pack.toml.sig`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// Parses, validates and compiles a pack from bytes already read (so what is checked is what
/// gets signed).
fn validate(bytes: &[u8], path: &Path) -> Result<Engine, ToolError> {
    let name = path.display().to_string();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ToolError::Invalid(format!("{name}: the pack is not UTF-8 text")))?;
    Engine::from_toml(text, &name).map_err(|e| ToolError::Invalid(e.to_string()))
}

fn load(pack: &Path, overlays: &[PathBuf]) -> Result<Engine, ToolError> {
    picket::packs::load_engine(Some(pack), overlays).map_err(|e| ToolError::Invalid(e.to_string()))
}

// ---- keygen, sign, verify ------------------------------------------------------------------

fn keygen(prefix: &Path) -> Result<ExitCode, ToolError> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for p in [&key_path, &pub_path] {
        if p.symlink_metadata().is_ok() {
            return Err(ToolError::Exists(p.display().to_string()));
        }
    }
    let key = SecretKey::generate().map_err(|e| ToolError::Invalid(e.to_string()))?;
    let public = key.public_key();
    write_new(&key_path, key.to_text().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public.to_text().as_bytes(), 0o644) {
        // Do not leave half a pair behind.
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    println!(
        "key id {}: wrote {} (secret, mode 0600) and {}",
        public.id(),
        key_path.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (never replacing an existing file) with `mode` and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ToolError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            ToolError::Exists(path.display().to_string())
        } else {
            ToolError::Write {
                path: path.display().to_string(),
                source,
            }
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

fn sign(key_path: &Path, pack_path: &Path, out: Option<PathBuf>) -> Result<ExitCode, ToolError> {
    let pack = read(pack_path)?;
    let engine = validate(&pack, pack_path)
        .map_err(|e| ToolError::Invalid(format!("{e}\nnot signed: the pack is invalid")))?;
    let key = SecretKey::parse(&read(key_path)?).map_err(|source| ToolError::Format {
        path: key_path.display().to_string(),
        source,
    })?;
    let out = out.unwrap_or_else(|| with_suffix(pack_path, ".sig"));
    let text = key.sign(&pack).to_text();
    // Written beside and renamed, so a watcher never sees half a signature.
    let tmp = with_suffix(&out, &format!(".tmp{}", std::process::id()));
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |source| ToolError::Write { path, source }
    };
    std::fs::write(&tmp, text.as_bytes()).map_err(werr(&tmp))?;
    if let Err(e) = std::fs::rename(&tmp, &out) {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(&out)(e));
    }
    let info = engine.info();
    println!(
        "{}: pack {} version {} signed with key {}: wrote {}",
        pack_path.display(),
        info.name,
        info.version,
        key.public_key().id(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(
    pubkeys: &[PathBuf],
    pack_path: &Path,
    sig: Option<PathBuf>,
) -> Result<ExitCode, ToolError> {
    let mut trusted = Vec::with_capacity(pubkeys.len());
    for p in pubkeys {
        let key = PublicKey::parse(&read(p)?).map_err(|source| ToolError::Format {
            path: p.display().to_string(),
            source,
        })?;
        trusted.push((key, p));
    }
    let pack = read(pack_path)?;
    let sig_path = sig.unwrap_or_else(|| with_suffix(pack_path, ".sig"));
    let signature = match std::fs::read(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ToolError::Read {
                path: sig_path.display().to_string(),
                source,
            })
        }
    };
    let policy = PackPolicy {
        trusted: trusted.iter().map(|(k, _)| k.clone()).collect(),
        require_signature: true,
        allow_rollback: true,
    };
    let refused =
        |reason: String| ToolError::Refused(format!("{}: refused: {reason}", pack_path.display()));
    match policy.check(&pack, signature.as_deref(), None) {
        Ok(accepted) => {
            let Some(id) = accepted.signer else {
                return Err(refused("no signer".into()));
            };
            let file = trusted
                .iter()
                .find(|(k, _)| k.id() == id)
                .map(|(_, p)| p.display().to_string())
                .unwrap_or_default();
            println!(
                "{}: good signature by key {id} ({file})",
                pack_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(picket_signatures::PolicyError::Unsigned) => Err(refused(format!(
            "not signed: no signature file {}",
            sig_path.display()
        ))),
        Err(picket_signatures::PolicyError::Malformed(e)) => {
            Err(refused(format!("{}: {e}", sig_path.display())))
        }
        Err(e @ picket_signatures::PolicyError::UntrustedKey { .. }) => {
            let ids: Vec<String> = trusted.iter().map(|(k, _)| k.id().to_string()).collect();
            Err(refused(format!("{e} (trusted: {})", ids.join(", "))))
        }
        Err(e) => Err(refused(e.to_string())),
    }
}

// ---- test ----------------------------------------------------------------------------------

struct TestArgs {
    pack: PathBuf,
    corpus: Vec<PathBuf>,
    overlays: Vec<PathBuf>,
    json: bool,
    max_fp_rate: Option<f64>,
    min_detection: Option<f64>,
    body_limit: usize,
}

/// A rate on the command line: a fraction in [0, 1], or a percentage with `%`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number (a fraction such as 0.005, or 0.5%)"))?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s:?} is not between 0 and 1 (or 0% and 100%)"));
    }
    Ok(v)
}

#[derive(Serialize)]
struct TestReport {
    pack: String,
    version: String,
    attacks: usize,
    detected: usize,
    /// `null` when the corpus has no attacks.
    detection_rate: Option<f64>,
    benign: usize,
    false_positives: usize,
    false_positive_rate: Option<f64>,
    signatures: Vec<SignatureStats>,
    missed: Vec<Missed>,
    false_positive_requests: Vec<FalsePositive>,
    /// Thresholds that were given and not met.
    failures: Vec<String>,
}

#[derive(Serialize)]
struct SignatureStats {
    id: String,
    name: String,
    action: &'static str,
    /// Attacks on which the signature had a finding.
    detections: usize,
    /// Benign requests on which it had a finding.
    false_positives: usize,
}

#[derive(Serialize)]
struct Missed {
    id: String,
    family: String,
    /// Signatures that only alerted on it.
    alerts: Vec<String>,
}

#[derive(Serialize)]
struct FalsePositive {
    id: String,
    category: String,
    signatures: Vec<String>,
}

fn record_id(id: &serde_json::Value, file: &str, line: usize) -> String {
    match id {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => format!("{file}:{line}"),
        other => other.to_string(),
    }
}

fn test(args: &TestArgs) -> Result<ExitCode, ToolError> {
    let engine = load(&args.pack, &args.overlays)?;
    let cfg = InspectConfig {
        body_limit: args.body_limit,
        ..InspectConfig::default()
    };
    let sigs = engine.signatures();
    let index: HashMap<&str, usize> = sigs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut stats: Vec<SignatureStats> = sigs
        .iter()
        .map(|s| SignatureStats {
            id: s.id.clone(),
            name: s.name.clone(),
            action: s.action.as_str(),
            detections: 0,
            false_positives: 0,
        })
        .collect();
    let (mut attacks, mut detected, mut benign) = (0usize, 0usize, 0usize);
    let mut missed = Vec::new();
    let mut fps = Vec::new();
    let mut bad_lines = Vec::new();
    for path in &args.corpus {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| ToolError::Read {
            path: file.clone(),
            source,
        })?;
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|source| ToolError::Read {
                path: file.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let n = i + 1;
            let (id, raw) = match parse_record(&line) {
                Ok(r) => r,
                Err(e) => {
                    bad_lines.push(format!("{file}:{n}: {e}"));
                    continue;
                }
            };
            let label = match label_of(&line) {
                Ok(l) => l,
                Err(e) => {
                    bad_lines.push(format!("{file}:{n}: {e}"));
                    continue;
                }
            };
            let id = record_id(&id, &file, n);
            let report = scan_raw(&engine, &cfg, serde_json::Value::Null, &raw);
            let fired: BTreeSet<usize> = report
                .matches
                .iter()
                .filter_map(|m| index.get(m.id.as_str()).copied())
                .collect();
            let blocked = report.verdict == "block";
            match label {
                Label::Attack(family) => {
                    attacks += 1;
                    for &s in &fired {
                        stats[s].detections += 1;
                    }
                    if blocked {
                        detected += 1;
                    } else {
                        missed.push(Missed {
                            id,
                            family,
                            alerts: fired.iter().map(|&s| sigs[s].id.clone()).collect(),
                        });
                    }
                }
                Label::Benign(category) => {
                    benign += 1;
                    for &s in &fired {
                        stats[s].false_positives += 1;
                    }
                    if blocked {
                        fps.push(FalsePositive {
                            id,
                            category,
                            signatures: report
                                .matches
                                .iter()
                                .filter(|m| m.action == "block")
                                .map(|m| m.id.clone())
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .collect(),
                        });
                    }
                }
            }
        }
    }
    if !bad_lines.is_empty() {
        return Err(ToolError::Invalid(format!(
            "{} unusable corpus record(s):\n{}",
            bad_lines.len(),
            bad_lines.join("\n")
        )));
    }
    let rate = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let detection_rate = rate(detected, attacks);
    let false_positive_rate = rate(fps.len(), benign);
    let mut failures = Vec::new();
    if let Some(min) = args.min_detection {
        match detection_rate {
            None => failures.push("--min-detection given but the corpus has no attacks".into()),
            Some(r) if r < min => failures.push(format!(
                "detection {} is below --min-detection {}",
                pct(r),
                pct(min)
            )),
            _ => {}
        }
    }
    if let Some(max) = args.max_fp_rate {
        match false_positive_rate {
            None => {
                failures.push("--max-fp-rate given but the corpus has no benign requests".into())
            }
            Some(r) if r > max => failures.push(format!(
                "false-positive rate {} is above --max-fp-rate {}",
                pct(r),
                pct(max)
            )),
            _ => {}
        }
    }
    let info = engine.info();
    let report = TestReport {
        pack: info.name.clone(),
        version: info.version.clone(),
        attacks,
        detected,
        detection_rate,
        benign,
        false_positives: fps.len(),
        false_positive_rate,
        signatures: stats,
        missed,
        false_positive_requests: fps,
        failures,
    };
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| ToolError::Invalid(format!("cannot encode the report: {e}")))?;
        s.push('\n');
        s
    } else {
        render_test(&report)
    };
    print_out(&text)?;
    if report.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(ToolError::Refused(format!(
            "thresholds not met: {}",
            report.failures.join("; ")
        )))
    }
}

enum Label {
    Attack(String),
    Benign(String),
}

/// `family` marks an attack, `category` a benign request (the repository corpus's fields).
fn label_of(line: &str) -> Result<Label, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let field = |name: &str| v.get(name).and_then(|f| f.as_str()).map(str::to_string);
    match (field("family"), field("category")) {
        (Some(f), None) => Ok(Label::Attack(f)),
        (None, Some(c)) => Ok(Label::Benign(c)),
        (Some(_), Some(_)) => {
            Err("both `family` (attack) and `category` (benign): which is it?".into())
        }
        (None, None) => {
            Err("no label: `family` (an attack) or `category` (a benign request)".into())
        }
    }
}

fn pct(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

fn ratio(n: usize, d: usize) -> String {
    match d {
        0 => format!("{n}/{d}  (n/a)"),
        _ => format!("{n}/{d}  ({})", pct(n as f64 / d as f64)),
    }
}

fn render_test(r: &TestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "pack {} {}: {} attacks, {} benign requests\n",
        r.pack, r.version, r.attacks, r.benign
    );
    let id_w = r
        .signatures
        .iter()
        .map(|x| x.id.len())
        .max()
        .unwrap_or(0)
        .max("signature".len());
    let _ = writeln!(
        s,
        "{:<id_w$}  {:>10}  {:>15}  {:<6}  name",
        "signature", "detections", "false positives", "action"
    );
    for x in &r.signatures {
        let _ = writeln!(
            s,
            "{:<id_w$}  {:>10}  {:>15}  {:<6}  {}",
            x.id, x.detections, x.false_positives, x.action, x.name
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "attacks blocked:          {}",
        ratio(r.detected, r.attacks)
    );
    let _ = writeln!(
        s,
        "benign requests blocked:  {}",
        ratio(r.false_positives, r.benign)
    );
    let _ = writeln!(s, "\nattacks nobody caught ({}):", r.missed.len());
    for m in &r.missed {
        let _ = write!(s, "  {} ({})", m.id, m.family);
        if !m.alerts.is_empty() {
            let _ = write!(s, "  alerted by {}", m.alerts.join(", "));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\nbenign requests blocked ({}):",
        r.false_positive_requests.len()
    );
    for f in &r.false_positive_requests {
        let _ = writeln!(
            s,
            "  {} ({})  by {}",
            f.id,
            f.category,
            f.signatures.join(", ")
        );
    }
    s
}

fn print_out(text: &str) -> Result<(), ToolError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|source| ToolError::Write {
            path: "standard output".into(),
            source,
        })
}

// ---- diff ----------------------------------------------------------------------------------

#[derive(Serialize, Default)]
struct PackDiff {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<VersionChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Change>,
    added: Vec<SigBrief>,
    removed: Vec<SigBrief>,
    changed: Vec<SigChange>,
    exclusions_added: Vec<String>,
    exclusions_removed: Vec<String>,
}

#[derive(Serialize)]
struct Change {
    old: String,
    new: String,
}

#[derive(Serialize)]
struct VersionChange {
    old: String,
    new: String,
    /// `newer`, `older` or `equal` by the pack version ordering, or `uncomparable`.
    order: &'static str,
}

#[derive(Serialize)]
struct SigBrief {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct SigChange {
    id: String,
    fields: Vec<FieldChange>,
}

#[derive(Serialize)]
struct FieldChange {
    field: &'static str,
    /// For scalar fields (and ordered lists such as transforms).
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<String>,
    /// For set-like fields (literals, targets, references).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    removed: Vec<String>,
}

fn diff(old_path: &Path, new_path: &Path, json: bool) -> Result<ExitCode, ToolError> {
    let none: &[PathBuf] = &[];
    let old = load(old_path, none)?;
    let new = load(new_path, none)?;
    let d = diff_packs(old.pack(), new.pack());
    let text = if json {
        let mut s = serde_json::to_string_pretty(&d)
            .map_err(|e| ToolError::Invalid(format!("cannot encode the diff: {e}")))?;
        s.push('\n');
        s
    } else {
        render_diff(&d)
    };
    print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn diff_packs(old: &Pack, new: &Pack) -> PackDiff {
    let mut d = PackDiff::default();
    if old.name != new.name {
        d.name = Some(Change {
            old: old.name.clone(),
            new: new.name.clone(),
        });
    }
    if old.version != new.version {
        let order = match (
            picket_signatures::PackVersion::parse(&old.version),
            picket_signatures::PackVersion::parse(&new.version),
        ) {
            (Some(o), Some(n)) => match n.cmp(&o) {
                std::cmp::Ordering::Greater => "newer",
                std::cmp::Ordering::Less => "older",
                std::cmp::Ordering::Equal => "equal",
            },
            _ => "uncomparable",
        };
        d.version = Some(VersionChange {
            old: old.version.clone(),
            new: new.version.clone(),
            order,
        });
    }
    if old.description != new.description {
        d.description = Some(Change {
            old: old.description.clone().unwrap_or_default(),
            new: new.description.clone().unwrap_or_default(),
        });
    }
    let old_sigs: HashMap<&str, &Signature> =
        old.signatures.iter().map(|s| (s.id.as_str(), s)).collect();
    let new_ids: BTreeSet<&str> = new.signatures.iter().map(|s| s.id.as_str()).collect();
    for s in &new.signatures {
        match old_sigs.get(s.id.as_str()) {
            None => d.added.push(SigBrief {
                id: s.id.clone(),
                name: s.name.clone(),
            }),
            Some(o) => {
                let fields = signature_changes(o, s);
                if !fields.is_empty() {
                    d.changed.push(SigChange {
                        id: s.id.clone(),
                        fields,
                    });
                }
            }
        }
    }
    for s in &old.signatures {
        if !new_ids.contains(s.id.as_str()) {
            d.removed.push(SigBrief {
                id: s.id.clone(),
                name: s.name.clone(),
            });
        }
    }
    // Exclusions have no id: they are compared by content (where they were declared aside).
    let mut old_ex: HashMap<String, usize> = HashMap::new();
    for e in &old.exclusions {
        *old_ex.entry(describe_exclusion(e)).or_default() += 1;
    }
    let mut new_ex: HashMap<String, usize> = HashMap::new();
    for e in &new.exclusions {
        *new_ex.entry(describe_exclusion(e)).or_default() += 1;
    }
    for e in &new.exclusions {
        let k = describe_exclusion(e);
        match old_ex.get_mut(&k) {
            Some(n) if *n > 0 => *n -= 1,
            _ => d.exclusions_added.push(format!("{k} ({})", e.origin)),
        }
    }
    for e in &old.exclusions {
        let k = describe_exclusion(e);
        match new_ex.get_mut(&k) {
            Some(n) if *n > 0 => *n -= 1,
            _ => d.exclusions_removed.push(format!("{k} ({})", e.origin)),
        }
    }
    d
}

fn describe_exclusion(e: &Exclusion) -> String {
    let mut s = format!("signatures=[{}]", e.signatures.join(","));
    for (name, v) in [
        ("host", &e.host),
        ("path_prefix", &e.path_prefix),
        ("arg", &e.arg),
        ("header", &e.header),
        ("cookie", &e.cookie),
    ] {
        if let Some(v) = v {
            let _ = write!(s, " {name}={v}");
        }
    }
    let action = match e.effect {
        ExclusionEffect::Disable => "disable",
        ExclusionEffect::SetAction(a) => a.as_str(),
    };
    let _ = write!(s, " action={action}");
    if let Some(r) = &e.reason {
        let _ = write!(s, " reason={r:?}");
    }
    s
}

/// The pattern half of a signature, as comparable strings.
struct PatternView {
    targets: BTreeSet<String>,
    transforms: Vec<&'static str>,
    literals: BTreeSet<String>,
    regex: Option<String>,
    not_regex: Option<String>,
}

fn pattern_view(d: &Detection) -> Option<PatternView> {
    let Detection::Pattern {
        targets,
        header_names,
        transforms,
        literals,
        regex,
        not_regex,
    } = d
    else {
        return None;
    };
    let mut t = BTreeSet::new();
    for target in targets.iter() {
        if target == picket_signatures::Target::Header && !header_names.is_empty() {
            t.extend(header_names.iter().map(|h| format!("header:{h}")));
        } else {
            t.insert(target.pack_name().to_string());
        }
    }
    Some(PatternView {
        targets: t,
        transforms: transforms.iter().map(|t| t.pack_name()).collect(),
        literals: literals
            .iter()
            .map(|l| format!("\"{}\"", l.escape_ascii()))
            .collect(),
        regex: regex.clone(),
        not_regex: not_regex.clone(),
    })
}

fn scalar(field: &'static str, old: String, new: String) -> Option<FieldChange> {
    (old != new).then_some(FieldChange {
        field,
        old: Some(old),
        new: Some(new),
        added: Vec::new(),
        removed: Vec::new(),
    })
}

fn set(field: &'static str, old: &BTreeSet<String>, new: &BTreeSet<String>) -> Option<FieldChange> {
    (old != new).then(|| FieldChange {
        field,
        old: None,
        new: None,
        added: new.difference(old).cloned().collect(),
        removed: old.difference(new).cloned().collect(),
    })
}

fn opt(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("{s:?}"),
        None => "(none)".to_string(),
    }
}

/// A regex as a TOML literal string would show it (no escaping of backslashes) when it can.
fn regex(s: &Option<String>) -> String {
    match s {
        Some(r) if !r.contains('\'') && !r.chars().any(char::is_control) => format!("'{r}'"),
        other => opt(other),
    }
}

fn signature_changes(old: &Signature, new: &Signature) -> Vec<FieldChange> {
    let mut c: Vec<Option<FieldChange>> = vec![
        scalar("name", old.name.clone(), new.name.clone()),
        scalar(
            "severity",
            old.severity.as_str().into(),
            new.severity.as_str().into(),
        ),
        set(
            "references",
            &old.references.iter().cloned().collect(),
            &new.references.iter().cloned().collect(),
        ),
        scalar("description", opt(&old.description), opt(&new.description)),
    ];
    match (&old.detection, &new.detection) {
        (Detection::Anomaly(a), Detection::Anomaly(b)) => {
            c.push(scalar("anomaly", a.name().into(), b.name().into()));
        }
        (a, b) => match (pattern_view(a), pattern_view(b)) {
            (Some(a), Some(b)) => {
                c.push(set("targets", &a.targets, &b.targets));
                c.push(scalar(
                    "transforms",
                    format!("[{}]", a.transforms.join(", ")),
                    format!("[{}]", b.transforms.join(", ")),
                ));
                c.push(set("literals", &a.literals, &b.literals));
                c.push(scalar("regex", regex(&a.regex), regex(&b.regex)));
                c.push(scalar(
                    "not_regex",
                    regex(&a.not_regex),
                    regex(&b.not_regex),
                ));
            }
            _ => {
                let kind = |d: &Detection| match d {
                    Detection::Anomaly(a) => format!("anomaly {}", a.name()),
                    Detection::Pattern { .. } => "pattern".to_string(),
                };
                c.push(scalar("kind", kind(a), kind(b)));
            }
        },
    }
    c.push(scalar(
        "action",
        old.action.as_str().into(),
        new.action.as_str().into(),
    ));
    c.push(scalar(
        "enabled",
        old.enabled.to_string(),
        new.enabled.to_string(),
    ));
    c.into_iter().flatten().collect()
}

fn render_diff(d: &PackDiff) -> String {
    let mut s = String::new();
    if let Some(n) = &d.name {
        let _ = writeln!(s, "name: {} -> {}", n.old, n.new);
    }
    match &d.version {
        Some(v) => {
            let _ = writeln!(s, "version: {} -> {} ({})", v.old, v.new, v.order);
        }
        None => {
            let _ = writeln!(s, "version: unchanged");
        }
    }
    if let Some(n) = &d.description {
        let _ = writeln!(s, "description: {:?} -> {:?}", n.old, n.new);
    }
    let _ = writeln!(
        s,
        "signatures: {} added, {} removed, {} changed",
        d.added.len(),
        d.removed.len(),
        d.changed.len()
    );
    for a in &d.added {
        let _ = writeln!(s, "+ {}  {}", a.id, a.name);
    }
    for r in &d.removed {
        let _ = writeln!(s, "- {}  {}", r.id, r.name);
    }
    for c in &d.changed {
        let names: Vec<&str> = c.fields.iter().map(|f| f.field).collect();
        let _ = writeln!(s, "~ {}: {}", c.id, names.join(", "));
        for f in &c.fields {
            match (&f.old, &f.new) {
                (Some(o), Some(n)) => {
                    let _ = writeln!(s, "    {}: {} -> {}", f.field, o, n);
                }
                _ => {
                    let mut parts = Vec::new();
                    if !f.added.is_empty() {
                        parts.push(format!("added {}", f.added.join(", ")));
                    }
                    if !f.removed.is_empty() {
                        parts.push(format!("removed {}", f.removed.join(", ")));
                    }
                    let _ = writeln!(s, "    {}: {}", f.field, parts.join("; "));
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "exclusions: {} added, {} removed",
        d.exclusions_added.len(),
        d.exclusions_removed.len()
    );
    for e in &d.exclusions_added {
        let _ = writeln!(s, "+ exclusion {e}");
    }
    for e in &d.exclusions_removed {
        let _ = writeln!(s, "- exclusion {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_fractions_or_percentages() {
        assert_eq!(parse_rate("0.005"), Ok(0.005));
        assert_eq!(parse_rate("0.5%"), Ok(0.005));
        assert_eq!(parse_rate("95%"), Ok(0.95));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert!(parse_rate("2").is_err());
        assert!(parse_rate("-1%").is_err());
        assert!(parse_rate("lots").is_err());
    }

    #[test]
    fn suffix_is_appended_to_the_file_name() {
        assert_eq!(
            with_suffix(Path::new("dir/pack.toml"), ".sig"),
            PathBuf::from("dir/pack.toml.sig")
        );
    }
}
