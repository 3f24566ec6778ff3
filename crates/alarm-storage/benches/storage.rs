//! `cargo xtask bench storage`: 100 MiB into a real S3 server (s3s-fs, SigV4) three ways, side by side in one run: a direct object_store multipart put, the upload service in one PATCH, and in twenty; prints each throughput, the ratios, and the process's peak RSS growth while a PATCH streams.
//!
//! The HTTP layer (tus) is not in this measure: it is the storage path
//! under it. Figures move with the machine (s3s-fs shares its cores), so
//! read the ratios measured in one run, not the absolute rates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::UploadFile;
use alarm_domain::ports::{BlobMeta, BlobStore, ByteStream};
use alarm_domain::services::{Patch, Patched, UploadService};
use alarm_storage::testing::S3Server;
use alarm_storage::{Backend, ObjectBlobs, ObjectParts};
use alarm_testkit::{InMemory, ManualClock, SequentialIds};

const SIZE: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 3;

/// A WAV file's header, then a pattern; shared chunks, so the body costs
/// no memory of its own.
fn body_chunks(data: &Bytes, from: usize, to: usize) -> ByteStream {
    let chunks = (from..to)
        .step_by(CHUNK)
        .map(|at| Ok(data.slice(at..(at + CHUNK).min(to))))
        .collect();
    ByteStream::from_chunks(chunks)
}

fn data() -> Bytes {
    let mut bytes: Vec<u8> = (0..SIZE).map(|i| (i * 131 % 251) as u8).collect();
    bytes[..12].copy_from_slice(b"RIFF\x24\x08\0\0WAVE");
    Bytes::from(bytes)
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn service(server: &S3Server) -> UploadService {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let ids = Arc::new(SequentialIds::new());
    let state = InMemory::new().ports(clock.clone(), ids.clone());
    let parts = ObjectParts::new(
        Backend::S3(server.settings())
            .open_with_multipart()
            .expect("open"),
        u64::MAX,
    );
    UploadService::new(
        state
            .with_storage(parts.blob_store(), Arc::new(parts))
            .with_limits(alarm_domain::limits::Limits {
                uploads_per_user: 1000,
                sounds_per_user: u32::MAX,
                sound_megabytes_per_user: u32::MAX,
                ..alarm_domain::limits::Limits::default()
            }),
    )
}

async fn direct(server: &S3Server, data: &Bytes) -> Duration {
    let blobs = ObjectBlobs::new(
        Backend::S3(server.settings()).open().expect("open"),
        u64::MAX,
    );
    let meta = BlobMeta {
        id: BlobId::generate(),
        owner: UserId::generate(),
        content_type: "audio/wav".into(),
        size: SIZE as u64,
        created_at: Timestamp::now(),
    };
    let started = Instant::now();
    blobs
        .put(meta, body_chunks(data, 0, SIZE))
        .await
        .expect("put");
    started.elapsed()
}

/// One upload in `patches` PATCHes; returns the time and the peak RSS
/// growth (KiB) over the RSS before it.
async fn through_service(service: &UploadService, data: &Bytes, patches: usize) -> (Duration, u64) {
    let owner = UserId::generate();
    let file = UploadFile::new("bench.wav", "audio/wav").expect("file");
    let upload = service
        .create(owner, SIZE as u64, file)
        .await
        .expect("create");
    reset_peak();
    let (_, before) = memory();
    let started = Instant::now();
    let step = SIZE.div_ceil(patches);
    let mut last = None;
    for from in (0..SIZE).step_by(step) {
        let to = (from + step).min(SIZE);
        let patch = Patch {
            offset: from as u64,
            length: Some((to - from) as u64),
            checksum: None,
        };
        last = Some(
            service
                .patch(owner, upload.id, patch, body_chunks(data, from, to))
                .await
                .expect("patch"),
        );
    }
    let elapsed = started.elapsed();
    let (peak, _) = memory();
    assert!(matches!(last, Some(Patched::Complete(..))), "completed");
    (elapsed, peak.saturating_sub(before))
}

fn rate(d: Duration) -> f64 {
    SIZE as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = S3Server::start();
    let data = data();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let service = service(&server);
    let (mut direct_rates, mut one_rates, mut twenty_rates, mut peaks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cold = 0.0;
    println!(
        "storage bench: {} MiB into s3s-fs, {} KiB chunks, {ROUNDS} rotating rounds",
        SIZE >> 20,
        CHUNK >> 10
    );
    for round in 1..=ROUNDS {
        runtime.block_on(async {
            // The PATCH first: in round 1 no transfer has grown the heap
            // before it, so its peak is the cold figure.
            let (one, peak_one) = through_service(&service, &data, 1).await;
            if round == 1 {
                cold = peak_one as f64 / 1024.0;
            }
            let d = direct(&server, &data).await;
            let (twenty, peak_twenty) = through_service(&service, &data, 20).await;
            println!(
                "  round {round}: direct {:.1} MiB/s, one PATCH {:.1} MiB/s (peak RSS +{:.1} MiB), twenty PATCHes {:.1} MiB/s (peak RSS +{:.1} MiB)",
                rate(d),
                rate(one),
                peak_one as f64 / 1024.0,
                rate(twenty),
                peak_twenty as f64 / 1024.0
            );
            direct_rates.push(rate(d));
            one_rates.push(rate(one));
            twenty_rates.push(rate(twenty));
            peaks.push(peak_one.max(peak_twenty) as f64 / 1024.0);
        });
    }
    let (d, one, twenty) = (
        median(direct_rates),
        median(one_rates),
        median(twenty_rates),
    );
    println!("medians: direct object_store multipart {d:.1} MiB/s");
    println!(
        "         upload service, one PATCH      {one:.1} MiB/s (ratio {:.2})",
        one / d
    );
    println!(
        "         upload service, twenty PATCHes {twenty:.1} MiB/s (ratio {:.2})",
        twenty / d
    );
    println!(
        "         peak RSS growth while a PATCH streams: {cold:.1} MiB cold (round 1, before any other transfer), {:.1} MiB at most in any round",
        peaks.iter().copied().fold(0.0, f64::max)
    );
}
