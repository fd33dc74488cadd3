//! Runnable examples of the workspace's crates; see the `[[example]]` targets in this
//! package's `Cargo.toml` and run one with `cargo run -p proxy-examples --example NAME`.
