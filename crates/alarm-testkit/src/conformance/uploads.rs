//! Conformance checks of [`alarm_domain::ports::UploadStore`].

use super::*;
use alarm_domain::ids::UploadId;
use alarm_domain::jiff::SignedDuration;
use alarm_domain::limits::Quota;
use alarm_domain::model::{UPLOAD_PART_BYTES, Upload, UploadFile, UploadPart, UploadProgress};

const P: u64 = UPLOAD_PART_BYTES;

fn upload(ports: &Ports, owner: UserId, length: u64, ttl_hours: i64) -> Upload {
    Upload::new(
        UploadId::from_uuid(ports.ids.next_uuid()).expect("v7"),
        owner,
        length,
        UploadFile::new("wake up.mp3", "audio/mpeg").expect("file"),
        t0(),
        SignedDuration::from_hours(ttl_hours),
    )
    .expect("upload")
}

fn progress(from: u64, first_part: u32, parts: &[u64], tail: u64) -> UploadProgress {
    UploadProgress {
        from_offset: from,
        multipart: Some("multipart-1".into()),
        restart: false,
        parts: parts
            .iter()
            .zip(first_part..)
            .map(|(size, number)| UploadPart {
                number,
                size: *size,
                tag: format!("\"etag-{number}\""),
            })
            .collect(),
        tail,
        expires_at: hours(48),
    }
}

fn hours(h: i64) -> alarm_domain::jiff::Timestamp {
    at(h * 3600)
}

fn any() -> Quota {
    Quota::unlimited("uploads_per_user")
}

/// An upload is read back whole by its owner; another owner can neither
/// read, advance nor delete it.
async fn an_upload_is_kept_and_scoped_to_its_owner(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let u = upload(&ports, ana.id(), 2 * P + 3, 24);
    ports.uploads.create(&u, any()).await.expect("create");
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("get"), u);
    assert!(matches!(
        ports.uploads.get(bob.id(), u.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        ports
            .uploads
            .advance(bob.id(), u.id, &progress(0, 1, &[P], 0))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        ports.uploads.delete(bob.id(), u.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("kept"), u);
}

/// Progress is applied by the domain's rule and kept: parts, tail,
/// multipart id, expiry; progress from an offset the upload has left is a
/// conflict and changes nothing.
async fn progress_is_applied_once_per_offset(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let u = upload(&ports, ana.id(), 2 * P + 3, 24);
    ports.uploads.create(&u, any()).await.expect("create");
    let first = ports
        .uploads
        .advance(ana.id(), u.id, &progress(0, 1, &[P], 7))
        .await
        .expect("first");
    assert_eq!(
        (first.offset(), first.multipart.as_deref(), first.expires_at),
        (P + 7, Some("multipart-1"), hours(48))
    );
    assert!(
        matches!(
            ports
                .uploads
                .advance(ana.id(), u.id, &progress(0, 1, &[P], 0))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a PATCH from a stale offset loses"
    );
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("get"), first);
    let done = ports
        .uploads
        .advance(ana.id(), u.id, &progress(P + 7, 2, &[P, 3], 0))
        .await
        .expect("last");
    assert!(done.is_complete());
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("get"), done);
}

/// A restart (the upload moved to another store) drops its parts and
/// tail and records the new multipart upload, once, from the offset it
/// was judged on; the upload then grows again from byte 0.
async fn a_restart_starts_the_upload_again_elsewhere(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let u = upload(&ports, ana.id(), 2 * P + 3, 24);
    ports.uploads.create(&u, any()).await.expect("create");
    let first = ports
        .uploads
        .advance(ana.id(), u.id, &progress(0, 1, &[P], 7))
        .await
        .expect("first");
    let restart = UploadProgress {
        multipart: Some("spool:elsewhere".into()),
        restart: true,
        ..progress(first.offset(), 1, &[], 0)
    };
    let moved = ports
        .uploads
        .advance(ana.id(), u.id, &restart)
        .await
        .expect("restart");
    assert_eq!(
        (
            moved.offset(),
            moved.multipart.as_deref(),
            moved.parts.len()
        ),
        (0, Some("spool:elsewhere"), 0)
    );
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("get"), moved);
    assert!(
        matches!(
            ports.uploads.advance(ana.id(), u.id, &restart).await,
            Err(StoreError::Conflict(_))
        ),
        "the same restart again is judged on a stale offset"
    );
    let regrown = ports
        .uploads
        .advance(
            ana.id(),
            u.id,
            &UploadProgress {
                multipart: None,
                ..progress(0, 1, &[P], 1)
            },
        )
        .await
        .expect("parts again from 1");
    assert_eq!(
        (regrown.offset(), regrown.multipart.as_deref()),
        (P + 1, Some("spool:elsewhere"))
    );
}

