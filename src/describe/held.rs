//! Who holds a wait, in words: a file lock's holders ("held by pid 7121
//! (flock) fd 4, itself sleeping"), and the DNS server a resolver waits for.

use super::units::process_name;
use crate::classify::finding::*;
use crate::linux::locks::{LockAccess, LockClass};

/// "main thread waiting for an exclusive flock lock on /tmp/db.lock (fd 3),
/// held by pid 7121 (flock) fd 4, itself sleeping".
pub(super) fn lock_wait(who: &str, lock: &LockWait) -> String {
    let what = match (lock.access, lock.class) {
        (Some(access @ (LockAccess::Read | LockAccess::Write)), Some(class)) => {
            let article = if access == LockAccess::Read { "a" } else { "an" };
            format!("{article} {} {} lock", access.name(), class.name())
        }
        (_, Some(class)) => format!("a {} lock", class.name()),
        (_, None) => "a file lock".to_string(),
    };
    let on = match &lock.fd {
        Some(f) => match &f.what {
            FdWhat::Other { target, .. } => format!(" on {} (fd {})", target.escaped(), f.fd),
            _ => format!(" on fd {}", f.fd),
        },
        None => String::new(),
    };
    let mut held: Vec<String> = lock.holders.iter().map(|h| holder(h, lock.fd.as_ref())).collect();
    held.extend(
        lock.unverified
            .iter()
            .map(|pid| format!("pid {pid} (as /proc/locks says; its fds could not be read to verify it)")),
    );
    let mut text = format!("{who} waiting for {what}{on}");
    match (held.as_slice(), &lock.unknown) {
        ([], Some(unknown)) => text.push_str(&format!(": {}", unknown_holder(unknown))),
        ([], None) => text.push_str(": who holds it is unknown"),
        (held, _) => text.push_str(&format!(", held by {}", held.join("; and "))),
    }
    if !lock.stale.is_empty() {
        let pids: Vec<String> = lock.stale.iter().map(i32::to_string).collect();
        text.push_str(&format!(
            " (not by {}, which /proc/locks names: {} not hold it)",
            pids.join(", "),
            if pids.len() == 1 { "it does" } else { "they do" }
        ));
    }
    text
}

/// "pid 7121 (flock) fd 4, itself sleeping", or "itself (fd 4)".
fn holder(h: &LockHolder, waiter: Option<&FdFacts>) -> String {
    if waiter.is_some_and(|f| f.pid == h.peer.pid) {
        return format!("itself (fd {})", h.peer.fd);
    }
    let name = format!("{} fd {}", process_name(h.peer.pid, h.peer.comm.as_ref()), h.peer.fd);
    match h.verdict {
        Some(verdict) => format!("{name}, itself {}", verdict.name()),
        None => name,
    }
}

fn unknown_holder(unknown: &LockUnknown) -> String {
    match unknown {
        LockUnknown::NotRead => "who holds it is unknown (/proc/locks was not read)".to_string(),
        LockUnknown::Unreadable(reason) => {
            format!("who holds it is unknown (/proc/locks could not be read: {reason})")
        }
        LockUnknown::NotListed => "its wait is not in /proc/locks, so who holds it is unknown (a lock held in a pid namespace this run cannot see is hidden there, with its waiters)".to_string(),
        LockUnknown::NotFound {
            searched_everyone,
            unsearchable,
            because,
            cut_short,
        } => {
            let mut how = vec![match searched_everyone {
                true => "every process's fds on its path were looked through".to_string(),
                false => "the processes /proc/locks names were looked through".to_string(),
            }];
            if *unsearchable > 0 {
                let why = because.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                how.push(format!("{unsearchable} could not be{why}"));
            }
            if let Some(reason) = cut_short {
                how.push(format!("the search stopped short ({reason})"));
            }
            format!("no process was found holding it ({})", how.join("; "))
        }
    }
}

/// "main thread waiting for a DNS answer from 127.0.0.53:53 (fd 3, in
/// poll)".
pub(super) fn dns_wait(who: &str, dns: &DnsWait) -> String {
    let server = match &dns.server {
        DnsServer::Udp(addr) => addr.to_string(),
        DnsServer::Unix(path) => format!("systemd-resolved ({})", path.escaped()),
    };
    let call = dns.call.map(|c| format!(", in {c}")).unwrap_or_default();
    match dns.poll_set {
        true => format!(
            "{who} waiting for a DNS answer from {server}{call} (its resolver's socket is fd {})",
            dns.fd
        ),
        false => format!("{who} waiting for a DNS answer from {server} (fd {}{call})", dns.fd),
    }
}

/// The lock's class, for a next step: "flock", "POSIX".
pub(super) fn class_name(lock: &LockWait) -> &'static str {
    lock.class.map_or("file", LockClass::name)
}
