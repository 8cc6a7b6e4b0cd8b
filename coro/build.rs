//! Gives the shared library (`libcoro.so`, the cdylib) an ELF soname, so that programs linked
//! against it record `libcoro.so.<major>` and keep working across compatible upgrades.
//!
//! `make install` installs the file as `libcoro.so.<major>.<minor>.<patch>` with the symlinks
//! `libcoro.so.<major>` (what the loader looks for: the soname) and `libcoro.so` (what `-lcoro`
//! finds at link time). While the version is 0.x, the minor number is the compatibility level
//! (Cargo's rule), so the soname is `libcoro.so.0.<minor>`; from 1.0 on it is `libcoro.so.<major>`.
//!
//! A program linked against `target/<profile>/libcoro.so` asks the loader for the soname, so this
//! script also puts a `libcoro.so.<soname version> -> libcoro.so` symlink next to it: the tests
//! and examples that run from the build tree (with an rpath to it) keep finding the library.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // Only ELF platforms have sonames (macOS uses install names, Windows neither).
    if matches!(target_os.as_str(), "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly") {
        let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("CARGO_PKG_VERSION_MAJOR");
        let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("CARGO_PKG_VERSION_MINOR");
        let soname = if major == "0" { format!("libcoro.so.0.{minor}") } else { format!("libcoro.so.{major}") };
        // `cdylib` only: the soname must not end up in test or example executables.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
        if let Some(dir) = profile_dir() {
            link_soname(&dir, &soname);
        }
    }
}

/// `target/<profile>` (or `target/<triple>/<profile>`) of this build, where cargo puts
/// `libcoro.so`: OUT_DIR is `<profile dir>/build/coro-<hash>/out`. `None` if it has another shape.
fn profile_dir() -> Option<PathBuf> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR")?);
    let build = out_dir.ancestors().nth(2)?;
    (build.file_name()? == "build").then(|| build.parent().map(Path::to_path_buf))?
}

/// `dir/<soname> -> libcoro.so`. Best effort: a failure only means that programs linked in the
/// build tree need the symlink made by hand, so it is a warning, not an error.
fn link_soname(dir: &Path, soname: &str) {
    let link = dir.join(soname);
    if link.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        return;
    }
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink("libcoro.so", &link) {
        println!("cargo:warning=cannot create {}: {e}", link.display());
    }
}
