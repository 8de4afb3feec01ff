fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lits: Vec<String> = std::fs::read_to_string(&args[1])
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let hay = std::fs::read(&args[2]).unwrap();
    for ci in [false, true] {
        let m = picket_signatures::matcher::LiteralMatcher::new(&lits, ci);
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let mut n = 0u64;
            m.for_each_match(&hay, |_| n += 1);
            let dt = t.elapsed().as_secs_f64();
            println!(
                "ci={ci} matches={n} {:.3} GB/s",
                hay.len() as f64 / dt / 1e9
            );
        }
    }
    let ac = aho_corasick::AhoCorasick::new(&lits).unwrap();
    println!(
        "ac overlapping = {}",
        ac.find_overlapping_iter(&hay).count()
    );
    let ac = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(&lits)
        .unwrap();
    println!("ac leftmost-first = {}", ac.find_iter(&hay).count());
}
