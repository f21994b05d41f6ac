//! The README's shell examples that talk to a server, run against a live one, so the docs
//! cannot rot: every `sh` block that calls `http://127.0.0.1:8080/mcp` with curl runs against
//! a server on an ephemeral port and must print tool results and no error.

mod support;

use support::{
    FakeUpstream, HttpServer,
    readme::{run_example, shell_blocks},
};

const DOCUMENTED_ADDR: &str = "127.0.0.1:8080";

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
        let stdout = run_example(example, &script).await;
        assert!(stdout.contains(r#""isError":false"#), "{example}\nprinted: {stdout}");
        assert!(!stdout.contains(r#""error""#), "{example}\nprinted: {stdout}");
    }
}
