//! Startup configuration: every setting is listed in --help with its MCP_* variable, and a
//! bad value, or a combination that would expose the server unsafely, stops startup with one
//! line naming the setting and exit code 2.

use std::process::{Command, Output};

const TOKEN: &str = "some-token-0123456789 someone";

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command.args(args).envs(envs.iter().copied()).output().unwrap()
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let serve = String::from_utf8(run(&["serve", "--help"], &[]).stdout).unwrap();
    let settings = [
        ("--transport", "MCP_TRANSPORT"),
        ("--bind", "MCP_BIND"),
        ("--health-bind", "MCP_HEALTH_BIND"),
        ("--drain-timeout", "MCP_DRAIN_TIMEOUT"),
        ("--log-format", "MCP_LOG_FORMAT"),
        ("--log-level", "MCP_LOG_LEVEL"),
        ("--public-url", "MCP_PUBLIC_URL"),
        ("--allowed-hosts", "MCP_ALLOWED_HOSTS"),
        ("--allowed-origins", "MCP_ALLOWED_ORIGINS"),
        ("--max-body-bytes", "MCP_MAX_BODY_BYTES"),
        ("--http-rate-limit", "MCP_HTTP_RATE_LIMIT"),
        ("--auth-failure-limit", "MCP_AUTH_FAILURE_LIMIT"),
        ("--max-body-bytes-in-flight", "MCP_MAX_BODY_BYTES_IN_FLIGHT"),
        ("--body-read-timeout", "MCP_BODY_READ_TIMEOUT"),
        ("--header-read-timeout", "MCP_HEADER_READ_TIMEOUT"),
        ("--idle-timeout", "MCP_IDLE_TIMEOUT"),
        ("--max-connections", "MCP_MAX_CONNECTIONS"),
        ("--max-connections-per-client", "MCP_MAX_CONNECTIONS_PER_CLIENT"),
        ("--max-event-streams", "MCP_MAX_EVENT_STREAMS"),
        ("--max-sessions", "MCP_MAX_SESSIONS"),
        ("--max-sessions-per-client", "MCP_MAX_SESSIONS_PER_CLIENT"),
        ("--session-idle-timeout", "MCP_SESSION_IDLE_TIMEOUT"),
        ("--auth", "MCP_AUTH"),
        ("--auth-tokens", "MCP_AUTH_TOKENS"),
        ("--auth-tokens-file", "MCP_AUTH_TOKENS_FILE"),
        ("--required-scopes", "MCP_REQUIRED_SCOPES"),
        ("--jwt-jwks-url", "MCP_JWT_JWKS_URL"),
        ("--jwt-public-key-file", "MCP_JWT_PUBLIC_KEY_FILE"),
        ("--jwt-issuer", "MCP_JWT_ISSUER"),
        ("--jwt-algorithms", "MCP_JWT_ALGORITHMS"),
        ("--jwt-leeway", "MCP_JWT_LEEWAY"),
        ("--jwks-refetch-cooldown", "MCP_JWKS_REFETCH_COOLDOWN"),
        ("--introspection-url", "MCP_INTROSPECTION_URL"),
        ("--introspection-client-id", "MCP_INTROSPECTION_CLIENT_ID"),
        ("--introspection-client-secret", "MCP_INTROSPECTION_CLIENT_SECRET"),
        (
            "--introspection-client-secret-file",
            "MCP_INTROSPECTION_CLIENT_SECRET_FILE",
        ),
        ("--introspection-cache-ttl", "MCP_INTROSPECTION_CACHE_TTL"),
        ("--authorization-servers", "MCP_AUTHORIZATION_SERVERS"),
        ("--auth-token", "MCP_AUTH_TOKEN"),
        ("--rate-limits", "MCP_RATE_LIMITS"),
        ("--tool-timeouts", "MCP_TOOL_TIMEOUTS"),
        ("--rate-limit-eviction", "MCP_RATE_LIMIT_EVICTION"),
        // weather-example:begin
        ("--geocoding-url", "MCP_GEOCODING_URL"),
        ("--forecast-url", "MCP_FORECAST_URL"),
        // weather-example:end
        ("--upstream-timeout", "MCP_UPSTREAM_TIMEOUT"),
        ("--upstream-deadline", "MCP_UPSTREAM_DEADLINE"),
        ("--upstream-attempts", "MCP_UPSTREAM_ATTEMPTS"),
        ("--upstream-backoff", "MCP_UPSTREAM_BACKOFF"),
        ("--upstream-allow-hosts", "MCP_UPSTREAM_ALLOW_HOSTS"),
        ("--upstream-allow-private", "MCP_UPSTREAM_ALLOW_PRIVATE"),
        ("--upstream-max-connections", "MCP_UPSTREAM_MAX_CONNECTIONS"),
        (
            "--upstream-max-connections-per-host",
            "MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST",
        ),
        ("--max-task-result-bytes", "MCP_MAX_TASK_RESULT_BYTES"),
        ("--max-task-result-bytes-in-all", "MCP_MAX_TASK_RESULT_BYTES_IN_ALL"),
    ];
    for (flag, env) in settings {
        assert!(
            serve.contains(&format!("{flag} <")) && serve.contains(&format!("[env: {env}")),
            "serve --help lacks {flag} / {env}:\n{serve}"
        );
    }
    let check = String::from_utf8(run(&["healthcheck", "--help"], &[]).stdout).unwrap();
    for setting in [
        "--url",
        "MCP_HEALTHCHECK_URL",
        "--bind",
        "MCP_BIND",
        "--health-bind",
        "MCP_HEALTH_BIND",
        "--timeout",
        "MCP_HEALTHCHECK_TIMEOUT",
    ] {
        assert!(check.contains(setting), "healthcheck --help lacks {setting}:\n{check}");
    }
    // Secrets given through the environment are not echoed by --help.
    let output = run(
        &["serve", "--help"],
        &[
            ("MCP_AUTH_TOKENS", TOKEN),
            ("MCP_AUTH_TOKEN", "secret-value-0123456789"),
        ],
    );
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        !help.contains("some-token") && !help.contains("secret-value"),
        "--help shows a secret"
    );
}

