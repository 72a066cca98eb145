//! Reads that can block, in a helper process that can be abandoned.
//!
//! `/proc/PID/cmdline` reads the target's memory under its memory-map lock;
//! a process faulting on a dead NFS or FUSE mapping holds that lock and `ps`
//! hangs right there. A thread is not enough to escape it: a thread stuck in
//! an uninterruptible wait keeps its whole process from exiting. So these
//! reads run in a helper *process*, whystuck itself re-executed as
//! `whystuck __read-helper ROOT`, that answers requests over pipes. When it
//! stops answering for the deadline, the read it is on is given up as timed
//! out, the helper is killed and left behind (as lsof does for NFS), and a
//! fresh one takes the rest.
//!
//! Protocol: the parent writes `PID STARTTIME\n` lines (`-` for an unknown
//! start time); the helper answers each with a frame `pid: i32, code: i32,
//! len: u32` (little-endian) and `len` bytes. `code` is 0, an errno, or -1
//! when the pid now belongs to another process (its start time changed).

use super::dir::ProcDir;
use super::parse;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Requests written at once: their lines always fit in a pipe's buffer, so
/// writing them never blocks on a stuck helper.
const BATCH: usize = 256;
const REUSED: i32 = -1;

/// The whystuck binary, re-executed as the helper: this one, even if its
/// file has since been replaced.
pub const PROGRAM: &str = "/proc/self/exe";

/// How long one read that can block may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the helper is and what it reads.
#[derive(Clone, Debug)]
pub struct HelperConfig {
    /// The whystuck binary (normally `/proc/self/exe`).
    pub program: PathBuf,
    pub proc_root: PathBuf,
    /// How long one read may take.
    pub timeout: Duration,
}

impl HelperConfig {
    /// This binary as the helper, reading under `proc_root`, with the
    /// standard per-read deadline.
    pub fn new(proc_root: PathBuf) -> HelperConfig {
        HelperConfig {
            program: PROGRAM.into(),
            proc_root,
            timeout: READ_TIMEOUT,
        }
    }
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    pending: Vec<u8>,
}

