//! A module project: a directory Kbuild builds with `M=` (made by `cargo kmod new`,
//! or one that already exists, with or without a `dkms.conf`); what its Cargo.toml says
//! (`[package.metadata.kmod]`, checked when it is loaded) or, without one, its
//! dkms.conf; and the layout of what the tool makes for it under `target/kmod/`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// `[package.metadata.kmod]` and where the project lives.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub target_dir: PathBuf,
    pub name: String,
    pub version: String,
    /// Cargo.toml's `license` (SPDX) and `description`, for package metadata.
    pub license: Option<String>,
    pub description: Option<String>,
    /// Cargo.toml's first author, and its homepage (else repository).
    pub author: Option<String>,
    pub url: Option<String>,
    pub kdirs: Vec<PathBuf>,
    /// `kernels = ["debian/bookworm", "debian/sid/arm64"]`: kernels by name.
    pub kernels: Vec<String>,
    /// `dkms-arch = ["arm64", ...]`: DKMS builds it only on these (BUILD_EXCLUSIVE_ARCH).
    pub dkms_arch: Vec<crate::target::Arch>,
    pub sign: bool,
    pub key: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    /// `signer = "COMMAND"` (and `signer-input`): the key stays elsewhere.
    pub signer: Option<SignerConf>,
    pub hash: Option<String>,
    pub rustc: Option<PathBuf>,
    pub install_dir: String,
    pub source: Source,
    /// [`Project::is_rust`], found once (a walk of the project).
    rust: std::sync::OnceLock<bool>,
}

/// One module of a build, as `target/kmod/<release>/modules.json` lists it (written by
/// `build`, read by `install` and `package`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleRecord {
    /// Its file in `target/kmod/<release>/` (`jool.ko`).
    pub file: String,
    /// `DEST_MODULE_LOCATION` (`/extra`), when the project says where it installs.
    pub dest_location: Option<String>,
    /// Where a Kbuild project's build made it, relative to the project (`a`).
    pub built_location: Option<String>,
}

/// How a project builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Kbuild builds a copy of the directory with `make -C <tree> M=<copy>`; its modules
    /// are the `.ko` that build makes (one, named after it, for `cargo kmod new`'s).
    Kbuild,
    /// A DKMS tree: its `dkms.conf` says, per kernel, how it builds and which modules.
    Dkms { conf: PathBuf },
}

impl Source {
    /// What the directory holds: a dkms.conf makes it a DKMS tree.
    pub fn of(dir: &Path) -> Source {
        let conf = dir.join("dkms.conf");
        if conf.is_file() {
            Source::Dkms { conf }
        } else {
            Source::Kbuild
        }
    }
}

/// What a project's Cargo.toml says, as `cargo metadata` read it.
pub struct Manifest<'a> {
    pub path: &'a Path,
    pub crate_name: &'a str,
    pub version: &'a str,
    pub license: Option<&'a str>,
    pub description: Option<&'a str>,
    pub author: Option<&'a str>,
    pub url: Option<&'a str>,
    /// `[package.metadata]`.
    pub metadata: &'a serde_json::Value,
}

/// `signer = "COMMAND"`, `signer-input = "digest"|"digest-hex"|"digest-info"`,
/// `signer-timeout = SECONDS` in `[package.metadata.kmod]`: a key that stays elsewhere
/// (`sign::external` runs it).
#[derive(Debug, Clone)]
pub struct SignerConf {
    pub command: String,
    pub input: Option<String>,
    pub timeout: Option<u64>,
}

fn signer_of(manifest: &Path, kmod: &serde_json::Value) -> Result<Option<SignerConf>> {
    let refuse = |field: &str, reason: &str| Error::Manifest {
        path: manifest.to_path_buf(),
        field: format!("package.metadata.kmod.{field}"),
        reason: reason.into(),
    };
    let Some(v) = kmod.get("signer") else {
        return Ok(None);
    };
    let command = v.as_str().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        refuse(
            "signer",
            "must be a command line (a string), run with `sh -c`",
        )
    })?;
    crate::names::one_line(command).map_err(|r| refuse("signer", &r))?;
    let input = match kmod.get("signer-input") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| refuse("signer-input", "must be a string"))?
                .to_string(),
        ),
    };
    let timeout = match kmod.get("signer-timeout") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|&s| s > 0)
                .ok_or_else(|| refuse("signer-timeout", "must be a positive number of seconds"))?,
        ),
    };
    Ok(Some(SignerConf {
        command: command.to_string(),
        input,
        timeout,
    }))
}

