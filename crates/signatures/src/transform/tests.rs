//! Cross-cutting tests of [`Transform::apply`]: the public contract (`false` means
//! unchanged, `out` empty), idempotence, agreement with naive references, no panics.

use super::*;
use base64::Engine as _;
use proptest::prelude::*;

fn view(t: Transform, input: &[u8]) -> Vec<u8> {
    let mut out = vec![0xAA; 3]; // apply must clear it
    if t.apply(input, &mut out) {
        assert_ne!(out, input, "{t:?} returned true for an unchanged view");
        out
    } else {
        assert!(out.is_empty(), "{t:?} returned false with a non-empty out");
        input.to_vec()
    }
}

fn view_str(t: Transform, input: &str) -> String {
    String::from_utf8_lossy(&view(t, input.as_bytes())).into_owned()
}

fn chain(ts: &[Transform], input: &str) -> String {
    let mut v = input.as_bytes().to_vec();
    for &t in ts {
        v = view(t, &v);
    }
    String::from_utf8_lossy(&v).into_owned()
}

// ---- naive references -------------------------------------------------------------------

fn naive_lowercase(s: &[u8]) -> Vec<u8> {
    s.iter().map(u8::to_ascii_lowercase).collect()
}

fn naive_compress(s: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    let mut prev_ws = false;
    for &b in s {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
        if ws && !prev_ws {
            v.push(b' ');
        } else if !ws {
            v.push(b);
        }
        prev_ws = ws;
    }
    v
}

/// One URL-decoding round into a fresh vector (not in place), written independently.
fn naive_url_round(s: &[u8]) -> Vec<u8> {
    let hexv = |b: u8| (b as char).to_digit(16);
    let unit = |t: &[u8]| -> Option<u32> {
        if t.len() >= 6 && t[0] == b'%' && (t[1] == b'u' || t[1] == b'U') {
            let h = std::str::from_utf8(&t[2..6]).ok()?;
            if h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return u32::from_str_radix(h, 16).ok();
            }
        }
        None
    };
    let mut v = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let t = &s[i..];
        if t[0] == b'+' {
            v.push(b' ');
            i += 1;
        } else if t[0] == b'%' && t.len() >= 3 && hexv(t[1]).is_some() && hexv(t[2]).is_some() {
            v.push((hexv(t[1]).unwrap() * 16 + hexv(t[2]).unwrap()) as u8);
            i += 3;
        } else if let Some(u) = unit(t) {
            let pair = if (0xD800..0xDC00).contains(&u) {
                unit(&t[6..])
                    .filter(|l| (0xDC00..0xE000).contains(l))
                    .map(|l| 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00))
            } else {
                None
            };
            if let Some(c) = pair.and_then(char::from_u32) {
                v.extend_from_slice(c.to_string().as_bytes());
                i += 12;
            } else if let Some(c) = char::from_u32(u) {
                v.extend_from_slice(c.to_string().as_bytes());
                i += 6;
            } else {
                v.push(b'%');
                i += 1;
            }
        } else {
            v.push(t[0]);
            i += 1;
        }
    }
    v
}

/// (result, reached a fixpoint within the rounds)
fn naive_url(s: &[u8]) -> (Vec<u8>, bool) {
    let mut v = s.to_vec();
    for _ in 0..URL_DECODE_ROUNDS {
        let next = naive_url_round(&v);
        if next == v {
            return (v, true);
        }
        v = next;
    }
    let fix = naive_url_round(&v) == v;
    (v, fix)
}

/// Base64 runs via the `base64` crate: split on non-alphabet bytes, keep plausible runs,
/// re-pad, decode leniently.
fn naive_base64(s: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let alpha = |b: &u8| b.is_ascii_alphanumeric() || b"+/-_".contains(b);
    let mut parts = Vec::new();
    for run in s.split(|b| !alpha(b)) {
        let std = run.iter().any(|b| b"+/".contains(b));
        let url = run.iter().any(|b| b"-_".contains(b));
        let strong = run
            .iter()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if run.len() < 16 || (std && url) || !strong {
            continue;
        }
        let mut r: Vec<u8> = run
            .iter()
            .map(|&b| match b {
                b'-' => b'+',
                b'_' => b'/',
                b => b,
            })
            .collect();
        if r.len() % 4 == 1 {
            r.pop();
        }
        while r.len() % 4 != 0 {
            r.push(b'=');
        }
        parts.push(engine.decode(&r).expect("lenient decode"));
    }
    (!parts.is_empty()).then(|| parts.join(&b'\n'))
}

// ---- examples from public write-ups -------------------------------------------------------

