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
    /// With TLS only (`rediss://`): the directory of its certificates, and the CA's file.
    pub tls: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// Starts one; a port another process took in between is retried with a new one.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// One that requires `password` (`AUTH`), as a production Redis does.
    pub async fn start_with(password: Option<&str>) -> Self {
        Self::start_on(password, None).await
    }

    /// One that speaks TLS only, with a certificate for 127.0.0.1 from a CA of its own (made
    /// with `openssl`): [`Self::ca_file`] is what a client must trust.
    pub async fn start_tls(password: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("redis-tls-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let done = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl, to make the test CA");
            assert!(
                done.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&done.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=test-ca",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ]);
        Self::start_on(Some(password), Some(dir)).await
    }

    async fn start_on(password: Option<&str>, tls: Option<std::path::PathBuf>) -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port, password, tls.as_deref()).await {
                return Self {
                    child: Some(child),
                    port,
                    password: password.map(str::to_owned),
                    tls,
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// The CA a client must trust to reach a TLS one.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.tls.as_ref().expect("a TLS redis-server").join("ca.pem")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
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
            if let Some(child) = spawn(self.port, self.password.as_deref(), self.tls.as_deref()).await {
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

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, as with a Redis stuck
    /// on a slow disk or a full CPU. [`Self::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("redis-server is running") as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Asserts that every key matching `pattern` expires, within `max_ms`; returns how many.
    pub fn assert_expiring(&self, pattern: &str, max_ms: i64) -> usize {
        let keys = self.cli(&["--scan", "--pattern", pattern]);
        for key in keys.lines() {
            let ttl: i64 = self.cli(&["PTTL", key]).parse().unwrap();
            assert!(ttl > 0 && ttl <= max_ms, "{key} expires in {ttl} ms (at most {max_ms})");
        }
        keys.lines().count()
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = std::process::Command::new("redis-cli");
        command.args(["-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(password) = &self.password {
            command.args(["-a", password]);
        }
        if self.tls.is_some() {
            command.arg("--tls").arg("--cacert").arg(self.ca_file());
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
async fn spawn(port: u16, password: Option<&str>, tls: Option<&std::path::Path>) -> Option<Child> {
    let mut command = Command::new("redis-server");
    match tls {
        Some(dir) => {
            command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"));
        }
        None => {
            command.args(["--port", &port.to_string()]);
        }
    }
    command
        .args(["--bind", "127.0.0.1"])
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
