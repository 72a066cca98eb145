//! Secrets in command lines are replaced by `<redacted>` in every output
//! meant for machines or files: JSON, NDJSON, Prometheus, snapshots, and
//! human output that is not going to a terminal. `--no-redact` turns it
//! off. What a reader needs to know what was passed is kept: the
//! argument's name, a token's well-known prefix.
//!
//! Two kinds of rule:
//! - *named* secrets, where the whole value goes: `--token=...`,
//!   `--api-key KEY`, `password=...`, `Authorization: ...`,
//!   `https://user:pass@host`, and environment-style `NAME=value` whose
//!   NAME (letters, digits, `_`) is or ends in `_KEY`, `_TOKEN`, `_SECRET`
//!   or `_PASSWORD` (any case), as a whole argument (`env API_KEY=...`) or
//!   inside one (`sh -c 'export API_KEY=...; run'`, `?api_key=...&`);
//! - token *shapes*, wherever they are in an argument: Anthropic and
//!   OpenAI `sk-...` (`sk-ant-api03-`, `sk-proj-`), Stripe `sk_live_`,
//!   GitHub `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_`, `github_pat_`, Slack
//!   `xox[abpr]-`, AWS `AKIA`/`ASIA` key ids, GitLab `glpat-`, Google
//!   `AIza`, JWTs (`eyJ...` `.eyJ...` `.`), and `Bearer ...`.
//!
//! Left alone on purpose: a flag's value that only names a file
//! (`--key-file=/etc/x.pem`, `--tls-key=/etc/x.pem`: not environment-style,
//! and a path is not the key), words that merely start like a token
//! (`sk-learn`: an `sk-` token has at least 20 characters after its prefix
//! and a digit or capital among them), and hex, UUIDs and base64 that are
//! not JWTs.
//!
//! Cost: a scan redacts thousands of command lines. Each rule runs only on
//! an argument that holds what it needs (an `=`, a `:`, a leading `-`, a
//! token's prefix, found by one pass over the bytes), so most arguments
//! meet no regex at all; the patterns are compiled once.

use crate::text::TargetString;
use regex::bytes::{Captures, Regex};
use std::borrow::Cow;
use std::sync::OnceLock;

pub const REDACTED: &str = "<redacted>";

/// Names that mark a secret: the key of `KEY=VALUE`, or a flag whose value
/// is the next argument. ASCII, as the classes around it (`(?-u)`): Unicode
/// word classes and case folding made these the slowest patterns here.
const SECRET_NAME: &str =
    r"(?i-u:token|secret|passw(?:or)?d|api[-_]?key|auth|credential|private[-_]?key|access[-_]?key|cookie)";

/// An environment-style name that marks a secret: `KEY`, `API_KEY`,
/// `AWS_SECRET_ACCESS_KEY`, `db_password`.
const ENV_SECRET_NAME: &str = r"(?i-u:(?:[a-z0-9]+_)*(?:key|token|secret|passw(?:or)?d))";

/// The prefixes a token shape starts with: an argument holding none of
/// them meets no token pattern. `bearer` is matched in any case.
const TOKEN_PREFIXES: &[&[u8]] = &[
    b"sk-",
    b"sk_live_",
    b"sk_test_",
    b"rk_live_",
    b"ghp_",
    b"gho_",
    b"ghs_",
    b"ghu_",
    b"ghr_",
    b"github_pat_",
    b"xoxa-",
    b"xoxb-",
    b"xoxp-",
    b"xoxr-",
    b"AKIA",
    b"ASIA",
    b"glpat-",
    b"AIza",
    b"eyJ",
];

