//! Mutation fuzzing of every parser and of the snapshot loader, from the
//! seed corpus in fuzz/corpus/ (real /proc files and snapshots): bit flips,
//! interesting bytes, insertions, deletions, duplications, truncations and
//! splices. Deterministic (a fixed seed per target), so a failure
//! reproduces; the failing input is written next to target/ for keeping in
//! the corpus.
//!
//! WHYSTUCK_FUZZ_ITERATIONS sets the mutations per target (CI runs the
//! default; a long run is `WHYSTUCK_FUZZ_ITERATIONS=1000000 cargo test
//! --release --test it fuzz::`).

use crate::support;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use whystuck::collect::parse;
use whystuck::snapshot::Snapshot;

fn iterations() -> usize {
    std::env::var("WHYSTUCK_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// xorshift64*: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"(",
    b")",
    b") (",
    b"\n",
    b":",
    b" ",
    b"\t",
    b"-1",
    b"0x",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"4294967296",
    b"\xf0\x9f\x92",
    b"[",
    b"]",
    b"tfd:",
    b"flags:\t",
    b"\\",
    b"\"",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + rng.below(64)).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(at..at, copy);
            }
            5 => data.truncate(at),
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let n = rng.below(8);
                data.splice(at..at, (0..n).map(|_| rng.next() as u8));
            }
        }
    }
    data
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!corpus.is_empty(), "no seeds in {}", dir.display());
    corpus
}

/// Run `check` on every seed and on `iterations()` mutations of them; a
/// panic (or a failed check) saves the input and fails the test.
fn fuzz(kind: &str, seed: u64, check: impl Fn(&[u8])) {
    let corpus = corpus(kind);
    let mut rng = Rng(seed);
    for i in 0..corpus.len() + iterations() {
        let input = match corpus.get(i) {
            Some(seed) => seed.clone(),
            None => {
                let pick = rng.below(corpus.len());
                mutate(&mut rng, &corpus[pick], &corpus)
            }
        };
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/fuzz-crash-{kind}-{i}"));
            std::fs::write(&saved, &input).unwrap();
            panic!("{kind}: input {i} broke the parser; saved to {}", saved.display());
        }
    }
}

#[test]
fn stat_parser() {
    fuzz("stat", 1, |input| {
        if let Ok(stat) = parse::stat(input) {
            assert!(stat.comm.as_bytes().len() <= input.len());
            assert!(stat.state.is_ascii_alphabetic());
        }
    });
}

#[test]
fn status_parser() {
    fuzz("status", 2, |input| {
        let _ = parse::status(input);
    });
}

#[test]
fn syscall_parser() {
    fuzz("syscall", 3, |input| {
        if let Ok(whystuck::snapshot::Syscall::Blocked { args, .. }) = parse::syscall(input) {
            assert!(args.len() <= 6);
        }
    });
}

#[test]
fn fdinfo_parser() {
    fuzz("fdinfo", 4, |input| {
        let info = parse::fdinfo(input);
        assert!(info.epoll_targets.len() <= input.len());
    });
}

#[test]
fn lock_parsers() {
    fuzz("locks", 10, |input| {
        assert!(parse::proc_locks(input).len() <= input.len());
        assert!(parse::fdinfo_locks(input).len() <= input.len());
    });
    fuzz("fdinfo", 11, |input| {
        assert!(parse::fdinfo_locks(input).len() <= input.len());
    });
}

#[test]
fn net_table_parsers() {
    fuzz("net_tcp", 5, |input| {
        assert!(parse::proc_net_tcp(input).len() <= input.len());
        // net/udp has the same columns.
        assert!(parse::proc_net_udp(input).len() <= input.len());
    });
    fuzz("net_unix", 6, |input| {
        assert!(parse::proc_net_unix(input).len() <= input.len());
    });
}

#[test]
fn cmdline_and_link_parsers() {
    fuzz("cmdline", 7, |input| {
        assert!(parse::cmdline(input).len() <= input.len() + 1);
        let _ = parse::pids(input);
        let _ = whystuck::linux::fd::link_inode(input, "pipe");
        let _ = whystuck::snapshot::FdKind::of(input);
        let escaped = whystuck::text::escape_bytes(input);
        assert!(!escaped.chars().any(|c| c.is_control()));
    });
}

