//! `cargo kmod package --oci`: a module image for Kubernetes' Kernel Module Management
//! (KMM). One image per kernel release in one OCI image layout (a directory, and the
//! same as a `.tar` for `oci-archive:`), each holding `/opt/lib/modules/<R>/` with the
//! module and what `depmod -b /opt <R>` writes: where KMM's module loader runs
//! `modprobe -d /opt`. Written directly (no container daemon), reproducibly: sorted
//! entries, fixed mtimes ($SOURCE_DATE_EPOCH, else 0), owner root.

use super::install::{kernel_compression, modules_bytes};
use super::run_tool;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::settings::Settings;
use crate::sign::Signing;
use crate::target::Target;
use serde_json::json;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Where KMM looks by default (`dirName: /opt`).
pub const MODULES_ROOT: &str = "opt";

/// An image tag for a release: `[A-Za-z0-9_.-]`, at most 128, not starting with `.`/`-`.
pub fn tag(release: &str) -> String {
    let mut t: String = super::name_chars(release, "_.-", '_')
        .chars()
        .take(128)
        .collect();
    if t.starts_with(['.', '-']) {
        t.replace_range(0..1, "_");
    }
    t
}

fn entry_path(e: &Entry) -> &str {
    match e {
        Entry::Dir(p) | Entry::File(p, ..) | Entry::Symlink(p, _) => p,
    }
}

/// What was written: the layout directory, its tar, the tags, and the manifest.
#[derive(Debug)]
pub struct Written {
    pub layout: PathBuf,
    pub archive: PathBuf,
    /// (kernel release, tag)
    pub images: Vec<(String, String)>,
    pub kmm_manifest: Option<PathBuf>,
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(openssl::sha::sha256(data)))
}

/// One tar entry (path relative, no leading `/`).
enum Entry {
    Dir(String),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
}

/// A tar of `entries`, in the order given, owned by root, with one fixed mtime.
fn tar_of(entries: &[Entry], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        match e {
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Entry::Symlink(path, to) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, path, to)?;
            }
        }
    }
    b.into_inner()
}

