//! One HTTP/1.1 request over a connection the caller opened, with hyper's client: what picket
//! itself asks of other servers — its certificate from the identity service
//! ([`crate::identity`]), the application's health ([`crate::probes`]) and its own `/readyz`
//! (`picket wait-ready`). The callers own connecting (plain TCP or TLS) and the deadlines; this
//! owns framing, so none of them writes HTTP by hand.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The body, cut at the caller's limit.
    pub body: Bytes,
    /// Whether the body went on past the limit (what is past it was not read).
    pub truncated: bool,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("reading the answer body: {0}")]
    Body(String),
}

/// Sends `request` on `io` and reads the answer, keeping at most `max_body` bytes of its body.
/// The connection is used for this one request and dropped after.
pub async fn exchange<IO, B>(
    io: IO,
    request: Request<B>,
    max_body: usize,
) -> Result<Answer, ExchangeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // The connection task ends with the exchange: it is aborted whatever happens below.
    let driver = tokio::spawn(conn);
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut kept = BytesMut::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ExchangeError::Body(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = max_body - kept.len();
            if data.len() > room {
                kept.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            kept.extend_from_slice(&data);
        }
        Ok(Answer {
            status,
            body: kept.freeze(),
            truncated,
        })
    }
    .await;
    driver.abort();
    result
}