#[test]
fn cgroup_parsers() {
    use whystuck::collect::cgroup::parse as cg;
    fuzz("cgroup", 10, |input| {
        if let Ok(lines) = whystuck::linux::cgroup::membership(input) {
            assert!(lines.len() <= input.len());
            let _ = whystuck::linux::cgroup::container(lines.iter().map(|l| l.path));
        }
        assert!(cg::cgroup_mounts(input).len() <= input.len());
        let _ = (
            cg::freezer_state(input),
            cg::number(input),
            cg::cpu_max(input),
            cg::limit(input),
        );
        let _ = (cg::keyed(input, "frozen"), cg::psi(input));
        if let Ok(text) = std::str::from_utf8(input) {
            let _ = whystuck::linux::cgroup::memory_wait(text);
        }
    });
}

/// Snapshot files: a mutated one is an error or a snapshot, and a snapshot
/// that loads can be diagnosed and rendered in every format.
#[test]
fn snapshot_loader_and_everything_after_it() {
    let loaded = std::sync::atomic::AtomicUsize::new(0);
    fuzz("snapshot", 8, |input| {
        if let Ok(snapshot) = Snapshot::parse(input) {
            loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let report = whystuck::report::build(snapshot);
            for format in [
                whystuck::render::Format::Human,
                whystuck::render::Format::Json,
                whystuck::render::Format::Ndjson,
                whystuck::render::Format::Prometheus,
            ] {
                let mut out = Vec::new();
                whystuck::render::render(&report, format, whystuck::render::Style::default(), &mut out).unwrap();
            }
        }
    });
    // Every seed loads; some mutations must too, or the renderers went
    // untested on mutated input.
    assert!(
        loaded.into_inner() > corpus("snapshot").len(),
        "no mutated snapshot loaded"
    );
}

/// whystuck with its address space capped at 256 MiB: an input that made
/// it allocate without bound would abort it.
fn whystuck_in_bounded_memory(args: &[&str]) -> support::Run {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_whystuck"));
    command.args(args);
    // SAFETY: setrlimit is async-signal-safe; the limit is a plain struct.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256 << 20,
                rlim_max: 256 << 20,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let output = assert_cmd::Command::from_std(command)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    support::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The whole binary on fake /proc trees made of mutated files: it reports
/// (exit 0 or 1, valid JSON) within a bounded address space, never fails or
/// panics.
#[test]
fn the_binary_on_mutated_proc_trees() {
    let seeds: Vec<(&str, Vec<Vec<u8>>)> = [
        "stat", "status", "syscall", "fdinfo", "net_tcp", "net_unix", "cmdline", "locks",
    ]
    .iter()
    .map(|kind| (*kind, corpus(kind)))
    .collect();
    let mut rng = Rng(9);
    let runs = (iterations() / 200).max(20);
    for run in 0..runs {
        let fake = support::FakeProc::new();
        let mut file = |kind: &str, rel: &str| {
            let (_, corpus) = seeds.iter().find(|(k, _)| *k == kind).unwrap();
            let pick = rng.below(corpus.len());
            fake.file(rel, &mutate(&mut rng, &corpus[pick], corpus));
        };
        for (kind, rel) in [
            ("stat", "42/stat"),
            ("status", "42/status"),
            ("cmdline", "42/cmdline"),
            ("stat", "42/task/42/stat"),
            ("status", "42/task/42/status"),
            ("syscall", "42/task/42/syscall"),
            ("fdinfo", "42/fdinfo/0"),
            ("fdinfo", "42/fdinfo/3"),
            ("fdinfo", "42/fdinfo/4"),
            ("locks", "locks"),
            ("net_tcp", "42/net/tcp"),
            ("net_tcp", "42/net/tcp6"),
            ("net_tcp", "42/net/udp"),
            ("net_unix", "42/net/unix"),
        ] {
            file(kind, rel);
        }
        fake.file("42/task/42/wchan", b"ep_poll");
        fake.link("42/fd/0", "pipe:[7]");
        fake.link("42/fd/3", "socket:[8]");
        // A file a thread may wait to lock (the flock syscall seed): its
        // holders are looked for among these fds.
        fake.link("42/fd/4", "/var/lib/app/db.lock");
        let run_result =
            whystuck_in_bounded_memory(&["--proc-root", fake.path().to_str().unwrap(), "--json", "-i", "0", "42"]);
        assert!(
            run_result.code == 0 || run_result.code == 1,
            "run {run}: exit {}: {}",
            run_result.code,
            run_result.stderr
        );
        let _ = run_result.json();
    }
}
