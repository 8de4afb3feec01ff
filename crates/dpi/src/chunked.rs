//! Streaming decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! # Why
//!
//! A chunked body has to be decoded to be inspected (a pattern may straddle two chunks), and its
//! end has to be found exactly: the bytes after it are the next pipelined request. Chunk-size
//! lines are also a smuggling surface of their own — parsers disagree on bare LF, on whitespace,
//! on what a chunk extension may contain, on sizes that overflow and on what follows chunk data
//! ("funky chunks"). This decoder is strict: anything but the RFC grammar (plus the optional
//! whitespace before `;` that RFC 9112 calls BWS) is an error naming an [`Anomaly`], and the
//! request must not be forwarded.
//!
//! # Cost
//!
//! Chunk data is never copied: it is handed to the `out` callback as slices of the input, so
//! decoding costs one callback per contiguous run of data in each input slice. Size lines and
//! trailers are read a byte at a time through a small state machine; both are bounded by
//! [`ChunkedLimits`]. The only allocation is the trailer section, kept (at most
//! [`ChunkedLimits::max_trailers`] bytes) so the caller can inspect it. Input may be split at any
//! byte; the result does not depend on how it is split.

use crate::http1::{hex_val, is_tchar};
use picket_signatures::Anomaly;

/// Limits for one chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Longest chunk-size line, extensions included, line ending excluded. Default 4 KiB.
    pub max_size_line: usize,
    /// Largest trailer section, line endings included. Default 16 KiB.
    pub max_trailers: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_size_line: 4 * 1024,
            max_trailers: 16 * 1024,
        }
    }
}

/// Progress after [`ChunkedDecoder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedStatus {
    /// The body is not finished; all of the input was consumed.
    NeedMore,
    /// The body ended within this input: its first `consumed` bytes belonged to the body, the
    /// rest (if any) is the next request on the connection.
    Done { consumed: usize },
}

/// Why a chunked body is malformed. Once returned, the decoder keeps returning it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// A size that is empty or not hexadecimal, or junk after it.
    #[error("chunk size is not a hexadecimal number")]
    InvalidSize,
    /// More than 16 hex digits, or a value over 2^63 - 1.
    #[error("chunk size longer than 16 hex digits or over 2^63-1")]
    SizeOverflow,
    /// A size line (with extensions) over [`ChunkedLimits::max_size_line`].
    #[error("chunk-size line longer than {limit} bytes")]
    SizeLineTooLong { limit: usize },
    /// Chunk data not followed by CRLF: the size and the data disagree.
    #[error("chunk data not followed by CRLF")]
    MissingDataCrlf,
    /// A line of the chunked framing ended by LF alone.
    #[error("line ended by a bare LF in chunked framing")]
    BareLf,
    /// A CR not followed by LF in the chunked framing.
    #[error("bare CR in chunked framing")]
    BareCr,
    /// A NUL byte in a size line or trailer.
    #[error("NUL byte in chunked framing")]
    NulByte,
    /// A control byte (other than HTAB) or DEL in a size line or trailer.
    #[error("control character in chunked framing")]
    ControlCharacter,
    /// A trailer section over [`ChunkedLimits::max_trailers`].
    #[error("trailer section longer than {limit} bytes")]
    TrailersTooLarge { limit: usize },
    /// A trailer line without a colon.
    #[error("trailer field without a colon")]
    TrailerMissingColon,
    /// A trailer field name with a byte that is not a token character (or empty).
    #[error("invalid trailer field name")]
    TrailerInvalidName,
    /// A trailer line starting with whitespace (obs-fold).
    #[error("folded trailer field")]
    TrailerObsFold,
}

