//! A real `redis-server` on a free loopback port, for the suites of replicas that share state.
//! `make redis` installs it (Debian's package); without it, a test fails saying so.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// The password it requires, if any.
    password: Option<String>,
}

impl RedisServer {
    /// Starts one; a port another process took in between is retried with a new one.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// One that requires `password` (`AUTH`), as a production Redis does.
    pub async fn start_with(password: Option<&str>) -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port, password).await {
                return Self {
                    child: Some(child),
                    port,
                    password: password.map(str::to_owned),
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Stops it (as a crash would); [`Self::restart`] brings it back on the same port.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("killing redis-server");
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = spawn(self.port, self.password.as_deref()).await {
                self.child = Some(child);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = std::process::Command::new("redis-cli");
        command.args(["-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(password) = &self.password {
            command.args(["-a", password]);
        }
        let output = command
            .args(args)
            .output()
            .expect("running redis-cli (make redis installs it)");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// Starts `redis-server` on `port`, in memory only; `None` if it did not come up there.
async fn spawn(port: u16, password: Option<&str>) -> Option<Child> {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"]);
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("redis-server is not installed ({e}): run `make redis`"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        let _ = child.kill().await;
        return None;
    }
    // Keep reading its output so a full pipe never blocks it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(child)
}
