//! Conformance checks of [`alarm_domain::ports::SoundStore`], and of the alarm store's side of sounds (an alarm names only a sound that exists).

use super::*;
use alarm_domain::ids::BlobId;
use alarm_domain::model::Alarm;
use alarm_domain::model::{Sound, SoundQuota, SoundUsage};

const MIB: u64 = 1024 * 1024;

fn sound(ports: &Ports, owner: UserId, size: u64) -> Sound {
    Sound {
        id: BlobId::from_uuid(ports.ids.next_uuid()).expect("v7"),
        owner,
        name: "dawn chorus.ogg".to_owned(),
        content_type: "audio/ogg".to_owned(),
        size,
        created_at: t0(),
    }
}

/// An alarm draft naming `sound`.
fn with_sound(ports: &Ports, owner: UserId, sound: BlobId) -> ChangeSet<AlarmOp> {
    let id = AlarmId::from_uuid(ports.ids.next_uuid()).expect("v7");
    let mut draft = fixtures::draft("with a sound");
    draft.sound = Some(sound);
    let alarm = Alarm::create(id, owner, draft, t0()).expect("alarm");
    ChangeSet::audited(
        AlarmOp::Create(alarm, alarm_domain::limits::Quota::unlimited("alarms")),
        audit(ports, Some(owner), "alarm.create", id.as_uuid()),
    )
}