impl ChunkedError {
    /// The anomaly this error is reported as.
    pub fn anomaly(&self) -> Anomaly {
        match self {
            ChunkedError::InvalidSize
            | ChunkedError::SizeOverflow
            | ChunkedError::SizeLineTooLong { .. }
            | ChunkedError::MissingDataCrlf => Anomaly::InvalidChunkLength,
            ChunkedError::BareLf => Anomaly::BareLf,
            ChunkedError::BareCr => Anomaly::BareCr,
            ChunkedError::NulByte => Anomaly::NulByte,
            ChunkedError::ControlCharacter => Anomaly::ControlCharacter,
            // The trailer section is a field section like the head's.
            ChunkedError::TrailersTooLarge { .. } => Anomaly::HeadTooLarge,
            ChunkedError::TrailerMissingColon => Anomaly::MissingColon,
            ChunkedError::TrailerInvalidName => Anomaly::InvalidHeaderName,
            ChunkedError::TrailerObsFold => Anomaly::ObsFold,
        }
    }
}

/// Where in a size line the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizePhase {
    /// Reading hex digits.
    Digits,
    /// After the digits, in whitespace that must lead to `;` or CRLF.
    Bws,
    /// In a chunk extension (after `;`).
    Ext,
    /// After the CR, expecting LF.
    Lf,
}

/// Where in the trailer section the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrailerPhase {
    /// At the start of a line.
    LineStart,
    /// In a field name.
    Name,
    /// In a field value.
    Value,
    /// After the CR of a field line, expecting LF.
    Lf,
    /// After the CR of the final empty line, expecting LF.
    FinalLf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Size {
        value: u64,
        digits: u8,
        len: usize,
        phase: SizePhase,
    },
    Data {
        remaining: u64,
    },
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    Trailer {
        phase: TrailerPhase,
        name_len: usize,
    },
    Done,
    Failed(ChunkedError),
}

const SIZE_START: State = State::Size {
    value: 0,
    digits: 0,
    len: 0,
    phase: SizePhase::Digits,
};

