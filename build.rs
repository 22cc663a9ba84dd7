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
    // A new commit or checkout changes HEAD or the branch it points to.
    if let Some(dir) = std::path::Path::new(".git").is_dir().then_some(".git") {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        let head = std::fs::read_to_string(format!("{dir}/HEAD")).unwrap_or_default();
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
}
