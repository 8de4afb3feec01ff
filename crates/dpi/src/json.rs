//! JSON string extraction.
//!
//! # Why
//!
//! An attacker who puts `/bin/sh` in a JSON body can write it as `"\u002fbin\u002fsh"`, which
//! every JSON parser on the upstream side decodes back to `/bin/sh`, but which a pattern run
//! over the raw body never sees. So picket walks the document and hands every **object key**
//! and every **string value**, escapes decoded, to the engine as [`Target::JsonString`].
//! Numbers, `true`, `false` and `null` carry no payload and are skipped.
//!
//! Strings whose decoded text is itself a JSON object or array (`"{\"cmd\":\"…\"}"`, common in
//! message queues, GraphQL variables and webhook envelopes) are walked as well, so double
//! encoding does not hide a payload either. The embedded document's nesting counts toward
//! [`ExtractLimits::max_depth`], on top of the depth of the string that holds it.
//!
//! # Cost and bounds
//!
//! The walker is hand-written and iterative: nesting is an explicit stack of one byte per open
//! container, checked against `max_depth` before it grows, so hostile input such as
//! `[[[[[…` cannot overflow the call stack. Each string is decoded into one reusable scratch
//! buffer; apart from that buffer, the last key and the container stack, nothing is allocated.
//! A document is read once. An embedded document is first validated (one pass, nothing
//! emitted, so a string that merely *starts* with `{` produces no half-walked fields) and then
//! walked (a second pass); embedding is followed at most [`MAX_EMBEDDED`] levels deep, so the
//! total work is at most `2 × MAX_EMBEDDED` passes over the body, and the recursion that follows
//! embedded documents is bounded by the same constant.
//!
//! # Leniency
//!
//! The grammar is RFC 8259 with two deliberate relaxations, because the inspector must see at
//! least what a lenient upstream parser accepts: raw control characters inside strings are
//! kept as they are, and bytes that are not UTF-8 are passed through. Invalid escapes, bad
//! numbers, missing commas, trailing garbage and truncation are errors
//! ([`ExtractError::Json`]); the strings emitted before the error stand. A lone UTF-16
//! surrogate in a `\u` escape decodes to U+FFFD, as `serde_json` and browsers do.

use picket_signatures::Target;

use crate::fields::{ExtractError, ExtractLimits, FieldSink};

/// How many levels of JSON-in-a-JSON-string are followed. Beyond it, the string is still
/// emitted, just not walked as a document.
pub const MAX_EMBEDDED: usize = 8;

/// Walks `body` as one JSON document and hands every key and string value to `sink` as
/// [`Target::JsonString`]: a key with itself as name, a value with its key as name (empty in
/// arrays and at the top level).
pub fn extract(
    body: &[u8],
    limits: &ExtractLimits,
    sink: &mut dyn FieldSink,
) -> Result<(), ExtractError> {
    let mut fields = 0usize;
    let mut ctx = Ctx {
        limits,
        fields: &mut fields,
        sink,
        emit: true,
    };
    walk(body, 0, 0, &mut ctx)
}

struct Ctx<'c> {
    limits: &'c ExtractLimits,
    fields: &'c mut usize,
    sink: &'c mut dyn FieldSink,
    /// False while validating an embedded document: nothing is emitted and embedded documents
    /// are not followed.
    emit: bool,
}

impl Ctx<'_> {
    fn emit(&mut self, name: &[u8], value: &[u8]) -> Result<(), ExtractError> {
        if !self.emit {
            return Ok(());
        }
        if *self.fields >= self.limits.max_fields {
            return Err(ExtractError::TooManyFields {
                limit: self.limits.max_fields,
            });
        }
        *self.fields += 1;
        self.sink.field(Target::JsonString, name, value);
        Ok(())
    }
}

/// A sink that drops everything (used while validating an embedded document).
struct Discard;

impl FieldSink for Discard {
    fn field(&mut self, _: Target, _: &[u8], _: &[u8]) {}
}

const OBJECT: u8 = b'{';
const ARRAY: u8 = b'[';

