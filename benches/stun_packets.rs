//! placeholder: replaced by the crate's owner
fn main() {}
