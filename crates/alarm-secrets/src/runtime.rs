//! The secrets' own I/O thread: providers that talk to a server (Vault, OCI Vault) run their requests, token renewals and refreshes there.
//!
//! Settings are resolved before an app's runtime starts (and in tests,
//! sometimes inside one), by a plain `block_on` that has no reactor. An
//! HTTP client's connections also belong to the runtime that made them.
//! So every networked provider hands its work to this one thread, which
//! lives as long as the process, and the caller only awaits the answer:
//! that await needs no reactor of its own.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The I/O thread's runtime, started on first use.
pub(crate) fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("secrets-io".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the secrets I/O runtime starts (no OS resource is exhausted)");
                let _ = tx.send(rt.handle().clone());
                // Runs the spawned requests and renewals for the rest of
                // the process.
                rt.block_on(std::future::pending::<()>());
            })
            .expect("the secrets I/O thread starts");
        rx.recv().expect("the secrets I/O thread gives its runtime")
    })
}

/// Runs `work` on the I/O thread and gives its output, from any caller:
/// a runtime's task or a thread parked in `block_on`.
pub(crate) async fn run<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle().spawn(async move {
        let _ = tx.send(work.await);
    });
    // `None` only if the work panicked (the sender was dropped unsent).
    rx.await.ok()
}

/// Starts `work` on the I/O thread and leaves it running (a renewal or a
/// refresh loop).
pub(crate) fn spawn(work: impl Future<Output = ()> + Send + 'static) {
    handle().spawn(work);
}
