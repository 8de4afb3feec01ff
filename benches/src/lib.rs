//! Inputs shared by picket's benchmarks (`benches/benches/*.rs`) and the `refscan` binary.
//!
//! Everything here is deterministic: the reference corpus comes from
//! `../shared/bench/gen_inputs.py` (fixed seed, checked against `corpus.md5`), and the
//! synthetic bodies, request heads and signature packs come from a fixed-seed xorshift
//! generator, so two runs measure exactly the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Case-sensitive matches of `literals100.txt` (and of `literals1000.txt`: the 900 generated
/// literals never occur) in the 64 MiB reference corpus, as `../shared/bench/README.md` states.
pub const REFERENCE_MATCHES: u64 = 14_629;

/// MD5 of the 64 MiB reference corpus (`corpus.md5`).
pub const CORPUS_MD5: &str = "d2373a68750d7ed8d41ab376bfb13855";

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// `../shared/bench` (override with `PICKET_BENCH_REF_DIR`).
pub fn ref_dir() -> PathBuf {
    match std::env::var_os("PICKET_BENCH_REF_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench"),
    }
}

/// Where generated inputs are cached: `PICKET_BENCH_INPUTS`, else `picket-bench-inputs/` in the
/// cargo target directory the running binary was built into, else the system temp dir.
pub fn inputs_dir() -> PathBuf {
    let dir = if let Some(d) = std::env::var_os("PICKET_BENCH_INPUTS") {
        PathBuf::from(d)
    } else {
        // The binary lives in `<target>/<profile>/` or `<target>/<profile>/deps/`; cargo keeps
        // a `.cargo-lock` in every profile directory.
        std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.ancestors()
                    .find(|d| d.join(".cargo-lock").is_file())
                    .and_then(Path::parent)
                    .map(|d| d.join("picket-bench-inputs"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("picket-bench-inputs"))
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

fn gen_inputs(args: &[&str]) {
    let script = ref_dir().join("gen_inputs.py");
    let status = Command::new("python3")
        .arg(&script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("running python3 {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} {args:?} failed: {status}",
        script.display()
    );
}

/// MD5 of a file via `md5sum`, or `None` when that tool is missing.
fn md5_of(path: &Path) -> Option<String> {
    let out = Command::new("md5sum").arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()?
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// The 64 MiB reference corpus (`gen_inputs.py corpus OUT 64`), generated on first use and
/// checked against [`CORPUS_MD5`].
pub fn reference_corpus() -> Vec<u8> {
    let path = inputs_dir().join("http64m.txt");
    if !path.is_file() {
        eprintln!("generating {} (about 10 s) ...", path.display());
        let tmp = path.with_extension("tmp");
        gen_inputs(&["corpus", tmp.to_str().expect("utf-8 path"), "64"]);
        std::fs::rename(&tmp, &path).expect("renaming the generated corpus");
    }
    match md5_of(&path) {
        Some(sum) => assert_eq!(
            sum,
            CORPUS_MD5,
            "{} does not match corpus.md5; delete it to regenerate",
            path.display()
        ),
        None => eprintln!("md5sum not found; corpus checksum not verified"),
    }
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(data.len(), 64 * MIB);
    data
}

/// The non-empty lines of a file in [`ref_dir`] (`literals100.txt`, `regex50.txt`, ...).
pub fn reference_lines(name: &str) -> Vec<String> {
    let path = ref_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The 4 KiB and 64 KiB urlencoded POST bodies of the proxy load tests
/// (`gen_inputs.py bodies DIR`).
pub fn load_test_bodies() -> (Vec<u8>, Vec<u8>) {
    let dir = inputs_dir();
    let (small, large) = (dir.join("post4k.txt"), dir.join("post64k.txt"));
    if !small.is_file() || !large.is_file() {
        gen_inputs(&["bodies", dir.to_str().expect("utf-8 path")]);
    }
    (
        std::fs::read(&small).expect("reading post4k.txt"),
        std::fs::read(&large).expect("reading post64k.txt"),
    )
}

/// A small, fast, deterministic generator (xorshift64*); not for anything but test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| b"0123456789abcdef"[self.range(0, 15)] as char)
            .collect()
    }

    pub fn letters(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (b'a' + self.range(0, 25) as u8) as char)
            .collect()
    }
}

/// Ordinary English words of web applications and prose.
pub const WORDS: &[&str] = &[
    "account",
    "action",
    "address",
    "admin",
    "advanced",
    "agent",
    "album",
    "amount",
    "analytics",
    "answer",
    "archive",
    "article",
    "audio",
    "author",
    "backup",
    "balance",
    "banner",
    "billing",
    "blog",
    "board",
    "book",
    "branch",
    "browser",
    "bucket",
    "budget",
    "build",
    "button",
    "cache",
    "calendar",
    "camera",
    "campaign",
    "card",
    "cart",
    "catalog",
    "category",
    "channel",
    "chart",
    "checkout",
    "city",
    "client",
    "cloud",
    "cluster",
    "code",
    "collection",
    "color",
    "comment",
    "company",
    "config",
    "contact",
    "content",
    "contract",
    "cookie",
    "country",
    "coupon",
    "course",
    "credit",
    "customer",
    "daily",
    "dashboard",
    "data",
    "date",
    "delivery",
    "design",
    "detail",
    "device",
    "document",
    "domain",
    "download",
    "draft",
    "editor",
    "email",
    "engine",
    "event",
    "example",
    "export",
    "feature",
    "feed",
    "field",
    "file",
    "filter",
    "folder",
    "form",
    "format",
    "forum",
    "gallery",
    "garden",
    "gateway",
    "group",
    "guest",
    "guide",
    "health",
    "help",
    "history",
    "home",
    "hotel",
    "image",
    "import",
    "index",
    "invoice",
    "item",
    "journal",
    "label",
    "language",
    "layout",
    "library",
    "license",
    "limit",
    "link",
    "list",
    "local",
    "location",
    "login",
    "manager",
    "market",
    "media",
    "member",
    "menu",
    "message",
    "metric",
    "mobile",
    "model",
    "module",
    "month",
    "network",
    "news",
    "note",
    "notice",
    "number",
    "offer",
    "office",
    "online",
    "option",
    "order",
    "origin",
    "owner",
    "package",
    "page",
    "panel",
    "partner",
    "payment",
    "people",
    "period",
    "phone",
    "photo",
    "picture",
    "plan",
    "player",
    "policy",
    "popular",
    "portal",
    "post",
    "preview",
    "price",
    "privacy",
    "product",
    "profile",
    "program",
    "project",
    "public",
    "query",
    "queue",
    "quote",
    "range",
    "rate",
    "reader",
    "record",
    "region",
    "release",
    "report",
    "request",
    "resource",
    "result",
    "review",
    "role",
    "room",
    "route",
    "sale",
    "sample",
    "schedule",
    "score",
    "screen",
    "search",
    "season",
    "section",
    "secure",
    "segment",
    "select",
    "server",
    "service",
    "session",
    "setting",
    "share",
    "shipping",
    "shop",
    "sidebar",
    "site",
    "size",
    "social",
    "source",
    "space",
    "speed",
    "stage",
    "standard",
    "state",
    "status",
    "stock",
    "store",
    "story",
    "stream",
    "street",
    "studio",
    "style",
    "summary",
    "support",
    "survey",
    "system",
    "table",
    "task",
    "team",
    "template",
    "text",
    "theme",
    "thread",
    "ticket",
    "time",
    "title",
    "token",
    "tool",
    "topic",
    "total",
    "track",
    "trade",
    "traffic",
    "travel",
    "trial",
    "update",
    "upload",
    "user",
    "value",
    "vendor",
    "version",
    "video",
    "view",
    "visit",
    "wallet",
    "weather",
    "week",
    "widget",
    "window",
    "winter",
    "word",
    "work",
    "world",
    "year",
    "zone",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "on",
    "from",
    "that",
    "this",
    "we",
    "you",
    "our",
    "your",
    "new",
];

/// One sentence of prose: capitalised, commas now and then, a full stop.
fn sentence(r: &mut Rng, out: &mut String) {
    let n = r.range(6, 18);
    for i in 0..n {
        let w = *r.pick(WORDS);
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.push(f.to_ascii_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
            if i + 1 < n && r.range(0, 9) == 0 {
                out.push(',');
            }
        }
    }
    out.push_str(if r.range(0, 11) == 0 { "?" } else { "." });
}

/// Benign prose (what a JSON string value, a comment or a description holds), exactly `size`
/// bytes.
pub fn benign_prose(size: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut s = String::with_capacity(size + 256);
    while s.len() < size {
        sentence(&mut r, &mut s);
        s.push(if r.range(0, 5) == 0 { '\n' } else { ' ' });
    }
    s.truncate(size);
    s.into_bytes()
}

/// A benign, valid JSON document (an array of API records with ids, timestamps, URLs, prose and
/// tags) of exactly `size` bytes (padded with trailing whitespace inside the array).
pub fn benign_json(size: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut s = String::from("[");
    let mut record = String::new();
    loop {
        record.clear();
        let sep = if s.len() > 1 { "," } else { "" };
        let _ = write!(
            record,
            "{sep}{{\"id\":{},\"uuid\":\"{}-{}-{}-{}-{}\",\"type\":\"{}\",\"owner\":\"{}.{}@example.com\",\
             \"created_at\":\"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"url\":\"https://shop.example.com/{}/{}?page={}\",\
             \"price\":{}.{:02},\"active\":{},\"title\":\"",
            r.range(1, 999_999_999),
            r.hex(8),
            r.hex(4),
            r.hex(4),
            r.hex(4),
            r.hex(12),
            r.pick(WORDS),
            r.pick(WORDS),
            r.pick(WORDS),
            r.range(1, 12),
            r.range(1, 28),
            r.range(0, 23),
            r.range(0, 59),
            r.range(0, 59),
            r.pick(WORDS),
            r.pick(WORDS),
            r.range(1, 40),
            r.range(1, 999),
            r.range(0, 99),
            r.range(0, 1) == 1,
        );
        sentence(&mut r, &mut record);
        record.push_str("\",\"description\":\"");
        for i in 0..r.range(1, 4) {
            if i > 0 {
                record.push(' ');
            }
            sentence(&mut r, &mut record);
        }
        record.push_str("\",\"tags\":[");
        for i in 0..r.range(1, 4) {
            if i > 0 {
                record.push(',');
            }
            let _ = write!(record, "\"{}\"", r.pick(WORDS));
        }
        record.push_str("]}");
        if s.len() + record.len() + 1 > size {
            break;
        }
        s.push_str(&record);
    }
    while s.len() + 1 < size {
        s.push(if s.len() % 64 == 0 { '\n' } else { ' ' });
    }
    s.push(']');
    assert_eq!(s.len(), size, "size {size} too small for one record");
    s.into_bytes()
}

/// `benign` with its last bytes replaced by `attack` (same length as `benign`).
pub fn with_attack(benign: &[u8], attack: &[u8]) -> Vec<u8> {
    assert!(attack.len() <= benign.len());
    let mut v = benign[..benign.len() - attack.len()].to_vec();
    v.extend_from_slice(attack);
    v
}

/// Human label for a size: `1KiB`, `64KiB`, `1MiB`.
pub fn size_label(n: usize) -> String {
    if n >= MIB && n % MIB == 0 {
        format!("{}MiB", n / MIB)
    } else if n >= KIB && n % KIB == 0 {
        format!("{}KiB", n / KIB)
    } else {
        format!("{n}B")
    }
}

/// A synthetic pack of `n` signatures, each with three distinct random-word literals (6 to 12
/// letters) and a simple regex built from its first literal, targets `["body"]`.
pub fn synthetic_pack(n: usize, seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut seen = std::collections::HashSet::new();
    let mut s = String::with_capacity(n * 220);
    let _ = writeln!(s, "[pack]\nname = \"synthetic-{n}\"\nversion = \"1\"\n");
    for i in 0..n {
        let mut lits = Vec::with_capacity(3);
        while lits.len() < 3 {
            let len = r.range(6, 12);
            let w = r.letters(len);
            if seen.insert(w.clone()) {
                lits.push(w);
            }
        }
        let _ = writeln!(
            s,
            "[[signature]]\nid = \"SYN-{i:05}\"\nname = \"synthetic signature {i}\"\nseverity = \"high\"\n\
             targets = [\"body\"]\nliterals = ['{}', '{}', '{}']\nregex = '(?i)(?:{}|{}|{})\\s*[=:(]'\n",
            lits[0], lits[1], lits[2], lits[0], lits[1], lits[2]
        );
    }
    s
}

/// A typical browser GET request head of about 500 bytes: a query string, a realistic
/// User-Agent, Accept headers, a few cookies, a Referer.
pub fn typical_get_head() -> Vec<u8> {
    concat!(
        "GET /shop/catalog/search?q=winter+jacket&category=outdoor&sort=price_asc&page=2 HTTP/1.1\r\n",
        "Host: shop.example.com\r\n",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n",
        "Accept-Language: en-US,en;q=0.5\r\n",
        "Accept-Encoding: gzip, deflate, br\r\n",
        "Referer: https://shop.example.com/shop/catalog?category=outdoor\r\n",
        "Cookie: session=3f9a1c0e7b5d4e2a9c8f6b1d0e3a5c7f; theme=dark; cart=17\r\n",
        "Connection: keep-alive\r\n",
        "\r\n",
    )
    .as_bytes()
    .to_vec()
}

/// A POST request with the given body (Content-Length framing).
pub fn post_request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST {path} HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: okhttp/4.12.0\r\n\
         Accept: application/json\r\nContent-Type: {content_type}\r\n\
         Authorization: Bearer 6b1d0e3a5c7f3f9a1c0e7b5d4e2a9c8f6b1d0e3a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_exact_and_deterministic() {
        for size in [KIB, 4 * KIB, 64 * KIB] {
            let j = benign_json(size, 1);
            assert_eq!(j.len(), size);
            assert_eq!(j, benign_json(size, 1));
            serde_json::from_slice::<serde_json::Value>(&j).expect("valid JSON");
            assert_eq!(benign_prose(size, 2).len(), size);
        }
        assert!((450..=560).contains(&typical_get_head().len()));
        assert_eq!(size_label(MIB), "1MiB");
        assert_eq!(size_label(64 * KIB), "64KiB");
    }

    #[test]
    fn synthetic_pack_compiles() {
        let e = picket_signatures::Engine::from_toml(&synthetic_pack(50, 3), "syn.toml").unwrap();
        assert_eq!(e.signatures().len(), 50);
    }
}