/// A sound is read back whole by its owner, listed oldest first and
/// counted in its usage; registering it again returns it unchanged;
/// another owner neither reads, lists nor deletes it.
async fn sounds_are_kept_and_scoped_to_their_owner(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let first = sound(&ports, ana.id(), 3 * MIB);
    let second = sound(&ports, ana.id(), 1000);
    for s in [&first, &second] {
        let kept = ports
            .sounds
            .register(s, SoundQuota::UNLIMITED)
            .await
            .expect("register");
        assert_eq!(&kept, s);
    }
    let again = Sound {
        name: "renamed.ogg".to_owned(),
        ..first.clone()
    };
    assert_eq!(
        ports
            .sounds
            .register(&again, SoundQuota::UNLIMITED)
            .await
            .expect("again"),
        first,
        "a registration repeated after a crash returns the stored sound"
    );
    assert_eq!(
        ports.sounds.get(ana.id(), first.id).await.expect("get"),
        first
    );
    assert_eq!(
        ports.sounds.list(ana.id(), 10).await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        ports.sounds.list(ana.id(), 1).await.expect("list"),
        vec![first.clone()],
        "at most the limit"
    );
    assert_eq!(
        ports.sounds.usage(ana.id()).await.expect("usage"),
        SoundUsage {
            count: 2,
            bytes: 3 * MIB + 1000
        }
    );
    assert!(matches!(
        ports.sounds.get(bob.id(), first.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        ports.sounds.delete(bob.id(), first.id).await,
        Err(StoreError::NotFound)
    ));
    let taken = Sound {
        owner: bob.id(),
        ..first.clone()
    };
    assert!(
        matches!(
            ports.sounds.register(&taken, SoundQuota::UNLIMITED).await,
            Err(StoreError::Conflict(_))
        ),
        "an id another owner holds"
    );
    assert!(
        ports
            .sounds
            .list(bob.id(), 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        ports.sounds.usage(bob.id()).await.expect("usage"),
        SoundUsage::default()
    );
    assert_eq!(
        ports
            .sounds
            .delete(ana.id(), first.id)
            .await
            .expect("delete"),
        first
    );
    assert!(matches!(
        ports.sounds.get(ana.id(), first.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        ports.sounds.delete(ana.id(), first.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        ports.sounds.list(ana.id(), 10).await.expect("list"),
        vec![second.clone()]
    );
    assert_eq!(
        ports.sounds.usage(ana.id()).await.expect("usage"),
        SoundUsage {
            count: 1,
            bytes: 1000
        },
        "a deleted sound counts no more"
    );
    // Its tombstone stays until its bytes are known to be gone.
    assert_eq!(
        ports
            .sounds
            .tombstones(Some(ana.id()), 10)
            .await
            .expect("tombstones"),
        vec![first.clone()]
    );
    assert_eq!(
        ports.sounds.tombstones(None, 10).await.expect("tombstones"),
        vec![first.clone()]
    );
    assert!(
        ports
            .sounds
            .tombstones(Some(bob.id()), 10)
            .await
            .expect("tombstones")
            .is_empty()
    );
    ports
        .sounds
        .purge(bob.id(), first.id)
        .await
        .expect("not bob's");
    ports
        .sounds
        .purge(ana.id(), second.id)
        .await
        .expect("a live one");
    assert_eq!(
        ports.sounds.list(ana.id(), 10).await.expect("list"),
        vec![second.clone()],
        "purge leaves a live sound alone"
    );
    assert_eq!(ports.sounds.tombstones(None, 10).await.expect("t").len(), 1);
    ports.sounds.purge(ana.id(), first.id).await.expect("purge");
    ports.sounds.purge(ana.id(), first.id).await.expect("twice");
    assert!(
        ports
            .sounds
            .tombstones(None, 10)
            .await
            .expect("tombstones")
            .is_empty()
    );
}

/// Registration past either sound quota is refused and stores nothing.
async fn registering_past_a_quota_is_refused(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let quota = SoundQuota {
        count: 2,
        megabytes: 4,
    };
    let big = sound(&ports, ana.id(), 3 * MIB);
    ports.sounds.register(&big, quota).await.expect("3 MiB");
    let over = sound(&ports, ana.id(), MIB + 1);
    assert!(matches!(
        ports.sounds.register(&over, quota).await,
        Err(StoreError::OverQuota {
            quota: "sound_megabytes_per_user",
            limit: 4
        })
    ));
    let fits = sound(&ports, ana.id(), MIB);
    ports.sounds.register(&fits, quota).await.expect("4 MiB");
    let third = sound(&ports, ana.id(), 1);
    assert!(matches!(
        ports.sounds.register(&third, quota).await,
        Err(StoreError::OverQuota {
            quota: "sounds_per_user",
            limit: 2
        })
    ));
    assert_eq!(
        ports.sounds.usage(ana.id()).await.expect("usage"),
        SoundUsage {
            count: 2,
            bytes: 4 * MIB
        },
        "nothing refused was stored"
    );
}

/// A sound an alarm names cannot be deleted; once no alarm names it, it
/// can. An alarm naming a sound that is not its owner's is refused by the
/// store (the service checks first; the store closes the race).
async fn a_named_sound_stays_and_alarms_name_only_existing_sounds(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let s = sound(&ports, ana.id(), 100);
    ports
        .sounds
        .register(&s, SoundQuota::UNLIMITED)
        .await
        .expect("register");
    let change = with_sound(&ports, ana.id(), s.id);
    let AlarmOp::Create(alarm, _) = &change.op else {
        unreachable!("a create")
    };
    let alarm = alarm.clone();
    ports
        .alarms
        .commit(change)
        .await
        .expect("an alarm names it");
    assert!(matches!(
        ports.sounds.delete(ana.id(), s.id).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            ports
                .alarms
                .commit(with_sound(&ports, bob.id(), s.id))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "another owner's sound"
    );
    let missing = BlobId::from_uuid(ports.ids.next_uuid()).expect("v7");
    assert!(matches!(
        ports
            .alarms
            .commit(with_sound(&ports, ana.id(), missing))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let delete = ChangeSet::audited(
        AlarmOp::Delete {
            owner: ana.id(),
            id: alarm.id(),
            expected: alarm.version(),
        },
        audit(&ports, Some(ana.id()), "alarm.delete", alarm.id().as_uuid()),
    );
    ports.alarms.commit(delete).await.expect("delete the alarm");
    ports
        .sounds
        .delete(ana.id(), s.id)
        .await
        .expect("no alarm names it now");
    assert!(
        matches!(
            ports
                .alarms
                .commit(with_sound(&ports, ana.id(), s.id))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a deleted sound cannot be named, tombstone or not"
    );
}

pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        sounds_are_kept_and_scoped_to_their_owner,
        registering_past_a_quota_is_refused,
        a_named_sound_stays_and_alarms_name_only_existing_sounds,
    )
}
