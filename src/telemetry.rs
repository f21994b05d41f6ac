//! Tracing to stderr: JSON lines by default, a human format on request.
//!
//! stdout belongs to JSON-RPC on the stdio transport, so no log line may ever go there.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Without a configured filter: our own lines from `info` up, one per request; the SDK's
/// only from `warn` (at `info` it adds three lines of its own to every stateless request, which
/// cost a quarter of the throughput and say nothing the request line does not).
pub const DEFAULT_FILTER: &str = "info,rmcp=warn";

/// Installs the global subscriber. Fails (as a config error) on an unparsable filter.
pub fn init(config: &LogConfig) -> Result<(), String> {
    // Set but empty (an unfilled deployment variable) counts as unset, not as "log nothing".
    let configured = config.log_level.as_deref().filter(|level| !level.trim().is_empty());
    let filter = match configured {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| format!("error: invalid log filter '{level}' for '--log-level' (env MCP_LOG_LEVEL): {e}"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(level) if !level.trim().is_empty() => EnvFilter::try_new(&level)
                .map_err(|e| format!("error: invalid log filter '{level}' in RUST_LOG: {e}"))?,
            _ => EnvFilter::new(DEFAULT_FILTER),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}
