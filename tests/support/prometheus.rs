//! A real Prometheus server (Debian's package; `make observability-check` installs it) on a free
//! loopback port, scraping one target every second, and PromQL queries against it.

use std::{
    net::SocketAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::process::{Child, Command};

pub struct Prometheus {
    _child: Child,
    _dir: TempDir,
    url: String,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    /// Starts one scraping `target`'s `/metrics`; a port taken in between is retried.
    pub async fn start(target: SocketAddr) -> Self {
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = std::env::temp_dir().join(format!("prometheus-{}-{attempt}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let config = format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: mcp\n    static_configs:\n      - targets: ['{target}']\n"
            );
            std::fs::write(dir.join("prometheus.yml"), config).unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("prometheus is not installed ({e}): run `make observability-check`"));
            let prometheus = Self {
                _child: child,
                _dir: TempDir(dir),
                url: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(ready) = reqwest::get(format!("{}/-/ready", prometheus.url)).await
                    && ready.status() == 200
                {
                    return prometheus;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("prometheus did not start on any of 5 free ports");
    }

    /// Polls `query` (an instant vector with one sample) until `done` holds for its value, at
    /// most 30 s (scrapes come every second), and returns that value.
    pub async fn value_when(&self, query: &str, done: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            let answer: Value = reqwest::Client::new()
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", query)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let value = answer["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(value) = value
                && done(value)
            {
                return value;
            }
            last = Some(answer);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("{query}: no satisfying value within 30 s; last answer {last:?}");
    }
}
