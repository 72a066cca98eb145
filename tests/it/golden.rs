//! Golden outputs: what whystuck prints for a fixture, byte for byte. Every
//! fixture's human report (`human.txt`), and for a few representative ones
//! every other format too (`json.txt`, `ndjson.txt`, `prometheus.txt`), so a
//! change of wording or layout shows up as a diff to review.
//!
//! A replay with `--from` is deterministic: the time stamps in ndjson and
//! prometheus are the snapshot's capture time, the host name is the
//! snapshot's, and nothing of the replaying machine or run is printed.
//!
//! `WHYSTUCK_BLESS=1 cargo test --test it golden::` writes the files
//! instead of comparing them; review `git diff fixtures/` before committing.

use std::path::Path;

/// The formats with golden files: the file each is kept in, and the flags
/// that ask for it.
const FORMATS: [(&str, &[&str]); 4] = [
    ("human.txt", &["--color", "never"]),
    ("json.txt", &["--json"]),
    ("ndjson.txt", &["--format", "ndjson"]),
    ("prometheus.txt", &["--format", "prometheus"]),
];

/// Fixtures kept in every format: a deadlock across a process tree (with
/// links), an event loop with its epoll set, and a full socketpair (socket
/// tables, a wakeup fd).
const EVERY_FORMAT: [&str; 3] = ["popen-deadlock", "idle-in-epoll", "wakeup-socketpair-full"];

fn blessing() -> bool {
    std::env::var_os("WHYSTUCK_BLESS").is_some_and(|v| v == "1")
}

/// Every fixture directory (one with a snapshot.json), by name.
fn fixtures() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("snapshot.json").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures missing: {names:?}");
    names
}

