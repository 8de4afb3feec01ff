//! `url_decode`: `%XX`, IIS `%uXXXX`, `+`; repeated up to [`URL_DECODE_ROUNDS`] times, in place.
//!
//! Every sequence decodes to at most as many bytes as it occupies (`%XX` 3 → 1, `%uXXXX`
//! 6 → ≤ 3, a surrogate pair 12 → 4, `+` 1 → 1), so each round rewrites `out` in place with
//! a write index that never overtakes the read index: no buffer besides `out` is needed.

use memchr::memchr2;

use super::URL_DECODE_ROUNDS;

#[inline]
fn hex(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        _ => None,
    }
}

fn hex4(s: &[u8]) -> Option<u32> {
    match s {
        [a, b, c, d, ..] => Some((hex(*a)? << 12) | (hex(*b)? << 8) | (hex(*c)? << 4) | hex(*d)?),
        _ => None,
    }
}

/// `%uXXXX` at the start of `s` (which starts with `%`): the code unit.
fn percent_u(s: &[u8]) -> Option<u32> {
    match s.get(1) {
        Some(b'u' | b'U') => hex4(s.get(2..)?),
        _ => None,
    }
}

/// Parses the escape at the start of `s` (`s[0] == b'%'`). Returns the decoded bytes (in a
/// small array, with their count) and how many input bytes they replace, or `None` when the
/// `%` does not start a valid escape and stays literal.
fn parse_escape(s: &[u8]) -> Option<([u8; 4], usize, usize)> {
    if let (Some(&h), Some(&l)) = (s.get(1), s.get(2)) {
        if let (Some(h), Some(l)) = (hex(h), hex(l)) {
            // h, l < 16, so this fits a byte.
            return Some(([(h * 16 + l) as u8, 0, 0, 0], 1, 3));
        }
    }
    let unit = percent_u(s)?;
    let (cp, consumed) = match unit {
        0xD800..=0xDBFF => {
            let low = s.get(6..).and_then(percent_u)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
        }
        0xDC00..=0xDFFF => return None,
        _ => (unit, 6),
    };
    let c = char::from_u32(cp)?;
    let mut buf = [0u8; 4];
    let n = c.encode_utf8(&mut buf).len();
    Some((buf, n, consumed))
}

/// One decoding round over `buf`, in place. Returns whether anything changed.
fn round(buf: &mut Vec<u8>) -> bool {
    let len = buf.len();
    let Some(first) = memchr2(b'%', b'+', buf) else {
        return false;
    };
    let (mut r, mut w) = (first, first);
    let mut changed = false;
    loop {
        // Invariant: w <= r.
        match memchr2(b'%', b'+', &buf[r..]) {
            None => {
                buf.copy_within(r..len, w);
                w += len - r;
                break;
            }
            Some(p) => {
                if w != r {
                    buf.copy_within(r..r + p, w);
                }
                w += p;
                r += p;
            }
        }
        if buf[r] == b'+' {
            buf[w] = b' ';
            w += 1;
            r += 1;
            changed = true;
        } else if let Some((bytes, n, consumed)) = parse_escape(&buf[r..]) {
            // n <= consumed, so the write stays behind the (already parsed) read.
            buf[w..w + n].copy_from_slice(&bytes[..n]);
            w += n;
            r += consumed;
            changed = true;
        } else {
            buf[w] = b'%';
            w += 1;
            r += 1;
        }
    }
    buf.truncate(w);
    changed
}

/// Decodes `input` into `out`. Returns (changed, fixpoint): `fixpoint` is false only when
/// every one of the [`URL_DECODE_ROUNDS`] rounds changed something, i.e. a further round
/// might decode more.
pub(super) fn decode(input: &[u8], out: &mut Vec<u8>) -> (bool, bool) {
    if memchr2(b'%', b'+', input).is_none() {
        return (false, true);
    }
    out.extend_from_slice(input);
    for n in 0..URL_DECODE_ROUNDS {
        if !round(out) {
            return (n > 0, true);
        }
    }
    (true, !would_change(out))
}

/// Whether another round would change `buf`: a `+` or a valid escape.
fn would_change(buf: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = memchr2(b'%', b'+', &buf[i..]) {
        i += p;
        if buf[i] == b'+' || parse_escape(&buf[i..]).is_some() {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> String {
        let mut out = Vec::new();
        if decode(s.as_bytes(), &mut out).0 {
            String::from_utf8_lossy(&out).into_owned()
        } else {
            s.to_owned()
        }
    }

    #[test]
    fn single_and_nested() {
        assert_eq!(dec("%2e%2E%2f"), "../");
        assert_eq!(dec("%252fetc%252fpasswd"), "/etc/passwd");
        assert_eq!(dec("%25%32%66"), "/");
        assert_eq!(dec("%2525252f"), "/"); // four layers
        assert_eq!(dec("a+b%20c"), "a b c");
        assert_eq!(dec("%3Cscript%3E"), "<script>");
        assert_eq!(dec("%0acat"), "\ncat");
    }

    #[test]
    fn iis_unicode() {
        assert_eq!(dec("%u002e%u002E%u2215"), "..\u{2215}");
        assert_eq!(dec("%U0041"), "A");
        assert_eq!(dec("%uD83D%uDE00"), "\u{1F600}");
        // lone surrogates stay as written
        assert_eq!(dec("%uD83Dx"), "%uD83Dx");
        assert_eq!(dec("%uDE00"), "%uDE00");
        assert_eq!(dec("%u00"), "%u00");
    }

    #[test]
    fn invalid_kept() {
        let mut out = Vec::new();
        assert_eq!(decode(b"100% sure %zz %4", &mut out), (false, true));
        assert_eq!(dec("%%41"), "%A");
        assert_eq!(dec("%"), "%");
    }

    #[test]
    fn rounds_are_bounded() {
        let mut out = Vec::new();
        // five layers: four rounds leave one
        assert_eq!(decode(b"%252525252f", &mut out), (true, false));
        assert_eq!(out, b"%2f");
        out.clear();
        assert_eq!(decode(b"%2525252f", &mut out), (true, true));
        assert_eq!(out, b"/");
    }
}
