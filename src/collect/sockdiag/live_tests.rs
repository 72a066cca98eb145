//! sock_diag against the running kernel: real sockets, dumped and found.

use super::wire::{IPPROTO_TCP, IPPROTO_UDP, TCP_EXTENSIONS};
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

/// Asked for one by one, unix sockets come as the dump has them; an inode
/// that is no unix socket's (a TCP socket's, or nobody's) is left out.
#[test]
fn live_unix_queries_answer_as_the_dump() {
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"queued").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ai, bi) = (inode_of(&a), inode_of(&b));
    let mut asked = Vec::new();
    query_unix(T, &[ai, inode_of(&tcp), bi, u64::from(u32::MAX), 1 << 40], &mut |s| {
        asked.push(s)
    })
    .unwrap();
    assert_eq!(asked.iter().map(|s| s.inode).collect::<Vec<_>>(), [ai, bi]);
    let all = dump_all_unix(T).unwrap();
    for s in &asked {
        let dumped = find_unix(&all, s.inode);
        assert_eq!(
            (s.peer_inode, s.rqueue, s.sock_type, s.state),
            (dumped.peer_inode, dumped.rqueue, dumped.sock_type, dumped.state)
        );
    }
    assert_eq!(asked[0].rqueue, Some(6), "the bytes b wrote wait in a");
    assert_eq!(asked[0].peer_inode, Some(bi));

    // Enough questions to be shared among threads: every answer, in the
    // order asked.
    let pairs: Vec<_> = (0..9).map(|_| UnixStream::pair().unwrap()).collect();
    let inodes: Vec<u64> = pairs.iter().flat_map(|(a, b)| [inode_of(a), inode_of(b)]).collect();
    let mut answered = Vec::new();
    query_unix(T, &inodes, &mut |s| answered.push((s.inode, s.peer_inode))).unwrap();
    let expected: Vec<(u64, Option<u64>)> = inodes
        .chunks(2)
        .flat_map(|p| [(p[0], Some(p[1])), (p[1], Some(p[0]))])
        .collect();
    assert_eq!(answered, expected);
}

/// One request for both families finds what one request per family does.
#[test]
fn live_tcp_one_request_for_both_families() {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").ok();
    let both: Vec<u64> = dump_tcp(T).unwrap().iter().map(|s| s.inode).collect();
    let per_family = dump_inet(DiagSocket::open(T).unwrap(), IPPROTO_TCP, TCP_EXTENSIONS, u32::MAX).unwrap();
    assert!(both.contains(&inode_of(&v4)));
    if let Some(v6) = &v6 {
        assert!(both.contains(&inode_of(v6)), "the IPv6 listener");
    }
    for s in per_family.iter().filter(|s| s.inode != 0) {
        // Sockets of other tests come and go meanwhile: ours are there.
        if [Some(inode_of(&v4)), v6.as_ref().map(inode_of)].contains(&Some(s.inode)) {
            assert!(both.contains(&s.inode));
        }
    }
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

fn find_inet(all: &[InetDiag], ino: u64) -> &InetDiag {
    all.iter()
        .find(|d| d.inode == ino)
        .unwrap_or_else(|| panic!("inet inode {ino} not in dump"))
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
        let ld = find_inet(&all, li);
        assert_eq!(ld.state, 10, "LISTEN");
        assert_eq!(ld.local, laddr);
        assert_eq!(ld.uid, uid);
        let cd = find_inet(&all, ci);
        assert_eq!(cd.state, 1, "ESTABLISHED");
        assert_eq!(cd.local, caddr);
        assert_eq!(cd.remote, laddr);
        let sd = find_inet(&all, si);
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

/// The raw message the kernel sends for the socket `inode` in a dump of
/// `protocol` over IPv4 (header included), as hex.
fn raw_inet_message(protocol: u8, extensions: u8, inode: u64) -> String {
    use super::wire::{inet_diag_request, read_u32, NLMSG_DONE, NLMSG_HDRLEN};
    let mut conn = DiagSocket::open(T).unwrap();
    conn.send(&inet_diag_request(AF_INET, protocol, extensions, u32::MAX, 1))
        .unwrap();
    loop {
        let n = conn.recv().unwrap();
        let datagram = &conn.buf[..n];
        let mut off = 0;
        while off + NLMSG_HDRLEN <= n {
            let len = read_u32(datagram, off).unwrap() as usize;
            let ty = u16::from_ne_bytes([datagram[off + 4], datagram[off + 5]]);
            assert_ne!(ty, NLMSG_DONE, "inode {inode} not in the dump");
            let msg = &datagram[off..off + len];
            if u64::from(read_u32(msg, NLMSG_HDRLEN + 68).unwrap()) == inode {
                return msg.iter().map(|b| format!("{b:02x}")).collect();
            }
            off += (len + 3) & !3;
        }
    }
}

/// Prints the messages the fixtures in `tests.rs` were made from:
/// `cargo test --lib capture_real_replies -- --ignored --nocapture`.
#[test]
#[ignore = "prints fixtures; run by hand"]
fn capture_real_replies() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"hi").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    println!("client {} -> {}", c.local_addr().unwrap(), c.peer_addr().unwrap());
    println!("tcp {}", raw_inet_message(IPPROTO_TCP, TCP_EXTENSIONS, inode_of(&c)));
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.connect(dns.local_addr().unwrap()).unwrap();
    u.send(b"query").unwrap();
    println!("udp {} -> {}", u.local_addr().unwrap(), u.peer_addr().unwrap());
    println!("udp {}", raw_inet_message(IPPROTO_UDP, 0, inode_of(&u)));
    println!("udp server {}", raw_inet_message(IPPROTO_UDP, 0, inode_of(&dns)));
}

