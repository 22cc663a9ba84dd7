//! What a name, version, release or directory may contain before it reaches a path, a
//! shell file (dkms.conf, maintainer scripts), an RPM spec or a YAML. One rule each,
//! checked where the value enters the tool (Cargo.toml, the command line, a tree).

/// A module name: a C identifier (Kbuild turns '-' into '_'), shorter than
/// MODULE_NAME_LEN (64 - sizeof(unsigned long) = 56, with the NUL).
pub fn module_name(name: &str) -> Result<(), String> {
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{}` is not a valid module name: use letters, digits and '_', not starting with a digit",
            name.escape_debug()
        ));
    }
    if name.len() > 55 {
        return Err(format!(
            "`{name}` is {} characters; module names have at most 55",
            name.len()
        ));
    }
    Ok(())
}

/// A project or DKMS package name (`PACKAGE_NAME`, `acpi-call`): letters, digits and
/// '_', '-', '.', '+', starting with a letter or digit, at most 64 characters. It names
/// directories and packages, and is safe in a shell word.
pub fn package_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid module name: use letters, digits, '_', '-', '.', '+', starting with a letter or digit (at most 64)",
            name.escape_debug()
        ))
    }
}

/// A project version: starts with a digit; then ASCII letters, digits, '.', '-', '+'
/// (every SemVer version cargo accepts), at most 64 characters. Nothing a shell, RPM or
/// dpkg reads specially.
pub fn version(v: &str) -> Result<(), String> {
    let ok = v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a version this tool packages: start with a digit, then letters, digits, '.', '-', '+' (at most 64)",
            v.escape_debug()
        ))
    }
}

/// A kernel release (`uname -r`): ASCII letters, digits and `.` `-` `+` `_` `~`, not
/// starting with '.', at most 64 characters (`__NEW_UTS_LEN`).
pub fn release(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.len() <= 64
        && !r.starts_with('.')
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_' | '~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a kernel release: letters, digits, '.', '-', '+', '_', '~' (at most 64, not starting with '.')",
            r.escape_debug()
        ))
    }
}

/// A kernel by name (`debian/sid/arm64`): two or three parts of lowercase letters,
/// digits and `-`, split by `/`. Which names exist is `distro`'s to say.
pub fn kernel_name(n: &str) -> Result<(), String> {
    let parts: Vec<&str> = n.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 40
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a kernel by name: <distribution>/<suite>[/<architecture>], e.g. debian/sid or debian/sid/arm64",
            n.escape_debug()
        ))
    }
}

/// A directory under `/lib/modules/<release>/` (`install-dir`, `--dir`): relative, made
/// of plain names (letters, digits, '.', '-', '_'), no `.` or `..` component.
pub fn install_dir(d: &str) -> Result<(), String> {
    let ok = !d.is_empty()
        && d.len() <= 255
        && d.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a directory under /lib/modules/<release>/: give a relative path of plain names (e.g. updates, extra/mine), no '..'",
            d.escape_debug()
        ))
    }
}

/// One line of free text (license, author, URL) for package metadata: no control
/// characters, at most 1024 bytes.
pub fn one_line(s: &str) -> Result<(), String> {
    if s.len() > 1024 || s.chars().any(char::is_control) {
        return Err("must be one line of text (no control characters, at most 1024 bytes)".into());
    }
    Ok(())
}

/// Free text of several lines (a description): tabs and newlines only, at most 64 KiB.
pub fn text(s: &str) -> Result<(), String> {
    if s.len() > 64 << 10 || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(
            "must be text (no control characters but newlines and tabs, at most 64 KiB)".into(),
        );
    }
    Ok(())
}

/// An OCI image reference without its tag (`registry/path`, as `package --image` takes
/// it): the distribution spec's grammar in lower case — a registry host (with an
/// optional port), then path components of `[a-z0-9]+` joined by `.`, `_`, `__` or `-`.
pub fn oci_repository(r: &str) -> Result<(), String> {
    let err = |why: &str| {
        Err(format!(
            "`{}` is not an image repository ({why}); give e.g. quay.io/me/mymod (lower case, no tag)",
            r.escape_debug()
        ))
    };
    if r.is_empty() || r.len() > 255 {
        return err("empty, or longer than 255 characters");
    }
    let mut parts = r.split('/');
    let host = parts.next().unwrap_or_default();
    let (h, port) = host.split_once(':').unwrap_or((host, ""));
    let host_ok = !h.is_empty()
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && (port.is_empty() && !host.contains(':')
            || port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty());
    if !host_ok {
        return err("bad registry host");
    }
    let path: Vec<&str> = parts.collect();
    if path.is_empty() {
        return err("no repository path after the registry");
    }
    for c in path {
        let mut prev_sep = true;
        let mut sep = String::new();
        for ch in c.chars() {
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
                if !sep.is_empty()
                    && !matches!(sep.as_str(), "." | "_" | "__")
                    && !sep.chars().all(|s| s == '-')
                {
                    return err("bad separator in a path component");
                }
                sep.clear();
                prev_sep = false;
            } else if matches!(ch, '.' | '_' | '-') {
                if prev_sep && sep.is_empty() {
                    return err("a path component must start with a letter or digit");
                }
                sep.push(ch);
            } else {
                return err("path components take lower-case letters, digits, '.', '_', '-'");
            }
        }
        if prev_sep || !sep.is_empty() {
            return err("a path component must end with a letter or digit");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_reach_files_are_refused() {
        for bad in [
            "../../../escaped",
            "proj$(touch PWNED)",
            "proj%(touch x)",
            "",
            "1abc",
            "a-b",
        ] {
            assert!(module_name(bad).is_err(), "{bad}");
        }
        assert!(module_name("hello_world").is_ok());
        for bad in ["1.0$(id)", "1.0\n", "../1", "1 0", "v1"] {
            assert!(version(bad).is_err(), "{bad}");
        }
        assert!(version("0.1.0-rc.1+build.5").is_ok());
        for bad in ["../x", "6.1/../..", ".hidden", "6.1 0", ""] {
            assert!(release(bad).is_err(), "{bad}");
        }
        assert!(release("6.1.0-57-amd64").is_ok());
        assert!(release("7.2.13+deb14-amd64").is_ok());
        for bad in [
            "../../../../esc",
            "/abs",
            "a/../b",
            "a//b",
            "updates/",
            "x y",
        ] {
            assert!(install_dir(bad).is_err(), "{bad}");
        }
        assert!(install_dir("extra/mine").is_ok());
    }

    #[test]
    fn oci_references_follow_the_distribution_grammar() {
        for good in [
            "quay.io/me/x",
            "localhost:5000/a/b-c",
            "reg.example/a__b/c.d",
            "r/x---y",
        ] {
            assert!(oci_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "Quay.IO/Me/X Y",
            "quay.io/me/x\nkind: Evil",
            "quay.io",
            "quay.io/me/",
            "quay.io/-x",
            "quay.io/x-",
            "quay.io/a..b",
            "quay.io:/a",
            "quay.io/a:tag",
        ] {
            assert!(oci_repository(bad).is_err(), "{bad:?}");
        }
    }
}
