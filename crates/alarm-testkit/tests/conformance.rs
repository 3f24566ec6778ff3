//! The in-memory fakes pass every conformance check: the same checks the SQL adapter must pass, one trial each.

use std::sync::Arc;

use alarm_domain::ports::{BlobStore, PartStore, SecretProvider};
use alarm_testkit::conformance::{self, Subject};
use alarm_testkit::{
    InMemory, InMemoryBlobs, InMemoryParts, ManualClock, SequentialIds, StaticSecrets, fixtures,
};

fn main() {
    conformance::run(
        Subject::new("in-memory")
            .ports(|store_clock| async move {
                let memory = match store_clock {
                    Some(clock) => InMemory::new().with_store_clock(clock),
                    None => InMemory::new(),
                };
                memory.ports(
                    Arc::new(ManualClock::new(fixtures::t0())),
                    Arc::new(SequentialIds::new()),
                )
            })
            .blobs(|limit| async move { Arc::new(InMemoryBlobs::new(limit)) as Arc<dyn BlobStore> })
            .parts(|| async {
                let blobs = Arc::new(InMemoryBlobs::new(u64::MAX));
                let parts = Arc::new(InMemoryParts::new(blobs.clone()));
                (parts as Arc<dyn PartStore>, blobs as Arc<dyn BlobStore>)
            })
            .secrets(|secrets| async move {
                let pairs: Vec<(&str, &str)> = secrets
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Arc::new(StaticSecrets::new(pairs)) as Arc<dyn SecretProvider>
            }),
    );
}