/// Walks one document. `depth_base` is the number of containers already open around it (for
/// an embedded document), `embed_level` how many embedded documents enclose it.
fn walk(
    input: &[u8],
    depth_base: usize,
    embed_level: usize,
    ctx: &mut Ctx<'_>,
) -> Result<(), ExtractError> {
    let mut p = Cursor { s: input, pos: 0 };
    let mut stack: Vec<u8> = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();

    'value: loop {
        // Expecting a value.
        p.skip_ws();
        match p.peek() {
            None => return Err(p.err("unexpected end of input")),
            Some(open @ (b'{' | b'[')) => {
                if ctx.emit && depth_base + stack.len() + 1 > ctx.limits.max_depth {
                    return Err(ExtractError::DepthExceeded {
                        limit: ctx.limits.max_depth,
                    });
                }
                p.pos += 1;
                stack.push(open);
                p.skip_ws();
                let close = if open == OBJECT { b'}' } else { b']' };
                if p.peek() == Some(close) {
                    p.pos += 1;
                    stack.pop();
                } else {
                    if open == OBJECT {
                        p.parse_key(&mut key, ctx)?;
                    }
                    continue 'value;
                }
            }
            Some(b'"') => {
                p.pos += 1;
                buf.clear();
                p.parse_string(&mut buf)?;
                let name: &[u8] = if stack.last() == Some(&OBJECT) {
                    &key
                } else {
                    b""
                };
                ctx.emit(name, &buf)?;
                if ctx.emit && embed_level < MAX_EMBEDDED && looks_like_document(&buf) {
                    let mut no_fields = 0usize;
                    let valid = {
                        let mut check = Ctx {
                            limits: ctx.limits,
                            fields: &mut no_fields,
                            sink: &mut Discard,
                            emit: false,
                        };
                        walk(&buf, 0, embed_level + 1, &mut check).is_ok()
                    };
                    if valid {
                        walk(&buf, depth_base + stack.len(), embed_level + 1, ctx)?;
                    }
                }
            }
            Some(b't') => p.literal(b"true")?,
            Some(b'f') => p.literal(b"false")?,
            Some(b'n') => p.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => p.number()?,
            Some(_) => return Err(p.err("expected a value")),
        }

        // After a value: a separator, a closing bracket, or the end of the document.
        loop {
            p.skip_ws();
            let Some(&top) = stack.last() else {
                if p.pos < input.len() {
                    return Err(p.err("trailing characters after the document"));
                }
                return Ok(());
            };
            match p.peek() {
                None => return Err(p.err("unexpected end of input")),
                Some(b',') => {
                    p.pos += 1;
                    if top == OBJECT {
                        p.parse_key(&mut key, ctx)?;
                    }
                    continue 'value;
                }
                Some(b'}') if top == OBJECT => {
                    p.pos += 1;
                    stack.pop();
                }
                Some(b']') if top == ARRAY => {
                    p.pos += 1;
                    stack.pop();
                }
                Some(_) if top == OBJECT => return Err(p.err("expected ',' or '}'")),
                Some(_) => return Err(p.err("expected ',' or ']'")),
            }
        }
    }
}

