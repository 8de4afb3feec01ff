//! `base64`: find and decode embedded base64 runs.
//!
//! The decoder is a 20-line bit accumulator over a 256-entry table rather than the `base64`
//! crate's engines: it accepts both alphabets at once, never fails (trailing bits that do not
//! make a byte are dropped), needs no padding, and writes straight into `out`, so a run that
//! the strict engines would reject (missing or wrong padding, length not a multiple of 4,
//! non-canonical trailing bits) still yields its payload.

/// 0..=63 for base64 characters of either alphabet, [`INVALID`] otherwise.
const INVALID: u8 = 0xFF;
const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t
};

/// The shortest run that is decoded.
pub(super) const MIN_RUN: usize = 16;

/// Whether a run is worth decoding: it does not mix the two alphabets' specials (that is a
/// path or an identifier) and it has an upper-case letter or a digit (all lower-case is a
/// word).
fn plausible(run: &[u8]) -> bool {
    let (mut std, mut url, mut upper_or_digit) = (false, false, false);
    for &b in run {
        std |= b == b'+' || b == b'/';
        url |= b == b'-' || b == b'_';
        upper_or_digit |= b.is_ascii_uppercase() || b.is_ascii_digit();
    }
    !(std && url) && upper_or_digit
}

/// Decodes `run` (all base64 characters) into `out`, dropping trailing bits.
fn decode_run(run: &[u8], out: &mut Vec<u8>) {
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in run {
        acc = (acc << 6) | u32::from(TABLE[usize::from(c)]);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation to the low byte is the point.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}

#[inline(always)]
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() | (b == b'+') | (b == b'/') | (b == b'-') | (b == b'_')
}

/// Block size of the prefilter. A run of at least [`MIN_RUN`] = 2 × `BLOCK` characters
/// always covers a whole aligned block, so only blocks made entirely of base64 characters
/// need a closer look; in prose almost none are.
const BLOCK: usize = 8;

/// Decodes every qualifying run of `input` into `out`, joined by `\n`. Returns whether any
/// run was decoded.
pub(super) fn decode_runs(input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut any = false;
    let n = input.len();
    let mut block = 0;
    while block + BLOCK <= n {
        let full = input[block..block + BLOCK]
            .iter()
            .fold(true, |acc, &b| acc & is_b64(b));
        if !full {
            block += BLOCK;
            continue;
        }
        // Widen to the whole run. Backwards it cannot reach an earlier run: that one ended
        // at a non-base64 byte before this block.
        let mut start = block;
        while start > 0 && is_b64(input[start - 1]) {
            start -= 1;
        }
        let mut end = block + BLOCK;
        while end < n && is_b64(input[end]) {
            end += 1;
        }
        let run = &input[start..end];
        if run.len() >= MIN_RUN && plausible(run) {
            if any {
                out.push(b'\n');
            } else {
                out.reserve(run.len());
            }
            any = true;
            decode_run(run, out);
        }
        // Padding (or whatever ends the run) is skipped with the next blocks.
        block = end.next_multiple_of(BLOCK);
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn dec(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode_runs(s.as_bytes(), &mut out).then_some(out)
    }

    #[test]
    fn embedded_runs() {
        // base64 of "/bin/bash -i"
        let e = base64::engine::general_purpose::STANDARD.encode("/bin/bash -i");
        assert_eq!(e, "L2Jpbi9iYXNoIC1p");
        assert_eq!(
            dec(&format!("echo {e}|base64 -d|sh")).unwrap(),
            b"/bin/bash -i"
        );
        // padded, inside a parameter
        let e = base64::engine::general_purpose::STANDARD.encode("cat /etc/passwd");
        assert_eq!(dec(&format!("cmd={e}&x=1")).unwrap(), b"cat /etc/passwd");
        // URL-safe alphabet
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb_u8; 16]);
        assert!(e.contains('-') || e.contains('_'));
        assert_eq!(dec(&e).unwrap(), [0xfb_u8; 16]);
        // two runs
        let a = base64::engine::general_purpose::STANDARD.encode("first payload!!");
        let b = base64::engine::general_purpose::STANDARD.encode("second payload!");
        assert_eq!(
            dec(&format!("{a} and {b}")).unwrap(),
            b"first payload!!\nsecond payload!"
        );
    }

    #[test]
    fn trimming() {
        // a stray character after an unpadded run: 17 characters, 4k+1, decodes as 16
        assert_eq!(dec("L2Jpbi9iYXNoIC1pX").unwrap(), b"/bin/bash -i");
        // a 4k run, then missing padding (4k+2)
        assert_eq!(dec("Y2F0IC9ldGMvcGFzc3dk").unwrap(), b"cat /etc/passwd");
        assert_eq!(dec("L2Jpbi9iYXNoIC1pIA").unwrap(), b"/bin/bash -i ");
    }

    #[test]
    fn not_base64() {
        assert_eq!(dec("short QUJD"), None);
        assert_eq!(dec("internationalization is a long word"), None);
        assert_eq!(dec("/usr/lib/x86_64-linux-gnu/libc.so.6"), None);
        assert_eq!(dec(""), None);
    }
}
