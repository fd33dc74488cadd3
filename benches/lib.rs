//! Benchmarks live in the `[[bench]]` targets of this package (`cargo bench -p proxy-benches`).
//! This library holds what the benches share.
