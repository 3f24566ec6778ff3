//! Delivery keys: the idempotency key of each notification a ring makes, derived from what it is about so every retry and rescue repeats it.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ids::AlarmId;
use crate::model::AlarmEventKind;
use crate::trigger::TriggerKind;

/// The idempotency key of a delivery: the same on every retry and after
/// any rescue, because it is derived from what the delivery is about and
/// not from who made it or when. A UUID (version 8) so receivers can store
/// it in a UUID column; SHA-256 so keys of different inputs never collide
/// in practice.
#[must_use]
pub fn delivery_key(
    alarm: AlarmId,
    occurrence: Timestamp,
    kind: TriggerKind,
    event: AlarmEventKind,
    destination: &str,
) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"smart-alarm delivery v1\0");
    h.update(alarm.as_uuid().as_bytes());
    h.update(occurrence.as_microsecond().to_be_bytes());
    for part in [kind.code().as_str(), event.as_str(), destination] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
