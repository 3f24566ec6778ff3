//! What an account owns, listed once: erasing an account walks this list, so a kind added here cannot be left behind by a store.

/// A kind of record that belongs to an account and goes with it when the
/// account is erased (`DELETE /auth/me`, the LGPD's right to erasure).
///
/// This enum is the one registry of owned data. Every store matches on it
/// exhaustively (no `_` arm), so a new variant does not compile until each
/// store says how it erases that kind; and the end-to-end erasure test
/// searches every table the database's catalogue lists for a row that still
/// names the erased account, so a new table its scenario writes to cannot
/// be forgotten either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owned {
    /// Refresh-token families and their tokens (every session ends).
    Sessions,
    /// Alarms, with their routine attachments.
    Alarms,
    /// Planned and leased triggers of those alarms.
    Triggers,
    /// Occurrences still ringing or snoozed.
    Ringing,
    /// Alarm history (`/alarms/{id}/events`).
    Events,
    /// Records of in-app and e-mail deliveries.
    Deliveries,
    /// Webhook and e-mail notifications, pending and past (the outbox).
    Outbox,
    /// Webhook registrations (with their signing secrets).
    Webhooks,
    /// API keys.
    ApiKeys,
    /// Resumable uploads' state (their parts left in the object store are
    /// expired by the bucket's lifecycle rules, not by the erasure).
    Uploads,
    /// Sounds (their bytes are deleted from the object store before the
    /// rows go).
    Sounds,
    /// Exception periods.
    ExceptionPeriods,
    /// Holiday preferences and per-holiday overrides.
    HolidayPreferences,
    /// Routines.
    Routines,
    /// Stored answers for `Idempotency-Key` replays.
    IdempotencyRecords,
    /// Pending e-mailed tokens (password reset, address verification;
    /// their hashes).
    AccountTokens,
    /// Audit records the account made or that name it: kept, because the
    /// operator must still be able to tell what happened, but with a
    /// pseudonym for the account and without their summaries (which can
    /// hold names, labels and other personal data).
    AuditTrail,
    /// The account row itself (e-mail, display name, password hash);
    /// last, after everything that refers to it.
    Account,
}

/// What erasure does to one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// The rows are deleted.
    Delete,
    /// The rows stay; the account's id is replaced by the erasure's
    /// pseudonym and the free-text parts are cleared.
    Pseudonymise,
}

impl Owned {
    /// Every kind, in the order stores erase them (the account last).
    pub const ALL: [Owned; 18] = [
        Owned::Sessions,
        Owned::Triggers,
        Owned::Ringing,
        Owned::Events,
        Owned::Deliveries,
        Owned::Outbox,
        Owned::Alarms,
        Owned::Webhooks,
        Owned::ApiKeys,
        Owned::Uploads,
        Owned::Sounds,
        Owned::ExceptionPeriods,
        Owned::HolidayPreferences,
        Owned::Routines,
        Owned::IdempotencyRecords,
        Owned::AccountTokens,
        Owned::AuditTrail,
        Owned::Account,
    ];

    /// What erasure does to this kind.
    pub fn treatment(self) -> Treatment {
        match self {
            Owned::AuditTrail => Treatment::Pseudonymise,
            Owned::Sessions
            | Owned::Alarms
            | Owned::Triggers
            | Owned::Ringing
            | Owned::Events
            | Owned::Deliveries
            | Owned::Outbox
            | Owned::Webhooks
            | Owned::ApiKeys
            | Owned::Uploads
            | Owned::Sounds
            | Owned::ExceptionPeriods
            | Owned::HolidayPreferences
            | Owned::Routines
            | Owned::IdempotencyRecords
            | Owned::AccountTokens
            | Owned::Account => Treatment::Delete,
        }
    }

    /// A stable name, e.g. `exception_periods` (documentation and test
    /// messages).
    pub fn as_str(self) -> &'static str {
        match self {
            Owned::Sessions => "sessions",
            Owned::Alarms => "alarms",
            Owned::Triggers => "triggers",
            Owned::Ringing => "ringing",
            Owned::Events => "events",
            Owned::Deliveries => "deliveries",
            Owned::Outbox => "outbox",
            Owned::Webhooks => "webhooks",
            Owned::ApiKeys => "api_keys",
            Owned::Uploads => "uploads",
            Owned::Sounds => "sounds",
            Owned::ExceptionPeriods => "exception_periods",
            Owned::HolidayPreferences => "holiday_preferences",
            Owned::Routines => "routines",
            Owned::IdempotencyRecords => "idempotency_records",
            Owned::AccountTokens => "account_tokens",
            Owned::AuditTrail => "audit_trail",
            Owned::Account => "account",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_and_the_account_goes_last() {
        let names: std::collections::HashSet<_> = Owned::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names.len(), Owned::ALL.len(), "a kind is listed twice");
        assert_eq!(Owned::ALL.last(), Some(&Owned::Account));
        let kept: Vec<_> = Owned::ALL
            .iter()
            .filter(|o| o.treatment() == Treatment::Pseudonymise)
            .collect();
        assert_eq!(kept, [&Owned::AuditTrail]);
    }
}
