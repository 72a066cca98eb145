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
                for (dir, rel) in job_rx {
                    let mut buf = Vec::new();
                    let result = dir.read(rel, &mut buf).map(|()| buf);
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
        let worker = match self.worker.take() {
            Some(worker) => worker,
            None => Worker::spawn()?,
        };
        if worker.jobs.send((dir.try_clone()?, rel)).is_err() {
            return Err(io::Error::other("the reader thread is gone"));
        }
        match worker.results.recv_timeout(timeout) {
            Ok(result) => {
                self.worker = Some(worker);
                result
            }
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(io::Error::other("the reader thread is gone")),
        }
    }
}
