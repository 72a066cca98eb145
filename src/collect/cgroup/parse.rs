//! Parsers for the cgroup files whystuck reads (the cgroup mounts of
//! `mountinfo`, and the cgroup file system's own files; `/proc/PID/cgroup`
//! is [`crate::linux::cgroup::membership`], which classify reads too):
//! pure functions from bytes, hostile input tolerated as in
//! [`crate::collect::parse`].

use crate::snapshot::{FreezerState, Limit, Psi, PsiLine};

/// A cgroup file system mounted here, from a line of `mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMount {
    /// 1 (`cgroup`) or 2 (`cgroup2`).
    pub version: u8,
    /// Where it is mounted, its octal escapes undone.
    pub point: Vec<u8>,
    /// Which directory of the hierarchy is mounted there (`/` unless a
    /// bind mount or a cgroup namespace says otherwise).
    pub root: Vec<u8>,
    /// For v1, the controllers of its super options (`cpu`, `cpuacct`,
    /// `name=systemd`).
    pub controllers: Vec<String>,
}

/// The cgroup mounts of a `mountinfo` file, in its order:
/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
pub fn cgroup_mounts(buf: &[u8]) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in buf.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        let (Some(root), Some(point), Some(fstype)) = (fields.get(3), fields.get(4), fields.get(dash + 1)) else {
            continue;
        };
        let version = match *fstype {
            b"cgroup" => 1,
            b"cgroup2" => 2,
            _ => continue,
        };
        let controllers = match (version, fields.get(dash + 3)) {
            (1, Some(options)) => String::from_utf8_lossy(options)
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        mounts.push(CgroupMount {
            version,
            point: unescape(point),
            root: unescape(root),
            controllers,
        });
    }
    mounts
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// v1 `freezer.state`.
pub fn freezer_state(buf: &[u8]) -> Result<FreezerState, String> {
    match buf.trim_ascii() {
        b"THAWED" => Ok(FreezerState::Thawed),
        b"FREEZING" => Ok(FreezerState::Freezing),
        b"FROZEN" => Ok(FreezerState::Frozen),
        other => Err(format!("unknown state {:?}", String::from_utf8_lossy(other))),
    }
}

/// The number after `key` in a flat-keyed file (`cgroup.events`,
/// `cpu.stat`, `memory.events`, `memory.oom_control`: `key value` lines).
pub fn keyed(buf: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(buf).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A file holding one number (`cpu.cfs_period_us`, `memory.failcnt`).
pub fn number(buf: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?.trim();
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// v2 `cpu.max`: `QUOTA PERIOD`, the quota `max` for none.
pub fn cpu_max(buf: &[u8]) -> Result<(Option<u64>, u64), String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?;
    let mut fields = text.split_ascii_whitespace();
    let quota = match fields.next() {
        Some("max") => None,
        Some(q) => Some(q.parse().map_err(|_| format!("quota {q:?} is not a number"))?),
        None => return Err("empty".into()),
    };
    let period = fields
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("no period after the quota")?;
    Ok((quota, period))
}

/// At or above this a v1 memory limit is no limit (`PAGE_COUNTER_MAX`
/// pages, which reads 9223372036854771712 with 4 KiB pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// A memory limit: `max` (v2), a huge number (v1), or bytes.
pub fn limit(buf: &[u8]) -> Result<Limit, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?.trim();
    if text == "max" {
        return Ok(Limit::Unlimited);
    }
    match text.parse::<u64>() {
        Ok(n) if n >= V1_UNLIMITED => Ok(Limit::Unlimited),
        Ok(n) => Ok(Limit::Bytes(n)),
        Err(_) => Err(format!("not a limit: {text:?}")),
    }
}

/// A pressure file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, and
/// a `full` line likewise (absent from older kernels' cpu.pressure).
pub fn psi(buf: &[u8]) -> Result<Psi, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?;
    let mut psi = Psi { some: None, full: None };
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let which = fields.next();
        let mut values = [None; 4];
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let at = ["avg10", "avg60", "avg300", "total"].iter().position(|k| *k == key);
            if let Some(at) = at {
                values[at] = value.parse::<f64>().ok();
            }
        }
        let [Some(avg10), Some(avg60), Some(avg300), Some(total)] = values else {
            continue;
        };
        let line = PsiLine {
            avg10,
            avg60,
            avg300,
            total_us: total as u64,
        };
        match which {
            Some("some") => psi.some = Some(line),
            Some("full") => psi.full = Some(line),
            _ => {}
        }
    }
    if psi.some.is_none() && psi.full.is_none() {
        return Err("no some or full line".into());
    }
    Ok(psi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_from_mountinfo() {
        let buf = b"22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
41 31 0:38 /docker/ab /sys/fs/cgroup/unified\\040dir rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
        let mounts = cgroup_mounts(buf);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].version, 1);
        assert_eq!(mounts[0].point, b"/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[1].controllers, ["xattr", "name=systemd"]);
        assert_eq!(mounts[2].version, 2);
        assert_eq!(mounts[2].point, b"/sys/fs/cgroup/unified dir");
        assert_eq!(mounts[2].root, b"/docker/ab");
        assert!(mounts[2].controllers.is_empty());
        assert_eq!(cgroup_mounts(b"1 2 3\n- - -\n"), []);
    }

    #[test]
    fn files_of_the_cgroup_file_system() {
        assert_eq!(freezer_state(b"FROZEN\n"), Ok(FreezerState::Frozen));
        assert_eq!(freezer_state(b"FREEZING\n"), Ok(FreezerState::Freezing));
        assert_eq!(freezer_state(b"THAWED\n"), Ok(FreezerState::Thawed));
        assert!(freezer_state(b"SLUSHY\n").is_err());
        let events = b"populated 1\nfrozen 1\n";
        assert_eq!(keyed(events, "frozen"), Some(1));
        assert_eq!(keyed(events, "populated"), Some(1));
        assert_eq!(keyed(events, "froze"), None);
        let stat = b"nr_periods 10\nnr_throttled 9\nthrottled_time 912000000\n";
        assert_eq!(keyed(stat, "throttled_time"), Some(912_000_000));
        assert_eq!(cpu_max(b"5000 100000\n"), Ok((Some(5000), 100_000)));
        assert_eq!(cpu_max(b"max 100000\n"), Ok((None, 100_000)));
        assert!(cpu_max(b"lots 100000\n").is_err());
        assert!(cpu_max(b"5000\n").is_err());
        assert_eq!(number(b"-1\n"), Ok(-1));
        assert_eq!(limit(b"max\n"), Ok(Limit::Unlimited));
        assert_eq!(limit(b"536870912\n"), Ok(Limit::Bytes(536_870_912)));
        assert_eq!(limit(b"9223372036854771712\n"), Ok(Limit::Unlimited));
        assert!(limit(b"lots\n").is_err());
    }

    #[test]
    fn pressure_files() {
        let p = psi(b"some avg10=45.12 avg60=20.00 avg300=5.50 total=123456\nfull avg10=30.00 avg60=10.00 avg300=2.00 total=6543\n").unwrap();
        assert_eq!(p.some.as_ref().unwrap().avg10, 45.12);
        assert_eq!(p.some.as_ref().unwrap().total_us, 123_456);
        assert_eq!(p.full.as_ref().unwrap().avg60, 10.0);
        let old_cpu = psi(b"some avg10=1.00 avg60=0.00 avg300=0.00 total=10\n").unwrap();
        assert!(old_cpu.full.is_none());
        assert!(psi(b"").is_err());
        assert!(psi(b"some avg10=x\n").is_err());
    }
}
