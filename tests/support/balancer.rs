//! A load balancer in front of replicas, as small as one: every connection goes to the replica
//! chosen at the moment it opens, and pointing it elsewhere closes the connections open so far
//! (as a balancer does when it takes a backend out), so a client's next request goes to the
//! new replica.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
};

pub struct Balancer {
    pub addr: SocketAddr,
    backend: Arc<AtomicU16>,
    /// Changes each time the balancer is pointed elsewhere; open connections end then.
    moved: tokio::sync::watch::Sender<u64>,
}

impl Balancer {
    pub async fn start(backend: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let port = Arc::new(AtomicU16::new(backend.port()));
        let chosen = port.clone();
        let (moved, watch) = tokio::sync::watch::channel(0);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = SocketAddr::from(([127, 0, 0, 1], chosen.load(Ordering::SeqCst)));
                let mut watch = watch.clone();
                watch.mark_unchanged();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = watch.changed() => {}
                        }
                    }
                });
            }
        });
        Self {
            addr,
            backend: port,
            moved,
        }
    }

    /// Sends new connections to `backend` from now on.
    pub fn point_to(&self, backend: SocketAddr) {
        self.backend.store(backend.port(), Ordering::SeqCst);
        self.moved.send_modify(|n| *n += 1);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
