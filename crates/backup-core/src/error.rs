//! The library's one public error type.
//!
//! Every error carries an [`ErrorKind`] (what class of failure, which also
//! decides the CLI exit code) and a message that says what was wrong and
//! what to do. [`Error::is_retryable`] tells a scheduler whether trying again
//! later may help.

use std::fmt;

/// The class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller asked for something invalid (bad flag, bad URL, bad id).
    Usage,
    /// The location holds no repository.
    NotARepository,
    /// The repository uses a format this tool does not know.
    UnsupportedFormat,
    /// The password or key file does not open the repository.
    WrongPassword,
    /// An object or snapshot was not found.
    NotFound,
    /// A snapshot id prefix matches more than one snapshot.
    Ambiguous,
    /// Stored data failed a check: a hash, a MAC, a size, a parse.
    Corrupt,
    /// A source could not be read completely.
    Source,
    /// The restore target cannot take the restore.
    Target,
    /// The storage backend failed (network, permissions, missing bucket).
    Storage,
    /// The repository is locked by another process.
    Locked,
    /// A local I/O error.
    Io,
    /// The operation was interrupted.
    Interrupted,
}

/// An error of the backup library.
///
/// Its `Display` is the whole message, the underlying cause (an OS error,
/// a parse error) included as `": <cause>"`. The cause is therefore not
/// also returned by [`std::error::Error::source`]: a chain printer such as
/// anyhow's `{:#}` would print the OS message twice. It stays available as
/// [`Error::cause`].
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl Error {
    /// A new error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retryable: false,
            cause: None,
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// A corruption error.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// A not-found error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A storage error; `retryable` says whether trying later may help.
    pub fn storage(message: impl Into<String>, retryable: bool) -> Self {
        let mut e = Self::new(ErrorKind::Storage, message);
        e.retryable = retryable;
        e
    }

    /// An I/O error with the path or action it concerns.
    pub fn io(context: impl Into<String>, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self::new(kind, context).with_source(err)
    }

    /// Attaches the underlying cause (printed once, at the end of the
    /// message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(source));
        self
    }

    /// The underlying cause, if any (already part of the `Display` text).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Changes the kind (used where the caller knows better, e.g. an I/O
    /// error on the restore target).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::io("I/O error", err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::corrupt("malformed JSON").with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_printed_once_even_by_chain_printers() {
        let os = std::io::Error::from_raw_os_error(libc::EACCES);
        let text = os.to_string();
        let e = Error::io("cannot read /x", os).context("opening");
        assert_eq!(e.to_string(), format!("opening: cannot read /x: {text}"));
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.cause().is_some());
        let mut chained = e.to_string();
        let mut next = std::error::Error::source(&e);
        while let Some(c) = next {
            chained.push_str(&format!(": {c}"));
            next = c.source();
        }
        assert_eq!(chained.matches(&text).count(), 1, "{chained}");
    }
}
