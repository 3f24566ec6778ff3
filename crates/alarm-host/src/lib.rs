//! What hosts the engine in `alarm-http` and `alarm-worker`: the settings groups both apps share, each setting declared once, and the one composition of database, schema gate, ports, delivery worker, trigger engine and wake-ups.
//!
//! The only library besides the apps allowed to depend on adapters
//! (`deny.toml`): it wires `alarm-sql`, `alarm-runner`, `alarm-notify` and `alarm-storage`
//! together so the apps' `main.rs` files stay short compositions of it.

pub mod compose;
pub mod groups;
pub mod secrets;
pub mod storage;

pub use compose::{Background, Opened, open, reseal};
