//! The labelled corpus (`corpus/`): every attack must be blocked and no benign request may be,
//! within the thresholds stated in README.md. Prints the detection rate per family and the
//! false-positive rate, and the requests that missed, so a failing run says what to look at.

use std::collections::BTreeMap;
use std::path::PathBuf;

use picket::scan::{parse_record, scan_raw, ScanReport};
use picket_dpi::InspectConfig;
use picket_signatures::Engine;

/// Minimum share of each family's attacks blocked.
const MIN_FAMILY_DETECTION: f64 = 0.90;
/// Minimum share of all attacks blocked.
const MIN_DETECTION: f64 = 0.95;
/// Maximum share of benign requests blocked.
const MAX_FALSE_POSITIVES: f64 = 0.005;

struct Record {
    id: String,
    label: String,
    report: ScanReport,
}

fn corpus(file: &str, label_field: &str, engine: &Engine) -> Vec<Record> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cfg = InspectConfig::default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let label = v[label_field]
                .as_str()
                .unwrap_or_else(|| panic!("{file}:{}: no {label_field}", i + 1))
                .to_string();
            let (id, raw) = parse_record(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            Record {
                id: id.as_str().unwrap_or_default().to_string(),
                label,
                report: scan_raw(engine, &cfg, id, &raw),
            }
        })
        .collect()
}

fn summary(r: &ScanReport) -> String {
    r.matches
        .iter()
        .map(|m| format!("{}@{}[{}]", m.id, m.location, m.excerpt))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn corpus_detection_and_false_positive_rates() {
    let engine = Engine::builtin().expect("built-in pack");
    let attacks = corpus("attacks.jsonl", "family", &engine);
    let benign = corpus("benign.jsonl", "category", &engine);
    assert!(attacks.len() >= 300, "only {} attacks", attacks.len());
    assert!(
        benign.len() >= 1000,
        "only {} benign requests",
        benign.len()
    );

    let mut families: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for r in &attacks {
        let e = families.entry(&r.label).or_default();
        e.1 += 1;
        if r.report.verdict == "block" {
            e.0 += 1;
        } else {
            missed.push(r);
        }
    }
    let false_positives: Vec<&Record> = benign
        .iter()
        .filter(|r| r.report.verdict == "block")
        .collect();

    println!("family               detected");
    let mut failures = Vec::new();
    for (family, (hit, total)) in &families {
        let rate = *hit as f64 / *total as f64;
        println!("{family:<20} {hit:>4}/{total:<4} {:>6.1}%", rate * 100.0);
        if rate < MIN_FAMILY_DETECTION {
            failures.push(format!(
                "{family}: {:.1}% < {:.0}%",
                rate * 100.0,
                MIN_FAMILY_DETECTION * 100.0
            ));
        }
    }
    let detected = attacks.len() - missed.len();
    let detection = detected as f64 / attacks.len() as f64;
    let fp_rate = false_positives.len() as f64 / benign.len() as f64;
    println!(
        "all attacks          {detected:>4}/{:<4} {:>6.1}%",
        attacks.len(),
        detection * 100.0
    );
    println!(
        "false positives      {:>4}/{:<4} {:>6.2}%",
        false_positives.len(),
        benign.len(),
        fp_rate * 100.0
    );
    for r in &missed {
        println!("MISSED {} ({}): {}", r.id, r.label, summary(&r.report));
    }
    for r in &false_positives {
        println!(
            "FALSE POSITIVE {} ({}): {}",
            r.id,
            r.label,
            summary(&r.report)
        );
    }
    if detection < MIN_DETECTION {
        failures.push(format!(
            "detection {:.1}% < {:.0}%",
            detection * 100.0,
            MIN_DETECTION * 100.0
        ));
    }
    if fp_rate > MAX_FALSE_POSITIVES {
        failures.push(format!(
            "false positives {:.2}% > {:.1}%",
            fp_rate * 100.0,
            MAX_FALSE_POSITIVES * 100.0
        ));
    }
    assert!(
        failures.is_empty(),
        "corpus thresholds not met: {failures:?}"
    );
}
