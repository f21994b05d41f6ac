//! Typed settings from flags and `MCP_*` environment variables, and all startup validation.
//!
//! Every setting is parsed into its final type here, so a bad value stops startup with one
//! line naming the setting (exit code 2) instead of failing later at runtime.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum, error::ContextKind};
use reqwest::Url;

/// Exit code for a configuration error, as for any command-line usage error.
pub const CONFIG_ERROR_EXIT: i32 = 2;

#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at startup; its size does not matter"
)]
pub enum Command {
    /// Serve MCP over stdio (for clients that spawn the process) or Streamable HTTP.
    Serve(ServeConfig),
    /// Probe the HTTP health endpoint: exit 0 when healthy, 1 otherwise (for container
    /// HEALTHCHECKs, which have no shell or curl).
    Healthcheck(HealthcheckConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// Streamable HTTP at /mcp, with /healthz and /readyz.
    Http,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Transport to serve on.
    #[arg(long, env = "MCP_TRANSPORT", value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,

    /// Address the HTTP transport listens on (host:port; port 0 picks a free port).
    #[arg(
        long,
        env = "MCP_BIND",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub bind: SocketAddr,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before they are cancelled.
    #[arg(long, env = "MCP_DRAIN_TIMEOUT", default_value = "25", value_name = "SECONDS",
          value_parser = seconds_in(0..=3600))]
    pub drain_timeout: Duration,

    #[command(flatten)]
    pub log: LogConfig,

    #[command(flatten)]
    pub upstream: UpstreamConfig,
}

#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log line format (logs always go to stderr; stdout is reserved for JSON-RPC).
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `debug,hyper=warn` [default: RUST_LOG, else info].
    #[arg(long, env = "MCP_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamConfig {
    /// Base URL of the Open-Meteo geocoding API.
    #[arg(long, env = "MCP_GEOCODING_URL", default_value = "https://geocoding-api.open-meteo.com",
          value_parser = http_url)]
    pub geocoding_url: Url,

    /// Base URL of the Open-Meteo forecast API.
    #[arg(long, env = "MCP_FORECAST_URL", default_value = "https://api.open-meteo.com",
          value_parser = http_url)]
    pub forecast_url: Url,

    /// Seconds one attempt at an upstream request may take: connecting, sending, and reading
    /// the whole answer.
    #[arg(long, env = "MCP_UPSTREAM_TIMEOUT", default_value = "10", value_name = "SECONDS",
          value_parser = seconds_in(1..=300))]
    pub upstream_timeout: Duration,

    /// Seconds one upstream call may take in all: every attempt and the waits between them.
    #[arg(long, env = "MCP_UPSTREAM_DEADLINE", default_value = "30", value_name = "SECONDS",
          value_parser = seconds_in(1..=600))]
    pub upstream_deadline: Duration,

    /// Attempts per upstream call, the first included; 1 turns retries off.
    #[arg(long, env = "MCP_UPSTREAM_ATTEMPTS", default_value = "3", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub upstream_attempts: u32,

    /// Milliseconds the first retry waits at most; each later one waits up to twice as long
    /// as the one before (a random share of it, so clients do not retry in step).
    #[arg(long, env = "MCP_UPSTREAM_BACKOFF", default_value = "250", value_name = "MILLISECONDS",
          value_parser = millis_in(1..=60_000))]
    pub upstream_backoff: Duration,

    /// Hosts upstream calls may reach, comma-separated [default: the hosts of --geocoding-url
    /// and --forecast-url].
    #[arg(long, env = "MCP_UPSTREAM_ALLOW_HOSTS", value_name = "HOSTS", value_delimiter = ',',
          value_parser = host_name)]
    pub upstream_allow_hosts: Vec<url::Host>,

    /// Networks upstream calls may reach although they are not public (loopback, private,
    /// link-local, ...), as comma-separated CIDRs or addresses, e.g. 127.0.0.0/8 for a
    /// service on this machine [default: none].
    #[arg(long, env = "MCP_UPSTREAM_ALLOW_PRIVATE", value_name = "CIDRS", value_delimiter = ',',
          value_parser = network)]
    pub upstream_allow_private: Vec<ipnet::IpNet>,
}

impl UpstreamConfig {
    /// The hosts upstream calls may reach: the explicit list, else the two APIs' hosts.
    pub fn allowed_hosts(&self) -> Vec<url::Host> {
        if !self.upstream_allow_hosts.is_empty() {
            return self.upstream_allow_hosts.clone();
        }
        [&self.geocoding_url, &self.forecast_url]
            .into_iter()
            .filter_map(|url| url.host().map(|host| host.to_owned()))
            .collect()
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckConfig {
    /// Health URL to probe [default: /healthz on MCP_BIND, through loopback when it binds
    /// all interfaces].
    #[arg(long, env = "MCP_HEALTHCHECK_URL", value_parser = http_url)]
    pub url: Option<Url>,

    /// Address the server listens on; used to build the default URL.
    #[arg(
        long,
        env = "MCP_BIND",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub bind: SocketAddr,

    /// Seconds to wait for an answer.
    #[arg(long, env = "MCP_HEALTHCHECK_TIMEOUT", default_value = "3", value_name = "SECONDS",
          value_parser = seconds_in(1..=60))]
    pub timeout: Duration,
}

