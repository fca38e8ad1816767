//! An echo server on one mio Poll, serving several clients at once.
//!
//! The server accepts clients from a `PipeListener` (which keeps instances
//! listening, so clients arriving together all connect) and echoes
//! everything each client sends. The clients are threads using plain
//! blocking `std::fs::File`s: each sends
//! `MIB_PER_CLIENT` MiB in odd-sized chunks and checks that every byte comes
//! back. It prints the throughput at the end.
//!
//! Run it on Windows with `cargo run --example echo`, or under Wine with
//! `cargo xtask demo`. Optional arguments: number of clients, MiB each.

#[cfg(all(windows, feature = "mio-06"))]
fn main() -> std::io::Result<()> {
    demo::run()
}

#[cfg(not(all(windows, feature = "mio-06")))]
fn main() {
    eprintln!("this example runs on Windows (feature mio-06); on Linux use `cargo xtask demo`");
}

#[cfg(all(windows, feature = "mio-06"))]
mod demo {
    use std::collections::HashMap;
    use std::fs::OpenOptions;
    use std::io::{self, Read, Write};
    use std::thread;
    use std::time::Instant;

    use mio::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{NamedPipe, PipeListener};

    /// One connected client, as the server sees it.
    struct Conn {
        pipe: NamedPipe,
        /// Read but not yet echoed back (the pipe would block).
        out: Vec<u8>,
    }

    pub fn run() -> io::Result<()> {
        let mut args = std::env::args().skip(1);
        let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
        let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
        let name = format!(r"\\.\pipe\mio-named-pipes-echo-{}", std::process::id());

        // Keeps 4 instances listening, so clients arriving together all connect.
        let listener = PipeListener::bind(&name)?;
        let poll = Poll::new()?;
        poll.register(&listener, LISTENER, Ready::readable(), PollOpt::edge())?;
        let mut events = Events::with_capacity(256);
        let mut conns: HashMap<Token, Conn> = HashMap::new();
        let mut next_token = 1;

        let started = Instant::now();
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                let name = name.clone();
                thread::spawn(move || client(&name, i, mib << 20))
            })
            .collect();

        let mut done = 0;
        let mut buf = vec![0u8; 256 * 1024];
        while done < clients {
            poll.poll(&mut events, None)?;
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    // Accept every client waiting, then serve each at once:
                    // its data may be there already.
                    loop {
                        let pipe = match listener.accept() {
                            Ok(pipe) => pipe,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        };
                        let token = Token(next_token);
                        next_token += 1;
                        poll.register(&pipe, token, Ready::all(), PollOpt::edge())?;
                        let mut conn = Conn {
                            pipe,
                            out: Vec::new(),
                        };
                        if serve(&mut conn, &mut buf)? {
                            done += 1;
                        } else {
                            conns.insert(token, conn);
                        }
                    }
                } else if let Some(c) = conns.get_mut(&ev.token()) {
                    if serve(c, &mut buf)? {
                        conns.remove(&ev.token());
                        done += 1;
                    }
                }
            }
        }
        for w in workers {
            w.join().expect("client thread")?;
        }
        let secs = started.elapsed().as_secs_f64();
        let total = (clients * mib) as f64 * 2.0;
        println!(
            "echo: {clients} clients x {mib} MiB each way, all bytes checked, in {secs:.2} s: {:.1} MiB/s through the server",
            total / secs
        );
        Ok(())
    }

    const LISTENER: Token = Token(0);

    /// Echoes what the client sent; returns true when the client has gone.
    fn serve(c: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            // Echo what is pending before reading more (back-pressure).
            while !c.out.is_empty() {
                match (&c.pipe).write(&c.out) {
                    Ok(n) => {
                        c.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            match (&c.pipe).read(buf) {
                Ok(0) => return Ok(true),
                Ok(n) => c.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// A blocking client: sends `len` bytes in chunks and checks each echo.
    /// (One synchronous handle serializes its I/O, so the client alternates
    /// writing a chunk and reading it back rather than using two threads.)
    fn client(name: &str, id: usize, len: usize) -> io::Result<()> {
        let mut file = open_retrying(name)?;
        let data: Vec<u8> = (0..len)
            .map(|i| (i * 7 + id * 13 + i / 251) as u8)
            .collect();
        let mut back = vec![0u8; CHUNK];
        for chunk in data.chunks(CHUNK) {
            file.write_all(chunk)?;
            file.read_exact(&mut back[..chunk.len()])?;
            if back[..chunk.len()] != *chunk {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("client {id}: echo differs"),
                ));
            }
        }
        Ok(())
    }

    /// A blocking open that waits, a little, while every instance is busy
    /// (an async client would use `ClientOptions::busy_timeout`).
    fn open_retrying(name: &str) -> io::Result<std::fs::File> {
        const ERROR_PIPE_BUSY: i32 = 231;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match OpenOptions::new().read(true).write(true).open(name) {
                Err(e)
                    if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < deadline =>
                {
                    thread::sleep(std::time::Duration::from_millis(5))
                }
                r => return r,
            }
        }
    }

    /// The clients' chunk size: odd, so chunks never line up with buffers.
    const CHUNK: usize = 61_441;
}
