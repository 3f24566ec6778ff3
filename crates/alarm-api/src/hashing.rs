//! Password hashing on a few dedicated threads that run below the serving threads' CPU priority, each with one argon2 memory block allocated once and wiped after every use.
//!
//! Why not the blocking pool: each argon2id call wants 19 MiB, and glibc
//! serves a freed block that large from the calling thread's arena the next
//! time, so every blocking-pool thread that ever hashed kept its own 19 MiB
//! resident (measured: 184 MiB after a few dozen logins, 334 MiB under the
//! abuse bench). Here the memory is `threads × 19 MiB`, whatever the load.
//!
//! Why a lower priority: a hash is ~15 ms of one core. On a small instance a
//! wave of logins would take the core from every other request; at nice +10
//! a hashing thread gets about a tenth of a contended core, so reads keep
//! their latency and logins wait instead (the admission queue in `auth`
//! bounds how many wait).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

/// argon2id with OWASP's first recommended setting: 19 MiB of memory,
/// 2 passes, 1 lane. About 15 ms per hash on one core of the development
/// machine; parameters are stored in each PHC string, so raising them later
/// only affects new hashes.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const ARGON2_LANES: u32 = 1;
/// Bytes of hash output stored in new PHC strings.
const OUTPUT_LEN: usize = 32;
/// Hashing threads (and memory blocks) at most, whatever the core count:
/// four blocks are 76 MiB held for the process's life.
pub(crate) const MAX_HASHING_THREADS: usize = 4;
/// How far below the serving threads the hashing threads run (added to the
/// process's nice value, Linux only: there the nice value is per thread).
pub(crate) const HASHING_NICENESS: i32 = 10;

/// The parameters of new hashes.
pub(crate) fn params() -> Params {
    // The constants are within argon2's documented bounds, so this is Ok.
    Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_LANES,
        Some(OUTPUT_LEN),
    )
    .unwrap_or_default()
}

enum Job {
    Hash {
        password: SecretString,
        reply: oneshot::Sender<Result<SecretString, String>>,
    },
    Verify {
        password: SecretString,
        hash: SecretString,
        reply: oneshot::Sender<bool>,
    },
}

struct Pool {
    /// One per thread: a job is sent only with a permit in hand, so it
    /// always finds a thread free, and a request that goes away while
    /// waiting never costs a hash.
    permits: tokio::sync::Semaphore,
    jobs: mpsc::Sender<Job>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .clamp(1, MAX_HASHING_THREADS);
        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&queue));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password-hashing thread"),
            }
        }
        Pool {
            permits: tokio::sync::Semaphore::new(started),
            jobs,
        }
    })
}

/// Password checks the pool runs at once.
pub(crate) fn running_at_most() -> usize {
    pool().permits.available_permits().max(1)
}

fn hashing_thread(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        run(&mut memory, job);
    }
}

