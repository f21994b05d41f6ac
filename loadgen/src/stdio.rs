//! A stdio client as an agent runs one: one 2025-11-25 session on the process's stdin/stdout,
//! with many calls in flight, their answers matched to them by id.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout},
    sync::oneshot,
};

use crate::http::{call_body, succeeded};

#[derive(Clone)]
pub struct StdioClient {
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    /// Calls written and not yet answered: who is waiting for each id.
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<bool>>>>,
    next_id: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
}

impl StdioClient {
    /// Opens the session: `initialize`, then `notifications/initialized`.
    pub async fn open(stdin: ChildStdin, stdout: BufReader<ChildStdout>) -> Self {
        let client = StdioClient {
            stdin: Arc::new(tokio::sync::Mutex::new(stdin)),
            pending: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let pending = client.pending.clone();
        tokio::spawn(async move {
            let mut lines = stdout.lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(Reply { id: Some(id) }) = serde_json::from_str(&line) else {
                    continue;
                };
                if let Some(waiter) = pending.lock().unwrap().remove(&id) {
                    let _ = waiter.send(id == 0 || succeeded(line.as_bytes()));
                }
            }
        });
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}}"#;
        assert!(client.request(0, init).await, "the stdio server answers initialize");
        client
            .write(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        client
    }

    /// One tools/call; `true` when it came back as a successful tool result.
    pub async fn call(&self) -> bool {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.request(id, &call_body(id, false)).await
    }

    async fn request(&self, id: u64, line: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.write(line).await;
        rx.await.unwrap_or(false)
    }

    async fn write(&self, line: &str) {
        let mut stdin = self.stdin.lock().await;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let _ = stdin.write_all(&bytes).await;
    }
}

/// Time to the first answer: the process has just been started; one 2026-07-28 call, which
/// needs no handshake, written at once.
pub async fn first_answer(mut stdin: ChildStdin, stdout: BufReader<ChildStdout>) -> bool {
    let line = format!("{}\n", call_body(1, true));
    if stdin.write_all(line.as_bytes()).await.is_err() {
        return false;
    }
    let mut lines = stdout.lines();
    matches!(lines.next_line().await, Ok(Some(answer)) if succeeded(answer.as_bytes()))
}
