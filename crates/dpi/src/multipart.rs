//! `multipart/form-data` (RFC 7578, framing from RFC 2046 §5.1).
//!
//! # Why
//!
//! File uploads are where web shells, polyglot images and path-traversal filenames arrive. A
//! pattern run over the raw body sees them, but cannot tell the part content from a part
//! header, and cannot name the field in the block log. This module splits the body into parts
//! and hands the engine, each as [`Target::MultipartPart`]:
//!
//! * every part header value, with the lowercased header name as name
//!   (`content-disposition`, `content-type`, …);
//! * the `filename` parameter of `Content-Disposition` (also `filename*`), with name
//!   `filename`, so `../../etc/cron.d/x` or `shell.php` is matched on its own;
//! * the part content, with the `name` parameter of `Content-Disposition` as name.
//!
//! A part that is itself `multipart/*` with a boundary (the old `multipart/mixed` way of
//! sending several files in one field) is split in turn, up to
//! [`ExtractLimits::max_depth`] (an error beyond it) and at most [`MAX_NESTED`] levels. Parts typed JSON, XML or urlencoded are emitted as they are;
//! running the matching extractor over them is the caller's choice.
//!
//! # Leniency
//!
//! Lines may end in CRLF or in a bare LF (some clients and many attack tools send LF). The
//! preamble before the first delimiter and the epilogue after the closing one are ignored.
//! A body with no delimiter at all, or without the closing `--boundary--`, is
//! [`ExtractError::Multipart`], reported *after* every part that could be delimited was emitted
//! (the unterminated last part included), so truncation hides nothing.
//!
//! # Cost
//!
//! The delimiter is searched with a precomputed [`memchr::memmem::Finder`]; the parts are
//! slices of the body, so nothing is copied except one parameter value at a time. Linear time.

use memchr::memmem::Finder;
use picket_signatures::Target;

use crate::fields::{ExtractError, ExtractLimits, FieldSink};

/// Longest boundary accepted (RFC 2046 allows 70 characters; a little slack for sloppy
/// clients).
pub const MAX_BOUNDARY: usize = 200;

/// Extracts the `boundary` parameter from a `Content-Type` value such as
/// `multipart/form-data; boundary="----x"`. The media type must be `multipart/*`; the parameter
/// name is case-insensitive; the value may be a token or a quoted string. Returns `None` when
/// the type is not multipart or the boundary is missing, empty or longer than
/// [`MAX_BOUNDARY`].
pub fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let mut params = Params::new(content_type);
    let media = trim(params.media_type);
    if media.len() < 10 || !media.get(..10)?.eq_ignore_ascii_case(b"multipart/") {
        return None;
    }
    let mut value = Vec::new();
    while let Some(name) = params.next_into(&mut value) {
        if name.eq_ignore_ascii_case(b"boundary") {
            if value.is_empty() || value.len() > MAX_BOUNDARY {
                return None;
            }
            return Some(value);
        }
    }
    None
}

/// How many levels of multipart-inside-a-part are split, whatever `max_depth` says: the
/// splitting recurses, and this keeps the call stack small. Deeper parts are still emitted
/// whole.
pub const MAX_NESTED: usize = 8;

/// Splits `body` at `boundary` and emits each part's header values, filename and content (see
/// the module documentation).
pub fn extract(
    body: &[u8],
    boundary: &[u8],
    limits: &ExtractLimits,
    sink: &mut dyn FieldSink,
) -> Result<(), ExtractError> {
    let mut ctx = Ctx {
        limits,
        sink,
        fields: 0,
    };
    extract_at(body, boundary, 1, &mut ctx)
}

struct Ctx<'a> {
    limits: &'a ExtractLimits,
    sink: &'a mut dyn FieldSink,
    fields: usize,
}

impl Ctx<'_> {
    fn emit(&mut self, name: &[u8], value: &[u8]) -> Result<(), ExtractError> {
        if self.fields >= self.limits.max_fields {
            return Err(ExtractError::TooManyFields {
                limit: self.limits.max_fields,
            });
        }
        self.fields += 1;
        self.sink.field(Target::MultipartPart, name, value);
        Ok(())
    }
}

