//! The end-to-end test crate: its tests live in `it/` and drive the real API over a socket on PostgreSQL and SQLite.
