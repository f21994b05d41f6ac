//! Startup configuration: every setting is listed in --help with its MCP_* variable, and a
//! bad value stops startup with one line naming the setting and exit code 2.

use std::process::{Command, Output};

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let serve = String::from_utf8(run(&["serve", "--help"], &[]).stdout).unwrap();
    for setting in [
        "--transport",
        "MCP_TRANSPORT",
        "--bind",
        "MCP_BIND",
        "--drain-timeout",
        "MCP_DRAIN_TIMEOUT",
        "--log-format",
        "MCP_LOG_FORMAT",
        "--log-level",
        "MCP_LOG_LEVEL",
        "--geocoding-url",
        "MCP_GEOCODING_URL",
        "--forecast-url",
        "MCP_FORECAST_URL",
        "--upstream-timeout",
        "MCP_UPSTREAM_TIMEOUT",
    ] {
        assert!(
            serve.contains(setting),
            "serve --help lacks {setting}:\n{serve}"
        );
    }
    let check = String::from_utf8(run(&["healthcheck", "--help"], &[]).stdout).unwrap();
    for setting in [
        "--url",
        "MCP_HEALTHCHECK_URL",
        "--bind",
        "MCP_BIND",
        "--timeout",
        "MCP_HEALTHCHECK_TIMEOUT",
    ] {
        assert!(
            check.contains(setting),
            "healthcheck --help lacks {setting}:\n{check}"
        );
    }
}

#[test]
fn bad_settings_stop_startup_with_one_line_and_exit_2() {
    // (arguments, environment, words the one-line message must contain)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
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
        (
            &["serve", "--bind", "256.0.0.1:80"],
            &[],
            &["--bind", "MCP_BIND"],
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
            &[("MCP_FORECAST_URL", "ftp://example.com")],
            &["--forecast-url", "MCP_FORECAST_URL", "http"],
        ),
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
            output.stdout.is_empty(),
            "{args:?} {envs:?}: wrote to stdout"
        );
    }
}

#[test]
fn an_address_in_use_fails_startup_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        &["serve"],
        &[("MCP_TRANSPORT", "http"), ("MCP_BIND", &addr)],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("MCP_BIND"),
        "{stderr}"
    );
}
