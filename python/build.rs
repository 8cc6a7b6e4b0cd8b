//! Compiles the CPython thread-state shim (`src/pystate.c`) against the headers of the interpreter
//! pyo3 builds for (`PYO3_PYTHON`, else the `python3` on PATH), including its internal headers:
//! the shim reads version-specific `PyThreadState` fields, so it must match that exact version.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();
    let python = config.executable().map(ToOwned::to_owned).unwrap_or_else(|| "python3".to_owned());
    let include = interpreter_include_dir(&python);

    let shim = PathBuf::from("src/pystate.c");
    println!("cargo:rerun-if-changed=src/pystate.c");
    println!("cargo:rerun-if-changed=src/pystate.h");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    cc::Build::new()
        .file(&shim)
        .include("src")
        .include(&include)
        .include(include.join("internal"))
        .flag_if_supported("-std=c11")
        .flag_if_supported("-fno-strict-aliasing")
        .warnings(true)
        .extra_warnings(true)
        .compile("uthread_pystate");
}

/// `sysconfig.get_paths()["include"]` of the target interpreter.
fn interpreter_include_dir(python: &str) -> PathBuf {
    let out = Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} to find its include directory: {e}"));
    assert!(out.status.success(), "{python} failed: {}", String::from_utf8_lossy(&out.stderr));
    let dir = PathBuf::from(String::from_utf8(out.stdout).expect("non-UTF-8 include path").trim());
    assert!(dir.join("Python.h").exists(), "no Python.h in {}", dir.display());
    dir
}
