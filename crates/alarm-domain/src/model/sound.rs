//! Sounds: audio files an owner uploaded (a completed upload becomes one), the quotas on how many and how large, and the rules a store applies when one is registered, named by an alarm or deleted.

use jiff::Timestamp;

use crate::ids::{BlobId, UserId};
use crate::ports::StoreError;

/// An owner's sound: the blob of the same id holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sound {
    /// The id (the blob's and the upload's UUID).
    pub id: BlobId,
    /// The owner.
    pub owner: UserId,
    /// The file name the upload carried (1 to 255 characters, no path).
    pub name: String,
    /// The media type its bytes showed (`audio/mpeg`, `audio/ogg`, …),
    /// never the one its client declared.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// What an owner's sounds take up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoundUsage {
    /// How many.
    pub count: u64,
    /// Their bytes together.
    pub bytes: u64,
}

/// How many sounds, and how many bytes of them, one owner may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoundQuota {
    /// Sounds per owner (`sounds_per_user`).
    pub count: u32,
    /// Mebibytes per owner, all sounds together
    /// (`sound_megabytes_per_user`).
    pub megabytes: u32,
}

/// A mebibyte.
const MIB: u64 = 1024 * 1024;

impl SoundQuota {
    /// No cap (fixtures and tests not about quotas).
    pub const UNLIMITED: SoundQuota = SoundQuota {
        count: u32::MAX,
        megabytes: u32::MAX,
    };

    /// Whether a sound of `size` bytes may join the owner's `usage`. The
    /// one rule for a registration (judged by the store, atomically with
    /// its insert) and for a new upload (judged before a byte arrives, so a
    /// client does not send 100 MB to be refused at the end).
    ///
    /// # Errors
    /// [`StoreError::OverQuota`] naming the quota that would be passed.
    pub fn admit(&self, usage: SoundUsage, size: u64) -> Result<(), StoreError> {
        if usage.count >= u64::from(self.count) {
            return Err(StoreError::OverQuota {
                quota: "sounds_per_user",
                limit: self.count,
            });
        }
        if usage.bytes.saturating_add(size) > u64::from(self.megabytes).saturating_mul(MIB) {
            return Err(StoreError::OverQuota {
                quota: "sound_megabytes_per_user",
                limit: self.megabytes,
            });
        }
        Ok(())
    }
}

/// The rule a store applies when a sound is deleted: not while `alarms`
/// of its owner (counted in the delete's own transaction) name it.
///
/// # Errors
/// [`StoreError::Conflict`] when one does.
pub fn sound_deletable(alarms: u64) -> Result<(), StoreError> {
    if alarms > 0 {
        return Err(StoreError::Conflict(format!(
            "the sound is the sound of {alarms} alarm(s); give them another sound or none first"
        )));
    }
    Ok(())
}

/// The rule a store applies when an alarm is saved naming a sound: the
/// owner's sound must exist in the save's own transaction (a concurrent
/// delete may have won since the service checked).
///
/// # Errors
/// [`StoreError::Conflict`] when it does not.
pub fn sound_present(found: bool) -> Result<(), StoreError> {
    if !found {
        return Err(StoreError::Conflict(
            "sound_id: the sound was deleted meanwhile".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_count_sounds_and_bytes() {
        let q = SoundQuota {
            count: 2,
            megabytes: 10,
        };
        let used = |count, mib: u64| SoundUsage {
            count,
            bytes: mib * MIB,
        };
        assert!(q.admit(used(1, 5), 5 * MIB).is_ok(), "exactly 10 MiB");
        assert!(matches!(
            q.admit(used(1, 5), 5 * MIB + 1),
            Err(StoreError::OverQuota {
                quota: "sound_megabytes_per_user",
                limit: 10
            })
        ));
        assert!(matches!(
            q.admit(used(2, 0), 1),
            Err(StoreError::OverQuota {
                quota: "sounds_per_user",
                limit: 2
            })
        ));
        assert!(
            SoundQuota::UNLIMITED
                .admit(used(u64::from(u32::MAX) - 1, 1 << 30), 1 << 30)
                .is_ok()
        );
        assert!(sound_deletable(0).is_ok());
        assert!(matches!(sound_deletable(1), Err(StoreError::Conflict(_))));
        assert!(sound_present(true).is_ok());
        assert!(matches!(sound_present(false), Err(StoreError::Conflict(_))));
    }
}