/// Decodes one chunked body, fed in pieces of any size.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    trailers: Vec<u8>,
    decoded: u64,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new(limits: ChunkedLimits) -> ChunkedDecoder {
        ChunkedDecoder {
            limits,
            state: SIZE_START,
            trailers: Vec::new(),
            decoded: 0,
        }
    }

    /// Feeds the next bytes of the body. Chunk data is passed to `out` as slices of `input`, in
    /// order. After `Done`, further calls return `Done { consumed: 0 }`; after an error, the same
    /// error.
    pub fn push(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<ChunkedStatus, ChunkedError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Done => return Ok(ChunkedStatus::Done { consumed: 0 }),
            _ => {}
        }
        let mut rest = input;
        while !rest.is_empty() {
            if let State::Data { remaining } = &mut self.state {
                let n = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                let (data, tail) = rest.split_at(n);
                out(data);
                *remaining -= n as u64;
                self.decoded += n as u64;
                if *remaining == 0 {
                    self.state = State::DataCr;
                }
                rest = tail;
                continue;
            }
            let Some((&b, tail)) = rest.split_first() else {
                break;
            };
            rest = tail;
            if let Err(e) = self.step(b) {
                self.state = State::Failed(e.clone());
                return Err(e);
            }
            if self.state == State::Done {
                return Ok(ChunkedStatus::Done {
                    consumed: input.len() - rest.len(),
                });
            }
        }
        Ok(ChunkedStatus::NeedMore)
    }

    /// The raw trailer section (field lines with their CRLFs, without the final empty line);
    /// empty when there are no trailers or the body is not finished.
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// Whether the whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Chunk-data bytes passed to `out` so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// One byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        match &mut self.state {
            State::Size {
                value,
                digits,
                len,
                phase,
            } => {
                if *phase != SizePhase::Lf {
                    if b == b'\r' {
                        if *digits == 0 {
                            return Err(ChunkedError::InvalidSize);
                        }
                        *phase = SizePhase::Lf;
                        return Ok(());
                    }
                    if b == b'\n' {
                        return Err(ChunkedError::BareLf);
                    }
                    *len += 1;
                    if *len > self.limits.max_size_line {
                        return Err(ChunkedError::SizeLineTooLong {
                            limit: self.limits.max_size_line,
                        });
                    }
                }
                match *phase {
                    SizePhase::Digits => {
                        if let Some(d) = hex_val(b) {
                            if *digits >= 16 {
                                return Err(ChunkedError::SizeOverflow);
                            }
                            *digits += 1;
                            *value = *value << 4 | u64::from(d);
                            if *value > i64::MAX as u64 {
                                return Err(ChunkedError::SizeOverflow);
                            }
                        } else if *digits == 0 {
                            return Err(ChunkedError::InvalidSize);
                        } else if b == b' ' || b == b'\t' {
                            *phase = SizePhase::Bws;
                        } else if b == b';' {
                            *phase = SizePhase::Ext;
                        } else {
                            return Err(ChunkedError::InvalidSize);
                        }
                    }
                    SizePhase::Bws => match b {
                        b' ' | b'\t' => {}
                        b';' => *phase = SizePhase::Ext,
                        _ => return Err(ChunkedError::InvalidSize),
                    },
                    SizePhase::Ext => check_text(b)?,
                    SizePhase::Lf => {
                        if b != b'\n' {
                            return Err(ChunkedError::BareCr);
                        }
                        self.state = if *value == 0 {
                            State::Trailer {
                                phase: TrailerPhase::LineStart,
                                name_len: 0,
                            }
                        } else {
                            State::Data { remaining: *value }
                        };
                    }
                }
            }
            State::DataCr => match b {
                b'\r' => self.state = State::DataLf,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::MissingDataCrlf),
            },
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::BareCr);
                }
                self.state = SIZE_START;
            }
            State::Trailer { phase, name_len } => {
                match *phase {
                    TrailerPhase::LineStart => match b {
                        b'\r' => *phase = TrailerPhase::FinalLf,
                        b'\n' => return Err(ChunkedError::BareLf),
                        b' ' | b'\t' => return Err(ChunkedError::TrailerObsFold),
                        _ => {
                            *phase = TrailerPhase::Name;
                            *name_len = 0;
                            trailer_name_byte(b, phase, name_len)?;
                        }
                    },
                    TrailerPhase::Name => trailer_name_byte(b, phase, name_len)?,
                    TrailerPhase::Value => match b {
                        b'\r' => *phase = TrailerPhase::Lf,
                        b'\n' => return Err(ChunkedError::BareLf),
                        _ => check_text(b)?,
                    },
                    TrailerPhase::Lf => {
                        if b != b'\n' {
                            return Err(ChunkedError::BareCr);
                        }
                        *phase = TrailerPhase::LineStart;
                    }
                    TrailerPhase::FinalLf => {
                        if b != b'\n' {
                            return Err(ChunkedError::BareCr);
                        }
                        self.state = State::Done;
                        return Ok(());
                    }
                }
                if *phase != TrailerPhase::FinalLf {
                    if self.trailers.len() >= self.limits.max_trailers {
                        return Err(ChunkedError::TrailersTooLarge {
                            limit: self.limits.max_trailers,
                        });
                    }
                    self.trailers.push(b);
                }
            }
            // `push` handles these before stepping.
            State::Data { .. } | State::Done | State::Failed(_) => {}
        }
        Ok(())
    }
}

/// A byte of a trailer field name (or the colon that ends it, or a CR too early).
fn trailer_name_byte(
    b: u8,
    phase: &mut TrailerPhase,
    name_len: &mut usize,
) -> Result<(), ChunkedError> {
    match b {
        b':' if *name_len > 0 => *phase = TrailerPhase::Value,
        b':' => return Err(ChunkedError::TrailerInvalidName),
        b'\r' => return Err(ChunkedError::TrailerMissingColon),
        b'\n' => return Err(ChunkedError::BareLf),
        _ if is_tchar(b) => *name_len += 1,
        _ => {
            check_text(b)?;
            return Err(ChunkedError::TrailerInvalidName);
        }
    }
    Ok(())
}

