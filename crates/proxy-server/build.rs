//! Records the commit the binary is built from, for `--version`: `git rev-parse --short
//! HEAD` in a checkout, else `PROXY_BUILD_COMMIT` (a container build without `.git`), else
//! "unknown" (a packaged crate). Needs nothing but `git`, and only when it is there.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Watches a git file, if it exists: cargo reruns the script every build for a missing one.
fn watch(manifest_dir: &std::path::Path, git_path: &str) {
    if let Some(p) = git(&["rev-parse", "--git-path", git_path]) {
        let p = manifest_dir.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PROXY_BUILD_COMMIT");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Only this crate's own checkout counts: an unpacked .crate inside some other
    // repository must not report that repository's commit.
    let in_checkout = git(&["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .is_some_and(|top| manifest_dir.starts_with(top) && manifest_dir.join("src").is_dir())
        && git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_some();
    let from_git = if in_checkout {
        // Rebuilt when HEAD moves: a checkout (HEAD itself) or a commit (the ref it names).
        watch(&manifest_dir, "HEAD");
        watch(&manifest_dir, "packed-refs");
        if let Some(name) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&manifest_dir, &name);
        }
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    let commit = from_git
        .or_else(|| std::env::var("PROXY_BUILD_COMMIT").ok())
        .filter(|c| {
            !c.trim().is_empty()
                && c.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PROXY_BUILD_COMMIT={commit}");
}
