//! Compiles the vendored Workload API proto into server-side Rust code.
//!
//! protox parses the proto in pure Rust, so no `protoc` is needed. The proto
//! has no `package`, so the generated file is `$OUT_DIR/_.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/workload.proto");
    let descriptors = protox::compile(["workload.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