#[test]
fn live_tcp_info_says_when_data_last_moved() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let connected = Instant::now();
    c.write_all(b"request").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let all = dump_tcp(T).unwrap();
    let since = connected.elapsed().as_millis() as u32;
    let client = find_inet(&all, inode_of(&c));
    let info = client.tcp_info.clone().expect("tcp_info");
    // Nothing ever received: counted from the connection, as `ss -ti`'s lastrcv.
    let recv = info.last_data_recv_ms.unwrap();
    assert!(
        (250..=since + 50).contains(&recv),
        "lastrcv {recv}, {since} ms since connect"
    );
    let sent = info.last_data_sent_ms.unwrap();
    assert!(
        (250..=since + 50).contains(&sent),
        "lastsnd {sent}, {since} ms since connect"
    );
    assert_eq!(info.retransmits, Some(0));
    assert_eq!(info.unacked, Some(0), "loopback acks at once");
    assert!(info.rto_us.unwrap() >= 200_000, "{info:?}");
    assert!(info.rtt_us.unwrap() > 0, "{info:?}");
    let m = client.meminfo.clone().expect("skmeminfo");
    assert!(m.sndbuf > 0 && m.wmem_queued.is_some(), "{m:?}");
    // The server got the 7 bytes and has not read them.
    let server = find_inet(&all, inode_of(&s));
    assert_eq!(server.rx_queue, 7);
    assert!(server.tcp_info.as_ref().unwrap().last_data_recv_ms.unwrap() >= 250);
    // A listener has tcp_info too (its fields mean other things).
    assert!(find_inet(&all, inode_of(&l)).tcp_info.is_some());
}

#[test]
fn live_udp() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    client.send(b"query").unwrap();
    let v6 = std::net::UdpSocket::bind("[::1]:0").ok();
    let all = match dump_udp(T) {
        Ok(all) => all,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            eprintln!("skipping: no udp_diag in this kernel: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let c = find_inet(&all, inode_of(&client));
    assert_eq!(
        (c.state, c.local, c.remote),
        (1, client.local_addr().unwrap(), server.local_addr().unwrap())
    );
    let s = find_inet(&all, inode_of(&server));
    assert_eq!((s.state, s.local), (7, server.local_addr().unwrap()));
    assert!(s.remote.ip().is_unspecified() && s.remote.port() == 0);
    assert!(s.rx_queue > 0, "the datagram waits: {s:?}");
    assert!(c.tcp_info.is_none() && c.meminfo.is_none());
    if let Some(v6) = v6 {
        assert_eq!(find_inet(&all, inode_of(&v6)).local, v6.local_addr().unwrap());
    }
    assert_eq!(dump_udp(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);
}

/// What asking for tcp_info and socket memory costs a TCP dump, on whatever
/// connections the host has (open ~1,000 on loopback first):
/// `cargo test --release --lib measure_tcp_dump -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by hand"]
fn measure_tcp_dump() {
    use super::wire::{parse_inet_messages, Progress};
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    use super::wire::{ALL_STATES, TCP_STATES_WITH_INODES};
    for (name, ext, states) in [
        ("plain, every state", 0, ALL_STATES),
        ("tcp_info+skmem, every state", TCP_EXTENSIONS, ALL_STATES),
        (
            "tcp_info+skmem, no mini-sockets",
            TCP_EXTENSIONS,
            TCP_STATES_WITH_INODES,
        ),
    ] {
        let (mut recv_times, mut parse_times) = (Vec::new(), Vec::new());
        let (mut bytes, mut datagrams, mut sockets) = (0, 0, 0);
        for _ in 0..101 {
            let start = Instant::now();
            let mut conn = DiagSocket::open(T).unwrap();
            let mut got: Vec<Vec<u8>> = Vec::new();
            for (family, seq) in [(AF_INET, 1), (AF_INET6, 2)] {
                conn.send(&super::wire::inet_diag_request(family, IPPROTO_TCP, ext, states, seq))
                    .unwrap();
                loop {
                    let n = conn.recv().unwrap();
                    got.push(conn.buf[..n].to_vec());
                    let done = parse_inet_messages(&conn.buf[..n], &mut Vec::new()).unwrap() == Progress::Done;
                    if done {
                        break;
                    }
                }
            }
            recv_times.push(start.elapsed());
            let start = Instant::now();
            let mut out = Vec::new();
            for d in &got {
                parse_inet_messages(d, &mut out).unwrap();
            }
            parse_times.push(start.elapsed());
            bytes = got.iter().map(Vec::len).sum::<usize>();
            datagrams = got.len();
            sockets = out.len();
        }
        // CPU time (the kernel makes the reply in our recvmsg), which a
        // busy host's other load does not inflate as it does wall time.
        let cpu = || {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid timespec for the call to fill in.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        };
        let (whole, cpu_times): (Vec<Duration>, Vec<Duration>) = (0..101)
            .map(|_| {
                let (start, cpu_start) = (Instant::now(), cpu());
                dump_inet(DiagSocket::open(T).unwrap(), IPPROTO_TCP, ext, states).unwrap();
                (start.elapsed(), cpu() - cpu_start)
            })
            .unzip();
        println!(
            "{name}: {sockets} sockets, {bytes} bytes in {datagrams} datagrams; \
             median recv {:?} (parsing as read), parse alone {:?}, dump_tcp {:?} wall, {:?} cpu",
            median(recv_times),
            median(parse_times),
            median(whole),
            median(cpu_times)
        );
    }
}