struct Patterns {
    key_value: Regex,
    env_whole: Regex,
    flag: Regex,
    header: Regex,
    url_password: Regex,
    env_inside: Regex,
    /// Every token shape, one alternative each; group 1..: the prefix kept
    /// (one group takes part in a match).
    tokens: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // `(?s-u:.)`: any byte, so values that are not UTF-8 are matched too.
        key_value: Regex::new(&format!(
            r"^(-{{0,2}}(?-u:[\w.-])*{SECRET_NAME}(?-u:[\w.-])*=)(?s-u:.)+$"
        ))
        .expect("a valid pattern"),
        env_whole: Regex::new(&format!(r"^({ENV_SECRET_NAME}=)(?s-u:.)+$")).expect("a valid pattern"),
        flag: Regex::new(&format!(r"^--?(?-u:[\w.-])*{SECRET_NAME}(?-u:[\w.-])*$")).expect("a valid pattern"),
        header: Regex::new(r"(?i)^((?:proxy-)?authorization|x-api-key|cookie)\s*:\s*(?s-u:.)+$")
            .expect("a valid pattern"),
        url_password: Regex::new(r"^([a-zA-Z][\w+.-]*://[^/:@\s]+:)[^/@\s]+(@.*)$").expect("a valid pattern"),
        // After the start, a space or a shell or query separator (not a
        // `-`: `--tls-key=PATH` is a flag), up to a space or separator; a
        // quoted value whole.
        env_inside: Regex::new(&format!(
            r#"(?-u:(?:^|[\s;&|('"?,])({ENV_SECRET_NAME}=)(?:"[^"]*"|'[^']*'|[^\s"';&|)]+))"#
        ))
        .expect("a valid pattern"),
        tokens: Regex::new(concat!(
            r"(?-u:\b)(?:",
            r"(sk-(?:ant-(?:api|admin)[0-9]{2}-|proj-|svcacct-|admin-)?)[A-Za-z0-9_-]{20,}",
            r"|([sr]k_(?:live|test)_)[A-Za-z0-9]{16,}",
            r"|(gh[pousr]_)[A-Za-z0-9]{20,}",
            r"|(github_pat_)[A-Za-z0-9_]{20,}",
            r"|(xox[abpr]-)[A-Za-z0-9-]{10,}",
            r"|(A[KS]IA)[A-Z0-9]{16}(?-u:\b)",
            r"|(glpat-)[A-Za-z0-9_-]{20,}",
            r"|(AIza)[A-Za-z0-9_-]{35}",
            r"|()eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
            r"|((?i-u:bearer)(?-u:\s)+)[A-Za-z0-9._~+/=-]{8,}",
            r")"
        ))
        .expect("a valid pattern"),
    })
}

/// Whether the argument holds a token shape's prefix (`bearer` in any
/// case): one pass over its pairs of bytes, nearly all rejected by the pair.
fn has_token_prefix(arg: &[u8]) -> bool {
    arg.windows(2).enumerate().any(|(at, pair)| match (pair[0], pair[1]) {
        (b's' | b'r', b'k') | (b'g', b'h' | b'i' | b'l') | (b'x', b'o') | (b'A', b'K' | b'S' | b'I') | (b'e', b'y') => {
            TOKEN_PREFIXES.iter().any(|p| arg[at..].starts_with(p))
        }
        (b'b' | b'B', b'e' | b'E') => arg[at..].get(..6).is_some_and(|w| w.eq_ignore_ascii_case(b"bearer")),
        _ => false,
    })
}

/// Whether the argument holds a word a [`SECRET_NAME`] starts with, in any
/// case: what the named-secret rules need before they run.
fn has_secret_word(arg: &[u8]) -> bool {
    const WORDS: [&[u8]; 9] = [
        b"token",
        b"secret",
        b"passw",
        b"api",
        b"auth",
        b"credential",
        b"private",
        b"access",
        b"cookie",
    ];
    (0..arg.len()).any(|at| match arg[at].to_ascii_lowercase() {
        b't' | b's' | b'p' | b'a' | b'c' => WORDS
            .iter()
            .any(|w| arg[at..].get(..w.len()).is_some_and(|s| s.eq_ignore_ascii_case(w))),
        _ => false,
    })
}

