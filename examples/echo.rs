//! An echo server on one mio Poll, serving several clients at once.
//!
//! The server keeps one instance listening; when a client connects, it
//! creates the next instance and echoes everything the client sends. The
//! clients are threads using plain blocking `std::fs::File`s: each sends
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
    use mio_named_pipes::{NamedPipe, ServerOptions};

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

        let poll = Poll::new()?;
        let mut events = Events::with_capacity(256);
        let mut next_token = 1;
        let mut listening = NamedPipe::new(&name)?;
        poll.register(&listening, Token(0), Ready::all(), PollOpt::edge())?;
        let mut conns: HashMap<Token, Conn> = HashMap::new();

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
            // A connected listening instance becomes a connection; a new
            // instance takes its place before the next poll.
            loop {
                match listening.connect() {
                    Ok(()) => {
                        let fresh = ServerOptions::default().create(&name)?;
                        let token = Token(next_token);
                        next_token += 1;
                        let pipe = std::mem::replace(&mut listening, fresh);
                        poll.reregister(&pipe, token, Ready::all(), PollOpt::edge())?;
                        poll.register(&listening, Token(0), Ready::all(), PollOpt::edge())?;
                        conns.insert(
                            token,
                            Conn {
                                pipe,
                                out: Vec::new(),
                            },
                        );
                        // Serve it at once: its data may have arrived already.
                        if serve(conns.get_mut(&token).unwrap(), &mut buf)? {
                            conns.remove(&token);
                            done += 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            poll.poll(&mut events, None)?;
            for ev in events.iter() {
                if ev.token() == Token(0) {
                    continue; // handled by the connect loop above
                }
                if let Some(c) = conns.get_mut(&ev.token()) {
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
        let mut file = OpenOptions::new().read(true).write(true).open(name)?;
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

    /// The clients' chunk size: odd, so chunks never line up with buffers.
    const CHUNK: usize = 61_441;
}
