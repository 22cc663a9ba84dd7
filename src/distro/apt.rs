//! apt through a private configuration under the cache: its own sources list, lists
//! and archives, so the machine's sources are never read or changed and nothing is
//! installed. Packages are taken with `apt-get download` (apt checks them against the
//! suite's signed index) and unpacked with `dpkg -x`.

use crate::error::{Error, Result};
use crate::report::Reporter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One suite of one archive for one architecture.
pub struct Apt {
    /// `<cache>/apt/<distro>-<suite>-<arch>`.
    pub dir: PathBuf,
    /// What the user named (`debian/sid/arm64`): errors say it.
    name: String,
    opts: Vec<String>,
    /// The sources and architectures: lists fetched for others are not these.
    fingerprint: String,
}

/// How long one apt call may take (a sid index is ~15 MB; a modules package 110 MB).
const APT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A package's stanza as `apt-cache show` prints it.
#[derive(Debug, Clone)]
pub struct Stanza {
    fields: Vec<(String, String)>,
}

impl Stanza {
    fn parse(text: &str) -> Option<Stanza> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((k.to_string(), v.trim().to_string()));
            }
        }
        (!fields.is_empty()).then_some(Stanza { fields })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn package(&self) -> &str {
        self.get("Package").unwrap_or_default()
    }

    pub fn version(&self) -> &str {
        self.get("Version").unwrap_or_default()
    }

    /// The names `Depends:` lists (of each alternative, the first).
    pub fn depends(&self) -> Vec<String> {
        self.get("Depends")
            .unwrap_or_default()
            .split(',')
            .filter_map(|d| d.split('|').next())
            .filter_map(|d| d.split_whitespace().next())
            .map(|d| d.split(':').next().unwrap_or(d).to_string())
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// The file name apt gives the package (`Filename:`'s last part).
    fn file_name(&self) -> Option<&str> {
        self.get("Filename")?.rsplit('/').next()
    }

    pub fn size(&self) -> u64 {
        self.get("Size")
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    }
}

