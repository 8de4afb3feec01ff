//! `cmd`: the Windows command-line normal form, the `shell` view's sibling for `cmd.exe` and
//! PowerShell. It keeps backslashes (they are path separators on Windows, where `shell` must
//! remove them as escapes) and undoes what `cmd.exe` ignores: the `^` escape and `"` quotes.
//!
//! Output grammar: commands separated by a single `;` (from `&`, `&&`, `|`, `||`, newline, CR),
//! words separated by a single space, no space next to a `;`, a leading separator kept (it is
//! what makes `x & whoami` an injection and `whoami` a word). Idempotent.

/// Whether `b` can make the normaliser change anything (a space only at either end or next
/// to another space or a separator, which [`normalise`] checks apart).
#[inline]
const fn special(b: u8) -> bool {
    matches!(
        b,
        b'^' | b'"' | b'&' | b'|' | b'\n' | b'\r' | b'\t' | b'\x0b' | b'\x0c' | b';'
    )
}

/// Bytes that are copied as they are (not special, not a space), one load per byte.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = !special(b) && b != b' ';
        i += 1;
    }
    t
};

/// Normalises `input` into `out`; returns whether the result differs from the input.
pub(super) fn normalise(input: &[u8], out: &mut Vec<u8>) -> bool {
    let may_change = input.iter().any(|&b| special(b))
        || input.first() == Some(&b' ')
        || input.last() == Some(&b' ')
        || super::text::has_double_space(input);
    may_change && rewrite(input, out)
}

/// [`normalise`] without the no-change scan, for a caller that has ruled it out already
/// ([`super::ByteClasses`]): still exact, the result is compared with the input.
pub(super) fn rewrite(input: &[u8], out: &mut Vec<u8>) -> bool {
    out.reserve(input.len());
    // What was last written: a separator, a space pending, or a word byte.
    let mut pending_space = false;
    let mut pending_sep = false;
    let mut i = 0;
    while i < input.len() {
        // A run of word bytes is copied in one go.
        let run = input[i..]
            .iter()
            .take_while(|&&b| PLAIN[b as usize])
            .count();
        if run > 0 {
            if pending_sep {
                out.push(b';');
            } else if pending_space {
                out.push(b' ');
            }
            pending_sep = false;
            pending_space = false;
            out.extend_from_slice(&input[i..i + run]);
            i += run;
            continue;
        }
        match input[i] {
            b'^' | b'"' => {}
            b'&' | b'|' | b'\n' | b'\r' | b';' => {
                pending_sep = true;
                pending_space = false;
            }
            // b' ' | b'\t' | b'\x0b' | b'\x0c': the only other bytes that are not PLAIN
            _ => {
                if !pending_sep && !out.is_empty() {
                    pending_space = true;
                }
            }
        }
        i += 1;
    }
    if pending_sep {
        out.push(b';');
    }
    out.as_slice() != input
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> String {
        let mut out = Vec::new();
        if normalise(s.as_bytes(), &mut out) {
            String::from_utf8(out).unwrap()
        } else {
            s.to_string()
        }
    }

    #[test]
    fn undoes_cmd_evasions_and_keeps_paths() {
        assert_eq!(
            n("x | type C:\\Windows\\win.ini"),
            "x;type C:\\Windows\\win.ini"
        );
        assert_eq!(n("a & w^h^o^a^m^i"), "a;whoami");
        assert_eq!(n("a && net  user x /add || echo"), "a;net user x /add;echo");
        assert_eq!(n("& \"dir\" c:\\"), ";dir c:\\");
        assert_eq!(n("Tom & Jerry"), "Tom;Jerry");
        assert_eq!(n("plain words"), "plain words");
        assert_eq!(n(" trailing & "), "trailing;");
    }

    /// The byte-at-a-time form of [`normalise`] (what it was before runs were copied whole).
    fn reference(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut pending_space, mut pending_sep) = (false, false);
        for &b in input {
            match b {
                b'^' | b'"' => {}
                b'&' | b'|' | b'\n' | b'\r' | b';' => {
                    pending_sep = true;
                    pending_space = false;
                }
                b' ' | b'\t' | b'\x0b' | b'\x0c' => {
                    if !pending_sep && !out.is_empty() {
                        pending_space = true;
                    }
                }
                _ => {
                    if pending_sep {
                        out.push(b';');
                    } else if pending_space {
                        out.push(b' ');
                    }
                    pending_sep = false;
                    pending_space = false;
                    out.push(b);
                }
            }
        }
        if pending_sep {
            out.push(b';');
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_the_byte_at_a_time_reference(
            input in proptest::collection::vec(prop::sample::select(b"ab/\\:( ^\"&|;\n\r\t\x0b\x0c".to_vec()), 0..60)
        ) {
            let mut out = Vec::new();
            let changed = normalise(&input, &mut out);
            let want = reference(&input);
            prop_assert_eq!(changed, want != input);
            if changed {
                prop_assert_eq!(out, want);
            }
        }

        #[test]
        fn idempotent(s in "[a-z ^\"&|\\n\\t;\\\\:]{0,40}") {
            let once = n(&s);
            prop_assert_eq!(n(&once), once.clone());
        }
    }
}
