//! `picket scan`: offline inspection of raw HTTP/1.1 requests with the same engine and the
//! same decision the proxy makes, one JSON line per input.

use std::io::{BufRead, Write};

use base64::Engine as _;
use picket_dpi::{inspect_bytes, Decision, InspectConfig, InspectedRequest};
use picket_signatures::Engine;
use serde::Serialize;

/// One `picket scan` output line.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub id: serde_json::Value,
    pub verdict: &'static str,
    pub matches: Vec<ScanMatch>,
    /// Requests found in the input (pipelined requests are judged one by one; the input is
    /// blocked if any of them is).
    pub requests: usize,
}

#[derive(Debug, Serialize)]
pub struct ScanMatch {
    pub id: String,
    pub name: String,
    pub severity: &'static str,
    pub action: &'static str,
    pub location: String,
    pub excerpt: String,
}

/// Why one input could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: line {line}: {reason}")]
    Jsonl {
        origin: String,
        line: usize,
        reason: String,
    },
}

/// Judges one raw input.
pub fn scan_raw(
    engine: &Engine,
    cfg: &InspectConfig,
    id: serde_json::Value,
    raw: &[u8],
) -> ScanReport {
    report(engine, id, &inspect_bytes(engine, cfg, raw))
}

fn report(engine: &Engine, id: serde_json::Value, requests: &[InspectedRequest]) -> ScanReport {
    let mut verdict = "allow";
    let mut matches = Vec::new();
    for r in requests {
        if r.verdict.decision() == Decision::Block {
            verdict = "block";
        }
        for h in &r.verdict.hits {
            let sig = &engine.signatures()[h.signature as usize];
            matches.push(ScanMatch {
                id: sig.id.clone(),
                name: sig.name.clone(),
                severity: sig.severity.as_str(),
                action: h.action.as_str(),
                location: h.location.clone(),
                excerpt: h.excerpt.clone(),
            });
        }
    }
    ScanReport {
        id,
        verdict,
        matches,
        requests: requests.len(),
    }
}

/// Parses one JSONL record: `{"id": …, "raw": "…"}` (or `raw_b64` for bytes that are not UTF-8).
pub fn parse_record(line: &str) -> Result<(serde_json::Value, Vec<u8>), String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let id = obj.get("id").cloned().unwrap_or(serde_json::Value::Null);
    if let Some(raw) = obj.get("raw") {
        let raw = raw.as_str().ok_or("field `raw` is not a string")?;
        return Ok((id, raw.as_bytes().to_vec()));
    }
    if let Some(b) = obj.get("raw_b64") {
        let b = b.as_str().ok_or("field `raw_b64` is not a string")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| format!("field `raw_b64` is not base64: {e}"))?;
        return Ok((id, bytes));
    }
    Err("no field `raw` (or `raw_b64`)".to_string())
}

/// Scans JSONL records from `input`, writing one report line each to `out`. Bad records are
/// returned as errors (and skipped); the rest are still scanned.
pub fn scan_jsonl(
    engine: &Engine,
    cfg: &InspectConfig,
    origin: &str,
    input: impl BufRead,
    out: &mut impl Write,
) -> std::io::Result<Vec<InputError>> {
    let mut errors = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_record(&line) {
            Ok((id, raw)) => write_report(out, &scan_raw(engine, cfg, id, &raw))?,
            Err(reason) => errors.push(InputError::Jsonl {
                origin: origin.to_string(),
                line: i + 1,
                reason,
            }),
        }
    }
    Ok(errors)
}

pub fn write_report(out: &mut impl Write, r: &ScanReport) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")
}
