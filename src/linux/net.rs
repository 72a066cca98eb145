//! Socket facts as the kernel numbers them.

/// The name of a TCP state number (`include/net/tcp_states.h`).
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// The name of a UDP socket's state: the kernel keeps TCP's numbers,
/// ESTABLISHED for a connected socket and CLOSE for any other.
pub fn udp_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        7 => "UNCONNECTED",
        other => tcp_state_name(other),
    }
}

/// The DNS port: a connected UDP socket to it is a resolver's.
pub const DNS_PORT: u16 = 53;

/// The unix sockets of local resolvers: systemd-resolved's varlink
/// socket, which its NSS module (`nss-resolve`) asks.
pub const RESOLVER_SOCKETS: [&str; 1] = ["/run/systemd/resolve/io.systemd.Resolve"];

/// Whether a unix socket path is a local resolver's.
pub fn is_resolver_socket(path: &[u8]) -> bool {
    RESOLVER_SOCKETS.iter().any(|p| p.as_bytes() == path)
}

/// Whether poll would report a TCP socket writable (EPOLLOUT): its free
/// send-buffer space is at least half of what is queued
/// (`sk_stream_is_writeable`). An event loop waiting for EPOLLOUT on one
/// that is not waits for the peer to read.
pub fn tcp_poll_writable(wmem_queued: u32, sndbuf: u32) -> bool {
    sndbuf.saturating_sub(wmem_queued) >= wmem_queued / 2
}

/// Whether poll would report a unix socket writable: its send-buffer
/// memory in use is at most a quarter of the limit (`unix_writable`).
pub fn unix_poll_writable(wmem_alloc: u32, sndbuf: u32) -> bool {
    u64::from(wmem_alloc) * 4 <= u64::from(sndbuf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_writability_as_the_kernel_judges_it() {
        // A writer that got EAGAIN on loopback: 3.8 MB queued of 4.2 MB.
        assert!(!tcp_poll_writable(3_847_872, 4_194_304));
        assert!(tcp_poll_writable(0, 4_194_304));
        assert!(tcp_poll_writable(1_000_000, 4_194_304));
        assert!(!unix_poll_writable(222_720, 212_992));
        assert!(!unix_poll_writable(60_000, 212_992), "over a quarter");
        assert!(unix_poll_writable(50_000, 212_992));
    }
}