/// `whystuck --from fixtures/NAME/snapshot.json FLAGS --fail-on never`, run
/// from the checkout's root, so a path it printed would not depend on
/// where the checkout is.
fn replay(name: &str, flags: &[&str]) -> Result<Vec<u8>, String> {
    let snapshot = format!("fixtures/{name}/snapshot.json");
    let output = assert_cmd::Command::cargo_bin("whystuck")
        .expect("the whystuck binary")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--from")
        .arg(&snapshot)
        .args(flags)
        .args(["--fail-on", "never"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run whystuck");
    match output.status.code() {
        Some(0) => Ok(output.stdout),
        code => Err(format!(
            "whystuck --from {snapshot} {}: exit {code:?}: {}",
            flags.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// At most this many differing lines are shown of each side.
const SHOWN_LINES: usize = 8;
/// A longer line is shown around its first difference.
const SHOWN_CHARS: usize = 160;

/// A readable account of how `got` differs from `want`: the lines between
/// the common beginning and the common end, numbered, expected then got.
fn line_diff(want: &str, got: &str) -> String {
    let want_lines: Vec<&str> = want.split_inclusive('\n').collect();
    let got_lines: Vec<&str> = got.split_inclusive('\n').collect();
    let same_start = want_lines.iter().zip(&got_lines).take_while(|(w, g)| w == g).count();
    let same_end = want_lines[same_start..]
        .iter()
        .rev()
        .zip(got_lines[same_start..].iter().rev())
        .take_while(|(w, g)| w == g)
        .count();
    let want_middle = &want_lines[same_start..want_lines.len() - same_end];
    let got_middle = &got_lines[same_start..got_lines.len() - same_end];
    let mut text = format!(
        "    {} lines expected, {} got; they differ from line {}\n",
        want_lines.len(),
        got_lines.len(),
        same_start + 1
    );
    // Where the first pair of differing lines parts, to show long lines there.
    let column = match (want_middle.first(), got_middle.first()) {
        (Some(w), Some(g)) => w.chars().zip(g.chars()).take_while(|(a, b)| a == b).count(),
        _ => 0,
    };
    for (sign, lines) in [("-", want_middle), ("+", got_middle)] {
        for (i, line) in lines.iter().enumerate().take(SHOWN_LINES) {
            text.push_str(&format!(
                "    {sign}{:>5} | {}\n",
                same_start + i + 1,
                shown(line, column)
            ));
        }
        if lines.len() > SHOWN_LINES {
            text.push_str(&format!(
                "    {sign}      | ... {} more lines\n",
                lines.len() - SHOWN_LINES
            ));
        }
    }
    text
}

/// One line for a message: a missing newline at its end said, and a long
/// line cut to a window around `column`.
fn shown(line: &str, column: usize) -> String {
    let (line, end_note) = match line.strip_suffix('\n') {
        Some(line) => (line, ""),
        None => (line, "[no newline at the end]"),
    };
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SHOWN_CHARS {
        return format!("{line}{end_note}");
    }
    let start = column.saturating_sub(SHOWN_CHARS / 4).min(chars.len() - SHOWN_CHARS);
    let end = start + SHOWN_CHARS;
    format!(
        "{}{}{}{end_note} (columns {}..{} of {})",
        if start > 0 { "..." } else { "" },
        chars[start..end].iter().collect::<String>(),
        if end < chars.len() { "..." } else { "" },
        start + 1,
        end,
        chars.len()
    )
}

/// Compare (or, blessing, write) `fixtures/NAME/FILE` with what the replay
/// printed; a problem is described for the failure message.
fn check(name: &str, file: &str, flags: &[&str]) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file);
    let got = match replay(name, flags) {
        Ok(got) => got,
        Err(problem) => return Some(problem),
    };
    let want = std::fs::read(&path).ok();
    if blessing() {
        if want.as_deref() != Some(&got[..]) {
            std::fs::write(&path, &got).unwrap();
            eprintln!("blessed fixtures/{name}/{file}");
        }
        return None;
    }
    let want = match want {
        Some(want) if want == got => return None,
        Some(want) => want,
        None => return Some(format!("fixtures/{name}/{file} is missing")),
    };
    let (want, got) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(&got));
    Some(format!(
        "fixtures/{name}/{file} differs from `whystuck --from fixtures/{name}/snapshot.json {} --fail-on never`:\n{}",
        flags.join(" "),
        line_diff(&want, &got)
    ))
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "golden outputs that differ: {}\n\n{}\n\
         If the new output is intended, rerun with WHYSTUCK_BLESS=1 (WHYSTUCK_BLESS=1 cargo test --test it golden::) \
         to write it, and review `git diff fixtures/` before committing.",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_fixture_keeps_its_human_report() {
    let (file, flags) = FORMATS[0];
    let problems = fixtures().iter().filter_map(|name| check(name, file, flags)).collect();
    assert_no_problems(problems);
}

#[test]
fn representative_fixtures_keep_every_format() {
    let mut problems = Vec::new();
    for name in EVERY_FORMAT {
        for (file, flags) in &FORMATS[1..] {
            problems.extend(check(name, file, flags));
        }
    }
    assert_no_problems(problems);
}

/// A golden file no test compares would go stale unnoticed.
#[test]
fn no_golden_file_goes_unchecked() {
    let mut unchecked = Vec::new();
    for name in fixtures() {
        for (file, _) in &FORMATS[1..] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(&name)
                .join(file);
            if path.exists() && !EVERY_FORMAT.contains(&name.as_str()) {
                unchecked.push(format!("fixtures/{name}/{file}"));
            }
        }
    }
    assert!(
        unchecked.is_empty(),
        "not compared by any test (add the fixture to EVERY_FORMAT in tests/it/golden.rs, or delete): {unchecked:?}"
    );
}

#[test]
fn the_line_diff_shows_where_and_what() {
    let diff = line_diff("a\nb\nc\nd\n", "a\nb\nC\nd\n");
    assert!(diff.contains("differ from line 3"), "{diff}");
    assert!(diff.contains("-    3 | c\n") && diff.contains("+    3 | C\n"), "{diff}");
    assert!(!diff.contains("| d"), "the common end is left out: {diff}");
    let inserted = line_diff("a\nd\n", "a\nb\nc\nd\n");
    assert!(inserted.contains("2 lines expected, 4 got"), "{inserted}");
    assert!(
        inserted.contains("+    2 | b\n") && inserted.contains("+    3 | c\n"),
        "{inserted}"
    );
    let no_newline = line_diff("a\n", "a");
    assert!(no_newline.contains("[no newline at the end]"), "{no_newline}");
    let long = format!("{}x{}\n", "=".repeat(300), "=".repeat(300));
    let cut = line_diff(&long, &long.replace('x', "y"));
    assert!(
        cut.contains("...") && cut.contains('x') && cut.contains('y') && cut.contains("of 601"),
        "{cut}"
    );
}