impl Project {
    /// The project `manifest` names, else the one `cwd` is in, from its Cargo.toml: a
    /// package's `[package.metadata.kmod]`, or a virtual manifest's
    /// `[workspace.metadata.kmod]` (as `cargo kmod init` writes). A DKMS tree without a
    /// Cargo.toml is [`crate::dkms::load_project`]'s.
    pub fn load(cwd: &Path, manifest: Option<&Path>) -> Result<Project> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.current_dir(cwd);
        cmd.no_deps();
        if let Some(m) = manifest {
            cmd.manifest_path(m);
        }
        let shown = manifest.map_or_else(|| PathBuf::from("Cargo.toml"), Path::to_path_buf);
        let meta = cmd.exec().map_err(|e| Error::Project {
            path: shown.clone(),
            reason: format!("cannot read the project: {e}"),
        })?;
        let Some(pkg) = meta.root_package().or_else(|| meta.packages.first()) else {
            // A virtual manifest: the name and version are the metadata's own.
            let kmod = &meta.workspace_metadata["kmod"];
            let path = meta.workspace_root.as_std_path().join("Cargo.toml");
            let text = |k: &str| {
                kmod[k].as_str().ok_or_else(|| Error::Manifest {
                    path: path.clone(),
                    field: format!("[workspace.metadata.kmod] {k}"),
                    reason: "missing: a manifest without [package] names the project here".into(),
                })
            };
            if kmod.is_null() {
                return Err(Error::Project {
                    path,
                    reason: "no package in this manifest".into(),
                });
            }
            let metadata = serde_json::json!({ "kmod": kmod });
            return Project::from_manifest(
                &Manifest {
                    path: &path,
                    crate_name: text("name")?,
                    version: text("version")?,
                    license: kmod["license"].as_str(),
                    description: kmod["description"].as_str(),
                    author: kmod["author"].as_str(),
                    url: kmod["url"].as_str(),
                    metadata: &metadata,
                },
                meta.target_directory.as_std_path(),
            );
        };
        Project::from_manifest(
            &Manifest {
                path: pkg.manifest_path.as_std_path(),
                crate_name: &pkg.name,
                version: &pkg.version.to_string(),
                license: pkg.license.as_deref(),
                description: pkg.description.as_deref(),
                author: pkg.authors.first().map(String::as_str),
                url: pkg.homepage.as_deref().or(pkg.repository.as_deref()),
                metadata: &pkg.metadata,
            },
            meta.target_directory.as_std_path(),
        )
    }

    /// The project a manifest describes (what `cargo metadata` read of it), validated.
    pub fn from_manifest(m: &Manifest, target_dir: &Path) -> Result<Project> {
        let dir = m
            .path
            .parent()
            .expect("a manifest has a directory")
            .to_path_buf();
        let kmod = &m.metadata["kmod"];
        if kmod.is_null() {
            return Err(Error::Project {
                path: m.path.to_path_buf(),
                reason: "no [package.metadata.kmod] section: not a kernel module project".into(),
            });
        }
        // Paths are relative to the project; pkcs11: URIs stay as they are.
        let rel = |v: &serde_json::Value| {
            v.as_str().map(|s| {
                if s.starts_with("pkcs11:") {
                    PathBuf::from(s)
                } else {
                    dir.join(s)
                }
            })
        };
        let project = Project {
            name: kmod["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| crate::modfile::normalise(m.crate_name)),
            version: m.version.to_string(),
            license: m.license.map(str::to_string),
            description: m.description.map(str::to_string),
            author: m.author.map(str::to_string),
            url: m.url.map(str::to_string),
            kdirs: kmod["kdir"]
                .as_array()
                .map(|a| a.iter().filter_map(rel).collect())
                .unwrap_or_default(),
            kernels: match kmod["kernels"].as_array() {
                None => Vec::new(),
                Some(a) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| "not a string".to_string())
                            .and_then(|n| crate::names::kernel_name(n).map(|()| n.to_string()))
                            .map_err(|reason| Error::Manifest {
                                path: m.path.to_path_buf(),
                                field: "package.metadata.kmod.kernels".into(),
                                reason: format!("{v}: {reason}"),
                            })
                    })
                    .collect::<Result<_>>()?,
            },
            dkms_arch: match kmod["dkms-arch"].as_array() {
                None => Vec::new(),
                Some(a) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(crate::target::Arch::from_name)
                            .ok_or_else(|| Error::Project {
                                path: m.path.to_path_buf(),
                                reason: format!(
                                    "dkms-arch: {v} is not an architecture this tool knows (x86_64, arm64)"
                                ),
                            })
                    })
                    .collect::<Result<_>>()?,
            },
            sign: kmod["sign"].as_bool().unwrap_or(false),
            key: rel(&kmod["key"]),
            cert: rel(&kmod["cert"]),
            signer: signer_of(m.path, kmod)?,
            hash: kmod["hash"].as_str().map(str::to_string),
            rustc: kmod["rustc"].as_str().map(PathBuf::from),
            install_dir: kmod["install-dir"]
                .as_str()
                .unwrap_or("updates")
                .to_string(),
            target_dir: target_dir.to_path_buf(),
            source: Source::of(&dir),
            rust: Default::default(),
            dir,
        };
        project.validate(m.path)?;
        Ok(project)
    }

    /// A DKMS tree without a Cargo.toml, named by its dkms.conf's package (read by
    /// [`crate::dkms`]); built in `<dir>/target/kmod/`.
    pub fn of_dkms_tree(dir: &Path, name: String, version: String) -> Result<Project> {
        let conf = dir.join("dkms.conf");
        let project = Project {
            dir: dir.to_path_buf(),
            target_dir: dir.join("target"),
            name,
            version,
            license: None,
            description: None,
            author: None,
            url: None,
            kdirs: Vec::new(),
            kernels: Vec::new(),
            dkms_arch: Vec::new(),
            sign: false,
            key: None,
            cert: None,
            signer: None,
            hash: None,
            rustc: None,
            install_dir: "updates".into(),
            source: Source::Dkms { conf: conf.clone() },
            rust: Default::default(),
        };
        project.validate(&conf).map_err(|e| match e {
            Error::Manifest { reason, field, .. } => Error::DkmsConf {
                path: conf.clone(),
                reason: format!(
                    "{}: {reason}",
                    field
                        .replace("[package.metadata.kmod] name", "PACKAGE_NAME")
                        .replace("[package] version", "PACKAGE_VERSION")
                ),
            },
            e => e,
        })?;
        Ok(project)
    }

    /// Every value that reaches a path, dkms.conf, a maintainer script, an RPM spec or
    /// a YAML obeys its rule in [`crate::names`]; refused at load time, the field named.
    fn validate(&self, manifest: &Path) -> Result<()> {
        use crate::names;
        let refuse = |field: &str, reason: String| Error::Manifest {
            path: manifest.to_path_buf(),
            field: field.into(),
            reason,
        };
        names::package_name(&self.name).map_err(|r| refuse("[package.metadata.kmod] name", r))?;
        names::version(&self.version).map_err(|r| refuse("[package] version", r))?;
        names::install_dir(&self.install_dir)
            .map_err(|r| refuse("[package.metadata.kmod] install-dir", r))?;
        for (field, v) in [
            ("[package] license", &self.license),
            ("[package] authors", &self.author),
            ("[package] homepage/repository", &self.url),
        ] {
            if let Some(v) = v {
                names::one_line(v).map_err(|r| refuse(field, r))?;
            }
        }
        if let Some(d) = &self.description {
            names::text(d).map_err(|r| refuse("[package] description", r))?;
        }
        if let Some(h) = &self.hash {
            h.parse::<crate::hash::HashAlg>().map_err(|_| {
                refuse(
                    "[package.metadata.kmod] hash",
                    format!("unknown hash `{}`", h.escape_debug()),
                )
            })?;
        }
        Ok(())
    }

    /// The signing hash the metadata names, if any (else the target kernel's).
    pub fn hash(&self) -> Result<Option<crate::hash::HashAlg>> {
        self.hash.as_deref().map(str::parse).transpose()
    }

    /// Who packages it: Cargo.toml's first author, else a placeholder.
    pub fn maintainer(&self) -> &str {
        self.author
            .as_deref()
            .unwrap_or("cargo-kmod <root@localhost>")
    }

    /// Whether Kbuild builds Rust here: a `.rs` file beside a Kbuild or Makefile, in
    /// any directory of the project (not `target/`; cargo's `src/lib.rs` has none).
    pub fn is_rust(&self) -> bool {
        *self.rust.get_or_init(|| self.has_rust())
    }

    fn has_rust(&self) -> bool {
        let mut walk = walkdir::WalkDir::new(&self.dir).into_iter();
        while let Some(Ok(e)) = walk.next() {
            if e.file_type().is_dir() && (e.path() == self.target_dir || e.file_name() == ".git") {
                walk.skip_current_dir();
                continue;
            }
            let dir = e.path().parent().unwrap_or(&self.dir);
            if e.path().extension().is_some_and(|x| x == "rs")
                && (dir.join("Kbuild").is_file() || dir.join("Makefile").is_file())
            {
                return true;
            }
        }
        false
    }

    /// `target/kmod/`: everything the tool makes for the project.
    pub fn kmod_dir(&self) -> PathBuf {
        self.target_dir.join("kmod")
    }

    /// Where Kbuild builds for a release: a copy of the sources, never the user's tree.
    pub fn build_dir(&self, release: &str) -> PathBuf {
        self.kmod_dir().join("build").join(release)
    }

    /// The modules built for a release.
    pub fn out_dir(&self, release: &str) -> PathBuf {
        self.kmod_dir().join(release)
    }

    /// The module built for a release.
    pub fn built_module(&self, release: &str) -> PathBuf {
        self.out_dir(release).join(format!("{}.ko", self.name))
    }

    /// Beside the built modules: which they are, and where each installs
    /// (`[{"file": "jool.ko", "dest_location": "/extra"}]`).
    pub fn built_record(&self, release: &str) -> PathBuf {
        self.out_dir(release).join("modules.json")
    }

    /// Beside the built modules: the tree they were built against (one line).
    pub fn built_for(&self, release: &str) -> PathBuf {
        self.out_dir(release).join("kdir")
    }

    /// The releases the last `build` made, one per line.
    pub fn last_build(&self) -> PathBuf {
        self.kmod_dir().join("last-build")
    }

    /// `package`'s default output directory.
    pub fn package_dir(&self) -> PathBuf {
        self.kmod_dir().join("package")
    }
}