/// Runs one job in `memory` (allocated at the first job, then kept: the
/// process never asks the allocator for argon2 memory again), then wipes it.
fn run(memory: &mut Vec<Block>, job: Job) {
    if memory.is_empty() {
        *memory = vec![Block::default(); params().block_count()];
    }
    match job {
        Job::Hash { password, reply } => {
            let _ = reply.send(hash_into(memory, password.expose_secret().as_bytes()));
        }
        Job::Verify {
            password,
            hash,
            reply,
        } => {
            let _ = reply.send(verify_into(
                memory,
                password.expose_secret().as_bytes(),
                hash.expose_secret(),
            ));
        }
    }
    // The blocks are derived from the password: with one of them, a guess
    // could be tested at the price of a BLAKE2b call instead of an argon2
    // run. Nothing is kept past the job.
    memory.fill(Block::default());
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // `None` is the calling thread on Linux (the nice value is per thread).
    let now = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(None, (now + HASHING_NICENESS).min(19)) {
        tracing::warn!(error = %e, "password hashing runs at the serving threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// A new argon2id PHC string for `password`, computed in `memory`.
pub(crate) fn hash_into(memory: &mut [Block], password: &[u8]) -> Result<SecretString, String> {
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| e.to_string())?;
    let params = params();
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory)
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(SecretString::from(phc.to_string()))
}

/// Whether `password` matches the PHC string `hash`, computed in `memory`.
/// A string that does not parse, or asks for more memory than `memory`
/// holds (no hash this service made does), does not match.
pub(crate) fn verify_into(memory: &mut [Block], password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.block_count() > memory.len() {
        tracing::error!(
            blocks = params.block_count(),
            "a stored password hash asks for more argon2 memory than the hashing threads hold"
        );
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Hashes `password` on a hashing thread, waiting for one to be free.
///
/// # Errors
/// When no hashing thread could be started, or hashing failed.
pub(crate) async fn hash(password: SecretString) -> Result<SecretString, String> {
    let pool = pool();
    let _permit = pool.permits.acquire().await.map_err(|e| e.to_string())?;
    let (reply, answer) = oneshot::channel();
    pool.jobs
        .send(Job::Hash { password, reply })
        .map_err(|_| "no password-hashing thread is running".to_owned())?;
    answer
        .await
        .map_err(|_| "a password-hashing thread stopped".to_owned())?
}

/// Whether `password` matches `hash`, checked on a hashing thread; false
/// when no thread can check it.
pub(crate) async fn verify(password: SecretString, hash: SecretString) -> bool {
    let pool = pool();
    let Ok(_permit) = pool.permits.acquire().await else {
        return false;
    };
    let (reply, answer) = oneshot::channel();
    if pool
        .jobs
        .send(Job::Verify {
            password,
            hash,
            reply,
        })
        .is_err()
    {
        return false;
    }
    answer.await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher as _;

    use super::*;

    fn memory() -> Vec<Block> {
        vec![Block::default(); params().block_count()]
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_and_ours_verify_there() {
        let mut memory = memory();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"a stored password")
            .expect("hash")
            .to_string();
        assert!(verify_into(&mut memory, b"a stored password", &theirs));
        assert!(!verify_into(&mut memory, b"a stored passworD", &theirs));

        let ours = hash_into(&mut memory, b"another password").expect("hash");
        let parsed = PasswordHash::new(ours.expose_secret()).expect("PHC");
        assert!(
            argon2::PasswordVerifier::verify_password(
                &Argon2::default(),
                b"another password",
                &parsed
            )
            .is_ok()
        );
        assert!(
            ours.expose_secret()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }

    #[test]
    fn a_cheaper_older_hash_verifies_and_a_dearer_one_is_refused() {
        let mut memory = memory();
        let cheaper = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"old")
        .expect("hash")
        .to_string();
        assert!(verify_into(&mut memory, b"old", &cheaper));
        let dearer = cheaper.replace("m=8192", &format!("m={}", ARGON2_MEMORY_KIB + 1024));
        assert!(!verify_into(&mut memory, b"old", &dearer));
        assert!(!verify_into(&mut memory, b"old", "not a PHC string"));
    }

    #[test]
    fn a_job_leaves_its_memory_wiped() {
        let mut memory = Vec::new();
        let (reply, mut answer) = oneshot::channel();
        run(
            &mut memory,
            Job::Hash {
                password: SecretString::from("wiped afterwards".to_owned()),
                reply,
            },
        );
        assert!(answer.try_recv().expect("answered").is_ok());
        assert_eq!(memory.len(), params().block_count());
        assert!(
            memory
                .iter()
                .all(|b| b.as_ref().iter().all(|word| *word == 0))
        );
    }

    #[tokio::test]
    async fn the_threads_hash_and_verify() {
        let hash = hash(SecretString::from("correct horse battery".to_owned()))
            .await
            .expect("hash");
        assert!(
            verify(
                SecretString::from("correct horse battery".to_owned()),
                hash.clone()
            )
            .await
        );
        assert!(!verify(SecretString::from("wrong".to_owned()), hash).await);
    }
}
