//! The commit and its date for `--version` (from git when building in a clone;
//! nothing from a source tarball or crates.io).
fn main() {
    // Only this crate's own clone: a packaged crate unpacked inside another repository
    // (cargo package's target/package/) must not take that repository's commit.
    let own = std::path::Path::new(".git").exists();
    let git = |args: &[&str]| {
        own.then(|| std::process::Command::new("git").args(args).output().ok())
            .flatten()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    // ` (abc1234 2026-12-01)` after the version, or nothing from a source tarball.
    let suffix = match (
        git(&["rev-parse", "--short=10", "HEAD"]),
        git(&["log", "-1", "--format=%cs"]),
    ) {
        (Some(commit), Some(date)) => format!(" ({commit} {date})"),
        _ => String::new(),
    };
    println!("cargo:rustc-env=CARGO_KMOD_VERSION_SUFFIX={suffix}");
    // A new commit or checkout changes HEAD or the branch it points to. Only files that
    // exist: cargo reruns a build script whose rerun-if-changed path is missing every
    // time, and rebuilds everything above it.
    let head = std::fs::read_to_string(".git/HEAD").unwrap_or_default();
    let branch = head
        .trim()
        .strip_prefix("ref: ")
        .map(|r| format!(".git/{r}"));
    for p in [
        Some(".git/HEAD".to_string()),
        branch,
        Some(".git/packed-refs".into()),
    ]
    .into_iter()
    .flatten()
    .filter(|p| std::path::Path::new(p).is_file())
    {
        println!("cargo:rerun-if-changed={p}");
    }
}
