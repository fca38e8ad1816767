//! Helpers shared by the async integration tests: unique pipe names, a
//! seeded generator of test data, connected pairs.
#![allow(dead_code)]

// The workspace's one copy of these (Wine's version, impersonation).
#[path = "../../../mio/tests/util/win.rs"]
mod win;

// Not every test binary uses them.
#[allow(unused_imports)]
pub use win::{
    check_client_identity, check_impersonation, thread_count, thread_token, wine_limitation,
    wine_version,
};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_named_pipes::{ClientOptions, NamedPipe, PipeMode, ServerOptions};

/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A pipe name no other test (or test process) uses.
pub fn name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        r"\\.\pipe\async-named-pipes-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A small deterministic generator (xorshift64*), for data and sizes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// `n` bytes of data.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A name's one and only instance (`max_instances(1)`) and the client
/// opened on it (the server not yet connected: await `connect`); another
/// client finds the pipe busy until this one leaves.
pub fn busy(name: &str) -> (NamedPipe, NamedPipe) {
    let server = ServerOptions::new()
        .first_pipe_instance(true)
        .max_instances(1)
        .create(name)
        .expect("create the only server instance");
    let client = ClientOptions::new().open(name).expect("open the client");
    (server, client)
}

/// A server instance and a client opened on it (the server not yet
/// connected: await `connect`).
pub fn pair(mode: PipeMode) -> (NamedPipe, NamedPipe) {
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(mode)
        .first_pipe_instance(true)
        .create(&name)
        .expect("create the server instance");
    let mut client = ClientOptions::new();
    if mode == PipeMode::Message {
        client.pipe_mode(PipeMode::Message);
    }
    let client = client.open(&name).expect("open the client");
    (server, client)
}
