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