/// Every directory and file under `root`, sorted, as tar entries below `prefix`.
fn entries(root: &Path, prefix: &str) -> Result<Vec<Entry>> {
    let mut v = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name().min_depth(1) {
        let e = e.map_err(|e| Error::Read {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        let rel = e.path().strip_prefix(root).expect("under root").display();
        if e.file_type().is_dir() {
            v.push(Entry::Dir(format!("{prefix}{rel}")));
        } else {
            let data = std::fs::read(e.path()).map_err(|source| Error::Read {
                path: e.path().to_path_buf(),
                source,
            })?;
            v.push(Entry::File(format!("{prefix}{rel}"), data, 0o644));
        }
    }
    Ok(v)
}

/// The gzip'd layer of one kernel: `/opt/lib/modules/<R>/` after depmod. Returns
/// (layer, its uncompressed digest).
fn layer(
    project: &Project,
    target: &Target,
    o: &OciOptions,
    scratch: &Path,
) -> Result<(Vec<u8>, String)> {
    let release = target.release.as_str();
    let compression = kernel_compression(Path::new("/"), target);
    let root = scratch.join(tag(release)).join(MODULES_ROOT);
    let moddir = root.join("lib/modules").join(release);
    for (dir, file, bytes) in
        modules_bytes(o.settings, project, target, compression, o.signing, "")?
    {
        let to = moddir.join(dir);
        std::fs::create_dir_all(&to).map_err(|source| Error::Write {
            path: to.clone(),
            source,
        })?;
        std::fs::write(to.join(&file), bytes).map_err(|source| Error::Write {
            path: to.clone(),
            source,
        })?;
    }
    run_tool(
        std::process::Command::new("depmod")
            .arg("-b")
            .arg(&root)
            .arg(release),
        &moddir,
    )?;
    let mut files = vec![Entry::Dir(MODULES_ROOT.into())];
    files.extend(entries(&root, &format!("{MODULES_ROOT}/"))?);
    gzip_layer(&files, &moddir, o.mtime())
}

/// (gzip'd layer, digest of the tar inside it). The gzip header is fixed (no name,
/// mtime 0), so the same entries give the same layer.
fn gzip_layer(files: &[Entry], what: &Path, mtime: u64) -> Result<(Vec<u8>, String)> {
    let werr = |source| Error::Write {
        path: what.to_path_buf(),
        source,
    };
    let tar = tar_of(files, mtime).map_err(werr)?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    use std::io::Write;
    gz.write_all(&tar).map_err(werr)?;
    Ok((gz.finish().map_err(werr)?, diff_id))
}

/// KMM's `Module` for the images (`--kmm-manifest`).
#[derive(serde::Serialize)]
pub struct KmmModule {
    /// The Kubernetes object's name (DNS label: `_` → `-`).
    pub name: String,
    pub module: String,
    pub image: String,
    /// (kernel release, tag)
    pub images: Vec<(String, String)>,
    pub version: String,
}

impl crate::templates::Generated for KmmModule {
    const TEMPLATE: &'static str = "kmm/module.yaml";
    fn example() -> Self {
        KmmModule {
            name: "hello-mod".into(),
            module: "hello_mod".into(),
            image: "quay.io/me/hello".into(),
            images: vec![("6.12.117+deb12-amd64".into(), "6.12.117_deb12-amd64".into())],
            version: "0.1.0".into(),
        }
    }
}

/// KMM's worker copies the modules out of the image with the image's own `cp`: a
/// static busybox as `/bin/busybox` with `/bin/cp` and `/bin/sh` linked to it.
fn busybox_layer(
    busybox: &Path,
    arch: crate::target::Arch,
    mtime: u64,
) -> Result<(Vec<u8>, String)> {
    let data = crate::fsutil::read_bounded(busybox, 64 << 20)?;
    let bad = |reason: String| Error::Package {
        path: busybox.to_path_buf(),
        reason,
        fix: format!(
            "give --busybox a static busybox for {} (Debian's busybox-static)",
            arch.name()
        ),
    };
    let elf = object::File::parse(data.as_slice())
        .map_err(|e| bad(format!("not an ELF executable: {e}")))?;
    use object::Object;
    if elf.architecture() != arch.object() {
        return Err(bad(format!(
            "is for {:?}, the kernel is {}",
            elf.architecture(),
            arch.name()
        )));
    }
    if elf.section_by_name(".interp").is_some() {
        return Err(bad(
            "is dynamically linked; the image has no libraries".into()
        ));
    }
    let files = vec![
        Entry::Dir("bin".into()),
        Entry::File("bin/busybox".into(), data, 0o755),
        Entry::Symlink("bin/cp".into(), "busybox".into()),
        Entry::Symlink("bin/sh".into(), "busybox".into()),
    ];
    gzip_layer(&files, busybox, mtime)
}

/// The signer as `modinfo` names it (the certificate's issuer CN).
fn signer(signing: Option<&Signing>) -> Option<String> {
    let cert = &signing?.key.cert;
    Some(cert.issuer_cn().unwrap_or_else(|| cert.subject()))
}

pub struct OciOptions<'a> {
    pub out: &'a Path,
    pub signing: Option<&'a Signing<'a>>,
    /// The repository the images will be pushed to, for the KMM `Module`.
    pub image: &'a str,
    pub kmm_manifest: bool,
    /// The static busybox that gives the image its `cp`.
    pub busybox: &'a Path,
    pub settings: &'a Settings,
}

impl OciOptions<'_> {
    /// Every file's mtime: `SOURCE_DATE_EPOCH`, else 0.
    fn mtime(&self) -> u64 {
        self.settings.source_date_epoch.unwrap_or(0)
    }
}

