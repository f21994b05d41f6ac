//! Tracing to stderr: JSON lines by default, a human format on request.
//!
//! stdout belongs to JSON-RPC on the stdio transport, so no log line may ever go there.
//!
//! Log volume stays bounded whatever clients send: every string from a client is logged
//! through [`clip`], and a line that still comes out longer than [`MAX_LINE_BYTES`] (say, from
//! a dependency) is replaced by a short line saying so.

use std::{
    borrow::Cow,
    io::Write,
    sync::{Condvar, Mutex, Once, OnceLock, PoisonError},
    time::{Duration, Instant},
};

use tracing::{Level, Metadata};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

use crate::config::{LogConfig, LogFormat};

mod json;

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
    install_panic_hook();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BoundedStderr {
            pretty: config.log_format == LogFormat::Pretty,
        });
    match config.log_format {
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLine)
            .init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    #[cfg(feature = "otel")]
    crate::otel::init()?;
    #[cfg(not(feature = "otel"))]
    if let Some(name) = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .into_iter()
    .find(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
    {
        tracing::warn!(
            event = "otel_not_built",
            "{name} is set, but this build has no OpenTelemetry (cargo feature `otel`): no traces or metrics are exported"
        );
    }
    Ok(())
}

/// The most of one client-supplied string (a name, an id, a header, an error text) a log line
/// carries.
pub const MAX_FIELD_BYTES: usize = 256;

/// The longest log line written; longer ones are replaced.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// The first 8 characters of a session id, enough to follow one session through the log:
/// the whole id, with the caller's credentials, would reach the session.
pub fn id_prefix(id: &str) -> String {
    match id.char_indices().nth(8) {
        Some((end, _)) => format!("{}…", &id[..end]),
        None => id.to_owned(),
    }
}

/// `text` cut to [`MAX_FIELD_BYTES`] (on a character boundary), saying how long it was.
pub fn clip(text: &str) -> Cow<'_, str> {
    clip_to(text, MAX_FIELD_BYTES)
}

/// `text` cut to `most` bytes (on a character boundary), saying how long it was.
fn clip_to(text: &str, most: usize) -> Cow<'_, str> {
    if text.len() <= most {
        return Cow::Borrowed(text);
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// Lines a window may write one by one; past them, `info` lines wait for the window's end and
/// go out together. Under load this turns one `write(2)` per request (a tenth of a request's
/// CPU) into a few per window; a quiet server still writes each line at once.
const DIRECT_PER_WINDOW: u32 = 16;
const WINDOW: Duration = Duration::from_millis(10);

/// Lines held at most before the logging thread writes them itself.
const MAX_HELD_BYTES: usize = 64 * 1024;

/// stderr, where each formatted event of at most [`MAX_LINE_BYTES`] is written whole (a longer
/// one is replaced by a short line in the same format). Past [`DIRECT_PER_WINDOW`] lines in a
/// [`WINDOW`], `info` and `debug` lines are held and a background thread writes them when the
/// window ends (at most 10 ms late); `warn` and `error` lines are always written at once, after
/// any held before them. [`flush`] writes what is held (at exit, and from the panic hook).
#[derive(Clone, Copy)]
struct BoundedStderr {
    pretty: bool,
}

/// One event's writer: its level decides whether it may wait.
struct Line {
    pretty: bool,
    urgent: bool,
}

struct Batch {
    held: Vec<u8>,
    window_start: Option<Instant>,
    written_in_window: u32,
}

static BATCH: Mutex<Batch> = Mutex::new(Batch {
    held: Vec::new(),
    window_start: None,
    written_in_window: 0,
});
static HELD: Condvar = Condvar::new();
static FLUSHER: OnceLock<bool> = OnceLock::new();
static PANIC_HOOK: Once = Once::new();

/// Writes every held line to stderr now.
pub fn flush() {
    write_held(&mut BATCH.lock().unwrap_or_else(PoisonError::into_inner));
}

fn write_held(batch: &mut Batch) {
    if !batch.held.is_empty() {
        // A log line that cannot be written has nowhere else to go.
        let _ = std::io::stderr().lock().write_all(&batch.held);
        batch.held.clear();
    }
}

/// The thread that writes held lines when their window ends; it sleeps while none are held.
/// Started when a line is first held (a server that is never busy never starts it, and a start
/// does not wait for it). False when it could not be started: lines are then written at once.
fn flusher_running() -> bool {
    *FLUSHER.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("log-flusher".into()).spawn(|| {
            loop {
                let mut batch = BATCH.lock().unwrap_or_else(PoisonError::into_inner);
                while batch.held.is_empty() {
                    batch = HELD.wait(batch).unwrap_or_else(PoisonError::into_inner);
                }
                let due = batch
                    .window_start
                    .map_or(Duration::ZERO, |start| WINDOW.saturating_sub(start.elapsed()));
                drop(batch);
                std::thread::sleep(due);
                flush();
            }
        });
        spawned.is_ok()
    })
}

