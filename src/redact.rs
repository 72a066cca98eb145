//! Secrets in command lines (`--token=...`, `--api-key KEY`, `password=...`,
//! `Authorization: ...`, `https://user:pass@host`) are replaced by
//! `<redacted>` in every output meant for machines or files: JSON, NDJSON,
//! Prometheus, snapshots, and human output that is not going to a terminal.
//! `--no-redact` turns it off. The argument's name is kept so a reader still
//! sees what was passed.

use crate::text::TargetString;
use regex::bytes::Regex;
use std::sync::OnceLock;

pub const REDACTED: &str = "<redacted>";

/// Names that mark a secret: the key of `KEY=VALUE`, or a flag whose value
/// is the next argument.
const SECRET_NAME: &str =
    r"(?i)(token|secret|passw(or)?d|api[-_]?key|auth|credential|private[-_]?key|access[-_]?key|cookie)";

struct Patterns {
    key_value: Regex,
    flag: Regex,
    header: Regex,
    url_password: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // `(?s-u:.)`: any byte, so values that are not UTF-8 are matched too.
        key_value: Regex::new(&format!(r"^(-{{0,2}}[\w.-]*{SECRET_NAME}[\w.-]*=)(?s-u:.)+$")).expect("a valid pattern"),
        flag: Regex::new(&format!(r"^--?[\w.-]*{SECRET_NAME}[\w.-]*$")).expect("a valid pattern"),
        header: Regex::new(r"(?i)^((?:proxy-)?authorization|x-api-key|cookie)\s*:\s*(?s-u:.)+$")
            .expect("a valid pattern"),
        url_password: Regex::new(r"^([a-zA-Z][\w+.-]*://[^/:@\s]+:)[^/@\s]+(@.*)$").expect("a valid pattern"),
    })
}

/// Redact secrets in place; how many arguments changed.
pub fn redact(args: &mut [TargetString]) -> usize {
    let p = patterns();
    let mut changed = 0;
    let mut value_follows = false;
    for arg in args.iter_mut() {
        let bytes = arg.as_bytes();
        let replacement: Option<Vec<u8>> = if value_follows {
            Some(REDACTED.as_bytes().to_vec())
        } else if let Some(c) = p.key_value.captures(bytes) {
            Some([&c[1], REDACTED.as_bytes()].concat())
        } else if let Some(c) = p.header.captures(bytes) {
            Some([&c[1], b": ", REDACTED.as_bytes()].concat())
        } else {
            p.url_password
                .captures(bytes)
                .map(|c| [&c[1], REDACTED.as_bytes(), &c[2]].concat())
        };
        value_follows = replacement.is_none() && p.flag.is_match(bytes);
        if let Some(new) = replacement {
            *arg = TargetString::new(new);
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let mut args: Vec<TargetString> = args.iter().map(|a| TargetString::from(*a)).collect();
        redact(&mut args);
        args.iter().map(|a| a.lossy().into_owned()).collect()
    }

    #[test]
    fn secrets_are_redacted_and_their_names_kept() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["agent", "--token=abc123"], &["agent", "--token=<redacted>"]),
            (
                &["agent", "--api-key", "xyz", "--verbose"],
                &["agent", "--api-key", "<redacted>", "--verbose"],
            ),
            (&["env", "DB_PASSWORD=hunter2"], &["env", "DB_PASSWORD=<redacted>"]),
            (
                &["curl", "-H", "Authorization: Bearer q1w2"],
                &["curl", "-H", "Authorization: <redacted>"],
            ),
            (
                &["git", "clone", "https://bob:s3cret@example.com/x.git"],
                &["git", "clone", "https://bob:<redacted>@example.com/x.git"],
            ),
            (
                &["app", "--client-secret", "v"],
                &["app", "--client-secret", "<redacted>"],
            ),
            (&["app", "--GITHUB_TOKEN=ghp_x"], &["app", "--GITHUB_TOKEN=<redacted>"]),
        ];
        for (input, expected) in cases {
            assert_eq!(run(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn ordinary_arguments_are_left_alone() {
        let args = [
            "python3",
            "-c",
            "print(1)",
            "--verbose",
            "file=notes.txt",
            "https://example.com/a:b",
            "--token",
        ];
        assert_eq!(run(&args), args, "a trailing flag with no value changes nothing");
    }

    #[test]
    fn invalid_utf8_is_matched_too() {
        let mut args = vec![TargetString::new(b"--token=\xff\xfe".to_vec())];
        assert_eq!(redact(&mut args), 1);
        assert_eq!(args[0].as_bytes(), b"--token=<redacted>");
    }
}
