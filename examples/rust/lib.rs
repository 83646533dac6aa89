//! Runnable examples of moon's Rust API; see `examples/README.md`.
//!
//! Run one with `cargo run -p moon-examples --example quickstart`.
