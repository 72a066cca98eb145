//! Socket facts from sock_diag on real sockets: what a TCP connection last
//! did (its `tcp_info`), and UDP sockets.

use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn entry<'a>(process: &'a Value, list: &str, fd: i64) -> &'a Value {
    process[list]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["fd"] == fd))
        .unwrap_or_else(|| panic!("no fd {fd} in {list}: {process:#}"))
}

fn ms(socket: &Value, field: &str) -> u64 {
    socket[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {socket:#}"))
}

/// A client blocked reading from a server that accepted and never sent:
/// nothing received (nor sent, nor acked) since it connected.
#[test]
fn a_silent_server_shows_in_the_connection_s_last_receive() {
    let started = Instant::now(); // before the connect
    let s = Scenario::start("blocked-read-tcp");
    std::thread::sleep(Duration::from_millis(1500));
    let p = diagnose(s.num("target"), "0");
    // The dump was taken before whystuck exited; tcp_info counts in jiffies.
    let since_connect = started.elapsed().as_millis() as u64 + 20;
    let tcp = entry(&p, "tcp", s.num("fd"));
    assert_eq!(tcp["state"], "ESTABLISHED", "{tcp:#}");
    for field in ["last_recv_ms", "last_send_ms", "last_ack_ms"] {
        let v = ms(tcp, field);
        assert!(
            (1000..since_connect).contains(&v),
            "{field} {v}, connected at most {since_connect} ms before: {tcp:#}"
        );
    }
    assert_eq!(tcp["retransmits"], 0, "{tcp:#}");
    assert_eq!(tcp["total_retransmits"], 0, "{tcp:#}");
    assert_eq!(tcp["unacked"], 0, "{tcp:#}");
    assert!(tcp["rtt_ms"].as_f64().unwrap() > 0.0, "{tcp:#}");
    assert!(tcp["rto_ms"].as_f64().unwrap() >= 200.0, "{tcp:#}");
    assert_eq!(tcp["send_buffer_bytes"], 0, "{tcp:#}");
    assert!(ms(tcp, "send_buffer_limit") > 0, "{tcp:#}");
}

/// A listener has no connection to time: the times and counters are left
/// out, its buffer is not.
#[test]
fn a_listener_has_no_last_receive() {
    let s = Scenario::start("tcp-listen");
    let p = diagnose(s.num("target"), "0");
    let tcp = entry(&p, "tcp", s.num("fd"));
    assert_eq!(tcp["state"], "LISTEN", "{tcp:#}");
    for field in [
        "last_recv_ms",
        "last_send_ms",
        "last_ack_ms",
        "retransmits",
        "unacked",
        "rtt_ms",
        "rto_ms",
    ] {
        assert!(tcp.get(field).is_none(), "{field} in {tcp:#}");
    }
    assert!(ms(tcp, "send_buffer_limit") > 0, "{tcp:#}");
}

/// A query to a local UDP server that never answers, as a resolver's to
/// port 53: the client's socket is in `udp[]` with the server as its
/// remote, and the server's, with the query unread, in the server's.
#[test]
fn a_udp_query_nobody_answers_names_its_server() {
    let s = Scenario::start("udp-no-answer");
    let p = diagnose(s.num("target"), "0");
    let udp = entry(&p, "udp", s.num("fd"));
    assert_eq!(udp["state"], "ESTABLISHED", "{udp:#}");
    assert_eq!(udp["local"], format!("127.0.0.1:{}", s.num("local_port")));
    assert_eq!(udp["remote"], format!("127.0.0.1:{}", s.num("server_port")));
    assert!(p["unavailable"].as_array().unwrap().is_empty(), "{p:#}");

    let server = diagnose(s.num("server"), "0");
    let bound = entry(&server, "udp", s.num("server_fd"));
    assert_eq!(bound["state"], "UNCONNECTED", "{bound:#}");
    assert_eq!(bound["remote"], "0.0.0.0:0");
    assert!(ms(bound, "rx_queue") > 0, "the query waits unread: {bound:#}");

    let human = whystuck(&["--interval", "0", &s.num("target").to_string()]);
    let row = [
        s.num("fd").to_string(),
        "udp".into(),
        format!("127.0.0.1:{}", s.num("local_port")),
        format!("127.0.0.1:{}", s.num("server_port")),
        "ESTABLISHED".into(),
    ];
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.split_whitespace().take(5).eq(row.iter().map(String::as_str))),
        "no udp row {row:?} in:\n{}",
        human.stdout
    );
}