/// Held lines are written before a panic's report, which is itself a log line.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush();
            if !log_panic(info) {
                previous(info);
            }
        }));
    });
}

/// Logs a panic as one line in the configured format (a log shipper reading JSON lines would
/// choke on the standard library's plain-text report), with the backtrace as `RUST_BACKTRACE`
/// asks (`1`: the frames that matter, `full`: all). False, so the standard report is written
/// instead, before the logger is installed or when its filter leaves errors out. (Keep this
/// small: a panic inside a panic hook aborts the process.)
fn log_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    if !tracing::dispatcher::has_been_set() || !tracing::enabled!(Level::ERROR) {
        return false;
    }
    let message = info.payload_as_str().unwrap_or("(a panic without a message)");
    let location = info.location().map(ToString::to_string).unwrap_or_default();
    let thread = std::thread::current();
    let backtrace = match std::env::var("RUST_BACKTRACE").as_deref() {
        Ok("full") => Some(std::backtrace::Backtrace::force_capture().to_string()),
        Ok("0") | Err(_) => None,
        Ok(_) => Some(short(&std::backtrace::Backtrace::force_capture().to_string())),
    };
    tracing::error!(
        event = "panic",
        thread = thread.name().unwrap_or("unnamed"),
        location = location.as_str(),
        // A backtrace's first frames, within the line's bound: where it happened.
        backtrace = backtrace
            .as_deref()
            .map(|text| clip_to(text, MAX_LINE_BYTES / 2))
            .as_deref(),
        "a thread panicked: {}",
        clip(message)
    );
    true
}

/// A backtrace's frames between the panic machinery and the thread's start, as the standard
/// library's own report shows them.
fn short(backtrace: &str) -> String {
    let is_frame = |line: &&str| {
        line.trim_start()
            .split_once(':')
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
    };
    let lines: Vec<&str> = backtrace.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains("__rust_end_short_backtrace"))
        .and_then(|end| lines[end + 1..].iter().position(is_frame).map(|i| end + 1 + i))
        .unwrap_or(0);
    let end = lines[start..]
        .iter()
        .position(|line| line.contains("__rust_begin_short_backtrace"))
        .map_or(lines.len(), |i| start + i);
    lines[start..end].join("\n")
}

impl<'a> MakeWriter<'a> for BoundedStderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            pretty: self.pretty,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            pretty: self.pretty,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Write for Line {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let too_long;
        let text = if line.len() <= MAX_LINE_BYTES {
            line
        } else {
            too_long = if self.pretty {
                format!(
                    " WARN log_line_too_long: a log line of {} bytes was left out (longest written: {MAX_LINE_BYTES})\n",
                    line.len()
                )
            } else {
                format!(
                    r#"{{"level":"WARN","event":"log_line_too_long","bytes":{},"message":"a log line of {} bytes was left out (longest written: {MAX_LINE_BYTES})"}}"#,
                    line.len(),
                    line.len()
                ) + "\n"
            };
            too_long.as_bytes()
        };
        let mut batch = BATCH.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if batch
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            batch.window_start = Some(now);
            batch.written_in_window = 0;
        }
        let was_empty = batch.held.is_empty();
        batch.held.extend_from_slice(text);
        if self.urgent || (was_empty && batch.written_in_window < DIRECT_PER_WINDOW) {
            batch.written_in_window += 1;
            write_held(&mut batch);
        } else if batch.held.len() >= MAX_HELD_BYTES || !flusher_running() {
            write_held(&mut batch);
        } else if was_empty {
            HELD.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

    #[test]
    fn a_panic_backtrace_keeps_the_frames_between_the_panic_machinery_and_the_thread_start() {
        let full = "   0: log_panic\n             at src/telemetry.rs:1:1\n   1: std::sys::backtrace::__rust_end_short_backtrace\n             at std/src/sys/backtrace.rs:1:1\n   2: core::panicking::panic_fmt\n   3: my_tool\n             at src/tools/mine.rs:9:9\n   4: std::sys::backtrace::__rust_begin_short_backtrace\n   5: start_thread";
        assert_eq!(
            short(full),
            "   2: core::panicking::panic_fmt\n   3: my_tool\n             at src/tools/mine.rs:9:9"
        );
        assert_eq!(short("   0: main"), "   0: main", "without the markers, all of it");
    }
}
