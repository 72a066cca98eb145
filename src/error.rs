//! The binary's one error type: each variant is a way a run can fail, with
//! its exit code. Errors print as one line, their causes joined, and name
//! the file they are about.

use crate::cli::{EXIT_LOCKED, EXIT_NOTHING_SELECTED, EXIT_USAGE};
use crate::selection::NothingSelected;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// Bad input or a failure to run (exit 2): the message says what and
    /// where.
    Failed(anyhow::Error),
    /// The selection chose no process (exit 3).
    NothingSelected(NothingSelected),
    /// Another run holds the `--lock` (exit 4).
    Locked(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(_) => EXIT_USAGE,
            Error::NothingSelected(_) => EXIT_NOTHING_SELECTED,
            Error::Locked(_) => EXIT_LOCKED,
        }
    }

    /// Whoever read our output went away (`whystuck ... | head`): not an
    /// error at all.
    pub fn is_broken_pipe(&self) -> bool {
        let Error::Failed(err) = self else { return false };
        err.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Failed(err) => write!(f, "{err:#}"),
            Error::NothingSelected(nothing) => write!(f, "{nothing}"),
            Error::Locked(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Error {
        match err.downcast::<NothingSelected>() {
            Ok(nothing) => Error::NothingSelected(nothing),
            Err(err) => Error::Failed(err),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Failed(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_to_fail_has_its_exit_code() {
        let nothing = NothingSelected {
            message: "no process matches".into(),
            visibility: None,
        };
        assert_eq!(
            Error::from(anyhow::Error::new(nothing)).exit_code(),
            EXIT_NOTHING_SELECTED
        );
        assert_eq!(Error::Locked("held".into()).exit_code(), EXIT_LOCKED);
        assert_eq!(Error::from(anyhow::anyhow!("bad")).exit_code(), EXIT_USAGE);
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(Error::from(anyhow::Error::new(pipe).context("writing the report")).is_broken_pipe());
    }
}
