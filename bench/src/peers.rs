//! The four peers and the three workloads.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{FromRawHandle, IntoRawHandle, RawHandle};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE,
    PIPE_UNLIMITED_INSTANCES,
};

const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;
const POLL: Option<Duration> = Some(Duration::from_millis(100));

/// Sizes of one run.
#[derive(Clone, Copy)]
struct Sizes {
    bulk: usize,
    chunk: usize,
    rounds: usize,
    msg: usize,
    pipes: usize,
    per_pipe: usize,
}

fn name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        r"\\.\pipe\mnp-bench-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stream's byte at offset `off`.
fn byte_at(off: usize) -> u8 {
    (off % 251) as u8
}

fn fill(buf: &mut [u8], off: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = byte_at(off + i);
    }
}

/// Checks a received piece (every 61st byte, so checking costs little).
fn check(buf: &[u8], off: usize) {
    for i in (0..buf.len()).step_by(61) {
        assert_eq!(buf[i], byte_at(off + i), "wrong byte at offset {}", off + i);
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

// ------------------------------------------------------------ mio 0.6 peers

/// The mio 0.6 API shared by this crate and the old one.
trait Pipe06: mio06::Evented + Send + Sized + 'static {
    fn server(name: &str) -> io::Result<Self>;
    /// # Safety
    /// An overlapped pipe handle owned by nothing else.
    unsafe fn adopt(h: RawHandle) -> Self;
    fn connect(&self) -> io::Result<()>;
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl Pipe06 for mio_named_pipes::NamedPipe {
    fn server(name: &str) -> io::Result<Self> {
        Self::new(name)
    }
    unsafe fn adopt(h: RawHandle) -> Self {
        // SAFETY: per the trait's contract.
        unsafe { Self::from_raw_handle(h) }
    }
    fn connect(&self) -> io::Result<()> {
        mio_named_pipes::NamedPipe::connect(self)
    }
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
}

impl Pipe06 for old::NamedPipe {
    fn server(name: &str) -> io::Result<Self> {
        Self::new(name)
    }
    unsafe fn adopt(h: RawHandle) -> Self {
        // SAFETY: per the trait's contract.
        unsafe { Self::from_raw_handle(h) }
    }
    fn connect(&self) -> io::Result<()> {
        old::NamedPipe::connect(self)
    }
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
}

fn overlapped_client(name: &str) -> RawHandle {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .open(name)
        .unwrap_or_else(|e| panic!("opening {name}: {e}"))
        .into_raw_handle()
}

/// One registered end with its own Poll.
struct End06<P> {
    poll: mio06::Poll,
    events: mio06::Events,
    pipe: P,
}

impl<P: Pipe06> End06<P> {
    fn new(pipe: P) -> Self {
        let poll = mio06::Poll::new().unwrap();
        poll.register(
            &pipe,
            mio06::Token(0),
            mio06::Ready::all(),
            mio06::PollOpt::edge(),
        )
        .unwrap();
        End06 {
            poll,
            events: mio06::Events::with_capacity(64),
            pipe,
        }
    }

    fn wait(&mut self) {
        self.poll.poll(&mut self.events, POLL).unwrap();
    }

    fn connect(&mut self) {
        loop {
            match self.pipe.connect() {
                Ok(()) => return,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("connect: {e}"),
            }
        }
    }

    fn write_all(&mut self, buf: &[u8]) {
        let mut off = 0;
        while off < buf.len() {
            match self.pipe.write(&buf[off..]) {
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("write: {e}"),
            }
        }
    }

    /// Reads exactly `buf.len()` bytes.
    fn read_exact(&mut self, buf: &mut [u8]) {
        let mut off = 0;
        while off < buf.len() {
            match self.pipe.read(&mut buf[off..]) {
                Ok(0) => panic!("unexpected end of file"),
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Keeps the loop turning (completing writes) until `done`.
    fn drive_until(&mut self, done: &AtomicBool) {
        while !done.load(Ordering::Acquire) {
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(5)))
                .unwrap();
        }
    }
}

/// Reads `total` bytes of the stream in large pieces, checking them.
fn read_stream(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut wait: impl FnMut(),
    total: usize,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < total {
        match read(&mut buf) {
            Ok(0) => panic!("unexpected end of file after {got} bytes"),
            Ok(n) => {
                check(&buf[..n], got);
                got += n;
            }
            Err(e) if would_block(&e) => wait(),
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn bulk06<P: Pipe06>(s: Sizes) -> f64 {
    let name = name("bulk");
    let server = P::server(&name).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let (done, start) = (done.clone(), start.clone());
        thread::spawn(move || {
            let mut end = End06::new(server);
            end.connect();
            start.wait();
            let t = Instant::now();
            let End06 { poll, events, pipe } = &mut end;
            read_stream(
                |b| pipe.read(b),
                || poll.poll(events, POLL).map(drop).unwrap(),
                s.bulk,
            );
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    // SAFETY: a fresh overlapped handle.
    let mut client = End06::new(unsafe { P::adopt(overlapped_client(&name)) });
    start.wait();
    let mut chunk = vec![0u8; s.chunk];
    let mut off = 0;
    while off < s.bulk {
        fill(&mut chunk, off);
        client.write_all(&chunk);
        off += s.chunk;
    }
    client.drive_until(&done);
    mb_per_s(s.bulk, reader.join().unwrap())
}

fn ping06<P: Pipe06>(s: Sizes) -> f64 {
    let name = name("ping");
    let server = P::server(&name).unwrap();
    let echo = thread::spawn(move || {
        let mut end = End06::new(server);
        end.connect();
        let mut buf = vec![0u8; s.msg];
        for _ in 0..s.rounds {
            end.read_exact(&mut buf);
            end.write_all(&buf);
        }
        // Let the last reply's write complete.
        thread::sleep(Duration::from_millis(1));
        end.wait();
    });
    // SAFETY: a fresh overlapped handle.
    let mut client = End06::new(unsafe { P::adopt(overlapped_client(&name)) });
    let mut msg = vec![0u8; s.msg];
    let mut back = vec![0u8; s.msg];
    let t = Instant::now();
    for r in 0..s.rounds {
        fill(&mut msg, r);
        client.write_all(&msg);
        client.read_exact(&mut back);
        assert_eq!(back, msg);
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / s.rounds as f64;
    echo.join().unwrap();
    us
}

fn many06<P: Pipe06>(s: Sizes) -> f64 {
    let names: Vec<String> = (0..s.pipes).map(|_| name("many")).collect();
    let servers: Vec<P> = names.iter().map(|n| P::server(n).unwrap()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let (done, start) = (done.clone(), start.clone());
        thread::spawn(move || {
            let poll = mio06::Poll::new().unwrap();
            let mut events = mio06::Events::with_capacity(1024);
            for (i, p) in servers.iter().enumerate() {
                poll.register(
                    p,
                    mio06::Token(i),
                    mio06::Ready::all(),
                    mio06::PollOpt::edge(),
                )
                .unwrap();
            }
            let mut connected = vec![false; servers.len()];
            while connected.iter().any(|c| !c) {
                for (i, p) in servers.iter().enumerate() {
                    if !connected[i] {
                        match p.connect() {
                            Ok(()) => connected[i] = true,
                            Err(e) if would_block(&e) => {}
                            Err(e) => panic!("connect: {e}"),
                        }
                    }
                }
                poll.poll(&mut events, Some(Duration::from_millis(10)))
                    .unwrap();
            }
            start.wait();
            let t = Instant::now();
            let mut got = vec![0usize; servers.len()];
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = servers.len();
            let mut ready: Vec<usize> = (0..servers.len()).collect();
            while left > 0 {
                for &i in &ready {
                    loop {
                        if got[i] == s.per_pipe {
                            break;
                        }
                        match servers[i].read(&mut buf) {
                            Ok(0) => panic!("unexpected end of file"),
                            Ok(n) => {
                                check(&buf[..n], got[i]);
                                got[i] += n;
                                if got[i] == s.per_pipe {
                                    left -= 1;
                                }
                            }
                            Err(e) if would_block(&e) => break,
                            Err(e) => panic!("read: {e}"),
                        }
                    }
                }
                if left == 0 {
                    break;
                }
                poll.poll(&mut events, POLL).unwrap();
                ready = events.iter().map(|e| e.token().0).collect();
            }
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    let poll = mio06::Poll::new().unwrap();
    let mut events = mio06::Events::with_capacity(1024);
    let clients: Vec<P> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // SAFETY: a fresh overlapped handle.
            let c = unsafe { P::adopt(overlapped_client(n)) };
            poll.register(
                &c,
                mio06::Token(i),
                mio06::Ready::all(),
                mio06::PollOpt::edge(),
            )
            .unwrap();
            c
        })
        .collect();
    start.wait();
    write_many(
        &clients,
        s,
        |c, b| c.write(b),
        || poll.poll(&mut events, POLL).map(drop).unwrap(),
    );
    while !done.load(Ordering::Acquire) {
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .unwrap();
    }
    mb_per_s(s.pipes * s.per_pipe, reader.join().unwrap())
}

/// Writes `per_pipe` bytes to every client, round-robin, waiting when all would block.
fn write_many<C>(
    clients: &[C],
    s: Sizes,
    mut write: impl FnMut(&C, &[u8]) -> io::Result<usize>,
    mut wait: impl FnMut(),
) {
    let mut sent = vec![0usize; clients.len()];
    let mut chunk = vec![0u8; s.chunk];
    let mut left = clients.len();
    while left > 0 {
        let mut progress = false;
        for (i, c) in clients.iter().enumerate() {
            while sent[i] < s.per_pipe {
                let n = s.chunk.min(s.per_pipe - sent[i]);
                fill(&mut chunk[..n], sent[i]);
                match write(c, &chunk[..n]) {
                    Ok(k) => {
                        sent[i] += k;
                        progress = true;
                        if sent[i] == s.per_pipe {
                            left -= 1;
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => panic!("write: {e}"),
                }
            }
        }
        if !progress && left > 0 {
            wait();
        }
    }
}

// ------------------------------------------------------------ mio 1.x

struct End1 {
    poll: mio1::Poll,
    events: mio1::Events,
    pipe: mio1::windows::NamedPipe,
}

impl End1 {
    fn new(mut pipe: mio1::windows::NamedPipe) -> Self {
        let poll = mio1::Poll::new().unwrap();
        poll.registry()
            .register(
                &mut pipe,
                mio1::Token(0),
                mio1::Interest::READABLE | mio1::Interest::WRITABLE,
            )
            .unwrap();
        End1 {
            poll,
            events: mio1::Events::with_capacity(64),
            pipe,
        }
    }

    fn client(name: &str) -> Self {
        // SAFETY: a fresh overlapped handle.
        End1::new(unsafe { mio1::windows::NamedPipe::from_raw_handle(overlapped_client(name)) })
    }

    fn wait(&mut self) {
        self.poll.poll(&mut self.events, POLL).unwrap();
    }

    fn connect(&mut self) {
        loop {
            match self.pipe.connect() {
                Ok(()) => return,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("connect: {e}"),
            }
        }
    }

    fn write_all(&mut self, buf: &[u8]) {
        let mut off = 0;
        while off < buf.len() {
            match (&self.pipe).write(&buf[off..]) {
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("write: {e}"),
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) {
        let mut off = 0;
        while off < buf.len() {
            match (&self.pipe).read(&mut buf[off..]) {
                Ok(0) => panic!("unexpected end of file"),
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn drive_until(&mut self, done: &AtomicBool) {
        while !done.load(Ordering::Acquire) {
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(5)))
                .unwrap();
        }
    }
}

fn bulk1(s: Sizes) -> f64 {
    let name = name("bulk1");
    let server = mio1::windows::NamedPipe::new(&name).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let (done, start) = (done.clone(), start.clone());
        thread::spawn(move || {
            let mut end = End1::new(server);
            end.connect();
            start.wait();
            let t = Instant::now();
            let End1 { poll, events, pipe } = &mut end;
            read_stream(
                |b| (&*pipe).read(b),
                || poll.poll(events, POLL).unwrap(),
                s.bulk,
            );
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    let mut client = End1::client(&name);
    start.wait();
    let mut chunk = vec![0u8; s.chunk];
    let mut off = 0;
    while off < s.bulk {
        fill(&mut chunk, off);
        client.write_all(&chunk);
        off += s.chunk;
    }
    client.drive_until(&done);
    mb_per_s(s.bulk, reader.join().unwrap())
}

fn ping1(s: Sizes) -> f64 {
    let name = name("ping1");
    let server = mio1::windows::NamedPipe::new(&name).unwrap();
    let echo = thread::spawn(move || {
        let mut end = End1::new(server);
        end.connect();
        let mut buf = vec![0u8; s.msg];
        for _ in 0..s.rounds {
            end.read_exact(&mut buf);
            end.write_all(&buf);
        }
        thread::sleep(Duration::from_millis(1));
        end.wait();
    });
    let mut client = End1::client(&name);
    let mut msg = vec![0u8; s.msg];
    let mut back = vec![0u8; s.msg];
    let t = Instant::now();
    for r in 0..s.rounds {
        fill(&mut msg, r);
        client.write_all(&msg);
        client.read_exact(&mut back);
        assert_eq!(back, msg);
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / s.rounds as f64;
    echo.join().unwrap();
    us
}

fn many1(s: Sizes) -> f64 {
    let names: Vec<String> = (0..s.pipes).map(|_| name("many1")).collect();
    let mut servers: Vec<_> = names
        .iter()
        .map(|n| mio1::windows::NamedPipe::new(n).unwrap())
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let (done, start) = (done.clone(), start.clone());
        thread::spawn(move || {
            let mut poll = mio1::Poll::new().unwrap();
            let mut events = mio1::Events::with_capacity(1024);
            let both = mio1::Interest::READABLE | mio1::Interest::WRITABLE;
            for (i, p) in servers.iter_mut().enumerate() {
                poll.registry().register(p, mio1::Token(i), both).unwrap();
            }
            let mut connected = vec![false; servers.len()];
            while connected.iter().any(|c| !c) {
                for (i, p) in servers.iter().enumerate() {
                    if !connected[i] {
                        match p.connect() {
                            Ok(()) => connected[i] = true,
                            Err(e) if would_block(&e) => {}
                            Err(e) => panic!("connect: {e}"),
                        }
                    }
                }
                poll.poll(&mut events, Some(Duration::from_millis(10)))
                    .unwrap();
            }
            start.wait();
            let t = Instant::now();
            let mut got = vec![0usize; servers.len()];
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = servers.len();
            let mut ready: Vec<usize> = (0..servers.len()).collect();
            while left > 0 {
                for &i in &ready {
                    while got[i] < s.per_pipe {
                        match (&servers[i]).read(&mut buf) {
                            Ok(0) => panic!("unexpected end of file"),
                            Ok(n) => {
                                check(&buf[..n], got[i]);
                                got[i] += n;
                                if got[i] == s.per_pipe {
                                    left -= 1;
                                }
                            }
                            Err(e) if would_block(&e) => break,
                            Err(e) => panic!("read: {e}"),
                        }
                    }
                }
                if left == 0 {
                    break;
                }
                poll.poll(&mut events, POLL).unwrap();
                ready = events.iter().map(|e| e.token().0).collect();
            }
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    let mut poll = mio1::Poll::new().unwrap();
    let mut events = mio1::Events::with_capacity(1024);
    let both = mio1::Interest::READABLE | mio1::Interest::WRITABLE;
    let clients: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // SAFETY: a fresh overlapped handle.
            let mut c = unsafe { mio1::windows::NamedPipe::from_raw_handle(overlapped_client(n)) };
            poll.registry()
                .register(&mut c, mio1::Token(i), both)
                .unwrap();
            c
        })
        .collect();
    start.wait();
    write_many(
        &clients,
        s,
        |mut c, b| c.write(b),
        || poll.poll(&mut events, POLL).unwrap(),
    );
    while !done.load(Ordering::Acquire) {
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .unwrap();
    }
    mb_per_s(s.pipes * s.per_pipe, reader.join().unwrap())
}

// ------------------------------------------------------------ blocking threads

/// A blocking (not overlapped) server instance.
fn blocking_server(name: &str) -> File {
    let wide: Vec<u16> = std::ffi::OsStr::new(name)
        .encode_wide()
        .chain(Some(0))
        .collect();
    // SAFETY: `wide` is NUL-terminated and outlives the call.
    let h = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE,
            PIPE_UNLIMITED_INSTANCES,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert!(
        h as isize != -1,
        "CreateNamedPipeW: {}",
        io::Error::last_os_error()
    );
    // SAFETY: a fresh handle owned by nothing else.
    unsafe { File::from_raw_handle(h) }
}

/// Blocks until a client is connected (or was already).
fn blocking_connect(f: &File) {
    use std::os::windows::io::AsRawHandle;
    // SAFETY: a live, synchronous pipe handle; no OVERLAPPED.
    let ok = unsafe { ConnectNamedPipe(f.as_raw_handle(), std::ptr::null_mut()) };
    let e = io::Error::last_os_error();
    assert!(
        ok != 0 || e.raw_os_error() == Some(535),
        "ConnectNamedPipe: {e}"
    );
}

fn blocking_client(name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(name)
        .unwrap()
}

fn bulk_blocking(s: Sizes) -> f64 {
    let name = name("bulkb");
    let mut server = blocking_server(&name);
    let start = Arc::new(Barrier::new(2));
    let reader = {
        let start = start.clone();
        thread::spawn(move || {
            blocking_connect(&server);
            start.wait();
            let t = Instant::now();
            read_stream(|b| server.read(b), || {}, s.bulk);
            t.elapsed().as_secs_f64()
        })
    };
    let mut client = blocking_client(&name);
    start.wait();
    let mut chunk = vec![0u8; s.chunk];
    let mut off = 0;
    while off < s.bulk {
        fill(&mut chunk, off);
        client.write_all(&chunk).unwrap();
        off += s.chunk;
    }
    mb_per_s(s.bulk, reader.join().unwrap())
}

fn ping_blocking(s: Sizes) -> f64 {
    let name = name("pingb");
    let mut server = blocking_server(&name);
    let echo = thread::spawn(move || {
        blocking_connect(&server);
        let mut buf = vec![0u8; s.msg];
        for _ in 0..s.rounds {
            server.read_exact(&mut buf).unwrap();
            server.write_all(&buf).unwrap();
        }
    });
    let mut client = blocking_client(&name);
    let mut msg = vec![0u8; s.msg];
    let mut back = vec![0u8; s.msg];
    let t = Instant::now();
    for r in 0..s.rounds {
        fill(&mut msg, r);
        client.write_all(&msg).unwrap();
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / s.rounds as f64;
    echo.join().unwrap();
    us
}

fn many_blocking(s: Sizes) -> f64 {
    let names: Vec<String> = (0..s.pipes).map(|_| name("manyb")).collect();
    let start = Arc::new(Barrier::new(2 * s.pipes + 1));
    let mut threads = Vec::new();
    for n in &names {
        let mut server = blocking_server(n);
        let start2 = start.clone();
        threads.push(thread::spawn(move || {
            blocking_connect(&server);
            start2.wait();
            read_stream(|b| server.read(b), || {}, s.per_pipe);
        }));
    }
    for n in &names {
        let mut client = blocking_client(n);
        let start2 = start.clone();
        threads.push(thread::spawn(move || {
            start2.wait();
            let mut chunk = vec![0u8; s.chunk];
            let mut off = 0;
            while off < s.per_pipe {
                let n = s.chunk.min(s.per_pipe - off);
                fill(&mut chunk[..n], off);
                client.write_all(&chunk[..n]).unwrap();
                off += n;
            }
        }));
    }
    start.wait();
    let t = Instant::now();
    for th in threads {
        th.join().unwrap();
    }
    mb_per_s(s.pipes * s.per_pipe, t.elapsed().as_secs_f64())
}

// ------------------------------------------------------------ the run

fn mb_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

const PEERS: [&str; 4] = ["ours", "mio1", "old", "blocking"];

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .map(|r| r.parse::<usize>().expect("--reps takes a number"))
        .unwrap_or(if quick { 1 } else { 3 });
    let only: Option<&str> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let s = if quick {
        Sizes {
            bulk: 8 << 20,
            chunk: 64 << 10,
            rounds: 200,
            msg: 100,
            pipes: 32,
            per_pipe: 256 << 10,
        }
    } else {
        Sizes {
            bulk: 64 << 20,
            chunk: 64 << 10,
            rounds: 2000,
            msg: 100,
            pipes: 256,
            per_pipe: 1 << 20,
        }
    };
    println!("mio-named-pipes throughput benchmark: median of {reps} run(s) each.");
    println!("Timings under Wine mean something only as ratios between peers measured in this same run.\n");

    type Work = fn(&str, Sizes) -> f64;
    let workloads: [(&str, &str, bool, Work); 3] = [
        ("bulk", "MB/s", true, |p, s| match p {
            "ours" => bulk06::<mio_named_pipes::NamedPipe>(s),
            "mio1" => bulk1(s),
            "old" => bulk06::<old::NamedPipe>(s),
            _ => bulk_blocking(s),
        }),
        ("ping-pong", "us/round trip", false, |p, s| match p {
            "ours" => ping06::<mio_named_pipes::NamedPipe>(s),
            "mio1" => ping1(s),
            "old" => ping06::<old::NamedPipe>(s),
            _ => ping_blocking(s),
        }),
        ("many", "MB/s", true, |p, s| match p {
            "ours" => many06::<mio_named_pipes::NamedPipe>(s),
            "mio1" => many1(s),
            "old" => many06::<old::NamedPipe>(s),
            _ => many_blocking(s),
        }),
    ];
    let mut rows = Vec::new();
    for (work, unit, higher_is_better, f) in workloads {
        if only.is_some_and(|o| o != work) {
            continue;
        }
        let mut figures = Vec::new();
        for peer in PEERS {
            let m = median((0..reps).map(|_| f(peer, s)).collect());
            println!("{work:>10} {peer:>9}: {m:10.1} {unit}");
            figures.push(m);
        }
        // How many times better ours is than each peer.
        let ratio = |i: usize| {
            if higher_is_better {
                figures[0] / figures[i]
            } else {
                figures[i] / figures[0]
            }
        };
        println!(
            "{work:>10}     ratios: ours vs mio1 {:.2}x, vs old {:.2}x, vs blocking {:.2}x (higher is better for ours)\n",
            ratio(1),
            ratio(2),
            ratio(3)
        );
        rows.push((work, unit, figures.clone(), [ratio(1), ratio(2), ratio(3)]));
    }
    println!("Targets: bulk >= 2.5x mio1; ping-pong no slower than mio1 (ratio >= 1.0).\n");
    println!("| workload | unit | ours | mio 1.x | old 0.1.7 | blocking threads | ours vs mio 1.x | vs old | vs blocking |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (work, unit, f, r) in rows {
        println!(
            "| {work} | {unit} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}x | {:.2}x | {:.2}x |",
            f[0], f[1], f[2], f[3], r[0], r[1], r[2]
        );
    }
}
