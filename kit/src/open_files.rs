//! The open-file limit. Every connection is a file descriptor: past the limit, `accept` fails
//! (EMFILE) while the connection caps still see room, and the health probes are refused with
//! everything else. So at start the soft limit is raised to the hard one, and the server
//! refuses to start when its connection caps cannot fit under it.

/// Descriptors for everything but client connections and upstream calls (which have caps of
/// their own): the process's own files and listeners, Redis, identity-provider calls, metrics
/// scrapes, the OTLP exporter.
pub const RESERVE: u64 = 128;

/// Raises the soft limit to the hard one, as far as the system lets it; returns the limit now
/// in force (`None` where it cannot be read).
pub fn raise() -> Option<u64> {
    // SAFETY: getrlimit and setrlimit read and write the `rlimit` passed, nothing else.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // A hard limit of "unlimited" may be above what the kernel allows: then the soft
            // limit stays as it was.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(limit.rlim_max as u64);
            }
        }
        Some(limit.rlim_cur as u64)
    }
}

/// Whether `max_connections` (MCP_MAX_CONNECTIONS), the health listener's `health` connections,
/// the `upstream` calls in flight (MCP_UPSTREAM_MAX_CONNECTIONS) and the [`RESERVE`] fit under
/// `limit`; if not, the error names the setting and what fits.
pub fn check(max_connections: u32, health: usize, upstream: u32, limit: u64) -> Result<(), String> {
    let others = health as u64 + u64::from(upstream) + RESERVE;
    let needed = u64::from(max_connections) + others;
    if needed <= limit {
        return Ok(());
    }
    let fits = limit.saturating_sub(others);
    let lower = if fits > 0 {
        format!("lower MCP_MAX_CONNECTIONS to at most {fits} or ")
    } else {
        String::new()
    };
    Err(format!(
        "error: MCP_MAX_CONNECTIONS (--max-connections) is {max_connections} but the open-file limit is {limit}: \
         that many connections need {needed} file descriptors ({max_connections} + {health} for the health listener + \
         {upstream} for upstream calls (MCP_UPSTREAM_MAX_CONNECTIONS) + {RESERVE} for everything else); {lower}raise the limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=)"
    ))
}
