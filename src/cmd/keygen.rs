use super::report_error;
use crate::cli::KeygenArgs;
use cargo_kmod::sign::keygen::{self, Algo, KeygenOptions};

pub fn run(a: KeygenArgs) -> i32 {
    let algo = Algo::ALL
        .iter()
        .find(|(n, _)| *n == a.algo)
        .map(|(_, x)| *x)
        .expect("clap checked the value");
    let o = KeygenOptions {
        out: a.out,
        algo,
        cn: a.cn,
        days: a.days,
        mok: a.mok,
    };
    match keygen::generate(&o) {
        Ok(f) => {
            println!("{}", f.key.display());
            println!("{}", f.cert_pem.display());
            println!("{}", f.cert_der.display());
            eprintln!(
                "generated a {} key (private key mode 0600: keep it secret)",
                o.algo_name()
            );
            eprintln!("next steps, one of:");
            eprintln!(
                "  - Secure Boot machines: mokutil --import {} , then reboot and enroll it",
                f.cert_der.display()
            );
            eprintln!(
                "  - your own kernel: CONFIG_SYSTEM_TRUSTED_KEYS=\"{}\" (or `cargo kmod kernel build --trusted-cert {}`)",
                f.cert_pem.display(),
                f.cert_pem.display()
            );
            eprintln!(
                "  - sign: cargo kmod sign --key {} --cert {} MODULE",
                f.key.display(),
                f.cert_pem.display()
            );
            0
        }
        Err(e) => report_error(&e),
    }
}

trait AlgoName {
    fn algo_name(&self) -> &'static str;
}

impl AlgoName for KeygenOptions {
    fn algo_name(&self) -> &'static str {
        Algo::ALL
            .iter()
            .find(|(_, x)| *x == self.algo)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}
