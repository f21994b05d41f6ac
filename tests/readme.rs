//! The README's shell examples that talk to a server, run against a live one, so the docs
//! cannot rot: every `sh` block that calls `http://127.0.0.1:8080/mcp` with curl runs against
//! a server on an ephemeral port and must print tool results and no error.

mod support;

use support::{FakeUpstream, HttpServer};

const README: &str = include_str!("../README.md");
const DOCUMENTED_ADDR: &str = "127.0.0.1:8080";

/// The `sh` code blocks of the README.
fn shell_blocks() -> Vec<&'static str> {
    README
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .collect()
}

#[tokio::test]
async fn the_curl_examples_work_as_written() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let examples: Vec<_> = shell_blocks()
        .into_iter()
        .filter(|b| b.contains("curl") && b.contains(&format!("http://{DOCUMENTED_ADDR}/mcp")))
        .collect();
    assert!(
        examples.len() >= 2,
        "the README shows both protocol generations with curl"
    );
    for example in examples {
        let script = example.replace(DOCUMENTED_ADDR, &server.addr.to_string());
        let run = tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .output()
            .await
            .expect("bash and curl (on every CI image; `apt-get install curl` otherwise)");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{example}\nexited {:?}: {stdout}{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains(r#""isError":false"#), "{example}\nprinted: {stdout}");
        assert!(!stdout.contains(r#""error""#), "{example}\nprinted: {stdout}");
    }
}
