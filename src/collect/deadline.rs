//! Reads that can block, under a deadline.
//!
//! `/proc/PID/cmdline` reads the target's memory and takes its memory-map
//! lock; a process faulting on a dead NFS or FUSE mapping holds that lock
//! and `ps` hangs right there. Such reads run in batches on a worker thread
//! that reports once, when the batch is done; if the batch stops making
//! progress for the deadline, the read it is stuck on is given up as timed
//! out, the worker is abandoned (it holds nothing of ours but duplicated
//! directory descriptors), and a fresh worker takes the rest.

use super::dir::ProcDir;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Reads so far of one batch, shared with its worker.
#[derive(Default)]
struct Progress {
    results: Vec<io::Result<Vec<u8>>>,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

/// Duplicated directory descriptors held at once by a batch.
const BATCH: usize = 256;

/// Read `rel` under `dir`, or fail with `TimedOut` after `timeout`.
pub fn read(dir: &ProcDir, rel: &'static str, timeout: Duration) -> io::Result<Vec<u8>> {
    read_many(&[dir], rel, timeout)
        .pop()
        .unwrap_or_else(|| Err(io::Error::other("no result")))
}

/// Read `rel` under each of `dirs`, in order. A read that makes no progress
/// for `timeout` is `TimedOut`; the others are unaffected.
pub fn read_many(dirs: &[&ProcDir], rel: &'static str, timeout: Duration) -> Vec<io::Result<Vec<u8>>> {
    let mut results = Vec::with_capacity(dirs.len());
    for chunk in dirs.chunks(BATCH) {
        let mut rest: &[&ProcDir] = chunk;
        while !rest.is_empty() {
            let (done, stuck) = read_batch(rest, rel, timeout);
            let advanced = done.len();
            results.extend(done);
            if stuck {
                results.push(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {}", humantime::format_duration(timeout)),
                )));
                rest = &rest[advanced + 1..];
            } else {
                rest = &rest[advanced..];
            }
        }
    }
    results
}

/// Read `rel` under each dir on a fresh worker thread. Returns the results
/// in order, and whether the worker got stuck on the next one.
fn read_batch(dirs: &[&ProcDir], rel: &'static str, timeout: Duration) -> (Vec<io::Result<Vec<u8>>>, bool) {
    let jobs: Vec<io::Result<ProcDir>> = dirs.iter().map(|d| d.try_clone()).collect();
    let total = jobs.len();
    let shared: Shared = Arc::default();
    let worker_side = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name("whystuck-slow-read".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let (lock, done) = &*worker_side;
            for job in jobs {
                // Read into one reused buffer; keep an exact-size copy.
                let result = job.and_then(|dir| dir.read(rel, &mut buf).map(|()| buf.as_slice().to_vec()));
                let Ok(mut progress) = lock.lock() else { return };
                progress.results.push(result);
                if progress.results.len() == total {
                    done.notify_one();
                }
            }
        });
    if let Err(e) = spawned {
        let reason = e.to_string();
        return (
            (0..total).map(|_| Err(io::Error::other(reason.clone()))).collect(),
            false,
        );
    }
    let (lock, done) = &*shared;
    let Ok(mut progress) = lock.lock() else {
        return (Vec::new(), true);
    };
    loop {
        if progress.results.len() == total {
            return (std::mem::take(&mut progress.results), false);
        }
        let before = progress.results.len();
        progress = match done.wait_timeout(progress, timeout) {
            Ok((progress, _)) => progress,
            Err(_) => return (Vec::new(), true),
        };
        if progress.results.len() == before && before < total {
            // No read finished within the deadline: the worker is stuck.
            return (std::mem::take(&mut progress.results), true);
        }
    }
}
