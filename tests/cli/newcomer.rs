//! What a newcomer meets first (the newcomer issue): each message pinned, with its
//! exit code.

use crate::common::*;

#[test]
fn info_takes_message_format_json_as_every_other_command_does() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    for flags in [&["--message-format", "json"][..], &["--json"][..]] {
        let o = kmod().arg("info").args(flags).arg(&m).output().unwrap();
        assert!(o.status.success(), "{flags:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert!(v.to_string().contains("dummy"), "{flags:?}: {v}");
    }
}

#[test]
fn sign_file_help_prints_help_and_the_usage_it_accepts() {
    let o = kmod().args(["sign-file", "--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Usage: scripts/sign-file [-dpk] <hash algo>"),
        "{out}"
    );
    assert!(
        out.contains("-k  identify the signer by subjectKeyIdentifier"),
        "{out}"
    );
    // sign-file's own usage error stays exit 2.
    let o = kmod().args(["sign-file", "-x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("[-dpk]"), "{}", stderr(&o));
}

#[test]
fn a_missing_certificate_is_a_certificate_error_not_a_module_one() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let missing = d.path().join("missing.crt");
    let o = kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&missing)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: cannot read certificate: No such file",
            missing.display()
        )) && e.contains("help: give the X.509 certificate (PEM or DER)"),
        "{e}"
    );
}

#[test]
fn keygen_says_an_before_a_vowel_sound() {
    let d = tempfile::tempdir().unwrap();
    for (algo, said) in [
        ("ecdsa-p384", "generated an ecdsa-p384 key"),
        ("rsa2048", "generated an rsa2048 key"),
    ] {
        let o = kmod()
            .args(["keygen", "--algo", algo, "--out"])
            .arg(d.path().join(algo))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
}

/// `help:` lines are advice for the error at hand, never "see --help".
#[test]
fn usage_errors_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    // A key without --cert: the certificate beside it is named.
    let keys = d.path().join("keys");
    let o = kmod()
        .args(["keygen", "--algo", "ecdsa-p256", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let key = keys.join("signing_key.pem");
    let o = kmod()
        .arg("sign")
        .arg("--key")
        .arg(&key)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "help: pass --cert {} (the certificate beside the key)",
            keys.join("signing_key.crt").display()
        )),
        "{}",
        stderr(&o)
    );
    // `run` with no kernel anywhere: how to build one from the source this machine has.
    let empty = tempfile::tempdir().unwrap();
    let o = kmod()
        .arg("run")
        .arg("--module")
        .arg(&m)
        .env("CARGO_KMOD_CACHE", empty.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "help: pass --kernel IMAGE or --kdir DIR, or build one: cargo kmod kernel build --source /usr/src/linux-source-6.12.tar.xz"
        ),
        "{}",
        stderr(&o)
    );
    // A name that is no module name: one that is.
    let o = kmod()
        .args(["new", "--name", "9-lives"])
        .arg(d.path().join("p"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("help: name it `m_9_lives`"),
        "{}",
        stderr(&o)
    );
    for o in [
        kmod().arg("sign").arg("--key").arg(&key).output().unwrap(),
        kmod()
            .args(["unsign", "--extract-sig", "x"])
            .arg(&m)
            .arg(&m)
            .output()
            .unwrap(),
    ] {
        assert!(!stderr(&o).contains("see --help"), "{}", stderr(&o));
    }
}