/// Whether a decoded string is worth validating as an embedded document.
fn looks_like_document(s: &[u8]) -> bool {
    matches!(s.iter().find(|b| !is_ws(**b)), Some(b'{') | Some(b'['))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, reason: &'static str) -> ExtractError {
        ExtractError::Json {
            offset: self.pos,
            reason,
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Parses `"key"` and the following `:`, emitting the key.
    fn parse_key(&mut self, key: &mut Vec<u8>, ctx: &mut Ctx<'_>) -> Result<(), ExtractError> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string key"));
        }
        self.pos += 1;
        key.clear();
        self.parse_string(key)?;
        ctx.emit(key, key)?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected ':' after key"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Decodes a string body (the opening quote already consumed) into `out`, consuming the
    /// closing quote.
    fn parse_string(&mut self, out: &mut Vec<u8>) -> Result<(), ExtractError> {
        loop {
            let rest = self.s.get(self.pos..).unwrap_or_default();
            let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.s.len();
                return Err(self.err("unterminated string"));
            };
            out.extend_from_slice(rest.get(..i).unwrap_or_default());
            self.pos += i;
            if self.peek() == Some(b'"') {
                self.pos += 1;
                return Ok(());
            }
            // A backslash.
            self.pos += 1;
            let Some(e) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match e {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'/' => out.push(b'/'),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let c = self.unicode_escape()?;
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.err("invalid escape"));
                }
            }
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate the `\uXXXX` low surrogate that
    /// should follow. Lone surrogates become U+FFFD (and what follows is decoded normally).
    fn unicode_escape(&mut self) -> Result<char, ExtractError> {
        let hi = self.hex4()?;
        match hi {
            0xD800..=0xDBFF => {
                let rest = self.s.get(self.pos..).unwrap_or_default();
                if let [b'\\', b'u', ..] = rest {
                    let save = self.pos;
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if (0xDC00..=0xDFFF).contains(&lo) {
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        return Ok(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                    // Not a low surrogate: leave that escape to be decoded on its own.
                    self.pos = save;
                }
                Ok(char::REPLACEMENT_CHARACTER)
            }
            0xDC00..=0xDFFF => Ok(char::REPLACEMENT_CHARACTER),
            _ => Ok(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn hex4(&mut self) -> Result<u32, ExtractError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            v = v << 4 | u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ExtractError> {
        let end = self.pos + word.len();
        if self.s.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), ExtractError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn run(body: &[u8], limits: &ExtractLimits) -> (Fields, Result<(), ExtractError>) {
        let mut out = Vec::new();
        let mut sink = |t: Target, n: &[u8], v: &[u8]| {
            assert_eq!(t, Target::JsonString);
            out.push((n.to_vec(), v.to_vec()));
        };
        let r = extract(body, limits, &mut sink);
        (out, r)
    }

    fn ok(body: &str) -> Vec<(String, String)> {
        let (f, r) = run(body.as_bytes(), &ExtractLimits::default());
        r.unwrap();
        f.into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn keys_and_values() {
        let f = ok(r#"{"user":"bob","age":42,"tags":["a",true,null,{"k":"v"}],"x":-1.5e3}"#);
        assert_eq!(
            f,
            pairs(&[
                ("user", "user"),
                ("user", "bob"),
                ("age", "age"),
                ("tags", "tags"),
                ("", "a"),
                ("k", "k"),
                ("k", "v"),
                ("x", "x"),
            ])
        );
    }

    #[test]
    fn unicode_escaped_shell() {
        let f = ok(r#"{"cmd":"\u002fbin\u002Fsh -c \"id\"\n"}"#);
        assert_eq!(f[1], ("cmd".into(), "/bin/sh -c \"id\"\n".into()));
    }

    #[test]
    fn all_escapes_and_surrogates() {
        let f = ok(r#"["\"\\\/\b\f\n\r\t", "\ud83d\ude00", "\ud83dx", "\ude00", "\ud83d\u0041"]"#);
        let v: Vec<_> = f.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            v,
            vec![
                "\"\\/\u{8}\u{c}\n\r\t".to_string(),
                "😀".into(),
                "\u{FFFD}x".into(),
                "\u{FFFD}".into(),
                "\u{FFFD}A".into(),
            ]
        );
    }

    #[test]
    fn double_encoded_json_is_walked() {
        let inner = r#"{"exec":"/bin/sh","args":["-c","id"]}"#;
        let outer = serde_json::json!({ "payload": inner }).to_string();
        let f = ok(&outer);
        assert!(f.contains(&("payload".into(), inner.into())));
        assert!(f.contains(&("exec".into(), "/bin/sh".into())));
        assert!(f.contains(&("".into(), "-c".into())));
        // triple encoding
        let outer2 = serde_json::json!([outer]).to_string();
        let f = ok(&outer2);
        assert!(f.contains(&("exec".into(), "/bin/sh".into())));
    }

    #[test]
    fn string_that_only_starts_like_json_is_not_walked() {
        let f = ok(r#"{"a":"{\"k\":\"v\" oops"}"#);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn embedded_depth_counts() {
        let limits = ExtractLimits {
            max_depth: 2,
            max_fields: 100,
        };
        let (_, r) = run(br#"{"a":"{\"b\":1}"}"#, &limits);
        assert_eq!(r, Ok(()));
        let (f, r) = run(br#"{"a":"{\"b\":{}}"}"#, &limits);
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 2 }));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn depth_limit_no_stack_overflow() {
        let body = "[".repeat(1_000_000);
        let (_, r) = run(body.as_bytes(), &ExtractLimits::default());
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 64 }));
        let limits = ExtractLimits {
            max_depth: usize::MAX,
            max_fields: 10,
        };
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(run(body.as_bytes(), &limits).1, Ok(()));
    }

    #[test]
    fn too_many_fields() {
        let limits = ExtractLimits {
            max_depth: 8,
            max_fields: 3,
        };
        let (f, r) = run(br#"["a","b","c","d"]"#, &limits);
        assert_eq!(r, Err(ExtractError::TooManyFields { limit: 3 }));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn malformed_keeps_earlier_fields() {
        let (f, r) = run(br#"{"a":"/bin/sh","b":tru}"#, &ExtractLimits::default());
        assert_eq!(f.len(), 3);
        assert!(
            matches!(r, Err(ExtractError::Json { offset: 19, .. })),
            "{r:?}"
        );
        for bad in [
            &b""[..],
            b"   ",
            b"{",
            b"[1,]",
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"[1 2]",
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"\"abc",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"{} {}",
            b"[}",
            b"{]",
            b"nul",
        ] {
            let (_, r) = run(bad, &ExtractLimits::default());
            assert!(
                matches!(r, Err(ExtractError::Json { .. })),
                "{:?} gave {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lenient_on_raw_controls_and_bytes() {
        let (f, r) = run(b"[\"a\tb\xff\"]", &ExtractLimits::default());
        r.unwrap();
        assert_eq!(f[0].1, b"a\tb\xff");
    }

    #[test]
    fn scalars_at_top_level() {
        assert!(ok("42").is_empty());
        assert!(ok(" null ").is_empty());
        assert_eq!(ok("\"x\""), pairs(&[("", "x")]));
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn strings_of(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings_of(v, out)),
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    strings_of(v, out);
                }
            }
            _ => {}
        }
    }

    proptest! {
        #[test]
        fn finds_every_string(v in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let (found, r) = run(text.as_bytes(), &ExtractLimits::default());
            prop_assert_eq!(r, Ok(()));
            let found: Vec<String> =
                found.into_iter().map(|(_, v)| String::from_utf8(v).unwrap()).collect();
            let mut want = Vec::new();
            strings_of(&v, &mut want);
            // Every string is found, in document order (embedded documents may add more).
            let mut it = found.iter();
            for w in &want {
                prop_assert!(it.any(|f| f == w), "missing {:?}", w);
            }
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = run(&bytes, &ExtractLimits::default());
        }
    }
}