impl Running {
    fn spawn(config: &HelperConfig) -> io::Result<Running> {
        let mut child = Command::new(&config.program)
            .arg("__read-helper")
            .arg(&config.proc_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("no helper stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no helper stdout"))?;
        nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        Ok(Running {
            child,
            stdin,
            stdout,
            pending: Vec::new(),
        })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next frame, or `None` if none arrived within `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> io::Result<Option<(i32, i32, Vec<u8>)>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = take_frame(&mut self.pending) {
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut fds = [libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if ready == 0 {
                return Ok(None);
            }
            let mut chunk = [0u8; 64 << 10];
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Err(io::Error::other("the helper exited")),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Kill it, and reap it if it dies promptly: one stuck in an
    /// uninterruptible wait is left behind rather than waited for.
    fn abandon(mut self) {
        let _ = self.child.kill();
        reap(self.child, Duration::from_millis(50));
    }
}

/// Wait for a helper that was told to exit, but no longer than `within`, so
/// a healthy one is not left to outlive us as a zombie of init.
fn reap(mut child: Child, within: Duration) {
    let until = Instant::now() + within;
    while let Ok(None) = child.try_wait() {
        if Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn take_frame(pending: &mut Vec<u8>) -> Option<(i32, i32, Vec<u8>)> {
    let header = pending.get(..12)?;
    let word = |at: usize| <[u8; 4]>::try_from(&header[at..at + 4]).ok();
    let pid = i32::from_le_bytes(word(0)?);
    let code = i32::from_le_bytes(word(4)?);
    let len = u32::from_le_bytes(word(8)?) as usize;
    let data = pending.get(12..12 + len)?.to_vec();
    pending.drain(..12 + len);
    Some((pid, code, data))
}

/// A read helper kept across batches of reads: started ahead, so that its
/// start overlaps other work; replaced when one is abandoned; told to exit
/// and reaped when dropped.
pub struct CmdlineReader {
    config: HelperConfig,
    running: Option<Running>,
    /// Every helper started, the abandoned ones too.
    started: Vec<i32>,
}

impl CmdlineReader {
    /// A reader whose helper starts now if `start_now` (a failure to start
    /// is reported by the first read, which tries again), else at the
    /// first read.
    pub fn new(config: HelperConfig, start_now: bool) -> CmdlineReader {
        let running = start_now.then(|| Running::spawn(&config).ok()).flatten();
        let started = running.iter().map(Running::pid).collect();
        CmdlineReader {
            config,
            running,
            started,
        }
    }

    /// The pids of the helpers started, the abandoned ones too: whystuck's
    /// own processes, never to be taken for a target's.
    pub fn pids(&self) -> &[i32] {
        &self.started
    }

    /// The command line of each (pid, start time), in order. A read that
    /// gets no answer within the timeout is `TimedOut`; the rest are
    /// unaffected, but nothing is read past `deadline`: what is left then is
    /// `TimedOut` too.
    pub fn read(&mut self, targets: &[(i32, Option<u64>)], deadline: Instant) -> Vec<io::Result<Vec<u8>>> {
        let mut results: Vec<io::Result<Vec<u8>>> = Vec::with_capacity(targets.len());
        while results.len() < targets.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                while results.len() < targets.len() {
                    results.push(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the run's time budget ran out",
                    )));
                }
                break;
            }
            let running = match self.running.take() {
                Some(running) => running,
                None => match Running::spawn(&self.config) {
                    Ok(running) => {
                        self.started.push(running.pid());
                        running
                    }
                    Err(e) => {
                        let reason = format!("the read helper could not start: {e}");
                        while results.len() < targets.len() {
                            results.push(Err(io::Error::other(reason.clone())));
                        }
                        break;
                    }
                },
            };
            let batch = &targets[results.len()..targets.len().min(results.len() + BATCH)];
            self.running = serve_batch(running, batch, self.config.timeout.min(left), &mut results);
        }
        results
    }
}

impl Drop for CmdlineReader {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            drop(running.stdin); // EOF: the helper exits
            reap(running.child, Duration::from_millis(200));
        }
    }
}

/// Send one batch and collect its answers. Returns the helper if it is
/// still healthy.
fn serve_batch(
    mut running: Running,
    batch: &[(i32, Option<u64>)],
    timeout: Duration,
    results: &mut Vec<io::Result<Vec<u8>>>,
) -> Option<Running> {
    let mut lines = String::new();
    for (pid, start) in batch {
        match start {
            Some(start) => lines.push_str(&format!("{pid} {start}\n")),
            None => lines.push_str(&format!("{pid} -\n")),
        }
    }
    if let Err(e) = running
        .stdin
        .write_all(lines.as_bytes())
        .and_then(|()| running.stdin.flush())
    {
        results.push(Err(e));
        running.abandon();
        return None;
    }
    for (pid, _) in batch {
        match running.next_frame(timeout) {
            Ok(Some((answered, code, data))) if answered == *pid => results.push(match code {
                0 => Ok(data),
                REUSED => Err(io::Error::from_raw_os_error(libc::ESRCH)),
                errno => Err(io::Error::from_raw_os_error(errno)),
            }),
            Ok(Some(_)) => {
                results.push(Err(io::Error::other("the read helper answered out of order")));
                running.abandon();
                return None;
            }
            Ok(None) => {
                results.push(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {}", humantime::format_duration(timeout)),
                )));
                running.abandon();
                return None;
            }
            Err(e) => {
                results.push(Err(e));
                running.abandon();
                return None;
            }
        }
    }
    Some(running)
}

/// The comm a helper gives itself, so that one left behind stuck is known
/// for what it is and not reported as a stuck process of the host.
pub const HELPER_COMM: &str = "whystuck-helper";

/// The helper's side: answer requests from stdin until it closes.
pub fn serve(proc_root: &Path) -> io::Result<()> {
    let name = std::ffi::CString::new(HELPER_COMM).map_err(io::Error::other)?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    let root = ProcDir::open_root(proc_root)?;
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    let mut buf = Vec::new();
    for line in stdin.lock().lines() {
        let line = line?;
        let mut words = line.split_ascii_whitespace();
        let Some(pid) = words.next().and_then(|w| w.parse::<i32>().ok()) else {
            continue;
        };
        let start = words.next().and_then(|w| w.parse::<u64>().ok());
        let (code, data): (i32, &[u8]) = match read_one(&root, pid, start, &mut buf) {
            Ok(()) => (0, &buf),
            Err(code) => (code, &[]),
        };
        out.write_all(&pid.to_le_bytes())?;
        out.write_all(&code.to_le_bytes())?;
        out.write_all(&(data.len() as u32).to_le_bytes())?;
        out.write_all(data)?;
        out.flush()?;
    }
    Ok(())
}

fn read_one(root: &ProcDir, pid: i32, start: Option<u64>, buf: &mut Vec<u8>) -> Result<(), i32> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let dir = root.open_dir(&pid.to_string()).map_err(errno)?;
    if let Some(start) = start {
        dir.read("stat", buf).map_err(errno)?;
        if parse::stat(buf).ok().and_then(|s| s.starttime) != Some(start) {
            return Err(REUSED);
        }
    }
    dir.read("cmdline", buf).map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_or_not_at_all() {
        let mut pending = Vec::new();
        pending.extend_from_slice(&7i32.to_le_bytes());
        pending.extend_from_slice(&0i32.to_le_bytes());
        pending.extend_from_slice(&3u32.to_le_bytes());
        pending.extend_from_slice(b"ab");
        assert_eq!(take_frame(&mut pending), None, "one byte short");
        pending.push(b'c');
        pending.extend_from_slice(&8i32.to_le_bytes());
        assert_eq!(take_frame(&mut pending), Some((7, 0, b"abc".to_vec())));
        assert_eq!(pending, 8i32.to_le_bytes(), "the next frame's start is kept");
    }
}
