#![forbid(unsafe_code)]
//! `picket`: the layer-7 DPI sidecar's command line.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use picket::scan::{scan_jsonl, scan_raw, write_report, InputError};
use picket_dpi::InspectConfig;

#[derive(Parser)]
#[command(
    name = "picket",
    version,
    about = "Layer-7 deep-packet-inspection sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect raw HTTP/1.1 requests offline, with the proxy's engine and decision.
    Scan {
        /// Signature pack (TOML); the built-in default pack when absent.
        #[arg(long)]
        pack: Option<PathBuf>,
        /// Exclusion overlay files applied on top of the pack.
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
        /// Inputs are JSON lines with the raw request in `raw` (or `raw_b64`) and an `id`.
        #[arg(long)]
        jsonl: bool,
        /// Body bytes inspected per request.
        #[arg(long, default_value_t = 1 << 20)]
        body_limit: usize,
        /// Files to scan (one request stream each); standard input when none.
        files: Vec<PathBuf>,
    },
    /// Signature pack tooling.
    Pack {
        #[command(subcommand)]
        command: PackCommand,
    },
}

#[derive(Subcommand)]
enum PackCommand {
    /// Parse, validate and compile a pack (and overlays); print a summary or every problem.
    Validate {
        pack: PathBuf,
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan {
            pack,
            overlays,
            jsonl,
            body_limit,
            files,
        } => scan(pack, overlays, jsonl, body_limit, files),
        Command::Pack {
            command: PackCommand::Validate { pack, overlays },
        } => match picket::packs::load_engine(Some(&pack), &overlays) {
            Ok(engine) => {
                let info = engine.info();
                println!(
                    "{}: pack {} version {}: {} signatures, {} exclusions: ok",
                    pack.display(),
                    info.name,
                    info.version,
                    info.signatures,
                    info.exclusions
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

fn scan(
    pack: Option<PathBuf>,
    overlays: Vec<PathBuf>,
    jsonl: bool,
    body_limit: usize,
    files: Vec<PathBuf>,
) -> ExitCode {
    let engine = match picket::packs::load_engine(pack.as_deref(), &overlays) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("picket scan: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = InspectConfig {
        body_limit,
        ..InspectConfig::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut errors: Vec<InputError> = Vec::new();
    let result = (|| -> std::io::Result<()> {
        if files.is_empty() {
            let stdin = std::io::stdin();
            if jsonl {
                errors.extend(scan_jsonl(
                    &engine,
                    &cfg,
                    "<stdin>",
                    stdin.lock(),
                    &mut out,
                )?);
            } else {
                let mut raw = Vec::new();
                stdin.lock().read_to_end(&mut raw)?;
                write_report(&mut out, &scan_raw(&engine, &cfg, "<stdin>".into(), &raw))?;
            }
        }
        for f in &files {
            let name = f.display().to_string();
            let read_err = |source| InputError::Read {
                path: name.clone(),
                source,
            };
            if jsonl {
                match std::fs::File::open(f) {
                    Ok(file) => errors.extend(scan_jsonl(
                        &engine,
                        &cfg,
                        &name,
                        BufReader::new(file),
                        &mut out,
                    )?),
                    Err(e) => errors.push(read_err(e)),
                }
            } else {
                match std::fs::read(f) {
                    Ok(raw) => write_report(
                        &mut out,
                        &scan_raw(&engine, &cfg, name.clone().into(), &raw),
                    )?,
                    Err(e) => errors.push(read_err(e)),
                }
            }
        }
        out.flush()
    })();
    if let Err(e) = result {
        eprintln!("picket scan: writing output: {e}");
        return ExitCode::from(2);
    }
    for e in &errors {
        eprintln!("picket scan: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
