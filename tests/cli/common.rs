use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The settings as the binary resolves them: from this process's environment (PATH,
/// CARGO_KMOD_CACHE, RUSTC, ...), for tests that call the library.
pub fn settings() -> cargo_kmod::settings::Settings {
    cargo_kmod::settings::Settings::from_env(|k| std::env::var_os(k))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn need(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "missing test prerequisite: {what} at {} — run scripts/test-deps.sh (the README's test command does)",
        path.display()
    );
    path
}

/// Debian's compiled scripts/sign-file (the byte-exact oracle).
pub fn sign_file() -> PathBuf {
    let base = need(
        cache_dir().join("fixtures/kbuild/usr/lib"),
        "linux-kbuild package",
    );
    let dir = std::fs::read_dir(&base)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("linux-kbuild-6.12")
        })
        .expect("linux-kbuild-6.12* in the kbuild fixture");
    need(dir.path().join("scripts/sign-file"), "sign-file")
}

/// Every `.ko.xz` of Debian's signed linux-image package, sorted.
pub fn debian_modules() -> &'static [PathBuf] {
    static M: OnceLock<Vec<PathBuf>> = OnceLock::new();
    M.get_or_init(|| {
        let root = need(
            cache_dir().join("fixtures/image/lib/modules"),
            "linux-image package",
        );
        let v = ko_xz_under(&root);
        assert!(
            v.len() > 4000,
            "expected Debian's ~4230 modules, found {}",
            v.len()
        );
        v
    })
}

pub fn debian_module(name: &str) -> PathBuf {
    let file = format!("/{name}.ko.xz");
    debian_modules()
        .iter()
        .find(|p| p.to_string_lossy().ends_with(&file))
        .unwrap_or_else(|| panic!("{name}.ko.xz not in the linux-image fixture"))
        .clone()
}

/// cargo-kmod as a user runs it: projects made by tests keep their own `target/`, even
/// when the test run itself was given a CARGO_TARGET_DIR.
pub fn kmod() -> Command {
    let mut c = Command::cargo_bin("cargo-kmod").unwrap();
    c.env_remove("CARGO_TARGET_DIR");
    c
}

pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn xz_decompress(p: &Path) -> Vec<u8> {
    run(std::process::Command::new("xz").arg("-dc").arg(p)).stdout
}

/// An unsigned ELF module: Debian's signed module with the signature cut off.
pub fn unsigned_module(dir: &Path, name: &str) -> PathBuf {
    let data = xz_decompress(&debian_module(name));
    let body = strip(&data);
    let p = dir.join(format!("{name}.ko"));
    std::fs::write(&p, body).unwrap();
    p
}

/// Cuts a valid appended signature off (independent of the code under test).
pub fn strip(data: &[u8]) -> &[u8] {
    let magic = b"~Module signature appended~\n";
    assert!(data.ends_with(magic), "module is not signed");
    let n = data.len() - magic.len();
    let sig_len = u32::from_be_bytes(data[n - 4..n].try_into().unwrap()) as usize;
    &data[..n - 12 - sig_len]
}

pub struct Key {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// Test keys made with the openssl CLI, once per test run.
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    pub fn get(&self, name: &str) -> Key {
        Key {
            key: self.dir.path().join(format!("{name}.key")),
            cert: self.dir.path().join(format!("{name}.crt")),
        }
    }
}

pub const ALGOS: [(&str, &str); 6] = [
    ("rsa2048", "rsa:2048"),
    ("rsa3072", "rsa:3072"),
    ("rsa4096", "rsa:4096"),
    ("p256", "ec:P-256"),
    ("p384", "ec:P-384"),
    ("other", "rsa:2048"),
];

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = ALGOS
            .iter()
            .map(|(name, spec)| {
                let d = dir.path().to_path_buf();
                let (name, spec) = (name.to_string(), spec.to_string());
                std::thread::spawn(move || {
                    let mut c = std::process::Command::new("openssl");
                    c.args(["req", "-new", "-x509", "-nodes", "-days", "365"]);
                    if let Some(curve) = spec.strip_prefix("ec:") {
                        c.args([
                            "-newkey",
                            "ec",
                            "-pkeyopt",
                            &format!("ec_paramgen_curve:{curve}"),
                        ]);
                    } else {
                        c.args(["-newkey", &spec]);
                    }
                    c.arg("-keyout").arg(d.join(format!("{name}.key")));
                    c.arg("-out").arg(d.join(format!("{name}.crt")));
                    c.args(["-subj", &format!("/O=cargo-kmod tests/CN=test key {name}")]);
                    c.args(["-addext", "subjectKeyIdentifier=hash"]);
                    run(&mut c);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The same RSA key, encrypted with a passphrase.
        run(std::process::Command::new("openssl")
            .args(["pkey", "-aes256", "-passout", "pass:s3cret", "-in"])
            .arg(dir.path().join("rsa2048.key"))
            .arg("-out")
            .arg(dir.path().join("enc.key")));
        Keys { dir }
    })
}

pub fn sha256(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    openssl::sha::sha256(&v).to_vec()
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `cargo kmod sign --hash HASH --key K --cert C`, ready for `-o`/modules.
pub fn sign_cmd(k: &Key, hash: &str) -> assert_cmd::Command {
    let mut c = kmod();
    c.args(["sign", "--hash", hash, "--key"])
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.cert);
    c
}

/// `cargo kmod verify --cert CERT MODULE` must say OK.
pub fn assert_verifies(cert: &Path, module: &Path) {
    kmod()
        .arg("verify")
        .arg("--cert")
        .arg(cert)
        .arg(module)
        .assert()
        .success();
}

/// Every `.ko.xz` below `dir`, sorted.
pub fn ko_xz_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .filter(|p| p.to_string_lossy().ends_with(".ko.xz"))
        .collect();
    v.sort();
    v
}