fn extract_at(
    body: &[u8],
    boundary: &[u8],
    depth: usize,
    ctx: &mut Ctx<'_>,
) -> Result<(), ExtractError> {
    if depth > ctx.limits.max_depth {
        return Err(ExtractError::DepthExceeded {
            limit: ctx.limits.max_depth,
        });
    }
    if boundary.is_empty() {
        return Err(ExtractError::Multipart {
            reason: "empty boundary",
        });
    }
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = Finder::new(&delim);

    // The first delimiter: at the start of the body or of a line.
    let Some(mut at) = find_delimiter(body, 0, &finder, true) else {
        return Err(ExtractError::Multipart {
            reason: "no boundary delimiter found",
        });
    };
    loop {
        // `at` is the start of `--boundary`.
        let after = at + delim.len();
        let rest = body.get(after..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(()); // close delimiter; the epilogue is ignored
        }
        // Transport padding, then the line break that ends the delimiter line (checked by
        // `find_delimiter`).
        let Some(eol) = memchr::memchr(b'\n', rest) else {
            return Err(ExtractError::Multipart {
                reason: "missing closing boundary",
            });
        };
        let part_start = after + eol + 1;
        let next = find_delimiter(body, part_start, &finder, false);
        let part_end = match next {
            Some(n) => strip_line_break(body, part_start, n),
            None => body.len(),
        };
        let part = body.get(part_start..part_end).unwrap_or_default();
        part_fields(part, depth, ctx)?;
        match next {
            Some(n) => at = n,
            None => {
                return Err(ExtractError::Multipart {
                    reason: "missing closing boundary",
                })
            }
        }
    }
}

/// Finds the next delimiter at or after `from`: `--boundary` at the start of a line (or of the
/// body when `allow_at_start`), followed by `--` (the close delimiter), or by optional
/// whitespace and the end of the line. `--boundaryXYZ` is not a delimiter, as in the
/// multipart parsers of PHP, Go and Java, so content cannot be split where the upstream would
/// not split it.
fn find_delimiter(
    body: &[u8],
    from: usize,
    finder: &Finder<'_>,
    allow_at_start: bool,
) -> Option<usize> {
    let dlen = finder.needle().len();
    let mut pos = from;
    loop {
        let hay = body.get(pos..)?;
        let i = pos + finder.find(hay)?;
        let line_start = (i == 0 && allow_at_start) || (i > 0 && body.get(i - 1) == Some(&b'\n'));
        if line_start && delimiter_ends_well(body.get(i + dlen..).unwrap_or_default()) {
            return Some(i);
        }
        pos = i + 1;
    }
}