#[test]
fn bad_settings_stop_startup_with_one_line_and_exit_2() {
    // (arguments, environment, words the one-line message must contain)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let http_exposed = [("MCP_TRANSPORT", "http"), ("MCP_BIND", "0.0.0.0:0")];
    let with_auth = [
        http_exposed[0],
        http_exposed[1],
        ("MCP_AUTH", "static"),
        ("MCP_AUTH_TOKENS", TOKEN),
    ];
    let with_hosts = [
        with_auth[0],
        with_auth[1],
        with_auth[2],
        with_auth[3],
        ("MCP_ALLOWED_HOSTS", "mcp.example.com"),
    ];
    let jwt = [("MCP_AUTH", "jwt"), ("MCP_JWT_ISSUER", "https://issuer.test")];
    let jwt_jwks = [jwt[0], jwt[1], ("MCP_JWT_JWKS_URL", "https://issuer.test/jwks")];
    let jwt_both = [
        jwt_jwks[0],
        jwt_jwks[1],
        jwt_jwks[2],
        ("MCP_JWT_PUBLIC_KEY_FILE", "/key.pem"),
    ];
    let introspection = [
        ("MCP_AUTH", "introspection"),
        ("MCP_INTROSPECTION_URL", "https://issuer.test/introspect"),
        ("MCP_INTROSPECTION_CLIENT_ID", "mcp-server"),
        ("MCP_INTROSPECTION_CLIENT_SECRET", "secret-0123456789"),
        ("MCP_AUTHORIZATION_SERVERS", "https://issuer.test"),
    ];
    let cases: &[Case] = &[
        (
            &["serve", "--transport", "carrier-pigeon"],
            &[],
            &["--transport", "MCP_TRANSPORT", "carrier-pigeon"],
        ),
        (
            &["serve"],
            &[("MCP_TRANSPORT", "websocket")],
            &["--transport", "MCP_TRANSPORT"],
        ),
        (
            &["serve"],
            &[("MCP_BIND", "localhost")],
            &["--bind", "MCP_BIND", "localhost"],
        ),
        (&["serve", "--bind", "256.0.0.1:80"], &[], &["--bind", "MCP_BIND"]),
        (
            &["serve"],
            &[("MCP_MAX_BODY_BYTES", "8192"), ("MCP_MAX_BODY_BYTES_IN_FLIGHT", "4096")],
            &["MCP_MAX_BODY_BYTES_IN_FLIGHT", "at least MCP_MAX_BODY_BYTES"],
        ),
        (
            &["serve"],
            &[
                ("MCP_MAX_TASK_RESULT_BYTES", "8192"),
                ("MCP_MAX_TASK_RESULT_BYTES_IN_ALL", "4096"),
            ],
            &["MCP_MAX_TASK_RESULT_BYTES_IN_ALL", "at least MCP_MAX_TASK_RESULT_BYTES"],
        ),
        (
            &["serve", "--upstream-max-connections-per-host", "0"],
            &[],
            &[
                "--upstream-max-connections-per-host",
                "MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST",
            ],
        ),
        (
            &["serve", "--max-sessions", "0"],
            &[],
            &["--max-sessions", "MCP_MAX_SESSIONS"],
        ),
        (
            &["serve", "--header-read-timeout", "0"],
            &[],
            &["--header-read-timeout", "MCP_HEADER_READ_TIMEOUT"],
        ),
        // The benchmark's guard switch exists only in builds with the `bench` feature.
        (
            &["serve", "--bench-guard-off"],
            &[],
            &["unexpected argument", "--bench-guard-off"],
        ),
        (
            &["serve"],
            &[("MCP_DRAIN_TIMEOUT", "99999")],
            &["--drain-timeout", "MCP_DRAIN_TIMEOUT", "out of range"],
        ),
        (
            &["serve"],
            &[("MCP_DRAIN_TIMEOUT", "-1")],
            &["--drain-timeout", "MCP_DRAIN_TIMEOUT"],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_TIMEOUT", "0")],
            &["--upstream-timeout", "MCP_UPSTREAM_TIMEOUT", "out of range"],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_DEADLINE", "0")],
            &["--upstream-deadline", "MCP_UPSTREAM_DEADLINE", "out of range"],
        ),
        (
            &["serve", "--upstream-attempts", "11"],
            &[],
            &["--upstream-attempts", "MCP_UPSTREAM_ATTEMPTS", "11"],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_ATTEMPTS", "many")],
            &["--upstream-attempts", "MCP_UPSTREAM_ATTEMPTS", "many"],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_BACKOFF", "1.5s")],
            &["--upstream-backoff", "MCP_UPSTREAM_BACKOFF", "milliseconds"],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_ALLOW_HOSTS", "api.example.com,https://evil.example")],
            &[
                "--upstream-allow-hosts",
                "MCP_UPSTREAM_ALLOW_HOSTS",
                "https://evil.example",
            ],
        ),
        (
            &["serve"],
            &[("MCP_UPSTREAM_ALLOW_PRIVATE", "10.0.0.0/33")],
            &["--upstream-allow-private", "MCP_UPSTREAM_ALLOW_PRIVATE", "10.0.0.0/33"],
        ),
        // weather-example:begin
        (
            &["serve"],
            &[("MCP_FORECAST_URL", "ftp://example.com")],
            &["--forecast-url", "MCP_FORECAST_URL", "http"],
        ),
        // weather-example:end
        (
            &["serve"],
            &[("MCP_LOG_FORMAT", "xml")],
            &["--log-format", "MCP_LOG_FORMAT"],
        ),
        (
            &["serve"],
            &[("MCP_LOG_LEVEL", "info,[")],
            &["--log-level", "MCP_LOG_LEVEL"],
        ),
        (&["serve"], &[("RUST_LOG", "info,[")], &["RUST_LOG"]),
        (
            &["healthcheck"],
            &[("MCP_HEALTHCHECK_TIMEOUT", "soon")],
            &["--timeout", "MCP_HEALTHCHECK_TIMEOUT"],
        ),
        (
            &["serve"],
            &[("MCP_RATE_LIMITS", "convert_temperature=fast")],
            &["--rate-limits", "MCP_RATE_LIMITS", "fast"],
        ),
        (
            &["serve"],
            &[("MCP_RATE_LIMITS", "no_such_tool=1/s")],
            &["no_such_tool", "MCP_RATE_LIMITS"],
        ),
        (
            &["serve"],
            &[("MCP_TOOL_TIMEOUTS", "convert_temperature=0")],
            &["--tool-timeouts", "MCP_TOOL_TIMEOUTS"],
        ),
        (
            &["serve"],
            &[("MCP_HTTP_RATE_LIMIT", "0/s")],
            &["--http-rate-limit", "MCP_HTTP_RATE_LIMIT"],
        ),
        (
            &["serve"],
            &[("MCP_MAX_BODY_BYTES", "10")],
            &["--max-body-bytes", "MCP_MAX_BODY_BYTES"],
        ),
        (
            &["serve"],
            &[("MCP_ALLOWED_ORIGINS", "not an origin")],
            &["--allowed-origins", "MCP_ALLOWED_ORIGINS"],
        ),
        (
            &["serve"],
            &[("MCP_ALLOWED_HOSTS", "mcp.example.com:http")],
            &["--allowed-hosts", "MCP_ALLOWED_HOSTS"],
        ),
        (&["serve"], &[("MCP_AUTH", "kerberos")], &["--auth", "MCP_AUTH"]),
        (
            &["serve"],
            &[("MCP_JWT_ALGORITHMS", "ES256,HS256")],
            &["--jwt-algorithms", "MCP_JWT_ALGORITHMS", "HMAC"],
        ),
        (
            &["serve"],
            &[("MCP_JWT_ALGORITHMS", "none")],
            &["--jwt-algorithms", "MCP_JWT_ALGORITHMS"],
        ),
        // Fail closed: exposure needs authentication, an allowed-hosts list and a public URL.
        (&["serve"], &http_exposed, &["not loopback", "MCP_AUTH"]),
        (&["serve"], &with_auth, &["not loopback", "MCP_ALLOWED_HOSTS"]),
        (&["serve"], &with_hosts, &["MCP_PUBLIC_URL"]),
        // Each auth mode needs its inputs.
        (
            &["serve"],
            &[("MCP_AUTH", "static")],
            &["MCP_AUTH_TOKENS", "MCP_AUTH_TOKENS_FILE"],
        ),
        (
            &["serve"],
            &[("MCP_AUTH", "static"), ("MCP_AUTH_TOKENS", "short alice")],
            &["MCP_AUTH_TOKENS", "16 characters"],
        ),
        (
            &["serve"],
            &[("MCP_AUTH", "static"), ("MCP_AUTH_TOKENS_FILE", "/nonexistent/tokens")],
            &["MCP_AUTH_TOKENS_FILE"],
        ),
        (&["serve"], &[("MCP_AUTH", "jwt")], &["MCP_JWT_ISSUER"]),
        (&["serve"], &jwt, &["MCP_JWT_JWKS_URL", "MCP_JWT_PUBLIC_KEY_FILE"]),
        (&["serve"], &jwt_both, &["exactly one", "MCP_JWT_JWKS_URL"]),
        (&["serve"], &jwt_jwks, &["audience", "MCP_PUBLIC_URL"]),
        (&["serve"], &[("MCP_AUTH", "introspection")], &["MCP_INTROSPECTION_URL"]),
        (&["serve"], &introspection[..2], &["MCP_INTROSPECTION_CLIENT_ID"]),
        (
            &["serve"],
            &introspection[..3],
            &["exactly one", "MCP_INTROSPECTION_CLIENT_SECRET_FILE"],
        ),
        (&["serve"], &introspection[..4], &["MCP_AUTHORIZATION_SERVERS"]),
        (&["serve"], &introspection, &["audience", "MCP_PUBLIC_URL"]),
        (
            &["serve"],
            &[
                introspection[0],
                ("MCP_INTROSPECTION_URL", "http://issuer.test/introspect"),
            ],
            &["MCP_INTROSPECTION_URL", "https"],
        ),
        (
            &["serve"],
            &[("MCP_AUTH_TOKEN", "some-token-0123456789")],
            &["MCP_AUTH_TOKEN", "MCP_AUTH"],
        ),
        (
            &["serve"],
            &[("MCP_REQUIRED_SCOPES", "mcp:tools")],
            &["MCP_REQUIRED_SCOPES", "MCP_AUTH"],
        ),
    ];
    for (args, envs, expected) in cases {
        let output = run(args, envs);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?} {envs:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?} {envs:?}: not one line: {stderr}"
        );
        for word in *expected {
            assert!(
                stderr.contains(word),
                "{args:?} {envs:?}: '{word}' missing from: {stderr}"
            );
        }
        assert!(
            !stderr.contains("some-token"),
            "{args:?}: a token in the message: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?} {envs:?}: wrote to stdout");
    }
}

#[test]
fn an_address_in_use_fails_startup_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["serve"], &[("MCP_TRANSPORT", "http"), ("MCP_BIND", &addr)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("MCP_BIND"),
        "{stderr}"
    );
}