/// Whether some `=` in the argument follows a name ending in an
/// environment-style secret word (`..._KEY=`, `token=`): what the
/// environment-style rules need before they run.
fn has_env_secret_name(arg: &[u8]) -> bool {
    const WORDS: [&[u8]; 5] = [b"key", b"token", b"secret", b"password", b"passwd"];
    arg.iter().enumerate().any(|(at, &b)| {
        b == b'='
            && WORDS
                .iter()
                .any(|w| at >= w.len() && arg[at - w.len()..at].eq_ignore_ascii_case(w))
    })
}

/// One token shape's match, its prefix kept; an `sk-` match that looks like
/// a word (no digit or capital) is left as it is.
fn redact_token(caps: &Captures) -> Vec<u8> {
    let whole = &caps[0];
    let kept = caps.iter().skip(1).flatten().next().map_or(&b""[..], |m| m.as_bytes());
    let secret = &whole[kept.len()..];
    if kept.starts_with(b"sk-") && !secret.iter().any(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return whole.to_vec();
    }
    [kept, REDACTED.as_bytes()].concat()
}

/// The argument with its secrets replaced, or `None` when it holds none;
/// whether the next argument is a secret value (`--api-key KEY`).
fn redact_one(p: &Patterns, bytes: &[u8]) -> (Option<Vec<u8>>, bool) {
    let has_eq = bytes.contains(&b'=');
    let has_colon = bytes.contains(&b':');
    let secret_word = (has_eq || has_colon || bytes.first() == Some(&b'-')) && has_secret_word(bytes);
    // Named secrets: the whole value goes.
    let env_name = has_eq && has_env_secret_name(bytes);
    if has_eq {
        let found = secret_word
            .then(|| p.key_value.captures(bytes))
            .flatten()
            .or_else(|| env_name.then(|| p.env_whole.captures(bytes)).flatten());
        if let Some(c) = found {
            return (Some([&c[1], REDACTED.as_bytes()].concat()), false);
        }
    }
    if has_colon && secret_word {
        if let Some(c) = p.header.captures(bytes) {
            return (Some([&c[1], b": ", REDACTED.as_bytes()].concat()), false);
        }
    }
    if has_colon && bytes.contains(&b'@') {
        if let Some(c) = p.url_password.captures(bytes) {
            return (Some([&c[1], REDACTED.as_bytes(), &c[2]].concat()), false);
        }
    }
    // Secrets inside the argument.
    let mut text = Cow::Borrowed(bytes);
    if has_token_prefix(bytes) {
        text = changed(text, |t| p.tokens.replace_all(t, redact_token));
    }
    if env_name {
        text = changed(text, |t| {
            p.env_inside.replace_all(t, |c: &Captures| {
                // The separator before the name, the name, no value.
                let (Some(whole), Some(name)) = (c.get(0), c.get(1)) else {
                    return c[0].to_vec();
                };
                let before = &whole.as_bytes()[..name.start() - whole.start()];
                [before, name.as_bytes(), REDACTED.as_bytes()].concat()
            })
        });
    }
    match text {
        Cow::Owned(new) => (Some(new), false),
        Cow::Borrowed(b) => {
            let follows =
                (secret_word && b.first() == Some(&b'-') && p.flag.is_match(b)) || b.eq_ignore_ascii_case(b"bearer");
            (None, follows)
        }
    }
}

/// `text` after `replace`, still borrowed when nothing in it changed.
fn changed<'a>(text: Cow<'a, [u8]>, replace: impl for<'t> FnOnce(&'t [u8]) -> Cow<'t, [u8]>) -> Cow<'a, [u8]> {
    match replace(&text) {
        Cow::Owned(new) if new != *text => Cow::Owned(new),
        _ => text,
    }
}

