//! One simulated HTTP client: a keep-alive connection that calls `convert_temperature`, in
//! either protocol generation: 2026-07-28 stateless POSTs with the headers and `_meta` the
//! server requires, or a 2025-11-25 session (initialize, then calls with `Mcp-Session-Id`).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// 2026-07-28: every request stands alone.
    Stateless,
    /// 2025-11-25: a session opened with `initialize`.
    Session,
}

const ARGUMENTS: &str = r#"{"temperature":{"value":100,"unit":"celsius"},"to":"fahrenheit"}"#;
const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"loadgen","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A tools/call body; stateless requests carry the client's identity in `_meta`.
pub fn call_body(id: u64, stateless: bool) -> String {
    let meta = if stateless {
        format!(r#","_meta":{META}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"convert_temperature","arguments":{ARGUMENTS}{meta}}}}}"#
    )
}

/// Whether an answer (a JSON body or an SSE stream) is a successful tool result.
pub fn succeeded(body: &[u8]) -> bool {
    const OK: &[u8] = br#""isError":false"#;
    body.windows(OK.len()).any(|w| w == OK)
}

pub struct HttpClient {
    send: SendRequest<Full<Bytes>>,
    host: String,
    protocol: Protocol,
    session: Option<String>,
    next_id: u64,
}

impl HttpClient {
    pub async fn connect(addr: SocketAddr, protocol: Protocol) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut client = HttpClient {
            send,
            host: addr.to_string(),
            protocol,
            session: None,
            next_id: 1,
        };
        if protocol == Protocol::Session {
            client.initialize().await?;
        }
        Ok(client)
    }

    async fn initialize(&mut self) -> Result<(), String> {
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}}"#;
        let (status, session, _) = self.post(Method::POST, init.into(), &[]).await?;
        self.session = session;
        if status != 200 || self.session.is_none() {
            return Err(format!("initialize answered {status} without a session"));
        }
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        self.post(Method::POST, initialized.into(), &[]).await?;
        Ok(())
    }

    /// One tools/call; `true` when it came back as a successful tool result.
    pub async fn call(&mut self) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        let stateless = self.protocol == Protocol::Stateless;
        let headers: &[(&str, &str)] = if stateless {
            &[("mcp-method", "tools/call"), ("mcp-name", "convert_temperature")]
        } else {
            &[]
        };
        match self.post(Method::POST, call_body(id, stateless), headers).await {
            Ok((200, _, body)) => succeeded(&body),
            _ => false,
        }
    }

    /// Ends a session (DELETE), so the server does not keep it.
    pub async fn close(mut self) {
        if self.session.is_some() {
            let _ = self.post(Method::DELETE, String::new(), &[]).await;
        }
    }

    async fn post(
        &mut self,
        method: Method,
        body: String,
        extra: &[(&str, &str)],
    ) -> Result<(u16, Option<String>, Bytes), String> {
        let version = match self.protocol {
            Protocol::Stateless => "2026-07-28",
            Protocol::Session => "2025-11-25",
        };
        let mut request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", version);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        self.send.ready().await.map_err(|e| e.to_string())?;
        let response = self.send.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, session, body))
    }
}

/// Time to the first answer: the process has just been started; connect and call once.
pub async fn first_answer(addr: SocketAddr) -> bool {
    match HttpClient::connect(addr, Protocol::Stateless).await {
        Ok(mut client) => client.call().await,
        Err(_) => false,
    }
}