/// Of two PATCHes racing from the same offset, exactly one is applied.
async fn racing_progress_has_one_winner(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let u = upload(&ports, ana.id(), 3 * P, 24);
    ports.uploads.create(&u, any()).await.expect("create");
    let one = progress(0, 1, &[P], 1);
    let two = progress(0, 1, &[P], 2);
    let (a, b) = tokio::join!(
        ports.uploads.advance(ana.id(), u.id, &one),
        ports.uploads.advance(ana.id(), u.id, &two)
    );
    let won: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1, "one PATCH wins");
    assert_eq!(
        ports.uploads.get(ana.id(), u.id).await.expect("get"),
        won[0]
    );
}

/// Progress breaking the part rule is refused and changes nothing.
async fn malformed_progress_is_refused(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let u = upload(&ports, ana.id(), 3 * P, 24);
    ports.uploads.create(&u, any()).await.expect("create");
    let short = progress(0, 1, &[10], 0);
    assert!(matches!(
        ports.uploads.advance(ana.id(), u.id, &short).await,
        Err(StoreError::Unexpected(_))
    ));
    assert_eq!(ports.uploads.get(ana.id(), u.id).await.expect("get"), u);
}

/// The open-upload quota is counted per owner; a deleted upload frees its
/// place and is returned whole.
async fn the_quota_counts_each_owners_uploads(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let quota = Quota::new("uploads_per_user", 1);
    let first = upload(&ports, ana.id(), 10, 24);
    ports.uploads.create(&first, quota).await.expect("first");
    assert_eq!(
        ports.uploads.pending(ana.id()).await.expect("pending"),
        alarm_domain::model::SoundUsage {
            count: 1,
            bytes: 10
        }
    );
    assert_eq!(
        ports.uploads.pending(bob.id()).await.expect("pending"),
        alarm_domain::model::SoundUsage::default()
    );
    let refused = ports
        .uploads
        .create(&upload(&ports, ana.id(), 10, 24), quota)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::OverQuota {
                quota: "uploads_per_user",
                limit: 1
            })
        ),
        "{refused:?}"
    );
    ports
        .uploads
        .create(&upload(&ports, bob.id(), 10, 24), quota)
        .await
        .expect("bob's own quota");
    assert_eq!(
        ports
            .uploads
            .delete(ana.id(), first.id)
            .await
            .expect("delete"),
        first
    );
    assert!(matches!(
        ports.uploads.get(ana.id(), first.id).await,
        Err(StoreError::NotFound)
    ));
    ports
        .uploads
        .create(&upload(&ports, ana.id(), 10, 24), quota)
        .await
        .expect("room again");
}

/// The sweeper gets every owner's expired uploads, soonest expired first,
/// at most as many as it asks for, and none still open.
async fn expired_uploads_are_listed_soonest_first(new_ports: Fresh) {
    let ports = new_ports().await;
    let ana = fixtures::user(&ports, "ana@example.com").await;
    let bob = fixtures::user(&ports, "bob@example.com").await;
    let late = upload(&ports, ana.id(), 10, 3);
    let early = upload(&ports, bob.id(), 10, 1);
    let open = upload(&ports, ana.id(), 10, 30);
    for u in [&late, &early, &open] {
        ports.uploads.create(u, any()).await.expect("create");
    }
    let ids = |v: Vec<Upload>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ports.uploads.expired(hours(4), 10).await.expect("expired")),
        vec![early.id, late.id]
    );
    assert_eq!(
        ids(ports.uploads.expired(hours(4), 1).await.expect("expired")),
        vec![early.id]
    );
    assert_eq!(
        ids(ports.uploads.expired(hours(1), 10).await.expect("expired")),
        vec![early.id],
        "expired at its expiry instant"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        an_upload_is_kept_and_scoped_to_its_owner,
        progress_is_applied_once_per_offset,
        a_restart_starts_the_upload_again_elsewhere,
        racing_progress_has_one_winner,
        malformed_progress_is_refused,
        the_quota_counts_each_owners_uploads,
        expired_uploads_are_listed_soonest_first,
    )
}
