//! The baseline: two plain threads doing blocking `ReadFile`/`WriteFile`
//! (through `std::fs::File`) on a pipe made without `FILE_FLAG_OVERLAPPED`.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use windows_sys::Win32::Foundation::{ERROR_PIPE_CONNECTED, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};

use crate::common::{join, pipe_name, stream, Ctx, Sizes, Verifier};

/// A blocking server instance: duplex, byte mode, 64 KiB buffers each way
/// (as the event-loop peers make theirs).
fn server(name: &str) -> File {
    let wide: Vec<u16> = OsStr::new(name).encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated and outlives the call.
    let h = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert!(
        h != INVALID_HANDLE_VALUE,
        "CreateNamedPipeW: {}",
        io::Error::last_os_error()
    );
    // SAFETY: a fresh handle owned by nothing else.
    unsafe { File::from_raw_handle(h) }
}

/// Blocks until a client is connected (or already was).
fn connect(f: &File) {
    // SAFETY: a live, synchronous pipe handle; no OVERLAPPED.
    let ok = unsafe { ConnectNamedPipe(f.as_raw_handle(), std::ptr::null_mut()) };
    if ok == 0 {
        let e = io::Error::last_os_error();
        assert!(
            e.raw_os_error() == Some(ERROR_PIPE_CONNECTED as i32),
            "ConnectNamedPipe: {e}"
        );
    }
}

fn client(name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(name)
        .unwrap_or_else(|e| panic!("opening client {name}: {e}"))
}

/// Reads one stream of `check`'s length from `f`, checking it.
fn read_into(ctx: &Ctx, f: &mut File, buf: &mut [u8], check: &mut Verifier, len: usize) {
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len());
        match f.read(&mut buf[..want]) {
            Ok(0) => check.eof(),
            Ok(n) => {
                check.take(&buf[..n]);
                ctx.add_received(n);
                left -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read after {} bytes: {e}", check.got()),
        }
    }
}

pub fn bulk(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let name = pipe_name(tag);
    let mut srv = server(&name);
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let start = start.clone();
        ctx.spawn(format!("{tag}-bulk-reader"), move || {
            connect(&srv);
            let mut check = Verifier::new(s.bulk, "bulk reader");
            let mut buf = vec![0u8; s.read_buf];
            start.wait();
            let t = Instant::now();
            read_into(ctx, &mut srv, &mut buf, &mut check, s.bulk);
            t.elapsed().as_secs_f64()
        })
    };
    let writer = ctx.spawn(format!("{tag}-bulk-writer"), move || {
        let mut c = client(&name);
        start.wait();
        let mut off = 0;
        while off < s.bulk {
            let n = s.chunk.min(s.bulk - off);
            c.write_all(stream(off, n)).expect("write");
            ctx.add_sent(n);
            off += n;
        }
    });
    let secs = join(reader);
    join(writer);
    secs
}

pub fn ping_pong(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let name = pipe_name(tag);
    let mut srv = server(&name);
    let start = Arc::new(Barrier::new(2));
    let total = s.warmup + s.rounds;
    let echo = {
        let start = start.clone();
        ctx.spawn(format!("{tag}-ping-echo"), move || {
            connect(&srv);
            let mut buf = vec![0u8; s.msg];
            start.wait();
            for _ in 0..total {
                srv.read_exact(&mut buf).expect("echo read");
                srv.write_all(&buf).expect("echo write");
            }
        })
    };
    let client = ctx.spawn(format!("{tag}-ping-client"), move || {
        let mut c = client(&name);
        let mut back = vec![0u8; s.msg];
        start.wait();
        let mut t = Instant::now();
        for r in 0..total {
            if r == s.warmup {
                t = Instant::now();
            }
            let msg = stream(r * s.msg, s.msg);
            c.write_all(msg).expect("client write");
            c.read_exact(&mut back).expect("client read");
            assert!(back == msg, "round {r}: the echo differs from the message");
        }
        t.elapsed().as_secs_f64()
    });
    let secs = join(client);
    join(echo);
    secs
}

/// Many, with two blocking threads: they take the pipes round-robin, one
/// `s.chunk` piece at a time, in the same order (so neither can wait for the
/// other in a cycle). Returns the reader's seconds.
pub fn many(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let names: Vec<String> = (0..s.pipes).map(|_| pipe_name(tag)).collect();
    let mut servers: Vec<File> = names.iter().map(|n| server(n)).collect();
    let start = Arc::new(Barrier::new(2));
    let pieces = s.per_pipe.div_ceil(s.chunk);
    let reader = {
        let start = start.clone();
        ctx.spawn(format!("{tag}-many-reader"), move || {
            // The writer opens the clients in the same order.
            for srv in &servers {
                connect(srv);
            }
            let mut checks: Vec<Verifier> = (0..servers.len())
                .map(|i| Verifier::new(s.per_pipe, format!("many reader, pipe {i}")))
                .collect();
            let mut buf = vec![0u8; s.read_buf];
            start.wait();
            let t = Instant::now();
            for p in 0..pieces {
                let n = s.chunk.min(s.per_pipe - p * s.chunk);
                for (srv, check) in servers.iter_mut().zip(&mut checks) {
                    read_into(ctx, srv, &mut buf, check, n);
                }
            }
            t.elapsed().as_secs_f64()
        })
    };
    let writer = ctx.spawn(format!("{tag}-many-writer"), move || {
        let mut clients: Vec<File> = names.iter().map(|n| client(n)).collect();
        start.wait();
        for p in 0..pieces {
            let off = p * s.chunk;
            let n = s.chunk.min(s.per_pipe - off);
            for c in &mut clients {
                c.write_all(stream(off, n)).expect("write");
                ctx.add_sent(n);
            }
        }
    });
    let secs = join(reader);
    join(writer);
    secs
}
