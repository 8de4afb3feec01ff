//! `html_decode`: one pass of HTML character references.

use memchr::memchr;

/// Named references recognised with their `;`. The listed contract set, the HTML5 upper-case
/// legacy spellings, and the other ASCII punctuation names that XSS write-ups use to spell
/// `javascript&colon;alert&lpar;1&rpar;`.
const NAMED: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"amp", b'&'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"nbsp", b' '),
    (b"colon", b':'),
    (b"sol", b'/'),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"Tab", b'\t'),
    (b"NewLine", b'\n'),
    (b"semi", b';'),
    (b"vert", b'|'),
    (b"grave", b'`'),
    (b"dollar", b'$'),
    (b"lbrace", b'{'),
    (b"rbrace", b'}'),
    (b"LT", b'<'),
    (b"GT", b'>'),
    (b"AMP", b'&'),
    (b"QUOT", b'"'),
    (b"lcub", b'{'),
    (b"rcub", b'}'),
    (b"lsqb", b'['),
    (b"rsqb", b']'),
    (b"lbrack", b'['),
    (b"rbrack", b']'),
    (b"bsol", b'\\'),
    (b"verbar", b'|'),
    (b"VerticalLine", b'|'),
    (b"excl", b'!'),
    (b"num", b'#'),
    (b"percnt", b'%'),
    (b"ast", b'*'),
    (b"midast", b'*'),
    (b"plus", b'+'),
    (b"comma", b','),
    (b"period", b'.'),
    (b"quest", b'?'),
    (b"equals", b'='),
    (b"commat", b'@'),
    (b"Hat", b'^'),
    (b"lowbar", b'_'),
    (b"UnderBar", b'_'),
];

/// Legacy names a browser also decodes without the `;`, as a prefix of the following
/// letters (`&ltscript` → `<script`).
const LEGACY: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"amp", b'&'),
    (b"quot", b'"'),
    (b"nbsp", b' '),
    (b"LT", b'<'),
    (b"GT", b'>'),
    (b"AMP", b'&'),
    (b"QUOT", b'"'),
];

/// The longest name in [`NAMED`]; a longer alphanumeric run can only match a legacy prefix.
const MAX_NAME: usize = 12;

/// A decoded reference: bytes (in a small array, with their count) and how many input bytes
/// it replaces.
type Decoded = ([u8; 4], usize, usize);

fn numeric(s: &[u8]) -> Option<Decoded> {
    // s starts with "&#".
    let (radix, start) = match s.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let mut value: u32 = 0;
    let mut i = start;
    while let Some(d) = s.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
        // Saturate above the Unicode range so any number of digits is fine.
        value = value.saturating_mul(radix).saturating_add(d).min(0x11_0000);
        i += 1;
    }
    if i == start || value == 0 {
        return None;
    }
    let c = char::from_u32(value)?;
    if s.get(i) == Some(&b';') {
        i += 1;
    }
    let mut buf = [0u8; 4];
    let n = c.encode_utf8(&mut buf).len();
    Some((buf, n, i))
}

fn named(s: &[u8]) -> Option<Decoded> {
    // s starts with "&".
    let name_len = s[1..]
        .iter()
        .take(MAX_NAME + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &s[1..1 + name_len];
    if s.get(1 + name_len) == Some(&b';') {
        if let Some(&(_, r)) = NAMED.iter().find(|(n, _)| *n == name) {
            return Some(([r, 0, 0, 0], 1, name_len + 2));
        }
    }
    LEGACY
        .iter()
        .find(|(n, _)| name.starts_with(n))
        .map(|&(n, r)| ([r, 0, 0, 0], 1, n.len() + 1))
}

/// Decodes `input` into `out`. Returns whether anything changed.
pub(super) fn decode(input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    let mut copied = 0;
    let mut changed = false;
    while let Some(p) = memchr(b'&', &input[i..]) {
        let amp = i + p;
        let rest = &input[amp..];
        let decoded = if rest.get(1) == Some(&b'#') {
            numeric(rest)
        } else {
            named(rest)
        };
        match decoded {
            Some((bytes, n, consumed)) => {
                if !changed {
                    out.reserve(input.len());
                    changed = true;
                }
                out.extend_from_slice(&input[copied..amp]);
                out.extend_from_slice(&bytes[..n]);
                i = amp + consumed;
                copied = i;
            }
            None => i = amp + 1,
        }
    }
    if changed {
        out.extend_from_slice(&input[copied..]);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> String {
        let mut out = Vec::new();
        if decode(s.as_bytes(), &mut out) {
            String::from_utf8(out).unwrap()
        } else {
            s.to_owned()
        }
    }

    #[test]
    fn named_refs() {
        assert_eq!(
            dec("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "<script>alert(1)</script>"
        );
        assert_eq!(
            dec("javascript&colon;alert&lpar;1&rpar;"),
            "javascript:alert(1)"
        );
        assert_eq!(dec("a&nbsp;b&Tab;c&NewLine;d"), "a b\tc\nd");
        assert_eq!(
            dec("&semi;&vert;&grave;&dollar;&lbrace;&rbrace;&sol;"),
            ";|`${}/"
        );
        assert_eq!(dec("&quot;&apos;&amp;"), "\"'&");
        assert_eq!(dec("&amp;lt;"), "&lt;"); // one pass
        assert_eq!(dec("&LT;b&GT;"), "<b>");
    }

    #[test]
    fn legacy_without_semicolon() {
        assert_eq!(dec("&ltscript&gt"), "<script>");
        assert_eq!(dec("&ampx"), "&x");
        // not legacy: needs the ;
        assert_eq!(dec("&colon"), "&colon");
        assert_eq!(dec("AT&T &unknown; & &;"), "AT&T &unknown; & &;");
    }

    #[test]
    fn numeric_refs() {
        assert_eq!(dec("&#x2f;etc&#47;passwd"), "/etc/passwd");
        assert_eq!(dec("&#X2F&#0000047&#x00003c;"), "//<");
        assert_eq!(dec("&#106&#97&#118&#97"), "java");
        assert_eq!(dec("&#128512;&#x1F600;"), "\u{1F600}\u{1F600}");
        // invalid code points left as written
        assert_eq!(
            dec("&#0;&#xD800;&#x110000;&#99999999999999999999;"),
            "&#0;&#xD800;&#x110000;&#99999999999999999999;"
        );
        assert_eq!(dec("&#;&#x;&#xg;"), "&#;&#x;&#xg;");
    }
}
