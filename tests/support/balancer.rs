//! A load balancer in front of replicas, as small as one: every connection goes to the replica
//! chosen at the moment it opens. With a client that opens a connection per request, the next
//! request goes wherever the test points the balancer.

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
}

impl Balancer {
    pub async fn start(backend: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let port = Arc::new(AtomicU16::new(backend.port()));
        let chosen = port.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = SocketAddr::from(([127, 0, 0, 1], chosen.load(Ordering::SeqCst)));
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, backend: port }
    }

    /// Sends new connections to `backend` from now on.
    pub fn point_to(&self, backend: SocketAddr) {
        self.backend.store(backend.port(), Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
