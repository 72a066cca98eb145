//! sock_diag against the running kernel: real sockets, dumped and found.

use super::*;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

const T: Duration = Duration::from_secs(5);

fn inode_of(fd: &impl AsRawFd) -> u64 {
    // SAFETY: test-only fstat on a live descriptor into a zeroed stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    assert_eq!(rc, 0, "fstat: {}", io::Error::last_os_error());
    st.st_ino as u64
}

fn dump_all_unix(timeout: Duration) -> io::Result<Vec<UnixDiag>> {
    let mut all = Vec::new();
    dump_unix(timeout, &mut |s| all.push(s))?;
    Ok(all)
}

fn find_unix(all: &[UnixDiag], ino: u64) -> &UnixDiag {
    all.iter()
        .find(|d| d.inode == ino)
        .unwrap_or_else(|| panic!("unix inode {ino} not in dump"))
}

/// Fill `w` with writes of `chunk` bytes until EAGAIN; returns bytes
/// written and number of successful writes.
fn fill(w: &mut UnixStream, chunk: usize) -> (usize, usize) {
    w.set_nonblocking(true).unwrap();
    let data = vec![b'x'; chunk];
    let (mut bytes, mut writes) = (0, 0);
    loop {
        match w.write(&data) {
            Ok(n) => {
                bytes += n;
                writes += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (bytes, writes),
            Err(e) => panic!("write: {e}"),
        }
    }
}

fn check_full_socketpair(chunk: usize) -> (SkMeminfo, usize, usize) {
    let (mut w, r) = UnixStream::pair().unwrap();
    let (wi, ri) = (inode_of(&w), inode_of(&r));
    let (bytes, writes) = fill(&mut w, chunk);
    let all = dump_all_unix(T).unwrap();
    let wd = find_unix(&all, wi);
    let rd = find_unix(&all, ri);
    assert_eq!(wd.sock_type, libc::SOCK_STREAM as u8);
    assert_eq!(wd.state, 1, "ESTABLISHED");
    assert_eq!(wd.peer_inode, Some(ri));
    assert_eq!(rd.peer_inode, Some(wi));
    assert_eq!(wd.path, None);
    // Stream rqueue is the bytes waiting to be read.
    assert_eq!(rd.rqueue, Some(bytes as u32));
    assert!(rd.rqueue.unwrap() > 0);
    let m = wd.meminfo.clone().expect("writer meminfo");
    // Send queue and wmem_alloc are the same counter.
    assert_eq!(wd.wqueue, Some(m.wmem_alloc));
    // The kernel lets a send through while wmem_alloc < sndbuf, so a full
    // socket is at or just above sndbuf, by less than one skb's truesize.
    let per_skb = (m.wmem_alloc as usize).div_ceil(writes.max(1));
    assert!(m.wmem_alloc >= m.sndbuf, "{m:?}");
    assert!((m.wmem_alloc as usize) < m.sndbuf as usize + per_skb, "{m:?}");
    drop(r);
    (m, bytes, writes)
}

#[test]
fn live_unix_socketpair_full_1_byte_writes() {
    let (m, bytes, writes) = check_full_socketpair(1);
    eprintln!(
        "1-byte writes: {writes} writes, {bytes} bytes, wmem_alloc={} sndbuf={} \
         over={} per_skb~{}",
        m.wmem_alloc,
        m.sndbuf,
        m.wmem_alloc as i64 - m.sndbuf as i64,
        m.wmem_alloc as usize / writes
    );
}

#[test]
fn live_unix_socketpair_full_4096_byte_writes() {
    let (m, bytes, writes) = check_full_socketpair(4096);
    eprintln!(
        "4096-byte writes: {writes} writes, {bytes} bytes, wmem_alloc={} sndbuf={} \
         over={} per_skb~{}",
        m.wmem_alloc,
        m.sndbuf,
        m.wmem_alloc as i64 - m.sndbuf as i64,
        m.wmem_alloc as usize / writes
    );
}

#[test]
fn live_unix_bound_names() {
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("sockdiag-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let c = UnixStream::connect(&path).unwrap();
    let li = inode_of(&l);
    let all = dump_all_unix(T).unwrap();
    let ld = find_unix(&all, li);
    assert_eq!(ld.state, 10, "LISTEN");
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(ld.path.as_deref(), Some(path.as_os_str().as_bytes()));
    // LISTEN: rqueue = pending connections, wqueue = max backlog.
    assert_eq!(ld.rqueue, Some(1));
    assert!(ld.wqueue.unwrap_or(0) >= 1);
    drop(c);
    drop(l);
    let _ = std::fs::remove_dir_all(&dir);

    // Abstract name keeps its leading NUL.
    use std::os::linux::net::SocketAddrExt;
    let name = format!("sockdiag-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    let all = dump_all_unix(T).unwrap();
    let mut want = vec![0u8];
    want.extend_from_slice(name.as_bytes());
    assert_eq!(find_unix(&all, inode_of(&l)).path, Some(want));
}

#[test]
fn live_unix_multipart_dump() {
    // ~600 sockets at ~90 bytes each: the reply spans several datagrams.
    let pairs: Vec<_> = (0..300).map(|_| UnixStream::pair().unwrap()).collect();
    let all = dump_all_unix(T).unwrap();
    let inodes: std::collections::HashSet<u64> = all.iter().map(|d| d.inode).collect();
    assert_eq!(inodes.len(), all.len(), "duplicate inodes in dump");
    for (a, b) in &pairs {
        let (ai, bi) = (inode_of(a), inode_of(b));
        assert_eq!(find_unix(&all, ai).peer_inode, Some(bi));
        assert_eq!(find_unix(&all, bi).peer_inode, Some(ai));
    }
}

fn find_tcp(all: &[TcpDiag], ino: u64) -> &TcpDiag {
    all.iter()
        .find(|d| d.inode == ino)
        .unwrap_or_else(|| panic!("tcp inode {ino} not in dump"))
}

fn check_tcp(bind: &str) {
    let l = match TcpListener::bind(bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping {bind}: {e}");
            return;
        }
    };
    let laddr = l.local_addr().unwrap();
    let mut c = TcpStream::connect(laddr).unwrap();
    let (s, caddr) = l.accept().unwrap();
    assert_eq!(caddr, c.local_addr().unwrap());
    let payload = [7u8; 1000];
    c.write_all(&payload).unwrap();

    let uid = unsafe { libc::geteuid() };
    let (li, ci, si) = (inode_of(&l), inode_of(&c), inode_of(&s));
    let mut tries = 0;
    loop {
        let all = dump_tcp(T).unwrap();
        let ld = find_tcp(&all, li);
        assert_eq!(ld.state, 10, "LISTEN");
        assert_eq!(ld.local, laddr);
        assert_eq!(ld.uid, uid);
        let cd = find_tcp(&all, ci);
        assert_eq!(cd.state, 1, "ESTABLISHED");
        assert_eq!(cd.local, caddr);
        assert_eq!(cd.remote, laddr);
        let sd = find_tcp(&all, si);
        assert_eq!(sd.state, 1, "ESTABLISHED");
        assert_eq!(sd.local, laddr);
        assert_eq!(sd.remote, caddr);
        if sd.rx_queue == payload.len() as u32 {
            break;
        }
        tries += 1;
        assert!(tries < 100, "rx_queue never reached 1000: {sd:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_tcp_ipv4() {
    check_tcp("127.0.0.1:0");
}

#[test]
fn live_tcp_ipv6() {
    check_tcp("[::1]:0");
}

#[test]
fn recv_without_reply_times_out_within_budget() {
    let budget = Duration::from_millis(200);
    let start = Instant::now();
    let mut conn = DiagSocket::open(budget).unwrap();
    // No request sent: the kernel never answers.
    let e = conn.recv().unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < budget + Duration::from_millis(50), "{took:?}");
}

#[test]
fn zero_timeout_times_out() {
    assert_eq!(dump_all_unix(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);
    assert_eq!(dump_tcp(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);
}
