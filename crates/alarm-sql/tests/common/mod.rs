//! Test databases: re-exported from `alarm_sql::testing`, shared with the end-to-end tests.
#![allow(unused_imports, unreachable_pub)]

pub use alarm_sql::testing::*;
