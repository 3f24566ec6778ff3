//! Smart Alarm's notification channels. What exists so far is the part every webhook delivery will rest on: [`signature`] (Standard Webhooks signing and verification) and [`ssrf`] (which addresses a webhook may reach). The delivery workers, retries, breaker, dead letters and SMTP are still to come (issue 7); nothing calls this crate yet.

pub mod signature;
pub mod ssrf;
