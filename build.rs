//! Link settings for the server's release binary on Linux with glibc: smaller, and quicker to load.
//!
//! - `-z pack-relative-relocs` stores the ~29,000 relative relocations of a position-independent
//!   binary as a compact bitmap (DT_RELR; glibc 2.36 and later, which every supported base image
//!   has): about 650 KiB less to store, and less for the loader to read at start.
//! - `--icf=all` keeps one copy of functions whose machine code is identical (generic code
//!   instantiated for types of the same layout): about 300 KiB. Rust makes no promise that two
//!   functions have distinct addresses, so folding them changes nothing it relies on. GNU ld
//!   does not take it, so it is passed only where rustc links with its own LLD: x86_64 Linux
//!   with no linker configured (`RUSTC_LINKER` unset).

fn main() {
    // Without these, Cargo runs this script again, and rebuilds the server, after a change to
    // any file of the package (the README, a test, the load generator).
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    // Release builds only: a debug build's backtraces keep every function apart.
    if var("PROFILE") != "release" || var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // rustc links x86_64-unknown-linux-gnu with its own LLD unless told otherwise.
    if var("TARGET") == "x86_64-unknown-linux-gnu" && std::env::var_os("RUSTC_LINKER").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}
