//! Generates the bindings from `include/coro.h` with bindgen and tells rustc where libcoro is.
//!
//! Environment:
//! - `CORO_INCLUDE_DIR`: directory holding `coro.h` (default: `include/` of this repository).
//! - `CORO_LIB_DIR`: directory holding `libcoro.so` / `libcoro.a` (default: the `target/<profile>`
//!   directory that this build uses, i.e. where `cargo build -p coro` put the library). A relative
//!   path is taken from the repository root, like the `ci/` scripts do.
//!
//! - Outside this repository (the crate as published), neither default exists: then an installed
//!   libcoro is looked up with `pkg-config coro` (`make install` writes `coro.pc`; set
//!   `PKG_CONFIG_PATH` for a non-standard prefix), unless the two variables are set.
//!
//! The library is not built here: run `cargo build -p coro` (same profile) first.

use std::env;
use std::path::{Path, PathBuf};

use bindgen::callbacks::{IntKind, ParseCallbacks};

/// Types the `size_t`-valued macros as `usize`, so `CORO_MIN_STACK_SIZE` can be assigned to
/// `coro_options_t::stack_size` without a cast (bindgen would make every macro a `u32`).
#[derive(Debug)]
struct MacroTypes;

impl ParseCallbacks for MacroTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        name.ends_with("_STACK_SIZE").then_some(IntKind::Custom { name: "usize", is_signed: false })
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: coro-sys: {msg}");
    std::process::exit(1);
}

fn env_path(name: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={name}");
    env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn tidy(p: PathBuf) -> PathBuf {
    p.canonicalize().unwrap_or(p)
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let repo_root = tidy(manifest_dir.join("../../.."));
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let link_static = env::var_os("CARGO_FEATURE_STATIC").is_some();

    // ---- bindings -------------------------------------------------------------------------------
    // Outside this repository (the published crate), an installed libcoro is found with
    // pkg-config (`make install` writes coro.pc), unless the variables say otherwise.
    let installed = if repo_root.join("include/coro.h").is_file() { None } else { pkg_config_dirs() };
    let include_dir = tidy(
        env_path("CORO_INCLUDE_DIR")
            .or_else(|| installed.as_ref().map(|(inc, _)| inc.clone()))
            .unwrap_or_else(|| repo_root.join("include")),
    );
    let header = include_dir.join("coro.h");
    if !header.is_file() {
        fail(&format!("{} not found (set CORO_INCLUDE_DIR to the directory holding coro.h)", header.display()));
    }
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-env-changed=BINDGEN_EXTRA_CLANG_ARGS");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include_dir.display()))
        // cbindgen writes `//` comments (documentation_style = "c99"); clang only keeps them as
        // documentation with this flag.
        .clang_arg("-fparse-all-comments")
        .allowlist_function("coro_.*")
        .allowlist_type("coro_.*")
        .allowlist_var("CORO_.*")
        // `CORO_OK` rather than `coro_status_code_CORO_OK`: the names C code uses.
        .prepend_enum_name(false)
        // `core::ffi` types, so the crate is `no_std`.
        .use_core()
        .parse_callbacks(Box::new(MacroTypes))
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on {}: {e}", header.display())));
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings.rs: {e}")));

    // ---- linking --------------------------------------------------------------------------------
    let file = match (link_static, target_os.as_str(), target_env.as_str()) {
        (true, "windows", "msvc") => "coro.lib",
        (true, _, _) => "libcoro.a",
        (false, "windows", _) => "coro.dll.lib",
        (false, "macos" | "ios", _) => "libcoro.dylib",
        (false, _, _) => "libcoro.so",
    };
    let lib_dir = match (env_path("CORO_LIB_DIR"), installed) {
        (Some(dir), _) => repo_root.join(dir), // an absolute `dir` replaces `repo_root`
        (None, Some((_, lib))) => lib,
        (None, None) => default_lib_dir(&out_dir, &repo_root),
    };
    if !lib_dir.join(file).is_file() {
        fail(&format!(
            "{} not found. coro-sys links the C library and does not build it: run \
             `cargo build -p coro` (with the same --release/--target) first, or set CORO_LIB_DIR",
            lib_dir.join(file).display()
        ));
    }
    let lib_dir = tidy(lib_dir);

    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    if link_static {
        println!("cargo:rustc-link-lib=static=coro");
        // Relink when the archive changes (a shared library is picked up at run time anyway).
        println!("cargo:rerun-if-changed={}", lib_dir.join(file).display());
    } else {
        println!("cargo:rustc-link-lib=dylib=coro");
        // Lets this package's tests, examples and doc-tests find libcoro.so without LD_LIBRARY_PATH.
        // (Applies to this package only; dependents set their own rpath or LD_LIBRARY_PATH.)
        if !matches!(target_os.as_str(), "windows") {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
        }
    }
    // `links = "coro"`: dependents' build scripts see DEP_CORO_INCLUDE and DEP_CORO_LIB_DIR.
    println!("cargo:include={}", include_dir.display());
    println!("cargo:lib_dir={}", lib_dir.display());
}

/// `(includedir, libdir)` of an installed libcoro, from `pkg-config coro`; `None` if pkg-config
/// or coro.pc is not there.
fn pkg_config_dirs() -> Option<(PathBuf, PathBuf)> {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let var = |name: &str| -> Option<PathBuf> {
        let out = std::process::Command::new("pkg-config").args(["--variable", name, "coro"]).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let text = text.trim();
        (out.status.success() && !text.is_empty()).then(|| PathBuf::from(text))
    };
    Some((var("includedir")?, var("libdir")?))
}

/// `target/<profile>` of this build: OUT_DIR is `<target>/<profile>/build/coro-sys-<hash>/out`
/// (with `--target T`, `<target>/T/<profile>/...`), which is where `cargo build -p coro` of the
/// same workspace and target directory puts libcoro. If OUT_DIR has another shape (a separate
/// `build-dir`, say), `<repo>/target/$PROFILE`.
fn default_lib_dir(out_dir: &Path, repo_root: &Path) -> PathBuf {
    let build = out_dir.ancestors().nth(2).filter(|b| b.file_name().is_some_and(|n| n == "build"));
    match build.and_then(Path::parent) {
        Some(profile_dir) => profile_dir.to_path_buf(),
        None => repo_root.join("target").join(env::var("PROFILE").unwrap_or_else(|_| "debug".into())),
    }
}
