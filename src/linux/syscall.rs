//! Syscall numbers per architecture, from the kernel's UAPI headers.

#[path = "syscall_names.rs"]
mod names;

/// The syscall's name on this architecture, if known.
pub fn syscall_name(arch: &str, nr: i64) -> Option<&'static str> {
    let table = match arch {
        "x86_64" => names::X86_64,
        "aarch64" => names::AARCH64,
        _ => return None,
    };
    let name = *table.get(usize::try_from(nr).ok()?)?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_per_arch() {
        let cases = [
            ("x86_64", 0, "read"),
            ("x86_64", 1, "write"),
            ("x86_64", 7, "poll"),
            ("x86_64", 61, "wait4"),
            ("x86_64", 202, "futex"),
            ("x86_64", 232, "epoll_wait"),
            ("x86_64", 230, "clock_nanosleep"),
            ("x86_64", 281, "epoll_pwait"),
            ("x86_64", 455, "futex_wait"),
            ("aarch64", 22, "epoll_pwait"),
            ("aarch64", 63, "read"),
            ("aarch64", 64, "write"),
            ("aarch64", 73, "ppoll"),
            ("aarch64", 98, "futex"),
            ("aarch64", 101, "nanosleep"),
            ("aarch64", 115, "clock_nanosleep"),
            ("aarch64", 206, "sendto"),
            ("aarch64", 260, "wait4"),
            ("aarch64", 441, "epoll_pwait2"),
        ];
        for (arch, nr, name) in cases {
            assert_eq!(syscall_name(arch, nr), Some(name), "{arch} {nr}");
        }
        assert_eq!(
            syscall_name("aarch64", 232),
            Some("mincore"),
            "232 is not epoll_wait on arm64"
        );
        assert_eq!(syscall_name("x86_64", -1), None);
        assert_eq!(syscall_name("x86_64", 100_000), None);
        assert_eq!(syscall_name("riscv64", 63), None);
    }
}
