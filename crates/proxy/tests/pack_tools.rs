//! `picket pack keygen|sign|verify|test|diff` as a user runs them: the real binary, real files
//! in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn picket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .output()
        .expect("run picket")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test, removed when the test is over.
struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(test: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("picket-pack-tools-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MINI: &str = r#"[pack]
name = "mini"
version = "2026.1.2"

[[signature]]
id = "T-EVIL"
name = "evil word"
severity = "high"
targets = ["arg"]
literals = ["evil"]

[[signature]]
id = "T-PASSWD"
name = "passwd path"
severity = "high"
targets = ["arg"]
transforms = ["url_decode"]
literals = ["/etc/passwd"]

[[signature]]
id = "T-NOTE"
name = "alert only"
severity = "low"
targets = ["header:x-note"]
literals = ["hmm"]
action = "alert"
"#;

/// The key id written in a key file.
fn key_id(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("key-id: "))
        .unwrap()
        .to_string()
}

#[test]
fn keygen_sign_verify_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir("roundtrip");
    let prefix = d.join("release");
    let out = picket(&["pack", "keygen", "--out", s(&prefix)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = d.join("release.key");
    let public = d.join("release.pub");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let id = key_id(&public);
    assert_eq!(id, key_id(&key));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));

    // Never overwrites: the key stays the same.
    let before = std::fs::read(&key).unwrap();
    let again = picket(&["pack", "keygen", "--out", s(&prefix)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let pack = d.join("mini.toml");
    std::fs::write(&pack, MINI).unwrap();
    let out = picket(&["pack", "sign", "--key", s(&key), s(&pack)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = d.join("mini.toml.sig");
    assert!(std::fs::read_to_string(&sig)
        .unwrap()
        .starts_with("picket-signature v1\n"));

    let out = picket(&["pack", "verify", "--pubkey", s(&public), s(&pack)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: good signature by key {id} ({})\n",
            s(&pack),
            s(&public)
        )
    );

    // Among several trusted keys, the one that signed is named.
    let other = d.join("other");
    assert!(picket(&["pack", "keygen", "--out", s(&other)])
        .status
        .success());
    let other_pub = d.join("other.pub");
    let out = picket(&[
        "pack",
        "verify",
        "--pubkey",
        s(&other_pub),
        "--pubkey",
        s(&public),
        s(&pack),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("good signature by key {id}")));

    // --out and --sig put the signature elsewhere.
    let elsewhere = d.join("elsewhere.sig");
    let out = picket(&[
        "pack",
        "sign",
        "--key",
        s(&key),
        s(&pack),
        "--out",
        s(&elsewhere),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(&sig).unwrap();
    let out = picket(&[
        "pack",
        "verify",
        "--pubkey",
        s(&public),
        s(&pack),
        "--sig",
        s(&elsewhere),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A signed pack in a fresh directory: (dir, pack, its public key, the other key's public key).
fn signed(test: &str) -> (Tmp, PathBuf, PathBuf, PathBuf) {
    let d = dir(test);
    for name in ["release", "other"] {
        let out = picket(&["pack", "keygen", "--out", s(&d.join(name))]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let pack = d.join("mini.toml");
    std::fs::write(&pack, MINI).unwrap();
    let out = picket(&["pack", "sign", "--key", s(&d.join("release.key")), s(&pack)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (public, other) = (d.join("release.pub"), d.join("other.pub"));
    (d, pack, public, other)
}

#[test]
fn tampered_pack_fails_with_bad_signature() {
    let (_d, pack, public, _) = signed("tampered");
    let mut bytes = std::fs::read(&pack).unwrap();
    // One byte, and the pack stays valid: the literal "evil" becomes "evIl".
    let at = bytes.windows(6).position(|w| w == b"\"evil\"").unwrap();
    bytes[at + 3] = b'I';
    assert!(picket_signatures::Pack::parse(std::str::from_utf8(&bytes).unwrap(), "t").is_ok());
    std::fs::write(&pack, &bytes).unwrap();
    let out = picket(&["pack", "verify", "--pubkey", s(&public), s(&pack)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: refused: bad signature: it was not made by key {}",
            s(&pack),
            key_id(&public)
        )),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn wrong_key_fails_as_untrusted() {
    let (_d, pack, public, other) = signed("wrongkey");
    let out = picket(&["pack", "verify", "--pubkey", s(&other), s(&pack)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "refused: signed by key {}, which is not trusted (trusted: {})",
            key_id(&public),
            key_id(&other)
        )),
        "{err}"
    );
}

#[test]
fn missing_or_malformed_signature_fails() {
    let (d, pack, public, _) = signed("nosig");
    let sig = d.join("mini.toml.sig");
    let text = std::fs::read_to_string(&sig).unwrap();

    std::fs::write(&sig, &text[..text.len() - 30]).unwrap();
    let out = picket(&["pack", "verify", "--pubkey", s(&public), s(&pack)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("malformed signature file: field \"signature\""),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(&sig).unwrap();
    let out = picket(&["pack", "verify", "--pubkey", s(&public), s(&pack)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "refused: not signed: no signature file {}",
            s(&sig)
        )),
        "{}",
        stderr(&out)
    );

    // A secret key given as a public key is a usage error, not a verdict.
    let out = picket(&[
        "pack",
        "verify",
        "--pubkey",
        s(&d.join("release.key")),
        s(&pack),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("malformed public key file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_invalid_pack_is_never_signed() {
    let d = dir("invalid");
    assert!(picket(&["pack", "keygen", "--out", s(&d.join("k"))])
        .status
        .success());
    let pack = d.join("bad.toml");
    std::fs::write(
        &pack,
        MINI.replace("severity = \"low\"", "severity = \"meh\""),
    )
    .unwrap();
    let out = picket(&["pack", "sign", "--key", s(&d.join("k.key")), s(&pack)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("signature T-NOTE: unknown severity \"meh\""),
        "{err}"
    );
    assert!(err.contains("not signed: the pack is invalid"), "{err}");
    assert!(!d.join("bad.toml.sig").exists());
}

fn record(id: &str, label: (&str, &str), raw: &str) -> String {
    serde_json::json!({"id": id, label.0: label.1, "raw": raw}).to_string() + "\n"
}

fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: app.example\r\n{extra}\r\n")
}

/// 5 attacks (3 blocked, one of them by two signatures; one only alerted on; one missed)
/// and 4 benign requests (one blocked, one alerted on), over two files.
fn corpus(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use base64::Engine as _;
    let pack = d.join("mini.toml");
    std::fs::write(&pack, MINI).unwrap();
    let atk = ("family", "test");
    let attacks = [
        record("a1", atk, &get("/?q=evil", "")),
        record("a2", atk, &get("/?q=evil&f=/etc/passwd", "")),
        record("a3", atk, &get("/?f=%2fetc%2fpasswd", "")),
        record("a4", atk, &get("/", "X-Note: hmm\r\n")),
        record("a5", atk, &get("/?q=fine", "")),
    ]
    .concat();
    let ben = ("category", "everyday");
    let b4 = base64::engine::general_purpose::STANDARD.encode(get("/about", ""));
    let benign = [
        record("b1", ben, &get("/?q=evil+eye+movie", "")),
        record("b2", ben, &get("/?q=hello", "")),
        "\n".to_string(),
        record("b3", ben, &get("/", "X-Note: hmm, interesting\r\n")),
        serde_json::json!({"id": "b4", "category": "binary", "raw_b64": b4}).to_string() + "\n",
    ]
    .concat();
    let (a, b) = (d.join("attacks.jsonl"), d.join("benign.jsonl"));
    std::fs::write(&a, attacks).unwrap();
    std::fs::write(&b, benign).unwrap();
    (pack, a, b)
}

#[test]
fn pack_test_counts_detections_and_false_positives() {
    let d = dir("test-json");
    let (pack, a, b) = corpus(&d);
    let out = picket(&["pack", "test", s(&pack), s(&a), s(&b), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["pack"], "mini");
    assert_eq!(r["attacks"], 5);
    assert_eq!(r["detected"], 3);
    assert_eq!(r["detection_rate"], 0.6);
    assert_eq!(r["benign"], 4);
    assert_eq!(r["false_positives"], 1);
    assert_eq!(r["false_positive_rate"], 0.25);
    let per: Vec<(String, u64, u64)> = r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["detections"].as_u64().unwrap(),
                x["false_positives"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per,
        [
            ("T-EVIL".to_string(), 2, 1),
            ("T-PASSWD".to_string(), 2, 0),
            ("T-NOTE".to_string(), 1, 1),
        ]
    );
    assert_eq!(
        r["missed"],
        serde_json::json!([
            {"id": "a4", "family": "test", "alerts": ["T-NOTE"]},
            {"id": "a5", "family": "test", "alerts": []},
        ])
    );
    assert_eq!(
        r["false_positive_requests"],
        serde_json::json!([{"id": "b1", "category": "everyday", "signatures": ["T-EVIL"]}])
    );

    // An overlay that disables T-EVIL: a1 is missed, b1 no longer blocked.
    let overlay = d.join("overlay.toml");
    std::fs::write(
        &overlay,
        "[[exclusion]]\nsignatures = [\"T-EVIL\"]\naction = \"disable\"\n",
    )
    .unwrap();
    let out = picket(&[
        "pack",
        "test",
        s(&pack),
        s(&a),
        s(&b),
        "--overlay",
        s(&overlay),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["detected"].as_u64(), r["false_positives"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(r["signatures"][0]["detections"], 0);
    assert_eq!(r["missed"][0]["id"], "a1");
}

#[test]
fn pack_test_table_and_thresholds() {
    let d = dir("test-table");
    let (pack, a, b) = corpus(&d);
    let out = picket(&[
        "pack",
        "test",
        s(&pack),
        s(&a),
        s(&b),
        "--min-detection",
        "60%",
        "--max-fp-rate",
        "0.25",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pack mini 2026.1.2: 5 attacks, 4 benign requests");
    let row = |id: &str| -> Vec<String> {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row for {id}:\n{text}"));
        l.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(row("T-EVIL")[..4], ["T-EVIL", "2", "1", "block"]);
    assert_eq!(row("T-PASSWD")[..4], ["T-PASSWD", "2", "0", "block"]);
    assert_eq!(row("T-NOTE")[..4], ["T-NOTE", "1", "1", "alert"]);
    assert!(
        text.contains("attacks blocked:          3/5  (60.00%)"),
        "{text}"
    );
    assert!(
        text.contains("benign requests blocked:  1/4  (25.00%)"),
        "{text}"
    );
    assert!(
        text.contains("attacks nobody caught (2):\n  a4 (test)  alerted by T-NOTE\n  a5 (test)\n"),
        "{text}"
    );
    assert!(
        text.contains("benign requests blocked (1):\n  b1 (everyday)  by T-EVIL\n"),
        "{text}"
    );

    // Just past either threshold: exit 1, saying which.
    let out = picket(&[
        "pack",
        "test",
        s(&pack),
        s(&a),
        s(&b),
        "--min-detection",
        "0.61",
        "--max-fp-rate",
        "24%",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("detection 60.00% is below --min-detection 61.00%"),
        "{err}"
    );
    assert!(
        err.contains("false-positive rate 25.00% is above --max-fp-rate 24.00%"),
        "{err}"
    );
    // The report is still printed.
    assert!(stdout(&out).contains("attacks blocked:"));
}

#[test]
fn pack_test_refuses_unlabelled_records() {
    let d = dir("test-bad");
    let (pack, a, _) = corpus(&d);
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        record("ok", ("family", "x"), &get("/", ""))
            + "{\"id\": \"n\", \"raw\": \"GET / HTTP/1.1\\r\\n\\r\\n\"}\n",
    )
    .unwrap();
    let out = picket(&["pack", "test", s(&pack), s(&a), s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:2: no label", s(&bad))),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

const OLD: &str = r#"[pack]
name = "t"
version = "2026.1.2"

[[signature]]
id = "A"
name = "a"
severity = "high"
targets = ["header:User-Agent", "arg"]
transforms = ["url_decode"]
literals = ["foo", "bar"]
regex = 'foo\d'

[[signature]]
id = "B"
name = "b"
severity = "low"
targets = ["body"]
literals = ["bbb"]

[[signature]]
id = "P"
name = "p"
severity = "high"
anomaly = "REQUEST_NUL_BYTE"

[[exclusion]]
signatures = ["A"]
path_prefix = "/docs"
action = "disable"

[[exclusion]]
signatures = ["B"]
arg = "comment"
action = "alert"
"#;

const NEW: &str = r#"[pack]
name = "t"
version = "2026.1.10"

# P moved first: order is not a change.
[[signature]]
id = "P"
name = "p"
severity = "high"
anomaly = "REQUEST_NUL_BYTE"

[[signature]]
id = "A"
name = "a"
severity = "critical"
targets = ["header", "arg"]
transforms = ["url_decode", "shell"]
literals = ["foo", "baz"]
regex = 'foo\d+'
action = "alert"
enabled = false

[[signature]]
id = "C"
name = "c"
severity = "low"
targets = ["body"]
literals = ["ccc"]

[[exclusion]]
signatures = ["A"]
path_prefix = "/docs"
action = "disable"

[[exclusion]]
signatures = ["*"]
host = "x.example"
action = "alert"
reason = "noisy"
"#;

#[test]
fn pack_diff_lists_exactly_the_changes() {
    let d = dir("diff");
    let (old, new) = (d.join("old.toml"), d.join("new.toml"));
    std::fs::write(&old, OLD).unwrap();
    std::fs::write(&new, NEW).unwrap();
    let out = picket(&["pack", "diff", s(&old), s(&new)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = format!(
        "version: 2026.1.2 -> 2026.1.10 (newer)
signatures: 1 added, 1 removed, 1 changed
+ C  c
- B  b
~ A: severity, targets, transforms, literals, regex, action, enabled
    severity: high -> critical
    targets: added header; removed header:user-agent
    transforms: [url_decode] -> [url_decode, shell]
    literals: added \"baz\"; removed \"bar\"
    regex: 'foo\\d' -> 'foo\\d+'
    action: block -> alert
    enabled: true -> false
exclusions: 1 added, 1 removed
+ exclusion signatures=[*] host=x.example action=alert reason=\"noisy\" ({new}:35)
- exclusion signatures=[B] arg=comment action=alert ({old}:32)
",
        new = s(&new),
        old = s(&old)
    );
    assert_eq!(stdout(&out), expected);

    // The other way round, as JSON: the version went back.
    let out = picket(&["pack", "diff", s(&new), s(&old), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["version"]["order"], "older");
    assert_eq!(r["added"][0]["id"], "B");
    assert_eq!(r["removed"][0]["id"], "C");
    assert_eq!(r["changed"][0]["fields"][0]["field"], "severity");
    assert_eq!(r["changed"][0]["fields"][0]["old"], "critical");

    // A pack against itself: nothing.
    let out = picket(&["pack", "diff", s(&old), s(&old)]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "version: unchanged\nsignatures: 0 added, 0 removed, 0 changed\nexclusions: 0 added, 0 removed\n"
    );

    // An invalid pack is an error.
    let bad = d.join("bad.toml");
    std::fs::write(&bad, OLD.replace("REQUEST_NUL_BYTE", "NOPE")).unwrap();
    let out = picket(&["pack", "diff", s(&old), s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signature P: unknown anomaly \"NOPE\""),
        "{}",
        stderr(&out)
    );
}

/// `pack test` judges as `picket scan` does: over the repository's corpus, its totals are the
/// counts of `block` verdicts that `picket scan --jsonl` prints for the same files.
#[test]
fn pack_test_agrees_with_scan_on_the_repository_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pack = root.join("crates/signatures/packs/default.toml");
    let attacks = root.join("corpus/attacks.jsonl");
    let benign = root.join("corpus/benign.jsonl");
    let blocked = |file: &Path| -> (usize, usize) {
        let out = picket(&["scan", "--pack", s(&pack), "--jsonl", s(file)]);
        assert!(out.status.success(), "{}", stderr(&out));
        let verdicts: Vec<String> = stdout(&out)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["verdict"].as_str().unwrap().to_string()
            })
            .collect();
        (
            verdicts.iter().filter(|v| *v == "block").count(),
            verdicts.len(),
        )
    };
    let (detected, n_attacks) = blocked(&attacks);
    let (fps, n_benign) = blocked(&benign);
    let out = picket(&["pack", "test", s(&pack), s(&attacks), s(&benign), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["attacks"], n_attacks);
    assert_eq!(r["detected"], detected);
    assert_eq!(r["benign"], n_benign);
    assert_eq!(r["false_positives"], fps);
    assert_eq!(r["missed"].as_array().unwrap().len(), n_attacks - detected);
    assert!(n_attacks > 300 && n_benign > 1000, "{n_attacks} {n_benign}");
}
