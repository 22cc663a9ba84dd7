//! The one way the library talks to the user while it works: the binary decides
//! where it goes (stderr, a progress bar, nowhere).

pub trait Reporter: Sync {
    /// Something the user should know that does not stop the work.
    fn warn(&self, msg: &str);
    /// Progress chatter.
    fn note(&self, msg: &str);
    /// A line of a long-running step (a build's output); may be shown transiently.
    fn progress(&self, line: &str) {
        let _ = line;
    }
    /// Work over `total` items begins.
    fn start(&self, label: &str, total: u64) {
        let _ = (label, total);
    }
    fn advance(&self, n: u64) {
        let _ = n;
    }
    fn finish(&self) {}
}

/// A reporter for one of several parallel jobs: its lines carry the job's name.
pub struct Prefixed<'a> {
    pub inner: &'a dyn Reporter,
    pub prefix: String,
}

impl Reporter for Prefixed<'_> {
    fn warn(&self, msg: &str) {
        self.inner.warn(&format!("{}: {msg}", self.prefix));
    }
    fn note(&self, msg: &str) {
        self.inner.note(&format!("{}: {msg}", self.prefix));
    }
    fn progress(&self, line: &str) {
        self.inner.progress(&format!("{}: {line}", self.prefix));
    }
}