/// Redact secrets in place; how many arguments changed.
pub fn redact(args: &mut [TargetString]) -> usize {
    let p = patterns();
    let mut changed = 0;
    let mut value_follows = false;
    for arg in args.iter_mut() {
        let replacement = if value_follows {
            value_follows = false;
            Some(REDACTED.as_bytes().to_vec())
        } else {
            let (replacement, follows) = redact_one(p, arg.as_bytes());
            value_follows = follows;
            replacement
        };
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

    /// `n` token characters, made up here: no token-shaped literal sits in
    /// the source (secret scanners would flag it).
    fn body(n: usize) -> String {
        const CHARS: &[u8] = b"aZ3kQ9mX7pL2vR8tB4nW6yH1cF5gJ0dSe";
        (0..n).map(|i| CHARS[(i * 7 + 3) % CHARS.len()] as char).collect()
    }

    /// `n` upper-case letters and digits (an AWS key id's).
    fn upper(n: usize) -> String {
        body(n).to_ascii_uppercase()
    }

    #[test]
    fn token_shapes_are_redacted_wherever_they_are_and_their_prefixes_kept() {
        let jwt = format!("eyJ{}.eyJ{}.{}", body(30), body(60), body(43));
        let cases: Vec<(String, String)> = vec![
            // Anthropic, OpenAI.
            (
                format!("sk-ant-api03-{}-{}AA", body(80), body(12)),
                "sk-ant-api03-<redacted>".into(),
            ),
            (
                format!("sk-ant-admin01-{}", body(90)),
                "sk-ant-admin01-<redacted>".into(),
            ),
            (
                format!("sk-proj-{}_{}", body(60), body(40)),
                "sk-proj-<redacted>".into(),
            ),
            (format!("sk-{}", body(48)), "sk-<redacted>".into()),
            (format!("sk_live_{}", body(24)), "sk_live_<redacted>".into()),
            // GitHub.
            (format!("ghp_{}", body(36)), "ghp_<redacted>".into()),
            (format!("gho_{}", body(36)), "gho_<redacted>".into()),
            (format!("ghs_{}", body(36)), "ghs_<redacted>".into()),
            (format!("ghu_{}", body(36)), "ghu_<redacted>".into()),
            (
                format!("github_pat_{}_{}", body(22), body(59)),
                "github_pat_<redacted>".into(),
            ),
            // Slack, AWS, GitLab, Google.
            (
                format!("xoxb-1234567890-9876543210-{}", body(24)),
                "xoxb-<redacted>".into(),
            ),
            (format!("xoxp-{}", body(40)), "xoxp-<redacted>".into()),
            (format!("AKIA{}", upper(16)), "AKIA<redacted>".into()),
            (format!("ASIA{}", upper(16)), "ASIA<redacted>".into()),
            (format!("glpat-{}", body(20)), "glpat-<redacted>".into()),
            (format!("AIza{}", body(35)), "AIza<redacted>".into()),
            // JWTs and bearer tokens.
            (jwt.clone(), "<redacted>".into()),
            (format!("Bearer {}", body(40)), "Bearer <redacted>".into()),
            (format!("bearer  {jwt}"), "bearer  <redacted>".into()),
            // Inside an argument: a flag's value, a header, a URL, a script.
            (format!("--key=sk-{}", body(48)), "--key=sk-<redacted>".into()),
            (
                format!("--header=x-goog-api-key: AIza{}", body(35)),
                "--header=x-goog-api-key: AIza<redacted>".into(),
            ),
            (
                format!("https://hooks.example.com/x?t=xoxb-{}&n=1", body(30)),
                "https://hooks.example.com/x?t=xoxb-<redacted>&n=1".into(),
            ),
            (
                format!("git push https://ghp_{}@github.com/o/r.git", body(36)),
                "git push https://ghp_<redacted>@github.com/o/r.git".into(),
            ),
            (
                format!("curl -H 'Authorization: Bearer {jwt}' https://api.example.com"),
                "curl -H 'Authorization: Bearer <redacted>' https://api.example.com".into(),
            ),
            (
                format!("AKIA{} ghp_{}", upper(16), body(36)),
                "AKIA<redacted> ghp_<redacted>".into(),
            ),
            // Environment-style NAME=value: whole, and inside a script or a query.
            ("SIGNING_KEY=abc123".into(), "SIGNING_KEY=<redacted>".into()),
            ("key=hunter2".into(), "key=<redacted>".into()),
            ("Stripe_Secret=a b c".into(), "Stripe_Secret=<redacted>".into()),
            ("slack_token=x".into(), "slack_token=<redacted>".into()),
            ("ADMIN_PASSWD=x".into(), "ADMIN_PASSWD=<redacted>".into()),
            (
                "export SIGNING_KEY=abc123; ./run --fast".into(),
                "export SIGNING_KEY=<redacted>; ./run --fast".into(),
            ),
            (
                "cd /srv && DEPLOY_KEY='a b' ./deploy".into(),
                "cd /srv && DEPLOY_KEY=<redacted> ./deploy".into(),
            ),
            (
                "https://api.example.com/v1?api_key=abc123&page=2".into(),
                "https://api.example.com/v1?api_key=<redacted>&page=2".into(),
            ),
        ];
        for (input, expected) in &cases {
            assert_eq!(run(&[input]), [expected.as_str()], "{input}");
        }
        // A lone "Bearer" takes the next argument for its token.
        assert_eq!(
            run(&["curl", "-H", "Authorization:", "Bearer", "q1w2e3r4t5"]),
            ["curl", "-H", "Authorization:", "Bearer", "<redacted>"]
        );
    }

    #[test]
    fn ordinary_arguments_that_only_look_alike_are_left_alone() {
        let args = [
            "/usr/bin/python3",
            "/home/u/.ssh/id_ed25519",
            "git",
            "checkout",
            "3f786850e387550fdab836ed7e6dc881de23001b",
            "123e4567-e89b-12d3-a456-426614174000",
            // A flag naming a key's file, not the key: not environment-style.
            "--key-file=/etc/x.pem",
            "--tls-key=/etc/ssl/private/x.key",
            "--key",
            "/etc/x.pem",
            "--sort-key=name",
            // Words that start like tokens.
            "sk-learn",
            "sk-learn-extension-for-numpy-arrays",
            "task-0123456789abcdefghijklmnopq",
            "ghp_short",
            "xoxo-hugs",
            "AKIAshort",
            "AIzaShort",
            "the bearer of",
            "MONKEY=banana",
            // Base64 that is not a JWT, hex, a query without secrets.
            "SGVsbG8sIHRoaXMgaXMgbm90IGEgdG9rZW4sIGp1c3QgdGV4dA==",
            "eyJmb28iOiJiYXIifQ==",
            "http://localhost:8080/path?page=2&sort=asc",
            "--threads=8",
            "name=value",
        ];
        let mut redacted: Vec<TargetString> = args.iter().map(|a| TargetString::from(*a)).collect();
        assert_eq!(redact(&mut redacted), 0, "{redacted:?}");
        assert_eq!(run(&args), args);
    }

    #[test]
    fn the_precheck_finds_every_prefix_and_bearer_in_any_case() {
        for prefix in TOKEN_PREFIXES {
            let mut arg = b"--x=".to_vec();
            arg.extend_from_slice(prefix);
            assert!(has_token_prefix(&arg), "{}", String::from_utf8_lossy(prefix));
        }
        assert!(has_token_prefix(b"x BEARER y") && has_token_prefix(b"bearer"));
        assert!(!has_token_prefix(b"/usr/bin/python3 --verbose") && !has_token_prefix(b"beare"));
        assert!(has_secret_word(b"--Client-SECRET") && has_secret_word(b"Cookie: x") && !has_secret_word(b"--verbose"));
        assert!(has_env_secret_name(b"x; API_KEY=1") && has_env_secret_name(b"Db_PassWord=x"));
        assert!(!has_env_secret_name(b"--threads=8") && !has_env_secret_name(b"key") && !has_env_secret_name(b"=key"));
    }

    #[test]
    fn invalid_utf8_is_matched_too() {
        let mut args = vec![TargetString::new(b"--token=\xff\xfe".to_vec())];
        assert_eq!(redact(&mut args), 1);
        assert_eq!(args[0].as_bytes(), b"--token=<redacted>");
    }
}