impl Apt {
    /// The configuration for `sources` (archive, suite: one suite as users have it,
    /// with its updates and security suites), signed by `keyring`.
    pub fn new(
        dir: PathBuf,
        name: &str,
        sources: &[(&str, String)],
        keyring: &Path,
        arch: &str,
        host: &str,
    ) -> Result<Apt> {
        let werr = |path: &Path, source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        for d in ["lists/partial", "cache/archives/partial"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| werr(&p, e))?;
        }
        let list = dir.join("sources.list");
        let line: String = sources
            .iter()
            .map(|(mirror, suite)| {
                format!(
                    "deb [signed-by={}] {mirror} {suite} main\n",
                    keyring.display()
                )
            })
            .collect();
        if crate::fsutil::read_bounded(&list, 1 << 16).ok().as_deref() != Some(line.as_bytes()) {
            crate::fsutil::write_atomic(&list, line.as_bytes(), None)?;
        }
        let o = |k: &str, v: &dyn std::fmt::Display| ["-o".to_string(), format!("{k}={v}")];
        let mut opts: Vec<String> = Vec::new();
        for pair in [
            o("Dir::Etc::sourcelist", &list.display()),
            o("Dir::Etc::sourceparts", &"/nonexistent"),
            o("Dir::State::Lists", &dir.join("lists").display()),
            o("Dir::Cache", &dir.join("cache").display()),
            // Nothing here is installed: the machine's package state is not ours.
            o("Dir::State::status", &"/dev/null"),
            o("APT::Architecture", &arch),
            // A foreign architecture's kernel still needs the build host's Kbuild programs.
            o(
                "APT::Architectures",
                &if host == arch {
                    arch.to_string()
                } else {
                    format!("{arch},{host}")
                },
            ),
            // Mirrors may serve a snapshot whose Release is past its Valid-Until; the
            // signature is still checked.
            o("Acquire::Check-Valid-Until", &"false"),
            o("APT::Update::Error-Mode", &"any"),
            o("Debug::NoLocking", &"true"),
        ] {
            opts.extend(pair);
        }
        // apt drops to the `_apt` user to download when it runs as root: that user
        // cannot write into a cache under root's home.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            opts.extend(o("APT::Sandbox::User", &"root"));
        }
        let fingerprint = format!("{line}{arch} {host}\n");
        Ok(Apt {
            dir,
            name: name.to_string(),
            opts,
            fingerprint,
        })
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(&self.opts);
        c
    }

    fn err(&self, reason: String, fix: &str) -> Error {
        Error::Distro {
            name: self.name.clone(),
            reason,
            fix: fix.into(),
        }
    }

    /// Runs an apt command to its end, bounded in time; its output, or an error
    /// carrying the tail of what it said.
    fn run(&self, c: &mut Command, what: &str) -> Result<String> {
        let out = crate::toolchain::output_within(c, APT_LIMIT).map_err(|e| match e {
            crate::toolchain::Bounded::Spawn(e) => self.err(
                format!("cannot run apt ({e})"),
                "kernel fetch needs apt-get and apt-cache (Debian package apt) and dpkg",
            ),
            crate::toolchain::Bounded::TimedOut => self.err(
                format!("{what}: no answer in {} minutes", APT_LIMIT.as_secs() / 60),
                "check the connection to the archive, then fetch again (what is done is kept)",
            ),
        })?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(4)..].join("; ");
            return Err(self.err(
                format!("{what} failed: {tail}"),
                "check the connection to the archive (apt honours http_proxy), then fetch again; kernels already fetched stay usable offline",
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// True once the suite's index was fetched.
    pub fn has_lists(&self) -> bool {
        crate::fsutil::read_bounded(&self.dir.join("lists/.updated"), 1 << 16)
            .is_ok_and(|f| f == self.fingerprint.as_bytes())
    }

    /// Fetches the suite's index (apt checks its signature).
    pub fn update(&self, r: &dyn Reporter) -> Result<()> {
        r.note(&format!("{}: fetching the package index", self.name));
        self.run(self.cmd("apt-get").args(["-q", "update"]), "apt-get update")?;
        let marker = self.dir.join("lists/.updated");
        crate::fsutil::write_atomic(&marker, self.fingerprint.as_bytes(), None)
    }

    /// The candidate stanza of `pkg`, None when the suite has no such package.
    pub fn show(&self, pkg: &str) -> Result<Option<Stanza>> {
        let out = crate::toolchain::output_within(
            self.cmd("apt-cache")
                .args(["show", "--no-all-versions", pkg]),
            APT_LIMIT,
        )
        .map_err(|_| {
            self.err(
                format!("apt-cache show {pkg} failed"),
                "run the fetch again",
            )
        })?;
        Ok(out
            .status
            .success()
            .then(|| Stanza::parse(&String::from_utf8_lossy(&out.stdout)))
            .flatten())
    }

    /// Package names matching the regular expression.
    pub fn names(&self, regex: &str) -> Result<Vec<String>> {
        let out = self.run(
            self.cmd("apt-cache")
                .args(["search", "--names-only", regex]),
            "apt-cache search",
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect())
    }

    /// The package's `.deb` in `debs`: reused when its SHA-256 is the one the signed
    /// index gives, else downloaded (into a private directory first: a download
    /// killed half-way never looks like a package).
    pub fn download(&self, p: &Stanza, debs: &Path, r: &dyn Reporter) -> Result<PathBuf> {
        let name = p.file_name().ok_or_else(|| {
            self.err(
                format!("{}: no Filename in the index", p.package()),
                "fetch again with --refresh",
            )
        })?;
        let want = p.get("SHA256").unwrap_or_default().to_string();
        let file = debs.join(name);
        if file.is_file() && sha256_file(&file).as_deref() == Some(want.as_str()) {
            return Ok(file);
        }
        r.note(&format!(
            "{}: downloading {} {} ({:.1} MB)",
            self.name,
            p.package(),
            p.version(),
            p.size() as f64 / 1e6
        ));
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(debs)
            .map_err(|source| Error::Write {
                path: debs.to_path_buf(),
                source,
            })?;
        let spec = format!(
            "{}:{}={}",
            p.package(),
            p.get("Architecture").unwrap_or("all"),
            p.version()
        );
        self.run(
            self.cmd("apt-get")
                .args(["-q", "download", &spec])
                .current_dir(tmp.path()),
            &format!("apt-get download {spec}"),
        )?;
        let got = tmp.path().join(name);
        if sha256_file(&got).as_deref() != Some(want.as_str()) {
            return Err(self.err(
                format!(
                    "{}: the download does not match the index's SHA-256",
                    got.display()
                ),
                "fetch again; if it repeats, the mirror serves a damaged file",
            ));
        }
        std::fs::rename(&got, &file).map_err(|source| Error::Write {
            path: file.clone(),
            source,
        })?;
        Ok(file)
    }
}

impl Apt {
    /// `dpkg -x DEB DIR`.
    pub fn unpack(&self, deb: &Path, dir: &Path) -> Result<()> {
        let out = Command::new("dpkg")
            .arg("-x")
            .arg(deb)
            .arg(dir)
            .output()
            .map_err(|e| self.err(format!("cannot run dpkg -x ({e})"), "install dpkg"))?;
        if !out.status.success() {
            return Err(self.err(
                format!(
                    "dpkg -x {} failed: {}",
                    deb.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                "remove that file and fetch again (it is downloaded anew)",
            ));
        }
        Ok(())
    }
}

fn sha256_file(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).ok()?;
    let mut h = openssl::sha::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some(hex::encode(h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanza_depends_take_the_first_alternative_without_versions() {
        let s = Stanza::parse(
            "Package: linux-image-7.2.13+deb14-amd64\nVersion: 7.2.13-1\nDepends: dracut | initramfs-tools (>= 0.120), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1),\n linux-modules-7.2.13+deb14-amd64:any (= 7.2.13-1)\nFilename: pool/main/l/linux/x_7.2.13-1_amd64.deb\n\nPackage: other\n",
        )
        .unwrap();
        assert_eq!(
            s.depends(),
            [
                "dracut",
                "linux-binary-7.2.13+deb14-amd64",
                "linux-modules-7.2.13+deb14-amd64"
            ]
        );
        assert_eq!(s.file_name(), Some("x_7.2.13-1_amd64.deb"));
        assert_eq!(s.version(), "7.2.13-1");
    }
}
