//! A distribution's own kernel booted by `run`: Debian sid's 7.2 image with our
//! initramfs, its signatures enforced from the command line, modules loaded after
//! what they depend on from its own module tree.

use crate::common::*;
use crate::fixtures::*;
use crate::fixtures::{debian_72, debian_612};
use serde_json::Value;

/// With `--enforce`, Debian's own signed af_key loads after xfrm_algo (its `depends:`,
/// taken from the kernel's module tree), and a module signed by a key the kernel does
/// not trust is refused, as `verify --kernel` predicts; without it that one is only
/// refused for its vermagic.
#[test]
fn debian_72_enforces_signatures_and_loads_dependencies_first() {
    let (k72, k612) = (debian_72(), debian_612());
    let d = tempfile::tempdir().unwrap();
    let af_key = k72.modules.join("kernel/net/key/af_key.ko.xz");
    // 6.12's tun, signed by a test key: its signature is judged before its vermagic.
    let foreign = d.path().join("tun.ko");
    std::fs::write(
        &foreign,
        strip(&xz_decompress(
            &k612.modules.join("kernel/drivers/net/tun.ko.xz"),
        )),
    )
    .unwrap();
    sign_cmd(&crate::fixtures::test_key("p384"), "sha256")
        .arg(&foreign)
        .assert()
        .success();
    let (v, _) = run_debian(&[
        "--enforce".as_ref(),
        "--modules-from".as_ref(),
        k72.modules.as_os_str(),
        "--module".as_ref(),
        af_key.as_os_str(),
        "--module".as_ref(),
        foreign.as_os_str(),
    ]);
    assert_eq!(v["finished"], true, "{v}");
    let mods = v["modules"].as_array().unwrap();
    let names: Vec<&str> = mods.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["xfrm_algo", "af_key", "tun"], "{v}");
    assert_eq!(mods[0]["dependency"], true, "{v}");
    assert_eq!(mods[0]["loaded"], true, "{v}");
    assert_eq!(mods[1]["loaded"], true, "{v}");
    assert_eq!(mods[2]["refusal"], "unavailable-key", "{v}");
    let o = kmod()
        .args(["verify", "--message-format", "json", "--kernel"])
        .arg(&k72.image)
        .arg(&foreign)
        .arg(&af_key)
        .output()
        .unwrap();
    let verdicts: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts[0]["verdict"], "ENOKEY", "{verdicts:?}");
    assert_eq!(verdicts[1]["verdict"], "OK", "{verdicts:?}");
    // Without enforcement the untrusted signature only taints; vermagic refuses it.
    let (v, _) = run_debian(&["--module".as_ref(), foreign.as_os_str()]);
    assert_eq!(v["modules"][0]["refusal"], "version-magic", "{v}");
    // A dependency missing from the tree is named, and the kernel judges without it.
    let empty = tempfile::tempdir().unwrap();
    let (v, err) = run_debian(&[
        "--modules-from".as_ref(),
        empty.path().as_os_str(),
        "--module".as_ref(),
        af_key.as_os_str(),
    ]);
    assert!(
        err.contains("it depends on xfrm_algo, which is not in"),
        "{err}"
    );
    assert_eq!(v["modules"][0]["refusal"], "unknown-symbol", "{v}");
}
