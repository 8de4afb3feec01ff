//! `application/x-www-form-urlencoded` fields: query strings and urlencoded bodies.
//!
//! # Why
//!
//! Signatures are written against what the application sees, `cmd=/bin/sh -c id`, not against
//! `cmd=%2Fbin%2Fsh+-c+id`. Every field is percent-decoded exactly **once**, as the application
//! would decode it; double decoding (`%252F` → `/`) is a normalisation a signature asks for
//! explicitly through its transforms, not something the extractor does behind its back.
//!
//! # Parsing rules (WHATWG URL "application/x-www-form-urlencoded", made lenient)
//!
//! * Pairs are separated by `&` only. Some older CGI libraries also split on `;`, but splitting
//!   there would cut `ip=1;cat /etc/passwd` into two harmless-looking pieces and hide the very
//!   separator command-injection signatures look for. Keeping `;` inside the value loses
//!   nothing: whatever a `;`-splitting application sees as a separate field is still scanned,
//!   as part of the value it sits in.
//! * `name=value`; the first `=` splits, later ones belong to the value. A pair without `=` is a
//!   name with an empty value. Empty pairs (`a=1&&b=2`) are skipped.
//! * `+` is a space; `%XX` is a byte; a `%` not followed by two hex digits is kept literally
//!   (the [`Anomaly::InvalidPercentEncoding`](picket_signatures::Anomaly) check on the URI is
//!   the HTTP parser's job).
//!
//! # Cost
//!
//! One pass over the input, two scratch buffers reused for every pair; no allocation per field.

use picket_signatures::Target;

use crate::fields::{ExtractError, ExtractLimits, FieldSink};
use crate::http1::hex_val;

/// Splits `input` into pairs, percent-decodes names and values once, and emits
/// `(target, name, value)` for each. Used with [`Target::Arg`] for query strings and
/// [`Target::FormField`] for urlencoded bodies. Stops with [`ExtractError::TooManyFields`] after
/// `limits.max_fields` pairs.
pub fn extract_urlencoded(
    input: &[u8],
    target: Target,
    limits: &ExtractLimits,
    sink: &mut dyn FieldSink,
) -> Result<(), ExtractError> {
    let mut name = Vec::new();
    let mut value = Vec::new();
    let mut count = 0usize;
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        if count >= limits.max_fields {
            return Err(ExtractError::TooManyFields {
                limit: limits.max_fields,
            });
        }
        count += 1;
        let (raw_name, raw_value) = match memchr::memchr(b'=', pair) {
            Some(i) => (
                pair.get(..i).unwrap_or_default(),
                pair.get(i + 1..).unwrap_or_default(),
            ),
            None => (pair, &b""[..]),
        };
        name.clear();
        value.clear();
        percent_decode(raw_name, true, &mut name);
        percent_decode(raw_value, true, &mut value);
        sink.field(target, &name, &value);
    }
    Ok(())
}

/// Appends the percent-decoding of `input` to `out`: `%XX` (either case of hex digit) becomes
/// one byte, a `%` not followed by two hex digits is copied literally, and `+` becomes a space
/// when `plus_as_space` (forms, query strings) but is kept in paths.
pub fn percent_decode(input: &[u8], plus_as_space: bool, out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_val);
                let lo = input.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], target: Target) -> Vec<(Target, String, String)> {
        let mut out = Vec::new();
        let mut sink = |t: Target, n: &[u8], v: &[u8]| {
            out.push((
                t,
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        };
        extract_urlencoded(input, target, &ExtractLimits::default(), &mut sink).unwrap();
        out
    }

    fn pd(s: &[u8], plus: bool) -> Vec<u8> {
        let mut v = Vec::new();
        percent_decode(s, plus, &mut v);
        v
    }

    #[test]
    fn query_string() {
        let f = collect(b"q=%2Fbin%2Fsh+-c+id&debug&x=a=b;y=%zz%4", Target::Arg);
        let f: Vec<_> = f
            .iter()
            .map(|(t, n, v)| (*t, n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            f,
            vec![
                (Target::Arg, "q", "/bin/sh -c id"),
                (Target::Arg, "debug", ""),
                // `;` stays in the value: splitting there would hide an injection separator.
                (Target::Arg, "x", "a=b;y=%zz%4"),
            ]
        );
    }

    #[test]
    fn form_body_names_are_decoded_and_empty_pairs_skipped() {
        let f = collect(
            b"&&us%65r=admin&&pass%5B%5D=x%27+OR+1%3D1--&",
            Target::FormField,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], (Target::FormField, "user".into(), "admin".into()));
        assert_eq!(
            f[1],
            (Target::FormField, "pass[]".into(), "x' OR 1=1--".into())
        );
    }

    #[test]
    fn decodes_once_only() {
        assert_eq!(pd(b"%252F", true), b"%2F");
        assert_eq!(pd(b"a+b%2b", false), b"a+b+");
        assert_eq!(pd(b"%", true), b"%");
        assert_eq!(pd(b"%4", true), b"%4");
        assert_eq!(pd(b"%C3%A9%00", true), "é\0".as_bytes());
    }

    #[test]
    fn too_many_fields() {
        let limits = ExtractLimits {
            max_depth: 4,
            max_fields: 2,
        };
        let mut n = 0;
        let mut sink = |_: Target, _: &[u8], _: &[u8]| n += 1;
        let err = extract_urlencoded(b"a=1&b=2&c=3", Target::Arg, &limits, &mut sink);
        assert_eq!(err, Err(ExtractError::TooManyFields { limit: 2 }));
        assert_eq!(n, 2);
    }
}
