//! `make abuse`: health probes through a connection flood. 1,100 slow-header connections from 6
//! addresses (each under the per-address cap, together past the global one) fill the MCP
//! listener; `/healthz` on the health listener (MCP_HEALTH_BIND), asked from another address
//! throughout, must answer within 1 s. Run twice: with the machine's file limit, and with the
//! server's limited to 1,024 files, where the largest MCP_MAX_CONNECTIONS that fits must leave
//! no accept failing for want of a descriptor (EMFILE).

use std::{
    net::{IpAddr, SocketAddr},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    abuse::{Row, connect_from, exchange, row},
    server::{Server, Transport},
};

const ATTACKERS: [&str; 6] = [
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
    "127.0.0.7",
];
const FLOOD: usize = 1_100;
const PROBER: &str = "127.0.0.9";
/// Probing stops before MCP_HEADER_READ_TIMEOUT (10 s) frees the flood's places.
const PROBING: Duration = Duration::from_secs(9);
/// The flood takes at most this long, so probing has time left: loopback drops a SYN now and
/// then, and a connect waiting out the 1 s retransmit is given up for the next one.
const FLOODING: Duration = Duration::from_secs(4);
const CONNECT: Duration = Duration::from_millis(200);
const FILE_LIMIT: u64 = 1_024;
/// The server's own reserve, its health listener's cap and the default upstream cap
/// (src/open_files.rs, src/http/mod.rs, MCP_UPSTREAM_MAX_CONNECTIONS): under a 1,024-file
/// limit, MCP_MAX_CONNECTIONS may be 1,024 less these.
const NOT_FOR_MCP: u64 = 128 + 64 + 256;
const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

pub(crate) async fn health_under_connection_flood(binary: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for file_limit in [None, Some(FILE_LIMIT)] {
        let fits = (FILE_LIMIT - NOT_FOR_MCP).to_string();
        let mut args = vec!["--health-bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0"];
        if file_limit.is_some() {
            args.extend(["--max-connections", &fits]);
        }
        let mut command = Server::command(binary, Transport::Http, &args, &[]);
        if let Some(limit) = file_limit {
            limit_open_files(&mut command, limit);
        }
        let server = Server::spawn(command, Transport::Http).await;
        let (addr, health) = (server.addr.unwrap(), server.listener("health_listening").unwrap());
        let metrics = server.listener("metrics_listening").unwrap();

        // The flood: a few bytes of a head that never ends, on every connection.
        let began = Instant::now();
        let mut held = Vec::new();
        for i in 0..FLOOD {
            if began.elapsed() > FLOODING {
                break;
            }
            let from: IpAddr = ATTACKERS[i % ATTACKERS.len()].parse().unwrap();
            if let Ok(Ok(mut tcp)) = tokio::time::timeout(CONNECT, connect_from(from, addr)).await {
                let _ = tcp
                    .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .await;
                held.push(tcp);
            }
        }
        // Probes from a fresh address: the health listener, and the MCP one for contrast.
        let prober: IpAddr = PROBER.parse().unwrap();
        let (mut probes, mut answered, mut slowest, mut mcp_refused) = (0, 0, Duration::ZERO, 0);
        while began.elapsed() < PROBING {
            let asked = Instant::now();
            probes += 1;
            answered += usize::from(healthz(prober, health, Duration::from_secs(2)).await);
            slowest = slowest.max(asked.elapsed());
            mcp_refused += usize::from(!healthz(prober, addr, Duration::from_millis(500)).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let accept_failed = refusals(metrics, "accept_failed").await;
        let held_count = held.len();
        drop(held);
        server.stop();

        let figure = format!(
            "{held_count} connections opened; {answered}/{probes} answered, slowest {:.0} ms; MCP port's /healthz refused {mcp_refused}/{probes}; {accept_failed} failed accepts",
            slowest.as_secs_f64() * 1e3
        );
        // The probe proves something only when the flood filled the MCP listener's cap.
        let cap = if file_limit.is_some() {
            FILE_LIMIT - NOT_FOR_MCP
        } else {
            1_024
        };
        let within = held_count as u64 >= cap && probes > 0 && answered == probes && slowest < Duration::from_secs(1);
        rows.push(match file_limit {
            None => row(
                "slowloris from 6 addresses at the cap: /healthz on the health listener",
                figure,
                "every probe within 1 s",
                within,
            ),
            Some(limit) => {
                let refused = refuses_to_start(binary, limit);
                row(
                    "... with a 1,024 file limit",
                    format!(
                        "{figure}; MCP_MAX_CONNECTIONS {fits} (the most that fits; the default 1,024 {})",
                        if refused { "refused at start, exit 2" } else { "STARTED" }
                    ),
                    "every probe within 1 s, no EMFILE",
                    within && accept_failed == 0 && refused,
                )
            }
        });
    }
    rows
}

/// Whether `/healthz` at `to`, asked from `from`, answers 200 within `limit`.
async fn healthz(from: IpAddr, to: SocketAddr, limit: Duration) -> bool {
    let probe = tokio::time::timeout(limit, async {
        let mut tcp = connect_from(from, to).await.ok()?;
        exchange(&mut tcp, HEALTHZ).await
    });
    matches!(probe.await, Ok(Some((200, _))))
}

/// Refusals of `reason` the server's metrics count.
async fn refusals(metrics: SocketAddr, reason: &str) -> u64 {
    let scrape = async {
        let mut tcp = TcpStream::connect(metrics).await.ok()?;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tcp, &mut text)
            .await
            .ok()?;
        Some(text)
    };
    let text = tokio::time::timeout(Duration::from_secs(5), scrape)
        .await
        .ok()
        .flatten()
        .expect("the metrics listener answers");
    let series = format!("mcp_http_refusals_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the server, with its default connection cap under a `limit`-file limit, refuses to
/// start with a settings error.
fn refuses_to_start(binary: &Path, limit: u64) -> bool {
    let mut command = Server::command(binary, Transport::Http, &[], &[]);
    limit_open_files(&mut command, limit);
    let output = command.stdout(Stdio::null()).stderr(Stdio::piped()).output();
    output
        .is_ok_and(|o| o.status.code() == Some(2) && String::from_utf8_lossy(&o.stderr).contains("MCP_MAX_CONNECTIONS"))
}

/// Starts `command` with its open-file limit, soft and hard, at `limit`.
fn limit_open_files(command: &mut Command, limit: u64) {
    let limit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit, async-signal-safe, on a value prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