fn delimiter_ends_well(rest: &[u8]) -> bool {
    if rest.starts_with(b"--") {
        return true;
    }
    let pad = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    matches!(
        rest.get(pad..),
        Some([] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r'])
    )
}

/// The part content ends before the line break that precedes the delimiter at `delim`.
fn strip_line_break(body: &[u8], start: usize, delim: usize) -> usize {
    let mut end = delim;
    if end > start && body.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > start && body.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

/// One part: headers up to the first empty line, then the content.
fn part_fields(part: &[u8], depth: usize, ctx: &mut Ctx<'_>) -> Result<(), ExtractError> {
    let mut pos = 0;
    let mut field_name: Vec<u8> = Vec::new();
    let mut nested_boundary: Option<Vec<u8>> = None;
    let mut header_name = Vec::new();
    let mut param = Vec::new();
    let content_start = loop {
        let rest = part.get(pos..).unwrap_or_default();
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), pos + i + 1),
            None => (rest, part.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break next;
        }
        pos = next;
        let Some(colon) = memchr::memchr(b':', line) else {
            // Not a header line: keep going, a lenient server would too.
            if next >= part.len() {
                break part.len();
            }
            continue;
        };
        header_name.clear();
        header_name.extend(
            trim(line.get(..colon).unwrap_or_default())
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        let value = trim(line.get(colon + 1..).unwrap_or_default());
        ctx.emit(&header_name, value)?;
        if header_name == b"content-disposition" {
            let mut params = Params::new(value);
            while let Some(name) = params.next_into(&mut param) {
                if name.eq_ignore_ascii_case(b"name") {
                    field_name.clone_from(&param);
                } else if name.eq_ignore_ascii_case(b"filename")
                    || name.eq_ignore_ascii_case(b"filename*")
                {
                    ctx.emit(b"filename", &param)?;
                }
            }
        } else if header_name == b"content-type" {
            nested_boundary = boundary(value);
        }
        if next >= part.len() {
            break part.len();
        }
    };
    let content = part.get(content_start..).unwrap_or_default();
    ctx.emit(&field_name, content)?;
    if let Some(b) = nested_boundary.filter(|_| depth < MAX_NESTED) {
        // Errors inside a nested multipart stop only that part's splitting (its content was
        // emitted whole above), except for the limits, which bound the whole body.
        if let Err(e @ (ExtractError::TooManyFields { .. } | ExtractError::DepthExceeded { .. })) =
            extract_at(content, &b, depth + 1, ctx)
        {
            return Err(e);
        }
    }
    Ok(())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `type/subtype; name=value; name="quoted \" value"` parameters.
struct Params<'a> {
    media_type: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    fn new(value: &'a [u8]) -> Self {
        let end = memchr::memchr(b';', value).unwrap_or(value.len());
        Params {
            media_type: value.get(..end).unwrap_or_default(),
            rest: value.get(end..).unwrap_or_default(),
        }
    }

    /// The next parameter: returns its name and writes its (unquoted) value into `value`.
    fn next_into(&mut self, value: &mut Vec<u8>) -> Option<&'a [u8]> {
        loop {
            // Skip separators and whitespace.
            while let [b';' | b' ' | b'\t', r @ ..] = self.rest {
                self.rest = r;
            }
            if self.rest.is_empty() {
                return None;
            }
            let name_end = self
                .rest
                .iter()
                .position(|&b| b == b'=' || b == b';')
                .unwrap_or(self.rest.len());
            let name = trim(self.rest.get(..name_end).unwrap_or_default());
            self.rest = self.rest.get(name_end..).unwrap_or_default();
            value.clear();
            let Some((b'=', r)) = self.rest.split_first() else {
                // A parameter without a value.
                if name.is_empty() {
                    continue;
                }
                return Some(name);
            };
            self.rest = r;
            while let [b' ' | b'\t', r @ ..] = self.rest {
                self.rest = r;
            }
            if let Some((b'"', r)) = self.rest.split_first() {
                self.rest = r;
                loop {
                    match self.rest.split_first() {
                        None => break,
                        Some((b'"', r)) => {
                            self.rest = r;
                            break;
                        }
                        Some((b'\\', r)) => match r.split_first() {
                            Some((c, r2)) => {
                                value.push(*c);
                                self.rest = r2;
                            }
                            None => {
                                value.push(b'\\');
                                self.rest = r;
                            }
                        },
                        Some((c, r)) => {
                            value.push(*c);
                            self.rest = r;
                        }
                    }
                }
                // Anything up to the next `;` after the closing quote is junk.
                let skip = memchr::memchr(b';', self.rest).unwrap_or(self.rest.len());
                self.rest = self.rest.get(skip..).unwrap_or_default();
            } else {
                let end = memchr::memchr(b';', self.rest).unwrap_or(self.rest.len());
                value.extend_from_slice(trim(self.rest.get(..end).unwrap_or_default()));
                self.rest = self.rest.get(end..).unwrap_or_default();
            }
            return Some(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(String, Vec<u8>)>;

    fn run(body: &[u8], boundary: &[u8]) -> (Fields, Result<(), ExtractError>) {
        run_with(body, boundary, &ExtractLimits::default())
    }

    fn run_with(
        body: &[u8],
        boundary: &[u8],
        limits: &ExtractLimits,
    ) -> (Fields, Result<(), ExtractError>) {
        let mut out = Vec::new();
        let mut sink = |t: Target, n: &[u8], v: &[u8]| {
            assert_eq!(t, Target::MultipartPart);
            out.push((String::from_utf8_lossy(n).into_owned(), v.to_vec()));
        };
        let r = extract(body, boundary, limits, &mut sink);
        (out, r)
    }

    fn has(f: &Fields, n: &str, v: &[u8]) -> bool {
        f.iter().any(|(fname, fv)| fname == n && fv == v)
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary(b"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
            Some(b"----WebKitFormBoundary7MA4YWxkTrZu0gW".to_vec())
        );
        assert_eq!(
            boundary(b"Multipart/Form-Data;charset=utf-8;  BOUNDARY=\"a b;c\\\"d\""),
            Some(b"a b;c\"d".to_vec())
        );
        assert_eq!(
            boundary(b"multipart/mixed; boundary=xyz ; x=1"),
            Some(b"xyz".to_vec())
        );
        assert_eq!(boundary(b"application/json; boundary=x"), None);
        assert_eq!(boundary(b"multipart/form-data"), None);
        assert_eq!(boundary(b"multipart/form-data; boundary="), None);
        assert_eq!(boundary(b"multipart/form-data; boundary=\"\""), None);
        assert_eq!(boundary(b"multipart"), None);
    }

    const UPLOAD: &[u8] = b"preamble\r\n\
------WebKitFormBoundaryx\r\n\
Content-Disposition: form-data; name=\"title\"\r\n\
\r\n\
holiday\r\n\
------WebKitFormBoundaryx\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"../../shell.php\"\r\n\
Content-Type: application/x-php\r\n\
\r\n\
<?php system($_GET['c']); ?>\r\n\
\r\n\
------WebKitFormBoundaryx--\r\n\
epilogue";

    #[test]
    fn upload_with_filename() {
        let (f, r) = run(UPLOAD, b"----WebKitFormBoundaryx");
        r.unwrap();
        assert!(has(&f, "title", b"holiday"));
        assert!(has(&f, "filename", b"../../shell.php"));
        assert!(has(&f, "content-type", b"application/x-php"));
        assert!(has(
            &f,
            "content-disposition",
            b"form-data; name=\"file\"; filename=\"../../shell.php\""
        ));
        assert!(has(&f, "file", b"<?php system($_GET['c']); ?>\r\n"));
        assert_eq!(f.len(), 6, "{f:?}");
    }

    #[test]
    fn bare_lf_and_padding() {
        let body = b"--b \t\nContent-Disposition: form-data; name=a\n\nx--b-not-a-delim\n--b--";
        let (f, r) = run(body, b"b");
        r.unwrap();
        assert!(has(&f, "a", b"x--b-not-a-delim"));
    }

    #[test]
    fn missing_close_emits_then_errors() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"cmd\"\r\n\r\n/bin/sh -c id";
        let (f, r) = run(body, b"b");
        assert!(has(&f, "cmd", b"/bin/sh -c id"));
        assert_eq!(
            r,
            Err(ExtractError::Multipart {
                reason: "missing closing boundary"
            })
        );
        let (f, r) = run(b"no delimiter here", b"b");
        assert!(f.is_empty());
        assert!(matches!(r, Err(ExtractError::Multipart { .. })));
        let (_, r) = run(b"--b", b"b");
        assert!(matches!(r, Err(ExtractError::Multipart { .. })));
        let (_, r) = run(b"x--b--", b"b");
        assert!(
            matches!(r, Err(ExtractError::Multipart { .. })),
            "delimiter not at line start"
        );
    }

    #[test]
    fn boundary_prefix_is_not_a_delimiter() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\
x\r\n--bb\r\nnot a part\r\n--b--\r\n";
        let (f, r) = run(body, b"b");
        r.unwrap();
        assert!(has(&f, "a", b"x\r\n--bb\r\nnot a part"), "{f:?}");
    }

    #[test]
    fn nested_multipart_mixed() {
        let body = b"--outer\r\n\
Content-Disposition: form-data; name=\"files\"\r\n\
Content-Type: multipart/mixed; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Disposition: file; filename=\"a.txt\"\r\n\
\r\n\
/etc/passwd\r\n\
--inner--\r\n\
--outer--\r\n";
        let (f, r) = run(body, b"outer");
        r.unwrap();
        assert!(has(&f, "filename", b"a.txt"));
        assert!(has(&f, "", b"/etc/passwd"));
        let limits = ExtractLimits {
            max_depth: 1,
            max_fields: 100,
        };
        let (_, r) = run_with(body, b"outer", &limits);
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 1 }));
    }

    #[test]
    fn field_limit() {
        let limits = ExtractLimits {
            max_depth: 4,
            max_fields: 3,
        };
        let (f, r) = run_with(UPLOAD, b"----WebKitFormBoundaryx", &limits);
        assert_eq!(r, Err(ExtractError::TooManyFields { limit: 3 }));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn part_without_headers_or_blank_line() {
        let (f, r) = run(b"--b\r\n\r\nraw\r\n--b\r\nX-Junk\r\n--b--", b"b");
        r.unwrap();
        assert!(has(&f, "", b"raw"));
        let (_, r) = run(
            b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b--",
            b"b",
        );
        assert!(r.is_ok());
    }
}
