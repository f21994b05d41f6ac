//! The README's shell examples, for the tests that run them as written against a live server.

/// The `sh` code blocks of the README.
pub fn shell_blocks() -> Vec<&'static str> {
    include_str!("../../README.md")
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .collect()
}

/// Runs `script` (an example with its addresses and paths filled in) with bash, stopping at
/// the first failing command; panics, showing `example` and what it printed, unless it
/// succeeds. Returns its stdout.
pub async fn run_example(example: &str, script: &str) -> String {
    let run = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .await
        .expect("bash (and the tools the example calls) on PATH");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{example}\nexited {:?}: {stdout}{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}