/// Writes `<out>/<name>-oci/` and `<out>/<name>-oci.tar` (and with `kmm_manifest`,
/// `<out>/<name>-module.yaml`); an earlier layout is replaced whole.
pub fn package(project: &Project, targets: &[Target], o: &OciOptions) -> Result<Written> {
    let out = o.out;
    super::out_dir(out)?;
    let werr = |p: &Path, source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    let staging = tempfile::tempdir_in(out).map_err(|e| werr(out, e))?;
    let layout = staging.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| werr(&blobs, e))?;
    let put = |data: &[u8]| -> Result<(String, usize)> {
        let d = sha256(data);
        let p = blobs.join(d.trim_start_matches("sha256:"));
        std::fs::write(&p, data).map_err(|e| werr(&p, e))?;
        Ok((d, data.len()))
    };
    let mut manifests = Vec::new();
    let mut images = Vec::new();
    // The busybox layer is the same for every kernel of one architecture: made once.
    let mut bases: Vec<(crate::target::Arch, String, String, usize)> = Vec::new();
    for target in targets {
        let release = target.release.as_str();
        let arch = target.known_arch("packaging a module image")?;
        if !bases.iter().any(|b| b.0 == arch) {
            let (layer, diff_id) = busybox_layer(o.busybox, arch, o.mtime())?;
            let (digest, size) = put(&layer)?;
            bases.push((arch, diff_id, digest, size));
        }
        let (_, base_id, base_digest, base_size) = bases
            .iter()
            .find(|b| b.0 == arch)
            .expect("made above")
            .clone();
        let (layer, diff_id) = layer(project, target, o, staging.path())?;
        let (layer_digest, layer_size) = put(&layer)?;
        let config = json!({
            "architecture": arch.package_names().oci,
            "os": "linux",
            "config": {
                "Labels": {
                    "io.cargo-kmod.kernel.release": release,
                    "io.cargo-kmod.kernel.arch": arch.name(),
                    "org.opencontainers.image.title": project.name,
                    "org.opencontainers.image.version": project.version,
                }
            },
            "rootfs": { "type": "layers", "diff_ids": [base_id, diff_id] },
        });
        let (config_digest, config_size) = put(&serde_json::to_vec(&config).expect("json"))?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": { "mediaType": CONFIG, "digest": config_digest, "size": config_size },
            "layers": [
                { "mediaType": LAYER, "digest": base_digest, "size": base_size },
                { "mediaType": LAYER, "digest": layer_digest, "size": layer_size },
            ],
        });
        if let Some(s) = signer(o.signing) {
            manifest["annotations"] = json!({ "io.cargo-kmod.module.signer": s });
        }
        let (digest, size) = put(&serde_json::to_vec(&manifest).expect("json"))?;
        let t = tag(release);
        manifests.push(json!({
            "mediaType": MANIFEST,
            "digest": digest,
            "size": size,
            "annotations": { "org.opencontainers.image.ref.name": t },
            "platform": { "architecture": arch.package_names().oci, "os": "linux" },
        }));
        images.push((release.to_string(), t));
    }
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests });
    for (name, data) in [
        ("oci-layout", json!({ "imageLayoutVersion": "1.0.0" })),
        ("index.json", index),
    ] {
        let p = layout.join(name);
        std::fs::write(&p, serde_json::to_vec(&data).expect("json")).map_err(|e| werr(&p, e))?;
    }
    let base = format!("{}-oci", project.name);
    let archive = out.join(format!("{base}.tar"));
    let mut all = entries(&layout, "")?;
    all.sort_by(|a, b| entry_path(a).cmp(entry_path(b)));
    let tar = tar_of(&all, o.mtime()).map_err(|e| werr(&archive, e))?;
    let tmp_tar = staging.path().join("archive.tar");
    std::fs::write(&tmp_tar, tar).map_err(|e| werr(&tmp_tar, e))?;
    let manifest_path = out.join(format!("{}-module.yaml", project.name));
    let tmp_yaml = staging.path().join("module.yaml");
    if o.kmm_manifest {
        let text = crate::templates::render(&KmmModule {
            name: project.name.replace('_', "-"),
            module: project.name.clone(),
            image: o.image.to_string(),
            images: images.clone(),
            version: project.version.clone(),
        });
        std::fs::write(&tmp_yaml, text).map_err(|e| werr(&tmp_yaml, e))?;
    }
    // Everything is made; now swap it in (an earlier layout goes whole).
    let dest = out.join(&base);
    let old = staging.path().join("old");
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(|e| werr(&dest, e))?;
    }
    std::fs::rename(&layout, &dest).map_err(|e| werr(&dest, e))?;
    std::fs::rename(&tmp_tar, &archive).map_err(|e| werr(&archive, e))?;
    if o.kmm_manifest {
        std::fs::rename(&tmp_yaml, &manifest_path).map_err(|e| werr(&manifest_path, e))?;
    }
    Ok(Written {
        layout: dest,
        archive,
        images,
        kmm_manifest: o.kmm_manifest.then_some(manifest_path),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags() {
        assert_eq!(super::tag("7.2.13+deb14-amd64"), "7.2.13_deb14-amd64");
        assert_eq!(super::tag("6.12.117"), "6.12.117");
        assert_eq!(super::tag("-rc"), "_rc");
        assert_eq!(super::tag(&"x".repeat(200)).len(), 128);
    }
}
