//! Tracing to stderr: JSON lines by default, a human format on request.
//!
//! stdout belongs to JSON-RPC on the stdio transport, so no log line may ever go there.
//!
//! Log volume stays bounded whatever clients send: every string from a client is logged
//! through [`clip`], and a line that still comes out longer than [`MAX_LINE_BYTES`] (say, from
//! a dependency) is replaced by a short line saying so.

use std::{borrow::Cow, io::Write};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

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
        .with_writer(BoundedStderr {
            pretty: config.log_format == LogFormat::Pretty,
        });
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

/// The most of one client-supplied string (a name, an id, a header, an error text) a log line
/// carries.
pub const MAX_FIELD_BYTES: usize = 256;

/// The longest log line written; longer ones are replaced.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// `text` cut to [`MAX_FIELD_BYTES`] (on a character boundary), saying how long it was.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_FIELD_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// stderr, one formatted event per write, each at most [`MAX_LINE_BYTES`]; a longer one is
/// replaced by a short line in the same format.
#[derive(Clone, Copy)]
struct BoundedStderr {
    pretty: bool,
}

impl<'a> MakeWriter<'a> for BoundedStderr {
    type Writer = BoundedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for BoundedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        if line.len() <= MAX_LINE_BYTES {
            stderr.write_all(line)?;
        } else if self.pretty {
            writeln!(
                stderr,
                " WARN log_line_too_long: a log line of {} bytes was left out (longest written: {MAX_LINE_BYTES})",
                line.len()
            )?;
        } else {
            writeln!(
                stderr,
                r#"{{"level":"WARN","event":"log_line_too_long","bytes":{},"message":"a log line of {} bytes was left out (longest written: {MAX_LINE_BYTES})"}}"#,
                line.len(),
                line.len()
            )?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_long_text_on_a_character_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(300);
        let clipped = clip(&long);
        assert!(clipped.len() < MAX_FIELD_BYTES + 20, "{}", clipped.len());
        assert!(clipped.ends_with("… (600 bytes)"));
    }
}
