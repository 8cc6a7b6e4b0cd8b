//! Links Boost.Context's `jump_fcontext` (Debian's libboost-context-dev) when it is installed, for
//! the Boost row of the switch table; without it the row is left out (and says so).
fn main() {
    println!("cargo:rustc-check-cfg=cfg(have_boost_context)");
    let found = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
        .iter()
        .any(|dir| std::path::Path::new(dir).join("libboost_context.so").exists());
    if found {
        println!("cargo:rustc-link-lib=dylib=boost_context");
        println!("cargo:rustc-cfg=have_boost_context");
    }
}
