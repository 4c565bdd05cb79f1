//! The crate's error type: every failure names what it was doing, on which path, and how to fix it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum Error {
    /// An I/O operation failed on a path.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// No usable SyftBox client config: the message lists where we looked.
    Config(String),
    /// Input given by the user was rejected; `hint` says what would be accepted.
    Invalid { what: String, hint: String },
    /// Something the user named does not exist (`what` says so in full).
    NotFound { what: String, hint: String },
    /// What the user acted on changed since they looked at it.
    Conflict { what: String, hint: String },
    /// Another daemon holds the instance lock for this datasite.
    AlreadyRunning { datasite: PathBuf, pid: Option<u32> },
    /// The filesystem watcher could not be set up.
    Watch { path: PathBuf, message: String },
}

impl Error {
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// `what` (a thing: "pending job \"x\"") was not found.
    pub fn not_found(what: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::NotFound {
            what: format!("{} not found", what.into()),
            hint: hint.into(),
        }
    }

    /// Something named is not there, said as a whole sentence ("x is not in the allowlist"),
    /// where "… not found" would read awkwardly.
    pub fn absent(sentence: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::NotFound {
            what: sentence.into(),
            hint: hint.into(),
        }
    }

    /// The underlying OS error kind, when there is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn io_hint(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::PermissionDenied => {
            " (check the owner and mode of that path; the reviewer must run as the SyftBox user)"
        }
        io::ErrorKind::StorageFull => {
            " (the disk is full: free some space; the daemon retries on its own, a command or request must be repeated)"
        }
        io::ErrorKind::ReadOnlyFilesystem => " (the filesystem is read-only)",
        _ => "",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => write!(
                f,
                "could not {op} {}: {source}{}",
                path.display(),
                io_hint(source.kind())
            ),
            Error::Config(msg) => f.write_str(msg),
            Error::Invalid { what, hint }
            | Error::Conflict { what, hint }
            | Error::NotFound { what, hint } => {
                write!(f, "{what}: {hint}")
            }

            Error::AlreadyRunning { datasite, pid } => {
                write!(
                    f,
                    "another syft-reviewer is already running for {}",
                    datasite.display()
                )?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                f.write_str(
                    ": stop it first, or use the CLI commands, which are safe while it runs",
                )
            }
            Error::Watch { path, message } => {
                write!(f, "could not watch {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
