//! Transformations: the views of a value that signatures are matched against.
//!
//! A signature names the transformations it wants (`transforms = ["url_decode", "lowercase"]`
//! in a pack); the engine applies them in that order to every value the signature targets and
//! runs the Aho-Corasick prefilter and the regex confirmation over the result, the *view*.
//! Transformations exist so that a signature is written once against the canonical form of an
//! attack rather than once per encoding of it: `%2e%2e%2f`, `%252e%252e%252f`, `&#46;&#46;/`
//! and `../` are one attack, and `c''at /e""tc/pa\ss\wd`, `{cat,/etc/passwd}` and
//! `/???/c?t /???/p??s??` are one command.
//!
//! # The contract
//!
//! [`Transform::apply`] returns `false` and leaves `out` empty when the view would be
//! byte-for-byte the input. That is the overwhelmingly common case (benign values need no
//! decoding), and it lets the caller reuse the input without a copy. Every transformation
//! therefore starts with a *no-change check*: a single forward scan, usually `memchr` or a
//! branch-free table fold over 32-byte chunks, that looks for the bytes that could make it do
//! anything. Only when that scan finds one does the real work run, and even then the result is
//! compared with the input so that `false` is exact, never a guess.
//!
//! For short values the engine does all those checks at once: [`ByteClasses::of`] finds, with
//! one table lookup per byte, which trigger bytes a value holds; [`Transform::unchanged_by`]
//! answers each transformation's no-change question from that (exactly: it says "unchanged"
//! only where the transformation's own check would), and [`Transform::apply_classified`] goes
//! straight to the rewrite once the check is known to fail.
//!
//! Measured on 1 MiB of benign prose (release build, a loaded 2-core VM): the no-change
//! scans run at 2–4 GB/s (`shell`, `base64`) and 10–90 GB/s (`url_decode`, `html_decode`,
//! `compress_whitespace`, all `memchr`/`memmem`); `lowercase` copies at ≥ 4 GB/s. The
//! slowest real work is `shell` rewriting JSON that is dense in quotes, commas, parentheses
//! and `?`: about 270 MB/s of CPU time.
//!
//! | transform | no-change check | work when triggered | output length |
//! |---|---|---|---|
//! | `url_decode` | `memchr2(b'%', b'+')` | ≤ 4 in-place rounds | ≤ input |
//! | `html_decode` | `memchr(b'&')` | one pass | ≤ input |
//! | `lowercase` | any `A-Z` (vectorised fold) | copy + `make_ascii_lowercase` | = input |
//! | `compress_whitespace` | control whitespace (vectorised fold), `memmem("  ")` | one pass | ≤ input |
//! | `shell` | vectorised fold for metacharacters, `memmem("  ")`, edge spaces | one pass, bounded look-ahead | ≤ ~3 × input |
//! | `cmd` | scan for `^ " & | ;` and line breaks, `memmem("  ")`, edge spaces | one pass | ≤ input + 1 |
//! | `base64` | an aligned 8-byte block of base64 characters | one pass, own decoder | < input |
//!
//! All of them are linear in the input (the shell normaliser's look-ahead is bounded by a
//! constant window), none of them panics on any input, and none of them allocates except by
//! growing `out`.
//!
//! # What each one does
//!
//! * `url_decode` — `%XX` (either hex case), IIS `%uXXXX` (written as UTF-8; a surrogate pair
//!   `%uD83D%uDE00` is combined, a lone surrogate is kept as written) and `+` → space. Repeated
//!   until nothing changes, at most [`URL_DECODE_ROUNDS`] rounds, which undoes double and
//!   triple encoding (`%252f`, `%25%32%66`). A `%` that does not start a valid sequence is kept.
//!   When four rounds were not enough the result is not a fixpoint (a fifth application would
//!   decode further): the bound keeps the cost linear and an attacker gains nothing from the
//!   fifth layer since the server they are attacking does not decode that deep either.
//! * `html_decode` — one pass of character references: the named references `&lt; &gt; &amp;
//!   &quot; &apos; &nbsp; &colon; &sol; &lpar; &rpar; &Tab; &NewLine; &semi; &vert; &grave;
//!   &dollar; &lbrace; &rbrace;` and a few more ASCII punctuation names used in XSS evasions
//!   (see `html.rs`), and numeric `&#NN;` / `&#xHH;` with or without the `;`, any number of
//!   leading zeros, `x` or `X`. `&nbsp;` becomes a plain space. As browsers do in text, the
//!   legacy names `lt gt amp quot nbsp` (and `LT GT AMP QUOT`) are also recognised without
//!   the `;` (`&ltscript` → `<script`). Numeric references to 0, to surrogates or beyond
//!   U+10FFFF are left as written. One pass only: `&amp;lt;` becomes `&lt;`, which is what a
//!   browser shows, so decoding further would manufacture markup the victim never sees.
//! * `lowercase` — ASCII only; other bytes are untouched (the view stays byte-aligned).
//! * `compress_whitespace` — every run of ASCII whitespace (space, `\t`, `\n`, `\r`, `\x0b`,
//!   `\x0c`) becomes one space; leading and trailing runs too (they are not trimmed).
//!   Idempotent.
//! * `shell` — a normal form for command lines; see the [grammar](#the-shell-normal-form).
//! * `cmd` — the Windows sibling of `shell`: removes `^` and `"`, turns `& && | ||` and line
//!   breaks into one `;`, compresses whitespace, and keeps backslashes (path separators there).
//! * `base64` — every run of at least 16 base64 characters (standard or URL-safe alphabet,
//!   optional `=` padding) is decoded; the view is the decoded runs joined by `\n`. See
//!   [below](#base64-runs) for which runs count.
//!
//! # The shell normal form
//!
//! ModSecurity's CRS has to weave evasion classes such as `[\x5c'\"]*` between the letters of
//! every command-injection regex. picket instead rewrites the value into a normal form in which
//! the obfuscation is gone, so that plain Aho-Corasick literals such as `;cat /etc/passwd` or
//! `;wget ` match. The output grammar is:
//!
//! ```text
//! view     := [";"] command (";" command)* [";"]
//! command  := token (" " token)*
//! token    := word | redirect
//! redirect := [<>]+ "&"? | "&>" [<>]* "&"?        e.g. >  >>  <  >&  &>  &>>
//! word     := one or more bytes that are none of  \ ' " ^ $ ` ( ) ; | & { } < >
//!             and no ASCII whitespace
//! ```
//!
//! i.e. commands are separated by exactly one `;`, tokens by exactly one space, there is no
//! space next to a `;` nor at either end, and redirection operators always stand alone
//! between spaces (`cat</etc/passwd` → `cat < /etc/passwd`, `2>&1` → `2 >& 1`). The rewrite,
//! in one left-to-right pass:
//!
//! | input | becomes | undoes |
//! |---|---|---|
//! | `\` before any byte | removed (`\`+newline vanishes entirely) | `pa\ss\wd`, `ca\`⏎`t` |
//! | `'` and `"` | removed, the contents kept | `c''at`, `w'g'et`, `/e""tc` |
//! | `^` | removed | cmd.exe `c^a^t`, `w^h^o^a^m^i` |
//! | `$IFS`, `${IFS}`, `${IFS%??}`, `${IFS:0:1}` … | one space | `cat${IFS}/etc/passwd`, `$IFS$9` |
//! | other `$name`, `${…}`, `$0`–`$9`, `$@ $* $# $? $! $$ $-` | removed (unknown variables are empty) | `c$@at`, `ca${x}t`, `w$1get` |
//! | any other `$` (`$(`, `$'…'`, a lone `$`) | removed | |
//! | `;` `\|` `\|\|` `&` `&&` `(` `)` `` ` `` newline CR, `<(` `>(` | the separator `;` | `a\|b&&c`, `$(whoami)`, `` `id` ``, `%0a`-injection (already URL-decoded) |
//! | `{` `}` | removed; a `,` inside braces becomes a space | `{cat,/etc/passwd}` |
//! | space, tab, VT, FF runs | one space (none next to `;` or at the ends) | `cat\t/etc/passwd` |
//! | a word with `?`, `*` or `[…]` | the first well-known path or command it globs to | `/???/c?t /???/p??s??`, `/bin/ca*` |
//!
//! Separators collapse: a run of separators and whitespace is one `;`. A leading or trailing
//! separator is **kept** (collapsed to one `;`): `` `id` `` → `;id;`, `$(whoami)` →
//! `;whoami;`, `;cat /etc/passwd` → `;cat /etc/passwd`. Without it `` `id` `` would normalise
//! to `id`, indistinguishable from the benign value `id`, and the literal `;cat /etc/passwd`
//! would not match the very value it was written for.
//!
//! Wildcard words are matched, as the shell would match them (`*` and `?` never match `/`),
//! against a built-in list: first the files `/etc/passwd /etc/shadow /etc/group /etc/hosts
//! /etc/issue /proc/self/environ /proc/version`, then `/bin/`, `/usr/bin/`, `/sbin/` and
//! `/usr/sbin/` followed by each of about fifty commands attackers run (`sh bash … cat nc
//! wget curl python … socat busybox`), and, for a word without `/`, the bare command names.
//! The first match replaces the word; no match leaves it as it is. A word made only of
//! wildcards (`*`, `???`) is left alone: in a real shell it globs the working directory, not
//! our list, and prose such as `5 * 3` must not turn into `5 sh 3`.
//!
//! The normal form is **idempotent** — `shell(shell(x)) == shell(x)` for every `x` (property
//! tested) — because nothing it emits is something it rewrites: the output contains no `\`,
//! quotes, `^`, `$`, braces, parentheses, backticks, `|`, newlines or wildcard words that
//! match the list, and `&`, `<`, `>` only inside the space-delimited redirection tokens.
//!
//! ## What it deliberately does not do
//!
//! * **Quoting is removed, not interpreted.** `'$x'`, `'a;b'` and `"{a,b}"` are rewritten as if
//!   unquoted, although a shell would keep them literal. This only ever adds normalisation
//!   (an attacker cannot use quoting to hide anything from it) and it is what makes the form
//!   idempotent: a literal `$x` kept in the output would be removed by a second pass. For the
//!   same reason a backslash never survives (`\\` is removed entirely, not turned into `\`).
//! * **Variables are assumed empty** (except `IFS`). `a=ca;b=t;$a$b` is not resolved: that
//!   needs an interpreter, and the assignments themselves are visible to signatures.
//!   `${x:-cat}` defaults are not substituted.
//! * **Brace expansion is flattened, not expanded**: `{a,b}c` gives `a bc`, not `ac bc`; the
//!   cartesian product is exponential in the input and the evasion in the wild is the
//!   plain comma list.
//! * **ANSI-C quoting** (`$'\x63at'`, `$'\143at'`) is not decoded; the `$'\` pair is itself a
//!   strong signal for a raw-value signature.
//! * **cmd.exe `%VAR%` and `%VAR:~0,1%`** are left alone: their values are unknowable and `%`
//!   is everywhere in URL-encoded data; cmd's `,` and `=` argument delimiters are not spaces.
//! * **PowerShell** escapes with the backtick, which POSIX shells use for command
//!   substitution; we treat it as a separator, so `` w`h`o`a`m`i `` gives `w;h;o;a;m;i`.
//! * **Comments** (`#`) and **history** (`!`) are ordinary word bytes.
//!
//! ## Cost to benign text
//!
//! Text that contains none of the metacharacters, no tab/newline, no double space and no
//! space at either end is returned unchanged after one table scan. Other prose is rewritten
//! but stays recognisable: `bash away in the gym` is unchanged, `it's a test` becomes
//! `its a test`, `x^2 (approx.)` becomes `x2;approx.;`, and `costs $5` becomes `costs `
//! trimmed to `costs`. A signature using this view should therefore target command
//! syntax (`;cat /etc/passwd`, `;wget `, `/bin/sh -i`) rather than single words.
//!
//! # Base64 runs
//!
//! A run is a maximal sequence of characters of `A-Z a-z 0-9 + / - _`, optionally followed by
//! `=` padding (which ends it). A run is decoded when it has at least 16 characters, does not
//! mix the standard (`+ /`) and URL-safe (`- _`) specials (`/usr/lib/x86_64-linux-gnu` is a
//! path, not base64) and contains at least one upper-case letter or digit (a lower-case word
//! such as `internationalization` is prose; 16 random base64 characters are all lower-case
//! with probability < 10⁻⁵). Decoding is lenient: trailing bits that do not make a byte are
//! dropped, so a run whose length is not a multiple of 4 (`…C1p` without its padding, or with
//! one stray character after it) still decodes, as if trimmed to a multiple of 4. Runs split
//! over lines (MIME) decode line by line.