/// Bytes allowed in a chunk extension or trailer value: not NUL, not a control byte other than
/// HTAB, not DEL (CR and LF are handled by the caller).
fn check_text(b: u8) -> Result<(), ChunkedError> {
    match b {
        0 => Err(ChunkedError::NulByte),
        b'\t' => Ok(()),
        0x01..=0x1f | 0x7f => Err(ChunkedError::ControlCharacter),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `input` in one push: (data, status or error).
    fn decode(input: &[u8]) -> (Vec<u8>, Result<ChunkedStatus, ChunkedError>) {
        decode_with(ChunkedLimits::default(), input)
    }

    fn decode_with(
        limits: ChunkedLimits,
        input: &[u8],
    ) -> (Vec<u8>, Result<ChunkedStatus, ChunkedError>) {
        let mut d = ChunkedDecoder::new(limits);
        let mut data = Vec::new();
        let r = d.push(input, &mut |s| data.extend_from_slice(s));
        (data, r)
    }

    fn err(input: &[u8]) -> ChunkedError {
        match decode(input).1 {
            Err(e) => e,
            other => panic!(
                "{:?}: expected an error, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn simple_body() {
        let body = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        let (data, r) = decode(body);
        assert_eq!(data, b"hello, world");
        assert_eq!(
            r,
            Ok(ChunkedStatus::Done {
                consumed: body.len()
            })
        );
    }

    #[test]
    fn pipelined_request_after_body() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut data = Vec::new();
        let r = d.push(input, &mut |s| data.extend_from_slice(s));
        assert_eq!(r, Ok(ChunkedStatus::Done { consumed: 13 }));
        assert_eq!(&input[13..], b"GET / HTTP/1.1\r\n");
        assert!(d.is_done());
        assert_eq!(d.decoded_len(), 3);
        assert_eq!(
            d.push(b"more", &mut |_| panic!("no data after done")),
            Ok(ChunkedStatus::Done { consumed: 0 })
        );
    }

    #[test]
    fn extensions_case_and_leading_zeros() {
        let body = b"000A;name=value;flag\r\n0123456789\r\n0a ; ext=\"q s\"\r\n0123456789\r\n00;last\r\n\r\n";
        let (data, r) = decode(body);
        assert_eq!(data.len(), 20);
        assert_eq!(
            r,
            Ok(ChunkedStatus::Done {
                consumed: body.len()
            })
        );
        let (data, r) = decode(b"7fffffffffffffff\r\nabc");
        assert_eq!(
            (data.as_slice(), r),
            (&b"abc"[..], Ok(ChunkedStatus::NeedMore))
        );
    }

    #[test]
    fn trailers() {
        let body = b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other:\tv v\r\n\r\n";
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut data = Vec::new();
        let r = d.push(body, &mut |s| data.extend_from_slice(s));
        assert_eq!(
            r,
            Ok(ChunkedStatus::Done {
                consumed: body.len()
            })
        );
        assert_eq!(d.trailers(), b"X-Checksum: abc\r\nX-Other:\tv v\r\n");
        assert_eq!(
            decode(b"0\r\nX-Big: 0123456789\r\n\r\n".as_slice()).1,
            Ok(ChunkedStatus::Done { consumed: 24 })
        );
        let limits = ChunkedLimits {
            max_size_line: 4096,
            max_trailers: 10,
        };
        let e = decode_with(limits, b"0\r\nX-Big: 0123456789\r\n\r\n")
            .1
            .unwrap_err();
        assert_eq!(e, ChunkedError::TrailersTooLarge { limit: 10 });
        assert_eq!(
            err(b"0\r\nnocolon\r\n\r\n"),
            ChunkedError::TrailerMissingColon
        );
        assert_eq!(
            err(b"0\r\nX: a\r\n b\r\n\r\n"),
            ChunkedError::TrailerObsFold
        );
        assert_eq!(
            err(b"0\r\nX Y: a\r\n\r\n"),
            ChunkedError::TrailerInvalidName
        );
        assert_eq!(err(b"0\r\n: a\r\n\r\n"), ChunkedError::TrailerInvalidName);
        assert_eq!(err(b"0\r\nX: a\n\r\n"), ChunkedError::BareLf);
        assert_eq!(err(b"0\r\nX: a\rb\r\n\r\n"), ChunkedError::BareCr);
        assert_eq!(err(b"0\r\nX: a\0\r\n\r\n"), ChunkedError::NulByte);
        assert_eq!(err(b"0\r\n\n"), ChunkedError::BareLf);
        assert_eq!(err(b"0\r\n\rX"), ChunkedError::BareCr);
    }

    #[test]
    fn malformed_sizes() {
        assert_eq!(err(b"x\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b" 5\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"0x5\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"+5\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"5 5\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b";x\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"5\n"), ChunkedError::BareLf);
        assert_eq!(err(b"5;ext\n"), ChunkedError::BareLf);
        assert_eq!(err(b"5\rX"), ChunkedError::BareCr);
        assert_eq!(err(b"5;a\x00\r\n"), ChunkedError::NulByte);
        assert_eq!(err(b"5;a\x0b\r\n"), ChunkedError::ControlCharacter);
        assert_eq!(err(b"8000000000000000\r\n"), ChunkedError::SizeOverflow);
        assert_eq!(err(b"ffffffffffffffffff\r\n"), ChunkedError::SizeOverflow);
        assert_eq!(err(b"00000000000000001\r\n"), ChunkedError::SizeOverflow);
        let long = [b"1;".as_slice(), &[b'a'; 5000], b"\r\n"].concat();
        assert_eq!(err(&long), ChunkedError::SizeLineTooLong { limit: 4096 });
    }

    #[test]
    fn data_terminator() {
        // TE.CL-style: the data is longer than its size.
        assert_eq!(err(b"5\r\nhelloX\r\n"), ChunkedError::MissingDataCrlf);
        assert_eq!(err(b"5\r\nhello\n0\r\n\r\n"), ChunkedError::BareLf);
        assert_eq!(err(b"5\r\nhello\rX"), ChunkedError::BareCr);
        let (data, r) = decode(b"5\r\nhelloXX0\r\n\r\n");
        assert_eq!(data, b"hello");
        assert_eq!(r, Err(ChunkedError::MissingDataCrlf));
    }

    #[test]
    fn errors_stick_and_map_to_anomalies() {
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let e = d.push(b"zz", &mut |_| {}).unwrap_err();
        assert_eq!(d.push(b"0\r\n\r\n", &mut |_| {}), Err(e.clone()));
        assert!(!d.is_done());
        assert_eq!(e.anomaly(), Anomaly::InvalidChunkLength);
        assert_eq!(
            ChunkedError::SizeOverflow.anomaly(),
            Anomaly::InvalidChunkLength
        );
        assert_eq!(
            ChunkedError::MissingDataCrlf.anomaly(),
            Anomaly::InvalidChunkLength
        );
        assert_eq!(ChunkedError::BareLf.anomaly(), Anomaly::BareLf);
        assert_eq!(ChunkedError::TrailerObsFold.anomaly(), Anomaly::ObsFold);
        assert!(!ChunkedError::BareCr.to_string().is_empty());
    }

    #[test]
    fn byte_at_a_time() {
        let body =
            b"4;a=b\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\nNEXT";
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut data = Vec::new();
        let mut end = None;
        for (i, b) in body.iter().enumerate() {
            match d.push(std::slice::from_ref(b), &mut |s| data.extend_from_slice(s)) {
                Ok(ChunkedStatus::Done { consumed }) => {
                    assert_eq!(consumed, 1);
                    end = Some(i + 1);
                    break;
                }
                Ok(ChunkedStatus::NeedMore) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(end, Some(body.len() - 4));
        assert_eq!(d.trailers(), b"T: 1\r\n");
    }

    /// A body: chunks (data, size digits' leading zeros, upper-case hex, extension), trailers.
    fn body() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        let chunk = (
            prop::collection::vec(any::<u8>(), 1..300),
            0..3usize,
            any::<bool>(),
            prop_oneof![Just(""), Just(";a=b"), Just(" ;x"), Just(";q=\"1 2\"")],
        );
        (
            prop::collection::vec(chunk, 0..6),
            prop_oneof![Just(""), Just("X: 1\r\n"), Just("A: b\r\nC-D: e f\r\n")],
            prop::collection::vec(any::<u8>(), 0..20),
        )
            .prop_map(|(chunks, trailers, next)| {
                let mut wire = Vec::new();
                let mut data = Vec::new();
                for (c, zeros, upper, ext) in chunks {
                    let size = if upper {
                        format!("{:X}", c.len())
                    } else {
                        format!("{:x}", c.len())
                    };
                    wire.extend_from_slice("0".repeat(zeros).as_bytes());
                    wire.extend_from_slice(size.as_bytes());
                    wire.extend_from_slice(ext.as_bytes());
                    wire.extend_from_slice(b"\r\n");
                    wire.extend_from_slice(&c);
                    wire.extend_from_slice(b"\r\n");
                    data.extend_from_slice(&c);
                }
                wire.extend_from_slice(b"0\r\n");
                wire.extend_from_slice(trailers.as_bytes());
                wire.extend_from_slice(b"\r\n");
                let body_len = wire.len();
                wire.extend_from_slice(&next);
                data.extend_from_slice(&(body_len as u64).to_le_bytes());
                (wire, data)
            })
    }

    /// Runs the decoder over `input` cut at `cuts`: (data, bytes consumed in total if done, error).
    fn run_split(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<usize>, Option<ChunkedError>) {
        let mut d = ChunkedDecoder::new(ChunkedLimits {
            max_size_line: 64,
            max_trailers: 64,
        });
        let mut data = Vec::new();
        let mut start = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        for &end in &bounds {
            let piece = &input[start..end];
            match d.push(piece, &mut |s| data.extend_from_slice(s)) {
                Ok(ChunkedStatus::Done { consumed }) => {
                    assert!(consumed <= piece.len());
                    return (data, Some(start + consumed), None);
                }
                Ok(ChunkedStatus::NeedMore) => {}
                Err(e) => return (data, None, Some(e)),
            }
            start = end;
        }
        (data, None, None)
    }

    fn cuts(len: usize, idx: Vec<prop::sample::Index>) -> Vec<usize> {
        let mut c: Vec<usize> = idx.iter().map(|i| i.index(len + 1)).collect();
        c.sort_unstable();
        c
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(
            (wire, expected) in body(),
            idx in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let whole = run_split(&wire, &[]);
            let body_len = u64::from_le_bytes(expected[expected.len() - 8..].try_into().unwrap()) as usize;
            prop_assert_eq!(&whole.0[..], &expected[..expected.len() - 8]);
            prop_assert_eq!(whole.1, Some(body_len));
            prop_assert_eq!(&whole.2, &None);
            let split = run_split(&wire, &cuts(wire.len(), idx));
            prop_assert_eq!(split, whole);
        }

        #[test]
        fn arbitrary_input_is_split_invariant(
            input in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                prop::collection::vec(prop_oneof![Just(b'0'), Just(b'1'), Just(b'f'), Just(b';'), Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(b'a')], 0..200),
            ],
            idx in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let whole = run_split(&input, &[]);
            let split = run_split(&input, &cuts(input.len(), idx));
            prop_assert_eq!(split, whole);
        }
    }
}
