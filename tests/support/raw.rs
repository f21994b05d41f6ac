//! HTTP by hand, for what a well-behaved client never sends: duplicate headers, slow or
//! missing bytes, connections held open. Every read is bounded in time.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// An answer read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("body is not JSON: {self:?}"))
    }

    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }
}

/// Opens a connection to `server` from the loopback address `from` (any of 127/8), so tests
/// can play several client addresses on one machine.
pub async fn connect_from(from: IpAddr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(server).await.expect("connecting")
}

/// Sends `request` (with `Connection: close`) on a new connection and reads the answer.
pub async fn exchange(server: SocketAddr, request: &str) -> Answer {
    let mut tcp = TcpStream::connect(server).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut tcp, Duration::from_secs(10))
        .await
        .expect("an answer before the connection closed")
}

/// A POST of `body` to `/mcp` with `extra` header lines (each ending in `\r\n`).
pub fn post(body: &str, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one answer (head and a `Content-Length` body, or everything until the server closes).
pub async fn read_answer(tcp: &mut TcpStream, within: Duration) -> Option<Answer> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            bytes.extend_from_slice(&buf[..n]);
            if let Some(answer) = parse(&bytes)
                && answer.complete
            {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete answer within {within:?}");
    parse(&bytes).map(|p| p.answer)
}

/// Whether the server has closed the connection within `within` (a read returns end of file
/// or an error) without answering anything.
pub async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    matches!(
        tokio::time::timeout(within, tcp.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

struct Parsed {
    answer: Answer,
    complete: bool,
}

fn parse(bytes: &[u8]) -> Option<Parsed> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let answer = Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    };
    let complete = answer
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|length| body.len() >= length);
    Some(Parsed { answer, complete })
}