mod b64;
mod cmd;
mod html;
mod shell;
mod text;
mod url;

#[cfg(test)]
mod tests;

/// The most rounds `url_decode` makes (one per encoding layer it undoes).
pub const URL_DECODE_ROUNDS: usize = 4;

/// A transformation a signature can ask for. Applied in the order the signature lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    UrlDecode,
    HtmlDecode,
    Lowercase,
    CompressWhitespace,
    Shell,
    Cmd,
    Base64,
}

impl Transform {
    pub const ALL: [Transform; 7] = [
        Transform::UrlDecode,
        Transform::HtmlDecode,
        Transform::Lowercase,
        Transform::CompressWhitespace,
        Transform::Shell,
        Transform::Cmd,
        Transform::Base64,
    ];

    /// The name used in pack files.
    pub fn pack_name(self) -> &'static str {
        match self {
            Transform::UrlDecode => "url_decode",
            Transform::HtmlDecode => "html_decode",
            Transform::Lowercase => "lowercase",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::Shell => "shell",
            Transform::Cmd => "cmd",
            Transform::Base64 => "base64",
        }
    }

    pub fn from_pack_name(s: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.pack_name() == s)
    }

    /// Whether `classes` (of some input) guarantee that [`apply`](Self::apply) would change
    /// nothing: `true` is exact (the transformation's own no-change check would say the same),
    /// `false` only means "ask `apply`". Lets the engine settle every transformation of a value
    /// with one pass over it ([`ByteClasses::of`]) instead of one scan per transformation.
    #[inline]
    pub fn unchanged_by(self, c: ByteClasses) -> bool {
        let has = |bits: u8| c.bits & bits != 0;
        match self {
            Transform::UrlDecode => !has(C_URL),
            Transform::HtmlDecode => !has(C_AMP),
            Transform::CompressWhitespace => !has(C_CTL_WS) && !c.double_space,
            Transform::Shell => !has(C_SHELL) && !c.double_space && !c.edge_space,
            Transform::Cmd => !has(C_CMD | C_CTL_WS) && !c.double_space && !c.edge_space,
            // Not worth a class of their own (never in a header's views, or cheap already).
            Transform::Lowercase | Transform::Base64 => false,
        }
    }

    /// [`apply`](Self::apply) for an input whose [`ByteClasses`] did not rule the
    /// transformation out: `shell` and `cmd` skip the no-change scan the classes stood in for
    /// and go straight to the rewrite, whose result is still compared with the input, so the
    /// answer is the same as `apply`'s.
    pub fn apply_classified(self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let changed = match self {
            Transform::Shell => {
                shell::normalise(input, out);
                out.as_slice() != input
            }
            Transform::Cmd => cmd::rewrite(input, out),
            other => return other.apply(input, out),
        };
        if !changed {
            out.clear();
        }
        changed
    }

    /// Applies the transformation to `input`. Returns `false`, leaving `out` empty, when the
    /// result would equal `input` (the common case: most values need no decoding, and the
    /// caller then reuses `input` without a copy). Returns `true` with the result in `out`
    /// otherwise. `out` is cleared first either way.
    pub fn apply(self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let changed = match self {
            Transform::UrlDecode => url::decode(input, out).0,
            Transform::HtmlDecode => html::decode(input, out),
            Transform::Lowercase => text::lowercase(input, out),
            Transform::CompressWhitespace => text::compress_whitespace(input, out),
            Transform::Shell => {
                shell::may_change(input) && {
                    shell::normalise(input, out);
                    out.as_slice() != input
                }
            }
            Transform::Cmd => cmd::normalise(input, out),
            Transform::Base64 => b64::decode_runs(input, out),
        };
        if !changed {
            out.clear();
        }
        changed
    }
}

