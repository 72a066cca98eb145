//! Terminals: which fd links are terminals, and the name of a controlling
//! terminal from the device number `/proc/PID/stat` gives (`tty_nr`).

/// Whether an fd link names a terminal a person types on: a pseudo-terminal
/// (`/dev/pts/N`), a virtual console (`/dev/ttyN`), the console, a serial
/// line, or the process's own controlling terminal (`/dev/tty`).
pub fn is_terminal_path(target: &[u8]) -> bool {
    let Some(rest) = target.strip_prefix(b"/dev/") else {
        return false;
    };
    let numbered = |prefix: &[u8]| {
        rest.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
    };
    matches!(rest, b"tty" | b"console")
        || numbered(b"pts/")
        || numbered(b"tty")
        || numbered(b"ttyS")
        || numbered(b"ttyUSB")
        || numbered(b"ttyACM")
        || numbered(b"ttyAMA")
        || numbered(b"hvc")
}

/// The path of the terminal a `tty_nr` stands for (`new_encode_dev`: the
/// minor's low byte, the major, then the minor's high bits), for the
/// terminals with a fixed name; `None` for 0 (no terminal) and for devices
/// whose name depends on their driver.
pub fn tty_name(tty_nr: i32) -> Option<String> {
    let nr = u32::try_from(tty_nr).ok().filter(|&nr| nr != 0)?;
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    Some(match (major, minor) {
        // Unix98 pseudo-terminals: major 136 (and, on old kernels, up to 143).
        (136..=143, n) => format!("/dev/pts/{}", (major - 136) * 256 + n),
        (4, n @ 0..=63) => format!("/dev/tty{n}"),
        (4, n @ 64..=255) => format!("/dev/ttyS{}", n - 64),
        (5, 0) => "/dev/tty".to_string(),
        (5, 1) => "/dev/console".to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_paths() {
        for yes in [
            "/dev/pts/3",
            "/dev/tty1",
            "/dev/tty",
            "/dev/console",
            "/dev/ttyS0",
            "/dev/ttyUSB1",
        ] {
            assert!(is_terminal_path(yes.as_bytes()), "{yes}");
        }
        for no in [
            "/dev/null",
            "/dev/pts/ptmx",
            "/dev/ptmx",
            "/dev/pts/",
            "/tmp/tty1",
            "/dev/ttyx",
            "pipe:[1]",
        ] {
            assert!(!is_terminal_path(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn controlling_terminals_by_number() {
        assert_eq!(
            tty_name(34816).as_deref(),
            Some("/dev/pts/0"),
            "136:0, from a real stat"
        );
        assert_eq!(tty_name(34819).as_deref(), Some("/dev/pts/3"));
        // pts 300: minor 300 = 0x12c, its high bits above the major.
        assert_eq!(
            tty_name((136 << 8) | 0x2c | (0x100 << 12)).as_deref(),
            Some("/dev/pts/300")
        );
        assert_eq!(tty_name((4 << 8) | 1).as_deref(), Some("/dev/tty1"));
        assert_eq!(tty_name((4 << 8) | 64).as_deref(), Some("/dev/ttyS0"));
        assert_eq!(tty_name((5 << 8) | 1).as_deref(), Some("/dev/console"));
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name(-1), None);
        assert_eq!(tty_name(188 << 8), None, "ttyUSB: the name is the driver's");
    }
}
