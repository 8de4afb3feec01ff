//! `lowercase` and `compress_whitespace`: byte-class rewrites with a vectorisable no-change scan.

/// Chunk size for the branch-free scans: wide enough for the compiler to vectorise the fold,
/// small enough that a hit early in a long value stops the scan early.
const CHUNK: usize = 32;

/// ASCII whitespace as `compress_whitespace` defines it (includes `\x0b`, unlike
/// [`u8::is_ascii_whitespace`]).
#[inline]
pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || (b'\t'..=b'\r').contains(&b)
}

fn has_upper(input: &[u8]) -> bool {
    input
        .chunks(CHUNK)
        .any(|c| c.iter().fold(false, |acc, &b| acc | b.is_ascii_uppercase()))
}

/// ASCII lowercase. Returns whether anything changed (`out` holds the result if so).
pub(super) fn lowercase(input: &[u8], out: &mut Vec<u8>) -> bool {
    if !has_upper(input) {
        return false;
    }
    out.extend_from_slice(input);
    out.make_ascii_lowercase();
    true
}

/// Whether `compress_whitespace` would change `input`: a control whitespace byte anywhere
/// (a vectorised fold), or two spaces in a row.
fn needs_compress(input: &[u8]) -> bool {
    input.chunks(CHUNK).any(|c| {
        c.iter()
            .fold(false, |acc, &b| acc | (b'\t'..=b'\r').contains(&b))
    }) || has_double_space(input)
}

/// Whether two spaces follow each other in `input`, for the no-change checks. Header values
/// and parameters are short, and there `memmem`'s per-call set-up (about 250 instructions)
/// cost more than the search: a branch-free fold over adjacent pairs vectorises and costs a
/// fraction of an instruction per byte; long inputs still go to `memmem`.
pub(super) fn has_double_space(input: &[u8]) -> bool {
    if input.len() > 512 {
        return memchr::memmem::find(input, b"  ").is_some();
    }
    let pairs = input.iter().zip(input.iter().skip(1));
    pairs.fold(0u8, |acc, (&a, &b)| {
        acc | (u8::from(a == b' ') & u8::from(b == b' '))
    }) != 0
}

/// Every run of ASCII whitespace becomes one space. Returns whether anything changed.
pub(super) fn compress_whitespace(input: &[u8], out: &mut Vec<u8>) -> bool {
    if !needs_compress(input) {
        return false;
    }
    out.reserve(input.len());
    let mut in_run = false;
    for &b in input {
        if is_ws(b) {
            if !in_run {
                out.push(b' ');
                in_run = true;
            }
        } else {
            out.push(b);
            in_run = false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_compress(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if is_ws(s[i]) {
                while i < s.len() && is_ws(s[i]) {
                    i += 1;
                }
                v.push(b' ');
            } else {
                v.push(s[i]);
                i += 1;
            }
        }
        v
    }

    #[test]
    fn double_space_short_and_long() {
        for (s, want) in [
            (&b""[..], false),
            (b" ", false),
            (b"  ", true),
            (b"a b c", false),
            (b"a b  c", true),
            (b"a \t b", false),
        ] {
            assert_eq!(
                has_double_space(s),
                want,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
        let mut long = b"x ".repeat(400);
        assert!(!has_double_space(&long));
        long.extend_from_slice(b" ");
        assert!(has_double_space(&long));
    }

    #[test]
    fn lowercase_basic() {
        let mut out = Vec::new();
        assert!(lowercase(b"SeLeCt * FROM \xC3\x89t\xC3\xA9", &mut out));
        assert_eq!(out, b"select * from \xC3\x89t\xC3\xA9");
        out.clear();
        assert!(!lowercase(b"already lower \xC3\x89", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn compress_basic() {
        let mut out = Vec::new();
        assert!(compress_whitespace(b" a \t\r\n b\x0b\x0cc  ", &mut out));
        assert_eq!(out, b" a b c ");
        out.clear();
        assert!(!compress_whitespace(b" single spaces only ", &mut out));
        // a double space straddling a chunk boundary
        let mut s = vec![b'a'; CHUNK - 1];
        s.extend_from_slice(b"  b");
        assert!(compress_whitespace(&s, &mut out));
        assert_eq!(out, naive_compress(&s));
    }

    #[test]
    fn naive_reference_agrees() {
        for s in [&b""[..], b" ", b"  ", b"a\tb", b"\n", b"x y  z"] {
            let mut out = Vec::new();
            let changed = compress_whitespace(s, &mut out);
            let r = naive_compress(s);
            assert_eq!(changed, r != s);
            if changed {
                assert_eq!(out, r);
            }
        }
    }
}
