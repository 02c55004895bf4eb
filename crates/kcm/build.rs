//! Link settings of the `kcm` binary.

fn main() {
    // The release binary keeps line tables so that a backtrace names file:line
    // ([profile.release] in the workspace Cargo.toml). Compressed, they take about
    // a third of the space. zlib, not zstd: the standard library's backtrace
    // decompresses only zlib sections.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    if linux && release {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
