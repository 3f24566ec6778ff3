//! A minimal poem hello-world on the same runtime settings as alarm-http: the framework's ceiling for `cargo xtask bench api`.

use poem::listener::TcpListener;
use poem::{Route, Server, get, handler};

#[handler]
fn hello() -> &'static str {
    "hello"
}

fn main() -> std::io::Result<()> {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:18081".to_owned());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(Server::new(TcpListener::bind(addr)).run(Route::new().at("/", get(hello))))
}
