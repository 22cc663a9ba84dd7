//! The commit and its date for `--version` (from git when building in a clone;
//! "unknown" from a source tarball).
fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    println!(
        "cargo:rustc-env=CARGO_KMOD_COMMIT={}",
        git(&["rev-parse", "--short=10", "HEAD"])
    );
    println!(
        "cargo:rustc-env=CARGO_KMOD_COMMIT_DATE={}",
        git(&["log", "-1", "--format=%cs"])
    );
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
