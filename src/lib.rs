//! Asynchronous Windows named pipes for [mio] 0.6.
//!
//! This crate compiles on every platform; its content exists on Windows only.
//!
//! [mio]: https://docs.rs/mio/0.6
