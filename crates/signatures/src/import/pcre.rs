//! PCRE, as written in Suricata/Snort `pcre:` options, to the syntax of Rust's `regex` crate as
//! picket compiles it (bytes, Unicode off, linear time).
//!
//! The translation is exact or it fails with the reason:
//!
//! * refused: look-ahead and look-behind, back-references (`\1`, `\g`, `\k`, `(?P=n)`),
//!   possessive quantifiers and atomic groups, recursion, conditionals, `\G`, `\K`, `\R`,
//!   `\p{..}`, `\X`, `\C`, control escapes, backtracking verbs, and the inline options `(?m)`
//!   and `(?x)` (handled only as whole-pattern flags);
//! * rewritten: every literal byte that is not a letter, digit or space becomes `\xHH`, so
//!   characters that are literal in PCRE but special in Rust (`\<`, `&&` and `[` inside a
//!   class, a `{` that is not a quantifier) stay literal; a non-ASCII character becomes its
//!   bytes, as PCRE without UTF mode sees them (a quantifier then repeats the last byte, as in
//!   PCRE); `\h`, `\v`, `\e`, octal `\0nn` and `\x{HH}` become byte classes or bytes; `$`
//!   without the `m` flag becomes `(?:\n?\z)` (PCRE's `$` also matches before a final newline),
//!   `\Z` too; the `x` flag is applied here (whitespace and `#` comments dropped outside
//!   classes), as PCRE does it; the `A` flag anchors with `\A`.
//!
//! Alongside the regex it finds, when it can, a *required literal*: bytes that every match
//! contains, to serve as the signature's prefilter literal.

/// The whole-pattern flags of a `pcre:"/…/flags"` option that change matching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcreFlags {
    /// `i`
    pub caseless: bool,
    /// `s`
    pub dotall: bool,
    /// `m`
    pub multiline: bool,
    /// `x`
    pub extended: bool,
    /// `A`
    pub anchored: bool,
    /// `E`: `$` matches only at the very end.
    pub dollar_endonly: bool,
    /// `G`: quantifiers lazy by default.
    pub ungreedy: bool,
}

/// A translated pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Rust `regex` syntax, flags included.
    pub regex: String,
    /// Bytes every match contains (the longest run found), if any.
    pub required_literal: Option<Vec<u8>>,
    /// Whether the pattern uses `^`, `$`, `\A`, `\z`, `\Z` or the `A` flag: its matches
    /// depend on where the subject starts and ends.
    pub edge_anchored: bool,
    /// For each byte, whether some part of the pattern can match it (a literal, `.`, or a
    /// class). Exact for bytes that are not ASCII letters (letters may be marked missing when
    /// only an inline `(?i)` makes a class match them). A pattern that cannot match `?` and is
    /// not edge-anchored matches a URI exactly where it matches one of its `?`-separated parts.
    pub matchable: [bool; 256],
}

impl Translated {
    /// Whether the pattern can match any of `bytes` (not ASCII letters).
    pub fn can_match_any(&self, bytes: &[u8]) -> bool {
        bytes.iter().any(|&b| self.matchable[b as usize])
    }
}

/// Marks the bytes a class or escape class (Rust syntax) matches; all of them when unsure.
fn mark_class(matchable: &mut [bool; 256], class: &str, caseless: bool) {
    let pattern = if caseless {
        format!("(?i){class}")
    } else {
        class.to_string()
    };
    match crate::pack::build_regex(&pattern) {
        Ok(re) => {
            for (b, m) in matchable.iter_mut().enumerate() {
                *m |= re.is_match(&[b as u8]);
            }
        }
        Err(_) => matchable.iter_mut().for_each(|m| *m = true),
    }
}

/// Tracks runs of literal bytes at the top level of the pattern.
#[derive(Default)]
struct Runs {
    best: Vec<u8>,
    run: Vec<u8>,
    pending: Option<u8>,
}

