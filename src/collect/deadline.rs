//! Reads that can block, under a deadline.
//!
//! `/proc/PID/cmdline` reads the target's memory and takes its memory-map
//! lock; a process faulting on a dead NFS or FUSE mapping holds that lock
//! and `ps` hangs right there. Such reads run on a worker thread; when one
//! misses its deadline the worker is abandoned (it holds nothing of ours but
//! a duplicated directory descriptor) and a fresh worker serves later reads.

use super::dir::ProcDir;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

type Job = (ProcDir, &'static str);

struct Worker {
    jobs: Sender<Job>,
    results: Receiver<io::Result<Vec<u8>>>,
}

impl Worker {
    fn spawn() -> io::Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (result_tx, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("whystuck-slow-read".into())
            .spawn(move || {
                let mut buf = Vec::new();
                for (dir, rel) in job_rx {
                    // Read into one reused buffer; send an exact-size copy.
                    let result = dir.read(rel, &mut buf).map(|()| buf.as_slice().to_vec());
                    if result_tx.send(result).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Worker { jobs, results })
    }
}

#[derive(Default)]
pub struct SlowReads {
    worker: Option<Worker>,
}

impl SlowReads {
    /// Read `rel` under `dir`, or fail with `TimedOut` after `timeout`.
    pub fn read(&mut self, dir: &ProcDir, rel: &'static str, timeout: Duration) -> io::Result<Vec<u8>> {
        self.read_many(&[dir], rel, timeout)
            .pop()
            .unwrap_or_else(|| Err(io::Error::other("no result")))
    }

    /// Read `rel` under each of `dirs`, in order, each under its own
    /// `timeout`: all are queued at once, so the worker streams through them.
    /// A read that misses its deadline is `TimedOut`; the worker stuck on it
    /// is abandoned and a fresh one takes the rest.
    pub fn read_many(&mut self, dirs: &[&ProcDir], rel: &'static str, timeout: Duration) -> Vec<io::Result<Vec<u8>>> {
        // Each queued job holds a duplicated directory fd: a few hundred at a time.
        dirs.chunks(256)
            .flat_map(|chunk| self.read_batch(chunk, rel, timeout))
            .collect()
    }

    fn read_batch(&mut self, dirs: &[&ProcDir], rel: &'static str, timeout: Duration) -> Vec<io::Result<Vec<u8>>> {
        let mut results: Vec<io::Result<Vec<u8>>> = Vec::with_capacity(dirs.len());
        while results.len() < dirs.len() {
            let worker = match self.worker.take() {
                Some(worker) => worker,
                None => match Worker::spawn() {
                    Ok(worker) => worker,
                    Err(e) => {
                        let reason = e.to_string();
                        results.extend((results.len()..dirs.len()).map(|_| Err(io::Error::other(reason.clone()))));
                        break;
                    }
                },
            };
            let pending = &dirs[results.len()..];
            for dir in pending {
                let job = match dir.try_clone() {
                    Ok(dir) => dir,
                    Err(e) => return fail_rest(results, dirs.len(), e),
                };
                if worker.jobs.send((job, rel)).is_err() {
                    return fail_rest(results, dirs.len(), io::Error::other("the reader thread is gone"));
                }
            }
            let mut stuck = false;
            for _ in 0..pending.len() {
                match worker.results.recv_timeout(timeout) {
                    Ok(result) => results.push(result),
                    Err(RecvTimeoutError::Timeout) => {
                        results.push(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer within {}", humantime::format_duration(timeout)),
                        )));
                        stuck = true;
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return fail_rest(results, dirs.len(), io::Error::other("the reader thread is gone"))
                    }
                }
            }
            if !stuck {
                self.worker = Some(worker);
            }
        }
        results
    }
}

fn fail_rest(mut results: Vec<io::Result<Vec<u8>>>, total: usize, error: io::Error) -> Vec<io::Result<Vec<u8>>> {
    let message = error.to_string();
    while results.len() < total {
        results.push(Err(io::Error::other(message.clone())));
    }
    results
}
