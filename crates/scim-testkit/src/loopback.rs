//! An axum router served on a loopback port for as long as its handle lives (the emulators').

use axum::Router;

/// A router being served; dropping it stops the server.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds first, to know the URL before the router is built (it links to itself).
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// Serves `app` on a listener from [`bind`].
pub fn serve_on(listener: tokio::net::TcpListener, url: String, app: Router) -> Served {
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served { url, task }
}
