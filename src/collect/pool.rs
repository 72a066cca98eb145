//! Sampling on a small pool of threads: as many as the CPUs whystuck may
//! run on, at most [`MAX_THREADS`], the collecting thread among them.
//!
//! Each thread takes the next few items, works on them with its own
//! scratch state, and leaves each result in its slot; the collecting
//! thread hands results to `merge` strictly in the order of the items, as
//! soon as every earlier one has been, between items of its own. So what
//! the run keeps (the snapshot, the index of who holds what, the socket
//! tables, the cgroups read, the batch's work) is changed by one thread, in
//! the order a single thread would have changed it, and a result waits
//! only for the few being worked on before it.
//!
//! The pool threads only read /proc through directories already held open
//! (or opened relative to the held /proc root): no path a user names, no
//! cgroup file, nothing opened with the caller's rights (see
//! [`crate::privilege`], whose lowering is per thread), and no socket read
//! (netlink dumps and questions, with their deadlines, are the collecting
//! thread's, which shares questions out among threads of its own). A
//! command line is read in-process only where no thread seen can hold its
//! lock ([`super::reason::memory_readable_directly`]); should one take it
//! in between, [`super::backstop`] ends the run. Each thread checks the
//! run's budget before each item, and waits for a second sample no later
//! than the budget's end. Outside a scan, a process with thousands of fds
//! has its links read on threads of its own (see [`shared_out`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Threads at most, the collecting one among them: /proc reads of a scan
/// scale to a few CPUs, then contend in the kernel.
pub(super) const MAX_THREADS: usize = 4;

/// Items taken at a time by a thread.
const CHUNK: usize = 8;

/// Threads for a run: the CPUs this process may run on, at most
/// [`MAX_THREADS`]; 1 when that cannot be read.
pub(super) fn threads() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes one of the
    // given size for the calling thread (0).
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return 1;
    }
    let cpus = unsafe { libc::CPU_COUNT(&allowed) };
    usize::try_from(cpus).unwrap_or(1).clamp(1, MAX_THREADS)
}

/// `work` on every item, on up to `threads` threads (this one among them),
/// each with scratch state made by `scratch`; each result handed to
/// `merge` on this thread, in the order of `items`. With one thread, or
/// one item, everything runs here, item by item.
pub(super) fn ordered<T, R, S>(
    items: &[T],
    threads: usize,
    scratch: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
    mut merge: impl FnMut(usize, R),
) where
    T: Sync,
    R: Send,
{
    let threads = threads.min(items.len().div_ceil(CHUNK)).max(1);
    if threads == 1 {
        let mut state = scratch();
        for (at, item) in items.iter().enumerate() {
            merge(at, work(&mut state, item));
        }
        return;
    }
    // Boxed: a slot is a pointer until its result comes (a sample is a
    // kilobyte, and a scan has thousands of slots).
    let slots: Vec<Mutex<Option<Box<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    // Take chunks until none is left.
    let run = |state: &mut S, after_chunk: &mut dyn FnMut()| loop {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        if start >= items.len() {
            return;
        }
        for at in start..(start + CHUNK).min(items.len()) {
            let result = work(state, &items[at]);
            *slots[at].lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(result));
        }
        after_chunk();
    };
    let mut merged = 0;
    let mut merge_ready = |upto: usize| {
        while merged < upto {
            let result = slots[merged].lock().unwrap_or_else(PoisonError::into_inner).take();
            let Some(result) = result else { return };
            merge(merged, *result);
            merged += 1;
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // A host out of threads (its pids limit): fewer of them, or
            // this one alone, take every chunk.
            let _ = std::thread::Builder::new().spawn_scoped(scope, || run(&mut scratch(), &mut || {}));
        }
        let mut state = scratch();
        run(&mut state, &mut || merge_ready(items.len()));
    });
    // Every thread has finished: the rest, in order.
    merge_ready(items.len());
}

/// `work` on `items` cut into up to `threads` contiguous shares, the first
/// on this thread, the others each on a thread of its own (or here, when no
/// thread can be made); the results in the order of the shares.
pub(super) fn shared_out<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let share = items.len().div_ceil(threads.max(1)).max(1);
    let mut shares = items.chunks(share);
    let own = shares.next().unwrap_or_default();
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = shares
            .map(|share| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || work(share))
                    .map_err(|_| share)
            })
            .collect();
        let mut results = vec![work(own)];
        for other in others {
            results.push(match other {
                Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(share) => work(share),
            });
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_merged_in_order_whatever_the_threads() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 3, 4] {
            let mut seen = Vec::new();
            ordered(
                &items,
                threads,
                || 0u64,
                |calls, &item| {
                    *calls += 1;
                    // Uneven work, so threads finish out of order.
                    if item % 7 == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    item * 2
                },
                |at, result| seen.push((at, result)),
            );
            let expected: Vec<(usize, u64)> = items.iter().map(|&i| (i as usize, i * 2)).collect();
            assert_eq!(seen, expected, "{threads} threads");
        }
    }

    #[test]
    fn shares_come_back_in_order() {
        let items: Vec<u32> = (0..10).collect();
        for threads in [0, 1, 2, 3, 4, 20] {
            let sums = shared_out(&items, threads, |share| share.to_vec());
            assert_eq!(sums.concat(), items, "{threads} threads");
            assert!(sums.len() <= threads.max(1), "{threads} threads");
        }
        assert_eq!(shared_out(&[] as &[u32], 4, |share| share.len()), [0]);
    }

    #[test]
    fn a_process_may_use_at_least_one_thread() {
        assert!((1..=MAX_THREADS).contains(&threads()));
    }
}
