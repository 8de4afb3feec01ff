//! Connection-per-request HTTP/1.1 load without `Connection: close` (as curl, many health
//! checkers and short-lived clients do: the client closes after one response, the request does
//! not ask the server to). `hey -disable-keepalive` and `wrk -H 'Connection: close'` send that
//! header, which makes the server close the upstream connection too, so they cannot show
//! upstream connection reuse.
//!
//!   connload ADDR [THREADS=10] [SECONDS=5]
//!
//! Prints `req/s N p50_ms X p99_ms Y errors E`. Each thread: connect, `GET / HTTP/1.1`, read
//! the response (Content-Length framing), close; bounded by SECONDS. Only for 127.0.0.1 peers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn one(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: connload\r\n\r\n")?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the response ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(());
            }
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("response too large"));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: connload ADDR [THREADS] [SECONDS]");
        std::process::exit(2);
    };
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < until {
                    let t = Instant::now();
                    match one(addr) {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((l, e)) = h.join() {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "req/s {:.0} p50_ms {:.3} p99_ms {:.3} errors {}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors
    );
}