impl Runs {
    fn commit(&mut self) {
        if let Some(b) = self.pending.take() {
            self.run.push(b);
        }
    }
    fn end(&mut self) {
        self.commit();
        if self.run.len() > self.best.len() {
            self.best = std::mem::take(&mut self.run);
        }
        self.run.clear();
    }
    fn literal(&mut self, b: u8) {
        self.commit();
        self.pending = Some(b);
    }
    fn quantifier(&mut self, at_least_one: bool) {
        if at_least_one {
            self.commit();
        } else {
            self.pending = None;
        }
        self.end();
    }
}

enum Esc {
    Bytes(Vec<u8>),
    /// A class or assertion in Rust syntax (not a literal).
    Other(String),
    Nothing,
}

/// Translates `pattern` (the text between the delimiters) with `flags`.
pub fn translate(pattern: &str, flags: PcreFlags) -> Result<Translated, String> {
    let cs: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut runs = Runs::default();
    let mut depth = 0usize;
    let mut top_alt = false;
    // Whether the last token was a quantifier: PCRE refuses `a+*`, Rust reads it as `(a+)*`.
    let mut after_quantifier = false;
    let mut edge_anchored = flags.anchored;
    let mut matchable = [false; 256];
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let top = depth == 0;
        if flags.extended && c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if flags.extended && c == '#' {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let prev_quantifier = std::mem::replace(&mut after_quantifier, false);
        let is_quantifier = matches!(c, '*' | '+' | '?') || (c == '{' && counted(&cs, i).is_some());
        if is_quantifier && prev_quantifier {
            return Err("a quantifier directly after a quantifier".into());
        }
        match c {
            '\\' => {
                match escape(&cs, &mut i, false)? {
                    // `\E` and an empty `\Q\E` are nothing: what follows sees what came before.
                    Esc::Nothing => after_quantifier = prev_quantifier,
                    Esc::Bytes(bs) if bs.is_empty() => after_quantifier = prev_quantifier,
                    Esc::Bytes(bs) => {
                        for b in bs {
                            push_byte(&mut out, b);
                            matchable[b as usize] = true;
                            if top {
                                runs.literal(b);
                            }
                        }
                    }
                    Esc::Other(s) => {
                        match s.as_str() {
                            "\\b" | "\\B" => {}
                            "\\A" | "\\z" => edge_anchored = true,
                            "(?:\\n?\\z)" => {
                                edge_anchored = true;
                                matchable[usize::from(b'\n')] = true;
                            }
                            class => mark_class(&mut matchable, class, flags.caseless),
                        }
                        out.push_str(&s);
                        if top {
                            runs.end();
                        }
                    }
                }
                continue;
            }
            '[' => {
                let start = out.len();
                class(&cs, &mut i, &mut out)?;
                mark_class(&mut matchable, &out[start..], flags.caseless);
                if top {
                    runs.end();
                }
                continue;
            }
            '(' => {
                if cs.get(i + 1..i + 3) == Some(&['?', '#'][..]) {
                    // A comment is nothing, as `\E` is.
                    after_quantifier = prev_quantifier;
                } else if top {
                    runs.end();
                }
                i = group(&cs, i, &mut out, &mut depth)?;
                continue;
            }
            ')' => {
                if depth == 0 {
                    return Err("unbalanced ')'".into());
                }
                depth -= 1;
                out.push(')');
            }
            '|' => {
                if top {
                    top_alt = true;
                    runs.end();
                }
                out.push('|');
            }
            '*' | '+' | '?' => {
                let min_one = c == '+';
                out.push(c);
                i = quantifier_suffix(&cs, i + 1, &mut out)?;
                if top {
                    runs.quantifier(min_one);
                }
                after_quantifier = true;
                continue;
            }
            '{' if cs.get(i + 1) == Some(&',') => {
                return Err(
                    "`{,n}` is a literal in older PCRE and a quantifier in PCRE2 10.43+".into(),
                )
            }
            '{' => match counted(&cs, i) {
                Some((end, min)) => {
                    out.extend(&cs[i..end]);
                    i = quantifier_suffix(&cs, end, &mut out)?;
                    if top {
                        runs.quantifier(min >= 1);
                    }
                    after_quantifier = true;
                    continue;
                }
                None => {
                    push_byte(&mut out, b'{');
                    matchable[usize::from(b'{')] = true;
                    if top {
                        runs.literal(b'{');
                    }
                }
            },
            '^' => {
                edge_anchored = true;
                out.push('^');
                if top {
                    runs.end();
                }
            }
            '$' => {
                edge_anchored = true;
                // `(?:\n?\z)` consumes the final newline.
                matchable[usize::from(b'\n')] |= !flags.multiline && !flags.dollar_endonly;
                out.push_str(if flags.multiline {
                    "$"
                } else if flags.dollar_endonly {
                    "\\z"
                } else {
                    "(?:\\n?\\z)"
                });
                if top {
                    runs.end();
                }
            }
            '.' => {
                for (b, m) in matchable.iter_mut().enumerate() {
                    *m |= flags.dotall || b != usize::from(b'\n');
                }
                out.push('.');
                if top {
                    runs.end();
                }
            }
            c => {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    push_byte(&mut out, b);
                    matchable[b as usize] = true;
                    if top {
                        runs.literal(b);
                    }
                }
            }
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    runs.end();
    let mut prefix = String::new();
    for (on, f) in [
        (flags.caseless, 'i'),
        (flags.dotall, 's'),
        (flags.multiline, 'm'),
        (flags.ungreedy, 'U'),
    ] {
        if on {
            prefix.push(f);
        }
    }
    let mut regex = String::new();
    if !prefix.is_empty() {
        regex.push_str(&format!("(?{prefix})"));
    }
    if flags.anchored {
        regex.push_str(&format!("\\A(?:{out})"));
    } else {
        regex.push_str(&out);
    }
    let required_literal = (!top_alt && !runs.best.is_empty()).then_some(runs.best);
    Ok(Translated {
        regex,
        required_literal,
        edge_anchored,
        matchable,
    })
}

fn push_byte(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b' ' {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

/// `{n}`, `{n,}` or `{n,m}` at `i`: the index after it and `n`. Anything else is a literal `{`
/// in PCRE.
fn counted(cs: &[char], i: usize) -> Option<(usize, u32)> {
    let mut j = i + 1;
    let start = j;
    while j < cs.len() && cs[j].is_ascii_digit() {
        j += 1;
    }
    if j == start {
        return None;
    }
    let min: u32 = cs[start..j].iter().collect::<String>().parse().ok()?;
    if cs.get(j) == Some(&',') {
        j += 1;
        while j < cs.len() && cs[j].is_ascii_digit() {
            j += 1;
        }
    }
    (cs.get(j) == Some(&'}')).then_some((j + 1, min))
}

/// After a quantifier: `?` (lazy) is kept, `+` (possessive) is refused.
fn quantifier_suffix(cs: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    match cs.get(i) {
        Some('?') => {
            out.push('?');
            Ok(i + 1)
        }
        Some('+') => Err("possessive quantifier (Rust regex has none)".into()),
        _ => Ok(i),
    }
}

/// An escape at `cs[*i] == '\\'`; advances `*i` past it.
fn escape(cs: &[char], i: &mut usize, in_class: bool) -> Result<Esc, String> {
    let Some(&c) = cs.get(*i + 1) else {
        return Err("pattern ends with a backslash".into());
    };
    *i += 2;
    let byte = |b: u8| Ok(Esc::Bytes(vec![b]));
    let other = |s: &str| Ok(Esc::Other(s.to_string()));
    match c {
        'd' | 'D' | 'w' | 'W' | 's' | 'S' => Ok(Esc::Other(format!("\\{c}"))),
        'h' if in_class => other("\\t\\x20\\xA0"),
        'h' => other("[\\t\\x20\\xA0]"),
        'H' if !in_class => other("[^\\t\\x20\\xA0]"),
        'v' if in_class => other("\\n\\x0B\\x0C\\r\\x85"),
        'v' => other("[\\n\\x0B\\x0C\\r\\x85]"),
        'V' if !in_class => other("[^\\n\\x0B\\x0C\\r\\x85]"),
        'b' if in_class => byte(0x08),
        'b' | 'B' | 'A' | 'z' if !in_class => Ok(Esc::Other(format!("\\{c}"))),
        'Z' if !in_class => other("(?:\\n?\\z)"),
        'n' => byte(b'\n'),
        'r' => byte(b'\r'),
        't' => byte(b'\t'),
        'f' => byte(0x0c),
        'e' => byte(0x1b),
        'a' => byte(0x07),
        'x' => {
            let digits: String = if cs.get(*i) == Some(&'{') {
                let close = cs[*i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("unterminated \\x{…}")?;
                let d: String = cs[*i + 1..*i + close].iter().collect();
                *i += close + 1;
                d
            } else {
                let d: String = cs[*i..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .collect();
                *i += d.len();
                d
            };
            match u32::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 16) {
                Ok(v) if v <= 0xff => byte(v as u8),
                _ => Err(format!(
                    "\\x{{{digits}}} is not a byte (PCRE without UTF mode matches bytes)"
                )),
            }
        }
        '0' => {
            let d: String = cs[*i..]
                .iter()
                .take(2)
                .take_while(|c| ('0'..='7').contains(*c))
                .collect();
            *i += d.len();
            match u32::from_str_radix(if d.is_empty() { "0" } else { &d }, 8) {
                Ok(v) if v <= 0xff => byte(v as u8),
                _ => Err("octal escape out of range".into()),
            }
        }
        '1'..='9' => Err(format!("back-reference \\{c} (Rust regex has none)")),
        'g' | 'k' => Err(format!("back-reference \\{c} (Rust regex has none)")),
        'G' | 'K' => Err(format!("\\{c} (match-position control) is not supported")),
        'Q' => {
            let mut bytes = Vec::new();
            while *i < cs.len() {
                if cs[*i] == '\\' && cs.get(*i + 1) == Some(&'E') {
                    *i += 2;
                    break;
                }
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(cs[*i].encode_utf8(&mut buf).as_bytes());
                *i += 1;
            }
            Ok(Esc::Bytes(bytes))
        }
        'E' => Ok(Esc::Nothing),
        c if c.is_ascii_alphanumeric() => Err(format!("escape \\{c} is not supported")),
        c => {
            let mut buf = [0u8; 4];
            Ok(Esc::Bytes(c.encode_utf8(&mut buf).as_bytes().to_vec()))
        }
    }
}

/// A character class at `cs[*i] == '['`, written to `out`; advances `*i` past it.
fn class(cs: &[char], i: &mut usize, out: &mut String) -> Result<(), String> {
    out.push('[');
    *i += 1;
    if cs.get(*i) == Some(&'^') {
        out.push('^');
        *i += 1;
    }
    if cs.get(*i) == Some(&']') {
        push_byte(out, b']');
        *i += 1;
    }
    loop {
        let Some(&c) = cs.get(*i) else {
            return Err("unterminated character class".into());
        };
        match c {
            ']' => {
                out.push(']');
                *i += 1;
                return Ok(());
            }
            '\\' => match escape(cs, i, true)? {
                Esc::Bytes(bs) => bs.into_iter().for_each(|b| push_byte(out, b)),
                Esc::Other(s) => out.push_str(&s),
                Esc::Nothing => {}
            },
            '[' if cs.get(*i + 1) == Some(&':') => {
                let rest: String = cs[*i..].iter().collect();
                let end = rest
                    .find(":]")
                    .ok_or("unterminated POSIX class in a character class")?;
                out.push_str(&rest[..end + 2]);
                *i += rest[..end + 2].chars().count();
            }
            '-' => {
                out.push('-');
                *i += 1;
            }
            c => {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    push_byte(out, b);
                }
                *i += 1;
            }
        }
    }
}

/// A group opening at `cs[i] == '('`: writes its Rust form, returns the index after it.
fn group(cs: &[char], i: usize, out: &mut String, depth: &mut usize) -> Result<usize, String> {
    let rest: String = cs[i..].iter().take(4).collect();
    let open = |out: &mut String, depth: &mut usize, s: &str, skip: usize| {
        out.push_str(s);
        *depth += 1;
        Ok(i + skip)
    };
    if rest.starts_with("(*") {
        return Err("backtracking control verbs are not supported".into());
    }
    if !rest.starts_with("(?") {
        return open(out, depth, "(", 1);
    }
    if rest.starts_with("(?=") || rest.starts_with("(?!") {
        return Err("look-ahead (Rust regex has no look-around)".into());
    }
    if rest.starts_with("(?<=") || rest.starts_with("(?<!") {
        return Err("look-behind (Rust regex has no look-around)".into());
    }
    if rest.starts_with("(?>") {
        return Err("atomic group (Rust regex has none)".into());
    }
    if rest.starts_with("(?|") {
        return Err("branch-reset group is not supported".into());
    }
    if rest.starts_with("(?(") {
        return Err("conditional group is not supported".into());
    }
    if rest.starts_with("(?P=") {
        return Err("back-reference (?P=name) (Rust regex has none)".into());
    }
    if rest.starts_with("(?P>") || rest.starts_with("(?&") || rest.starts_with("(?R") {
        return Err("recursion is not supported".into());
    }
    if rest.starts_with("(?#") {
        let close = cs[i..]
            .iter()
            .position(|&c| c == ')')
            .ok_or("unterminated (?# comment")?;
        return Ok(i + close + 1);
    }
    if rest.starts_with("(?:") {
        return open(out, depth, "(?:", 3);
    }
    let named = |skip: usize, close: char| -> Result<(String, usize), String> {
        let name: String = cs[i + skip..].iter().take_while(|&&c| c != close).collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("invalid group name".to_string());
        }
        Ok((format!("(?P<{name}>"), skip + name.chars().count() + 1))
    };
    if rest.starts_with("(?P<") {
        let (s, n) = named(4, '>')?;
        return open(out, depth, &s, n);
    }
    if rest.starts_with("(?<") {
        let (s, n) = named(3, '>')?;
        return open(out, depth, &s, n);
    }
    if rest.starts_with("(?'") {
        let (s, n) = named(3, '\'')?;
        return open(out, depth, &s, n);
    }
    // Inline options: (?imsU-imsU) or (?imsU-imsU: …).
    let mut j = i + 2;
    let mut opts = String::new();
    while let Some(&c) = cs.get(j) {
        match c {
            'i' | 's' | 'U' | '-' => opts.push(c),
            'm' => return Err("inline (?m) is not supported (use the m flag)".into()),
            'x' => return Err("inline (?x) is not supported (use the x flag)".into()),
            ')' => {
                out.push_str(&format!("(?{opts})"));
                return Ok(j + 1);
            }
            ':' => {
                *depth += 1;
                out.push_str(&format!("(?{opts}:"));
                return Ok(j + 1);
            }
            c if c.is_ascii_digit() || c == '+' => {
                return Err("recursion is not supported".into());
            }
            c => {
                return Err(format!(
                    "inline option or group (?{opts}{c} is not supported"
                ))
            }
        }
        j += 1;
    }
    Err("unterminated group".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::build_regex;

    fn t(p: &str, flags: PcreFlags) -> Translated {
        translate(p, flags).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn matches(p: &str, flags: PcreFlags, hay: &[u8]) -> bool {
        let tr = t(p, flags);
        build_regex(&tr.regex)
            .unwrap_or_else(|e| panic!("{}: {e}", tr.regex))
            .is_match(hay)
    }

    #[test]
    fn refuses_what_rust_regex_cannot_do() {
        let f = PcreFlags::default();
        for (p, why) in [
            ("foo(?=bar)", "look-ahead"),
            ("(?<!x)foo", "look-behind"),
            ("(a)\\1", "back-reference"),
            ("(?P<n>a)(?P=n)", "back-reference"),
            ("a++b", "possessive"),
            ("a{2}+", "possessive"),
            ("(?>ab)", "atomic"),
            ("(?R)", "recursion"),
            ("(?m)^x", "inline (?m)"),
            ("\\Gx", "\\G"),
            ("a{,3}", "PCRE2 10.43"),
            ("a+*", "quantifier directly after"),
            ("a{2}\\E*", "quantifier directly after"),
            ("a?(?#c)+", "quantifier directly after"),
        ] {
            let e = translate(p, f).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
    }

    #[test]
    fn pcre_literal_forms_stay_literal() {
        let f = PcreFlags::default();
        // `{` that is not a quantifier, `\<`, class `[` and `&&` are literal in PCRE.
        assert!(matches(r"\(\)\s*{", f, b"() {"));
        assert!(matches(r"\<script\>", f, b"<script>"));
        assert!(matches(r"[[&&]", f, b"&"));
        assert!(!matches(r"[[&&]", f, b"x"));
        assert!(matches(r"a{2,3}", f, b"aa"));
        assert!(matches(r"\x2f\x{2e}\e\0", f, b"/.\x1b\x00"));
        assert!(matches(r"\Qa.b\E", f, b"a.b"));
        assert!(!matches(r"\Qa.b\E", f, b"axb"));
    }

    #[test]
    fn dollar_and_flags_follow_pcre() {
        let none = PcreFlags::default();
        // PCRE's `$` also matches before a final newline.
        assert!(matches("sh$", none, b"/bin/sh\n"));
        let e = PcreFlags {
            dollar_endonly: true,
            ..none
        };
        assert!(!matches("sh$", e, b"/bin/sh\n"));
        let i = PcreFlags {
            caseless: true,
            ..none
        };
        assert!(matches("select", i, b"SeLeCt"));
        assert!(!matches("select", none, b"SeLeCt"));
        let x = PcreFlags {
            extended: true,
            ..none
        };
        assert!(matches("a b # comment\n c", x, b"abc"));
        let a = PcreFlags {
            anchored: true,
            ..none
        };
        assert!(!matches("b|c", a, b"ab"));
        assert!(matches("b|c", a, b"cb"));
        assert!(!matches("a.b", none, b"a\nb"));
        let s = PcreFlags {
            dotall: true,
            ..none
        };
        assert!(matches("a.b", s, b"a\nb"));
    }

    #[test]
    fn anchors_and_question_marks_are_noticed() {
        let f = PcreFlags::default();
        let both = |p: &str| {
            let t = t(p, f);
            (t.edge_anchored, t.can_match_any(b"?"))
        };
        assert_eq!(both(r"\/cgi-bin\/[^?&]*\.sh"), (false, false));
        assert_eq!(both(r"\/cgi-bin\/[^&]*\.sh"), (false, true));
        assert_eq!(both(r"\/x\?y"), (false, true));
        assert_eq!(both(r"a.b"), (false, true));
        assert_eq!(both(r"a\Sb"), (false, true));
        assert_eq!(both(r"\bcmd\w+"), (false, false));
        assert_eq!(both(r"^\/admin"), (true, false));
        assert_eq!(both(r"php$"), (true, false));
        assert_eq!(both(r"x\Z"), (true, false));
        let a = PcreFlags {
            anchored: true,
            ..f
        };
        assert!(translate("x", a).unwrap().edge_anchored);
        // Line breaks and colons, for patterns over header values.
        let t = t(r"\(\)\s*\{", f);
        assert!(t.can_match_any(b"\n") && !t.can_match_any(b":"));
        assert!(!translate(r"a.b", f).unwrap().can_match_any(b"\n"));
        let s = PcreFlags { dotall: true, ..f };
        assert!(translate(r"a.b", s).unwrap().can_match_any(b"\n"));
        assert!(translate(r"a:b", f).unwrap().can_match_any(b":"));
        assert!(!translate(r"[^:\r\n]+=", f).unwrap().can_match_any(b":\r\n"));
    }

    #[test]
    fn required_literal_is_a_top_level_run() {
        let f = PcreFlags::default();
        let lit = |p: &str| t(p, f).required_literal;
        assert_eq!(lit(r"/bin/(ba)?sh\s+-c"), Some(b"/bin/".to_vec()));
        assert_eq!(lit(r"union\s+select"), Some(b"select".to_vec()));
        assert_eq!(lit(r"cmd=[a-z]+;wget"), Some(b";wget".to_vec()));
        // A quantifier that allows zero drops the byte before it.
        assert_eq!(lit(r"abcd?e"), Some(b"abc".to_vec()));
        assert_eq!(lit(r"ab+cdef"), Some(b"cdef".to_vec()));
        assert_eq!(lit(r"foo|barbaz"), None);
        assert_eq!(lit(r"(foo|bar)"), None);
    }
}
