//! Compiles the Kubernetes KMS v2 API with pure-Rust tooling (protox), so building
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let root = std::fs::canonicalize(&root)?;
    let file = root.join("k8s/kms/v2/api.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&root])?;
    // kcm is the server; the Kubernetes API server is the client. The client half
    // is built too, for the crate's own tests.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