/// `%` `+`: what `url_decode` acts on.
const C_URL: u8 = 1;
/// `&`: what `html_decode` acts on.
const C_AMP: u8 = 2;
/// `\t \n \x0b \x0c \r`.
const C_CTL_WS: u8 = 4;
/// The bytes `shell` rewrites (its whole metacharacter set, control whitespace included).
const C_SHELL: u8 = 8;
/// `^ " & | ;`: the bytes `cmd` rewrites besides control whitespace.
const C_CMD: u8 = 16;
/// A space: only then can there be two in a row.
const C_SPACE: u8 = 32;

/// The kinds of bytes a value contains, found in one pass, so that every transformation's
/// "would I change anything" is a test of a few bits ([`Transform::unchanged_by`]) rather than
/// a scan of its own. Most header values, parameters and cookies contain none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteClasses {
    bits: u8,
    double_space: bool,
    /// A space at either end.
    edge_space: bool,
}

impl ByteClasses {
    /// Classifies `input`: one table lookup per byte, OR-ed (on header-sized values this is
    /// cheaper than the vectorised comparisons, whose set-up dominates), then the
    /// double-space test, which vectorises.
    pub fn of(input: &[u8]) -> ByteClasses {
        let mut acc = [0u8; 4];
        let mut chunks = input.chunks_exact(4);
        for c in &mut chunks {
            for k in 0..4 {
                acc[k] |= CLASS[c[k] as usize];
            }
        }
        let mut bits = acc[0] | acc[1] | acc[2] | acc[3];
        for &b in chunks.remainder() {
            bits |= CLASS[b as usize];
        }
        ByteClasses {
            bits,
            double_space: bits & C_SPACE != 0 && text::has_double_space(input),
            edge_space: input.first() == Some(&b' ') || input.last() == Some(&b' '),
        }
    }
}

/// [`ByteClasses`] bits of every byte value.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let ctl_ws = b.wrapping_sub(b'\t') < 5;
        let mut c = 0;
        if b == b'%' || b == b'+' {
            c |= C_URL;
        }
        if b == b'&' {
            c |= C_AMP;
        }
        if ctl_ws {
            c |= C_CTL_WS;
        }
        if shell::special(b) != 0 {
            c |= C_SHELL;
        }
        if matches!(b, b'^' | b'"' | b'&' | b'|' | b';') {
            c |= C_CMD;
        }
        if b == b' ' {
            c |= C_SPACE;
        }
        t[i] = c;
        i += 1;
    }
    t
};