#[test]
fn new_saves_the_release_it_was_made_for_and_says_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    // The Debian 6.12 headers scripts/test-deps.sh installs (a build symlink in /lib/modules).
    let release = format!(
        "{}-amd64",
        std::fs::read_to_string(cache_dir().join("debian-kernel-version"))
            .expect("missing test prerequisite: run scripts/test-deps.sh")
            .trim()
    );
    let p = d.path().join("saved");
    let o = kmod()
        .args([
            "new",
            "--template",
            "c-minimal",
            "--kernel-release",
            &release,
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = std::fs::read_to_string(p.join("Cargo.toml")).unwrap();
    assert!(
        toml.contains(&format!("kdir = [\"/lib/modules/{release}/build\"]")),
        "{toml}"
    );
    // A release whose headers are not there.
    let o = kmod()
        .args(["new", "--kernel-release", "9.9.9"])
        .arg(d.path().join("nine"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/lib/modules/9.9.9/build: kernel tree not found")
            && stderr(&o)
                .contains("help: install them (Debian: apt-get install linux-headers-9.9.9)"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("nine").exists());
    // A Rust template for a tree without Rust: made, with a warning naming the fix.
    let no_rust = &crate::fixtures::test_kernel_modversions().kdir;
    let o = kmod()
        .args(["new", "--template", "rust-minimal", "--kdir"])
        .arg(no_rust)
        .arg(d.path().join("rusty"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no CONFIG_RUST: a Rust module will not build against it"),
        "{}",
        stderr(&o)
    );
    // init works where it stands: no `cd` to the directory it is in.
    let here = d.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let o = kmod()
        .args([
            "init",
            "--template",
            "c-minimal",
            "--kernel-release",
            &release,
        ])
        .current_dir(&here)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("next: cargo kmod build"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("next: cd"), "{}", stderr(&o));
    let help = stdout(&kmod().args(["init", "--help"]).output().unwrap());
    assert!(!help.contains("see --list"), "{help}");
}

#[test]
fn unsign_removes_every_signature_sign_file_appended() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let original = std::fs::read(&m).unwrap();
    let k = crate::fixtures::test_key("rsa2048");
    for _ in 0..2 {
        run(std::process::Command::new(sign_file())
            .arg("sha256")
            .arg(&k.key)
            .arg(&k.cert)
            .arg(&m));
    }
    let o = kmod().arg("unsign").arg(&m).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!("{}: 2 signatures removed", m.display())
    );
    assert_eq!(std::fs::read(&m).unwrap(), original);
    // And it signs again.
    crate::fixtures::sign(&m, &k, "sha256");
}

#[test]
fn a_debian_common_headers_dir_points_at_its_flavour() {
    let d = tempfile::tempdir().unwrap();
    let release = std::fs::read_to_string(cache_dir().join("debian-kernel-version"))
        .expect("missing test prerequisite: run scripts/test-deps.sh")
        .trim()
        .to_string();
    let p = d.path().join("m");
    let o = kmod()
        .args(["new", "--template", "c-minimal"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let common = format!("/usr/src/linux-headers-{release}-common");
    let o = kmod()
        .args(["build", "--kdir", &common])
        .current_dir(&p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "help: use the tree of your kernel's flavour: /usr/src/linux-headers-{release}-amd64"
        )),
        "{}",
        stderr(&o)
    );
}

/// `package --deb` takes the releases of the last build, not every one ever built.
#[test]
fn package_takes_the_last_builds_releases() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pkg");
    let (k612, k72) = (
        &crate::fixtures::test_kernel().kdir,
        &crate::fixtures::test_kernel_72().kdir,
    );
    crate::fixtures::built_project(&p, "c-minimal", &[], &[k612.as_path(), k72.as_path()]);
    let o = crate::fixtures::build(&p, &[k72.as_path()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("debs");
    let o = kmod()
        .arg("package")
        .arg("--manifest-path")
        .arg(p.join("Cargo.toml"))
        .arg("--deb")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let debs: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    assert!(
        debs[0].contains(&crate::fixtures::test_kernel_72().release),
        "{debs:?}"
    );
}

/// Every `Examples:` line of the main commands' help: in the README word for word, and
/// accepted by the parser (run in an empty directory: whatever fails, it is not clap).
#[test]
fn help_examples_are_in_the_readme_and_parse() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let uname = stdout(
        &std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap(),
    )
    .trim()
    .to_string();
    let mut seen = 0;
    for c in [
        "new", "build", "keygen", "sign", "verify", "check", "run", "package",
    ] {
        let help = stdout(&kmod().args([c, "--help"]).output().unwrap());
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!examples.is_empty(), "{c} --help has no examples:\n{help}");
        for l in &examples {
            assert!(readme.contains(&format!("{l}\n")), "README lacks {l:?}");
        }
        // Continued lines joined; comments and the leading `cargo kmod` dropped.
        let joined = examples.join("\n").replace("\\\n", " ");
        for cmd in joined.lines() {
            let cmd = cmd.split(" # ").next().unwrap().trim();
            let cmd = cmd.replace("$(uname -r)", &uname);
            let words = shell_words(cmd.strip_prefix("cargo kmod ").unwrap());
            let o = kmod().args(&words).current_dir(d.path()).output().unwrap();
            let err = stderr(&o);
            assert!(
                !err.contains("For more information, try '--help'"),
                "{cmd}: clap refused it:\n{err}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "{seen} examples");
}

/// Words as sh splits them, for the examples (double quotes only).
fn shell_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[test]
fn version_names_the_commit() {
    let v = stdout(&kmod().arg("--version").output().unwrap());
    let head = stdout(
        &std::process::Command::new("git")
            .args(["rev-parse", "--short=10", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap(),
    );
    assert!(
        v.starts_with(&format!("cargo-kmod {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(v.contains(head.trim()), "{v} lacks HEAD {head}");
}

#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = kmod().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("check") && stdout(&o).contains("sign-file"),
            "{shell}"
        );
    }
    // bash takes it, for the binary cargo runs.
    let script = stdout(&kmod().args(["completions", "bash"]).output().unwrap());
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("c.bash"), script).unwrap();
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}/c.bash && complete -p cargo-kmod",
            d.path().display()
        ))
        .output()
        .unwrap();
    assert!(
        o.status.success() && stdout(&o).contains("cargo-kmod"),
        "{}",
        stderr(&o)
    );
    let page = stdout(&kmod().arg("man").output().unwrap());
    assert!(
        page.contains(".TH cargo-kmod 1") && page.contains("Exit codes"),
        "{page}"
    );
    let o = kmod()
        .args(["man", "--out"])
        .arg(d.path().join("man"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let check = std::fs::read_to_string(d.path().join("man/cargo-kmod-check.1")).unwrap();
    assert!(
        check.contains(".TH cargo-kmod-check 1") && check.contains("\\-\\-modules\\-dir"),
        "{check}"
    );
}

#[test]
fn color_and_quiet() {
    let d = tempfile::tempdir().unwrap();
    let bad = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = kmod();
        c.args(["sign", "--key", "/nonexistent.pem", "x.ko"])
            .args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        stderr(&c.output().unwrap())
    };
    let esc = '\u{1b}';
    assert!(bad(&["--color", "always"], &[]).starts_with(&format!("{esc}[1;31merror")));
    assert!(bad(&[], &[("CARGO_TERM_COLOR", "always")]).contains(esc));
    assert!(!bad(&["--color", "never"], &[("CARGO_TERM_COLOR", "always")]).contains(esc));
    assert!(!bad(&[], &[("NO_COLOR", "1")]).contains(esc));
    assert!(
        bad(&[], &[]).starts_with("error: /nonexistent.pem"),
        "no colour off a terminal"
    );
    // -q: no chatter, the result and the errors stay.
    let o = kmod()
        .args(["-q", "new", "--template", "c-minimal"])
        .arg(d.path().join("q"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stderr(&o), "", "quiet");
    assert!(stdout(&o).contains("Cargo.toml"), "{}", stdout(&o));
    let o = kmod()
        .args(["new", "--template", "c-minimal"])
        .arg(d.path().join("loud"))
        .output()
        .unwrap();
    assert!(stderr(&o).contains("next: cd"), "{}", stderr(&o));
    let o = kmod()
        .args(["new", "-q"])
        .arg(d.path().join("q"))
        .output()
        .unwrap();
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
}

/// The README's demo, end to end, with cargo's target directory outside the project
/// it makes (as many Rust developers have it). Installs into a temporary root; the
/// target directory is this suite's, and a debug install reuses its build.
#[test]
fn the_demo_runs_with_a_target_dir_elsewhere() {
    let _ = crate::fixtures::fetched("debian/bookworm"); // the prerequisite, said clearly when missing
    let root = tempfile::tempdir().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let o = std::process::Command::new("scripts/demo.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target)
        .env("DEMO_INSTALL_ROOT", root.path())
        .env("DEMO_INSTALL_FLAGS", "--debug")
        .env("DEMO_SKIP_SETUP", "1")
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}\n{err}");
    // `check` with the MOK: loads. Under Secure Boot, Debian's signed 6.1 refuses the
    // unsigned copy and loads the MOK-signed module.
    assert!(out.contains("hello.ko: loads, taints (O)"), "{out}");
    assert!(out.contains("lockdown: integrity"), "{out}");
    assert!(
        out.contains("unsigned.ko: REFUSED")
            && out.contains("Loading of unsigned module is rejected"),
        "{out}"
    );
    assert!(
        out.contains("hello.ko: loaded as hello") && out.contains("  unloaded"),
        "{out}"
    );
    assert!(
        out.contains("(cargo install: ") && out.contains("(run --kernel: "),
        "each step says its time: {out}"
    );
    assert!(!err.contains("cannot access"), "{err}");
}

/// Each command's one-line summary in `cargo kmod --help` says what the command does:
/// every `kernel` subcommand is named in `kernel`'s, and each (command, flag) below
/// exists and is named by its word in that command's summary.
#[test]
fn each_commands_summary_names_what_it_does() {
    let top = stdout(&kmod().arg("--help").output().unwrap());
    let summary = |cmd: &str| -> String {
        top.lines()
            .find_map(|l| {
                let l = l.trim_start();
                l.strip_prefix(cmd)
                    .filter(|rest| rest.starts_with(' '))
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no `{cmd}` in --help:\n{top}"))
    };
    // `kernel`: its subcommands, from its own help.
    let help = stdout(&kmod().args(["kernel", "--help"]).output().unwrap());
    let subs: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|s| s != "help")
        .collect();
    assert!(subs.len() >= 5, "{help}");
    let kernel = summary("kernel");
    for s in &subs {
        assert!(
            kernel.contains(s.as_str()),
            "`kernel {s}` is not in its summary: {kernel}"
        );
    }
    for (cmd, flag, word) in [
        ("package", "--dkms", "DKMS"),
        ("package", "--deb", ".deb"),
        ("package", "--rpm", "RPM"),
        ("package", "--srpm", "SRPM"),
        ("package", "--oci", "OCI"),
        ("sign", "--key", "key file"),
        ("sign", "--signer", "external signer"),
        ("sign", "--export", "two phases"),
        ("run", "--secure-boot", "Secure Boot"),
        ("install", "--root", "/lib/modules"),
        ("doctor", "--cert", "certificate"),
        ("check", "--mok", "kernel"),
        ("build", "--kernel", "kernel trees"),
    ] {
        let h = stdout(&kmod().args([cmd, "--help"]).output().unwrap());
        assert!(
            h.lines()
                .any(|l| l.trim_start().strip_prefix(flag).is_some_and(
                    |rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '-')
                )),
            "`{cmd}` has no {flag}:\n{h}"
        );
        let s = summary(cmd);
        assert!(
            s.contains(word),
            "`{cmd}`'s summary does not say {word:?}: {s}"
        );
    }
}