#[test]
fn byte_classes_settle_plain_values() {
    // Typical header values, parameters and cookies: no transformation would change them.
    for v in [
        "shop.example.com",
        "keep-alive",
        "gzip, deflate, br",
        "3f9a1c0e7b5d",
        "x y",
    ] {
        let c = ByteClasses::of(v.as_bytes());
        for t in [
            Transform::UrlDecode,
            Transform::HtmlDecode,
            Transform::Shell,
            Transform::Cmd,
        ] {
            assert!(t.unchanged_by(c), "{t:?} on {v:?}");
        }
    }
    for (v, t) in [
        ("a+b", Transform::UrlDecode),
        ("a&b", Transform::HtmlDecode),
        ("a;b", Transform::Shell),
        ("a;b", Transform::Cmd),
        ("a  b", Transform::Cmd),
        (" a", Transform::Shell),
        ("a\tb", Transform::CompressWhitespace),
        ("a(b", Transform::Shell),
    ] {
        assert!(
            !t.unchanged_by(ByteClasses::of(v.as_bytes())),
            "{t:?} on {v:?}"
        );
    }
}

#[test]
fn pack_names_round_trip() {
    for t in Transform::ALL {
        assert_eq!(Transform::from_pack_name(t.pack_name()), Some(t));
    }
    assert_eq!(Transform::from_pack_name("nope"), None);
}

#[test]
fn benign_values_are_not_copied() {
    let mut out = Vec::new();
    let prose = b"the quick brown fox jumps over the lazy dog 1234567890";
    for t in [
        Transform::UrlDecode,
        Transform::HtmlDecode,
        Transform::Lowercase,
        Transform::CompressWhitespace,
        Transform::Shell,
        Transform::Base64,
    ] {
        assert!(!t.apply(prose, &mut out), "{t:?}");
        assert!(out.is_empty());
    }
    assert!(!Transform::Shell.apply(b"bash away in the gym", &mut out));
}

#[test]
fn evasions() {
    use Transform::*;
    let sh = |s: &str| view_str(Shell, s);
    assert_eq!(sh(r#"c''at /e""tc/pa\ss\wd"#), "cat /etc/passwd");
    assert_eq!(sh("cat${IFS}/etc/passwd"), "cat /etc/passwd");
    assert_eq!(sh("{cat,/etc/passwd}"), "cat /etc/passwd");
    assert_eq!(sh("/???/c?t /???/p??s??"), "/bin/cat /etc/passwd");
    assert_eq!(sh("c^a^t"), "cat");
    assert_eq!(sh(";w'g'et http://x"), ";wget http://x");
    assert_eq!(sh("a|b&&c"), "a;b;c");
    assert_eq!(sh("$(whoami)"), ";whoami;");
    assert_eq!(sh("`id`"), ";id;");
    assert_eq!(sh("it's a test"), "its a test");
    assert_eq!(view_str(UrlDecode, "%252fetc%252fpasswd"), "/etc/passwd");
    assert_eq!(view_str(HtmlDecode, "&#x2f;etc&#47;passwd"), "/etc/passwd");
    assert_eq!(view_str(HtmlDecode, "&lt;script&gt;"), "<script>");
    let b = base64::engine::general_purpose::STANDARD.encode("/bin/bash -i");
    assert_eq!(view_str(Base64, &format!("x={b}")), "/bin/bash -i");
    // chained as a pack would: url_decode then shell
    assert_eq!(
        chain(
            &[UrlDecode, Shell],
            "ip=1%0a%2f%3f%3f%3f%2fc%3ft%24%7bIFS%7d%2fetc%2fpasswd"
        ),
        "ip=1;/bin/cat /etc/passwd"
    );
    assert_eq!(
        chain(
            &[HtmlDecode, Lowercase, CompressWhitespace],
            "&LT;SCRIPT\t\n&gt;"
        ),
        "<script >"
    );
}

// ---- properties ---------------------------------------------------------------------------

const SHELL_TOKENS: &[&str] = &[
    "cat",
    "/etc/passwd",
    "$IFS",
    "${IFS}",
    "${IFS%??}",
    "${x}",
    "$",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "\\",
    "\\\n",
    "^",
    "`",
    "$(",
    ")",
    "(",
    ";",
    "|",
    "||",
    "&",
    "&&",
    "<",
    ">",
    ">&",
    "&>",
    "\n",
    "\r",
    " ",
    "  ",
    "\t",
    "/???/c?t",
    "/bin/ca*",
    "*",
    "?",
    "[",
    "]",
    "[!x]",
    "!",
    "a",
    "/",
    "-",
    "0",
    "1",
    "$@",
    "$1",
    "=",
    "%",
    "IFS",
    "x",
    "wh??mi",
    "c?",
    "é",
];

fn shellish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(SHELL_TOKENS), 0..40)
        .prop_map(|v| v.concat().into_bytes())
}

fn encodedish() -> impl Strategy<Value = Vec<u8>> {
    const T: &[&str] = &[
        "%",
        "%2",
        "%25",
        "%2f",
        "%2F",
        "%u",
        "%u00",
        "%u002f",
        "%uD83D",
        "%uDE00",
        "+",
        "a",
        "5",
        "f",
        "u",
        "&",
        "&#",
        "&#x",
        "&#47",
        "&lt",
        "&lt;",
        "&amp;",
        ";",
        "x",
        "0",
        " ",
        "L2Jpbi9iYXNoIC1p",
        "=",
        "-",
        "_",
        "Q",
        "\t",
    ];
    prop::collection::vec(prop::sample::select(T), 0..40).prop_map(|v| v.concat().into_bytes())
}

fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "[ -~\t\n\r]{0,120}".prop_map(String::into_bytes),
        shellish(),
        encodedish(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn contract_holds_for_every_transform(input in any_input()) {
        for t in Transform::ALL {
            // view() asserts: true => out != input; false => out empty.
            let v = view(t, &input);
            // bounded growth (shell glob replacement is the only growth)
            prop_assert!(v.len() <= 3 * input.len() + 16, "{:?} grew too much", t);
        }
    }

    #[test]
    fn byte_classes_never_skip_a_change(input in any_input()) {
        let classes = ByteClasses::of(&input);
        let mut out = Vec::new();
        for t in Transform::ALL {
            if t.unchanged_by(classes) {
                prop_assert!(!t.apply(&input, &mut out), "{:?} changed {:?}", t, input);
            }
            let changed = t.apply(&input, &mut out);
            let want = out.clone();
            prop_assert_eq!(t.apply_classified(&input, &mut out), changed, "{:?}", t);
            prop_assert_eq!(&out, &want);
        }
    }

    #[test]
    fn lowercase_matches_reference_and_is_idempotent(input in any_input()) {
        let v = view(Transform::Lowercase, &input);
        prop_assert_eq!(&v, &naive_lowercase(&input));
        prop_assert_eq!(view(Transform::Lowercase, &v), v);
    }

    #[test]
    fn compress_matches_reference_and_is_idempotent(input in any_input()) {
        let v = view(Transform::CompressWhitespace, &input);
        prop_assert_eq!(&v, &naive_compress(&input));
        prop_assert_eq!(view(Transform::CompressWhitespace, &v), v);
    }

    #[test]
    fn url_decode_matches_reference(input in any_input()) {
        let mut out = Vec::new();
        let (changed, fix) = url::decode(&input, &mut out);
        let (reference, ref_fix) = naive_url(&input);
        prop_assert_eq!(changed, reference != input);
        if changed {
            prop_assert_eq!(&out, &reference);
        }
        prop_assert_eq!(fix, ref_fix);
        prop_assert_eq!(view(Transform::UrlDecode, &input), reference);
    }

    #[test]
    fn url_decode_is_idempotent_at_a_fixpoint(input in any_input()) {
        let mut out = Vec::new();
        let (_, fix) = url::decode(&input, &mut out);
        let v = view(Transform::UrlDecode, &input);
        if fix {
            prop_assert_eq!(view(Transform::UrlDecode, &v), v);
        }
    }

    #[test]
    fn url_decode_undoes_bounded_nesting(
        plain in "[a-zA-Z0-9./ <>;'\"-]{0,40}",
        layers in 1usize..=URL_DECODE_ROUNDS,
        upper in any::<bool>(),
    ) {
        let mut s = plain.clone().into_bytes();
        for _ in 0..layers {
            s = s.iter().flat_map(|b| {
                if upper { format!("%{b:02X}") } else { format!("%{b:02x}") }.into_bytes()
            }).collect();
        }
        let v = view(Transform::UrlDecode, &s);
        prop_assert_eq!(&v, plain.as_bytes());
        prop_assert_eq!(view(Transform::UrlDecode, &v), v);
    }

    #[test]
    fn html_decode_only_shrinks(input in any_input()) {
        let mut out = Vec::new();
        if Transform::HtmlDecode.apply(&input, &mut out) {
            prop_assert!(out.len() < input.len());
        } else {
            // the full decoder agrees there was nothing to decode
            prop_assert!(!html::decode(&input, &mut out));
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn shell_fast_path_is_exact_and_idempotent(input in any_input()) {
        let mut full = Vec::new();
        shell::normalise(&input, &mut full);
        let v = view(Transform::Shell, &input);
        prop_assert_eq!(&v, &full, "fast path disagrees with the full normaliser");
        if !shell::may_change(&input) {
            prop_assert_eq!(&full, &input);
        }
        let again = view(Transform::Shell, &v);
        prop_assert_eq!(
            &again, &v,
            "not idempotent: {:?} -> {:?} -> {:?}",
            String::from_utf8_lossy(&input), String::from_utf8_lossy(&v), String::from_utf8_lossy(&again)
        );
    }

    #[test]
    fn base64_matches_crate_reference(input in any_input()) {
        let mut out = Vec::new();
        let got = Transform::Base64.apply(&input, &mut out).then_some(out);
        prop_assert_eq!(got, naive_base64(&input));
    }

    #[test]
    fn base64_finds_encoded_text(
        pre in "[ -~]{0,10}",
        payload in "[ -~]{12,60}",
        post in "[ -~]{0,10}",
        url_safe in any::<bool>(),
    ) {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let enc = if url_safe { URL_SAFE.encode(&payload) } else { STANDARD.encode(&payload) };
        prop_assume!(enc.bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        let s = format!("{pre} {enc} {post}");
        let v = view(Transform::Base64, s.as_bytes());
        let needle = payload.as_bytes();
        prop_assert!(v.windows(needle.len()).any(|w| w == needle));
    }
}