impl HealthcheckConfig {
    /// The URL to probe: the explicit one, or `/healthz` on the bind address.
    pub fn target(&self) -> Url {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let mut addr = self.bind;
        if addr.ip().is_unspecified() {
            // A server bound to 0.0.0.0 / [::] is reachable through loopback.
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Url::parse(&format!("http://{addr}/healthz")).expect("a socket address makes a valid URL")
    }
}

impl Cli {
    /// Parses flags and environment; on a bad setting prints one line naming it and exits 2.
    pub fn parse_or_exit() -> Self {
        match Self::try_parse() {
            Ok(cli) => cli,
            Err(err) if !err.use_stderr() => err.exit(), // --help, --version
            Err(err) => {
                eprintln!("{}", one_line(&err));
                std::process::exit(CONFIG_ERROR_EXIT);
            }
        }
    }
}

/// Folds clap's multi-line message into one line and adds the setting's environment variable.
fn one_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(flag) = err.get(ContextKind::InvalidArg).map(ToString::to_string)
        && let Some(env) = env_of_flag(&flag)
    {
        line.push_str(&format!(" (env {env})"));
    }
    line
}

/// The environment variable behind a flag such as `--bind <ADDR>`, looked up in the CLI itself.
fn env_of_flag(flag: &str) -> Option<String> {
    let long = flag.trim_start_matches('-').split([' ', '=']).next()?;
    let cli = <Cli as clap::CommandFactory>::command();
    cli.get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
}

/// A value parser for a whole number of seconds within `range`.
fn seconds_in(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let secs: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number of seconds, got '{raw}'"))?;
        if !range.contains(&secs) {
            return Err(format!(
                "{secs} is out of range ({}..={} seconds)",
                range.start(),
                range.end()
            ));
        }
        Ok(Duration::from_secs(secs))
    }
}

/// A value parser for a whole number of milliseconds within `range`.
fn millis_in(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let ms: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number of milliseconds, got '{raw}'"))?;
        if !range.contains(&ms) {
            return Err(format!(
                "{ms} is out of range ({}..={} milliseconds)",
                range.start(),
                range.end()
            ));
        }
        Ok(Duration::from_millis(ms))
    }
}

/// A value parser for a host name or IP address (no scheme, port or path).
fn host_name(raw: &str) -> Result<url::Host, String> {
    let raw = raw.trim();
    let bare = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    let host = match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => url::Host::Ipv4(ip),
        Ok(std::net::IpAddr::V6(ip)) => url::Host::Ipv6(ip),
        Err(_) if raw.contains([':', '/', '@']) => {
            return Err(format!(
                "expected a host name or IP address, without scheme, port or path, got '{raw}'"
            ));
        }
        Err(_) => url::Host::parse(raw).map_err(|e| format!("not a host name: {e}"))?,
    };
    Ok(host)
}

/// A value parser for a network in CIDR notation, or one address.
fn network(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("expected a network such as 127.0.0.0/8 or an address, got '{raw}'"))
}

/// A value parser for an absolute http(s) URL.
fn http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parser_enforces_range() {
        let parse = seconds_in(1..=5);
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert!(parse("0").unwrap_err().contains("out of range"));
        assert!(parse("x").unwrap_err().contains("whole number"));
    }

    #[test]
    fn healthcheck_targets_loopback_for_wildcard_bind() {
        let cfg = HealthcheckConfig {
            url: None,
            bind: "0.0.0.0:9000".parse().unwrap(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(cfg.target().as_str(), "http://127.0.0.1:9000/healthz");
    }

    #[test]
    fn host_and_network_parsers_normalise_what_they_accept() {
        use url::Host;
        assert_eq!(
            host_name(" API.Example.com ").unwrap(),
            Host::Domain("api.example.com".to_owned())
        );
        assert_eq!(host_name("[::1]").unwrap(), host_name("::1").unwrap());
        assert_eq!(
            host_name("127.0.0.1").unwrap(),
            Host::<String>::Ipv4([127, 0, 0, 1].into())
        );
        for bad in [
            "example.com:443",
            "https://example.com",
            "example.com/x",
            "",
        ] {
            assert!(host_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            network("127.0.0.1").unwrap(),
            "127.0.0.1/32".parse().unwrap()
        );
        assert!(network("fd00::/8").is_ok());
        assert!(network("10.0.0.0/33").is_err());
    }

    #[test]
    fn the_allow_list_defaults_to_the_api_hosts() {
        let cli = Cli::try_parse_from(["mcp-starter", "serve"]).unwrap();
        let Command::Serve(config) = cli.command else {
            unreachable!()
        };
        let hosts: Vec<_> = config
            .upstream
            .allowed_hosts()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            hosts,
            ["geocoding-api.open-meteo.com", "api.open-meteo.com"]
        );
        assert!(config.upstream.upstream_allow_private.is_empty());
    }

    #[test]
    fn cli_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
