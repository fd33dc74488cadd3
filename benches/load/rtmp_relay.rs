//! Placeholder: replaced by the load generator of this protocol.
fn main() {}
