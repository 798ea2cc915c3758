//! The export's body: written by a blocking task into a bounded channel
//! that the response streams from, so the daemon holds a few chunks of
//! the log at a time, never the whole of it.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::report::export::Filter;
use crate::runtime::daemon::Handle;

/// Bytes gathered before a chunk is handed to the response.
const CHUNK: usize = 64 << 10;

/// The response to `GET /v1/export`.
pub fn stream(handle: Handle, filter: Filter) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match handle.export(&filter, &mut out) {
            Ok(counts) => {
                let tail = format!("#{}", serde_json::to_string(&counts).unwrap_or_default());
                out.buf.extend_from_slice(tail.as_bytes());
                let _ = std::io::Write::flush(&mut out);
            }
            Err(e) => {
                tracing::error!("export failed: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A blocking writer that hands full chunks to the response.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}
