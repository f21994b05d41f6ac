//! What `make bench` compares the server with, built beside `loadgen`:
//!
//! - `bare-rmcp`: the same rmcp, the same `convert_temperature`, and nothing else: no guard
//!   chain, no edge layers, no logs.
//! - `axum-floor`: raw axum + serde_json answering the same requests with the same result, with
//!   no MCP SDK at all: the floor under any server of this shape.
//!
//! Both run as `<binary> http <address>` (printing the `listening` line loadgen reads the port
//! from, as the server logs it) or `<binary> stdio`, count their allocations as the server's
//! bench build does ([`counting`]), and use the system allocator, as a plain rmcp or axum
//! server would.

pub mod counting;
pub mod temperature;

use std::{io::Write, net::SocketAddr};

/// The transport to serve, from the command line.
pub enum Mode {
    Http(SocketAddr),
    Stdio,
}

impl Mode {
    /// `http <address>` or `stdio`; anything else ends the process with a usage line.
    pub fn from_args() -> Mode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args[..] {
            ["stdio"] => Mode::Stdio,
            ["http", addr] if addr.parse::<SocketAddr>().is_ok() => Mode::Http(addr.parse().unwrap()),
            _ => {
                eprintln!(
                    "usage: {} http <address> | stdio",
                    std::env::args().next().unwrap_or_default()
                );
                std::process::exit(2);
            }
        }
    }
}

/// The line loadgen waits for, shaped like the server's own `listening` log line.
pub fn log_listening(addr: SocketAddr) {
    let line = format!("{{\"event\":\"listening\",\"addr\":\"{addr}\"}}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
