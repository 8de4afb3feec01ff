//! An HTTP/2 (h2c, prior knowledge) echo server on 127.0.0.1, run on its own thread: each
//! response carries the request's method and path in headers and its body back; every request
//! that reaches it is recorded, so tests can check what picket let through.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};

/// What the backend received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub body: Vec<u8>,
}

pub struct H2Backend {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl H2Backend {
    pub fn start() -> H2Backend {
        H2Backend::start_with_limit(usize::MAX)
    }

    /// The same, but each connection ends (GOAWAY) after `per_connection` requests, as
    /// servers with a keep-alive request limit do; `connections` counts them.
    pub fn start_with_limit(per_connection: usize) -> H2Backend {
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let record = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let record = record.clone();
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        let Ok(mut conn) = h2::server::handshake(sock).await else {
                            return;
                        };
                        let mut served = 0usize;
                        while let Some(Ok((req, mut respond))) = conn.accept().await {
                            served += 1;
                            if served >= per_connection {
                                conn.graceful_shutdown();
                            }
                            let record = record.clone();
                            tokio::spawn(async move {
                                let (parts, mut body) = req.into_parts();
                                let mut data = Vec::new();
                                while let Some(Ok(chunk)) = body.data().await {
                                    let _ = body.flow_control().release_capacity(chunk.len());
                                    data.extend_from_slice(&chunk);
                                }
                                let pq = parts
                                    .uri
                                    .path_and_query()
                                    .map_or(String::new(), |p| p.to_string());
                                record.lock().unwrap().push(Seen {
                                    method: parts.method.to_string(),
                                    path_and_query: pq.clone(),
                                    body: data.clone(),
                                });
                                let response = Response::builder()
                                    .status(StatusCode::OK)
                                    .header("x-echo-method", parts.method.as_str())
                                    .header("x-echo-path", pq)
                                    .body(())
                                    .expect("response");
                                let Ok(mut send) = respond.send_response(response, false) else {
                                    return;
                                };
                                let mut data = Bytes::from(data);
                                while !data.is_empty() {
                                    send.reserve_capacity(data.len());
                                    let Some(Ok(n)) =
                                        std::future::poll_fn(|cx| send.poll_capacity(cx)).await
                                    else {
                                        return;
                                    };
                                    let piece = data.split_to(n.min(data.len()));
                                    if send.send_data(piece, false).is_err() {
                                        return;
                                    }
                                }
                                let _ = send.send_data(Bytes::new(), true);
                            });
                        }
                    });
                }
            });
        });
        let addr = rx.recv().expect("backend address");
        H2Backend {
            addr,
            seen,
            connections,
        }
    }

    pub fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.path_and_query.clone())
            .collect()
    }
}