/// Outside whystuck's network namespace (here, a fake /proc), UDP comes from
/// the process's net/udp and net/udp6, TCP without tcp_info.
#[test]
fn udp_and_tcp_from_proc_net_text() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "dig", 'S', 1, 0),
        "45 0x3 0x0 0x0 0x0 0x0 0x0 0x0 0x0\n",
        "wait_woken",
    );
    for (fd, inode) in [(3, 4_241_490), (4, 31337)] {
        fake.link(&format!("42/fd/{fd}"), &format!("socket:[{inode}]"));
        fake.file(&format!("42/fdinfo/{fd}"), b"pos:\t0\nflags:\t02\nmnt_id:\t8\n");
    }
    fake.file(
        "42/net/unix",
        b"Num       RefCount Protocol Flags    Type St Inode Path\n",
    );
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    fake.file(
        "42/net/udp",
        format!("{header} 2037: 0100007F:CFCD 3500007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 4241490 2 0000000000000000 0\n").as_bytes(),
    );
    fake.file(
        "42/net/tcp",
        format!("{header}   0: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n").as_bytes(),
    );
    let p = fake.diagnose(42);
    let udp = entry(&p, "udp", 3);
    assert_eq!(udp["remote"], "127.0.0.53:53", "{p:#}");
    assert_eq!(udp["state"], "ESTABLISHED");
    let tcp = entry(&p, "tcp", 4);
    assert_eq!(tcp["state"], "ESTABLISHED");
    assert!(
        tcp.get("last_recv_ms").is_none() && tcp.get("send_buffer_limit").is_none(),
        "{tcp:#}"
    );
}

/// A client whose SYN the full accept queue of a listener of this host
/// drops: it names the listener's owner and that owner's state, and the
/// owner's process has the full queue as a finding of its own.
#[test]
fn a_client_connecting_to_a_full_listener_names_its_owner() {
    let s = Scenario::start("connect-to-full-listener");
    let (target, listener) = (s.num("target"), s.num("listener"));
    let p = diagnose(target, "0.2");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    let connecting = finding(&p, "blocked-on-read");
    assert_eq!(connecting["fd"], s.num("fd"), "{connecting:#}");
    let peers: Vec<i64> = (connecting["peers"].as_array().unwrap().iter())
        .map(|peer| peer["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(peers, [listener], "{connecting:#}");
    let said = evidence(&p);
    assert!(
        said.contains(&format!(
            "the listener belongs to pid {listener} (python3), which is accept-queue-full"
        )),
        "{said}"
    );

    let l = diagnose(listener, "0.2");
    assert_eq!(l["verdict"], "accept-queue-full", "{l:#}");
    let full = finding(&l, "accept-queue-full");
    assert_eq!(full["severity"], "warn");
    let summary = full["summary"].as_str().unwrap();
    let port = s.num("port");
    assert!(
        summary.contains(&format!("127.0.0.1:{port}")) && summary.contains("waiting to be accepted"),
        "{summary}"
    );
    // "N/M waiting": more waiting than the backlog lets in.
    let counts = summary
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.split_once('/'))
        .map(|(n, m)| (n.parse::<u32>().unwrap(), m.parse::<u32>().unwrap()))
        .unwrap_or_else(|| panic!("no N/M in {summary}"));
    assert!(counts.0 > counts.1, "{summary}");
}

/// A connect whose SYN is dropped retransmits it: after a second or more,
/// the client's socket is SYN_SENT with retransmits counted, and its line
/// says so.
#[test]
fn a_dropped_syn_is_retransmitted_and_said() {
    let s = Scenario::start("connect-to-full-listener");
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let p = diagnose(s.num("target"), "0");
    let tcp = p["tcp"]
        .as_array()
        .and_then(|t| t.first())
        .unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!(tcp["state"], "SYN_SENT", "{tcp:#}");
    assert!(tcp["retransmits"].as_u64().unwrap_or(0) >= 1, "{tcp:#}");
    assert!(
        tcp.get("last_recv_ms").is_none(),
        "no receive times before it is established: {tcp:#}"
    );
    assert!(p["summary"].as_str().unwrap().contains("SYN retransmit"), "{p:#}");
}
