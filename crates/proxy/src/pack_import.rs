//! `picket pack import`: rules from other engines into a picket pack.
//!
//! ```text
//! picket pack import --format suricata [--id-prefix SURI] [--action block|alert]
//!                    [--name NAME] [--version V] [--out PACK] [--strict] FILE...
//! picket pack import --format modsec-phrases [--id ID] [--signature-name NAME]
//!                    [--severity S] [--targets T,T] [--transforms X,Y] [--action A]
//!                    [--name NAME] [--version V] [--out PACK] [--strict] FILE...
//! ```
//!
//! The pack goes to standard output (or `--out`), the report to standard error: one line per
//! source rule (`file:line: sid N: converted to ID` or `…: not converted: reason`) and a
//! summary. Exit status 0 when something was converted (and, with `--strict`, everything), 1
//! otherwise (no pack is written then), 2 for unreadable input or bad options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use picket_signatures::import::{
    import_phrases, import_suricata, Imported, PackMeta, PhraseOptions, SuricataOptions,
};
use picket_signatures::{Action, Severity, Transform};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// Suricata/Snort HTTP rules, one per line.
    Suricata,
    /// ModSecurity phrase files (@pmFromFile .data): one signature from all files.
    ModsecPhrases,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ActionArg {
    Block,
    Alert,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Format of the input files.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Rule or phrase files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Name of the generated pack.
    #[arg(long, default_value = "imported")]
    pub name: String,
    /// Version of the generated pack.
    #[arg(long, default_value = "1")]
    pub version: String,
    /// Write the pack here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fail (exit 1, no pack) when any rule could not be converted.
    #[arg(long)]
    pub strict: bool,
    /// Action of every generated signature. Suricata default: the rule's own (alert → alert,
    /// drop/reject → block); phrase default: block.
    #[arg(long, value_enum)]
    pub action: Option<ActionArg>,
    /// Suricata: signature ids are PREFIX-<sid>.
    #[arg(long, default_value = "SURI")]
    pub id_prefix: String,
    /// Phrases: the signature id (default MODSEC-PM-<first file's stem>).
    #[arg(long)]
    pub id: Option<String>,
    /// Phrases: the signature name.
    #[arg(long)]
    pub signature_name: Option<String>,
    /// Phrases: severity (default medium).
    #[arg(long, value_enum)]
    pub severity: Option<SeverityArg>,
    /// Phrases: targets, comma-separated (default: arg,form,multipart,json:string,xml:text,xml:attribute,grpc:string).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Phrases: transforms, comma-separated, applied in order.
    #[arg(long, value_delimiter = ',')]
    pub transforms: Vec<String>,
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("picket pack import: {msg}");
    ExitCode::from(2)
}

/// Runs `picket pack import`.
pub fn run(args: ImportArgs) -> ExitCode {
    let mut texts = Vec::new();
    for f in &args.files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => return usage(&format!("{}: {e}", f.display())),
        }
    }
    let sources: Vec<(&str, &str)> = texts
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let action = args.action.map(|a| match a {
        ActionArg::Block => Action::Block,
        ActionArg::Alert => Action::Alert,
    });
    let result = match args.format {
        Format::Suricata => {
            let phrase_only = args.id.is_some()
                || args.signature_name.is_some()
                || args.severity.is_some()
                || !args.targets.is_empty()
                || !args.transforms.is_empty();
            if phrase_only {
                return usage(
                    "--id, --signature-name, --severity, --targets and --transforms are for --format modsec-phrases",
                );
            }
            let opts = SuricataOptions {
                id_prefix: args.id_prefix.clone(),
                action,
            };
            import_suricata(&sources, &opts)
        }
        Format::ModsecPhrases => {
            let mut transforms = Vec::new();
            for t in &args.transforms {
                match Transform::from_pack_name(t) {
                    Some(t) => transforms.push(t),
                    None => return usage(&format!("unknown transform {t:?}")),
                }
            }
            let id = args
                .id
                .clone()
                .unwrap_or_else(|| default_phrase_id(&args.files[0]));
            let name = args.signature_name.clone().unwrap_or_else(|| {
                format!("Phrase match from {}", file_names(&args.files).join(", "))
            });
            let mut opts = PhraseOptions::new(&id, &name);
            if !args.targets.is_empty() {
                opts.targets = args.targets.clone();
            }
            opts.transforms = transforms;
            if let Some(s) = args.severity {
                opts.severity = match s {
                    SeverityArg::Info => Severity::Info,
                    SeverityArg::Low => Severity::Low,
                    SeverityArg::Medium => Severity::Medium,
                    SeverityArg::High => Severity::High,
                    SeverityArg::Critical => Severity::Critical,
                };
            }
            if let Some(a) = action {
                opts.action = a;
            }
            import_phrases(&sources, &opts)
        }
    };
    let imported = match result {
        Ok(i) => i,
        Err(e) => return usage(&e.to_string()),
    };
    report(&imported);
    if imported.converted() == 0 {
        eprintln!("picket pack import: nothing could be converted; no pack written");
        return ExitCode::from(1);
    }
    if args.strict && imported.unconvertible() > 0 {
        eprintln!(
            "picket pack import: --strict and some rules could not be converted; no pack written"
        );
        return ExitCode::from(1);
    }
    let meta = PackMeta {
        name: args.name.clone(),
        version: args.version.clone(),
        description: Some(format!(
            "Imported by picket pack import --format {} from {}",
            match args.format {
                Format::Suricata => "suricata",
                Format::ModsecPhrases => "modsec-phrases",
            },
            file_names(&args.files).join(", ")
        )),
    };
    let toml = match imported.to_toml(&meta) {
        Ok(t) => t,
        Err(e) => return usage(&e.to_string()),
    };
    match &args.out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, toml) {
                return usage(&format!("{}: {e}", p.display()));
            }
        }
        None => print!("{toml}"),
    }
    ExitCode::SUCCESS
}

fn report(imported: &Imported) {
    for r in &imported.report {
        eprintln!("{r}");
    }
    eprintln!(
        "picket pack import: {} converted, {} not converted, {} signatures",
        imported.converted(),
        imported.unconvertible(),
        imported.signatures.len()
    );
}

fn file_names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.display().to_string())
        })
        .collect()
}

/// `MODSEC-PM-` and the file stem in upper case, other bytes as `-`, within the 64-byte id limit.
fn default_phrase_id(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut id = String::from("MODSEC-PM-");
    for c in stem.chars() {
        if id.len() >= 64 {
            break;
        }
        id.push(if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c.to_ascii_uppercase()
        } else {
            '-'
        });
    }
    id
}
