//! A Docker-like server for the relay's tests and benchmark: HTTP/1.1-style
//! requests on a message pipe, one thread per client, keep-alive.
//!
//! `http_pipe_server PIPE` prints `ready` once PIPE is served. Requests:
//!
//! - `GET /ping`: `pong`;
//! - `GET /bytes/N/SEED`: N bytes of the pattern `byte(i, SEED)`;
//! - `POST /echo` with a `Content-Length`: the body back, streamed;
//! - a request with `Connection: close` ends the connection after its
//!   response (the benchmark's requests, so that a relay per connection ends);
//! - `GET /halfclose`: a response without a length (`bye`), then a
//!   zero-byte message (go-winio's `CloseWrite`, as Docker's attach and
//!   exec end their output), with the pipe kept open until the client
//!   closes it: a relay must end the client's stream on the zero-byte message.

#[cfg(windows)]
fn main() {
    imp::main();
}

#[cfg(not(windows))]
fn main() {
    eprintln!("http_pipe_server serves a Windows named pipe: build it for Windows");
    std::process::exit(1);
}

/// The byte at `i` of the stream of `seed`.
#[cfg_attr(not(windows), allow(dead_code))]
fn byte(i: u64, seed: u64) -> u8 {
    ((i.wrapping_add(seed.wrapping_mul(7919))).wrapping_mul(2_654_435_761) >> 13) as u8
}

#[cfg(windows)]
mod imp {
    use std::io::{self, Write};
    use std::thread;
    use std::time::Duration;

    use mio::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{NamedPipe, PipeMode, ServerOptions};

    pub fn main() {
        let Some(name) = std::env::args().nth(1) else {
            eprintln!("usage: http_pipe_server PIPE");
            std::process::exit(2);
        };
        let name = name.replace('/', "\\");
        let listener = ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .listen(&name, 8)
            .unwrap_or_else(|e| {
                eprintln!("http_pipe_server: cannot serve {name}: {e}");
                std::process::exit(1)
            });
        let poll = Poll::new().expect("poll");
        poll.register(&listener, Token(0), Ready::readable(), PollOpt::edge())
            .expect("register");
        let mut events = Events::with_capacity(4);
        println!("ready");
        let _ = io::stdout().flush();
        loop {
            match listener.accept() {
                Ok(p) => {
                    thread::spawn(move || {
                        let _ = Client::new(p).serve();
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll.poll(&mut events, None).expect("poll");
                }
                Err(e) => {
                    eprintln!("http_pipe_server: accept: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// One client, on a Poll of its own.
    struct Client {
        pipe: NamedPipe,
        poll: Poll,
        events: Events,
        /// Bytes received and not yet used.
        buf: Vec<u8>,
        msg: Vec<u8>,
    }

    impl Client {
        fn new(pipe: NamedPipe) -> Client {
            let poll = Poll::new().expect("poll");
            poll.register(&pipe, Token(0), Ready::all(), PollOpt::edge())
                .expect("register");
            Client {
                pipe,
                poll,
                events: Events::with_capacity(4),
                buf: Vec::new(),
                msg: Vec::new(),
            }
        }

        fn wait(&mut self) -> io::Result<()> {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(1)))?;
            Ok(())
        }

        /// More bytes into `buf`; false at the end of the client's stream.
        fn more(&mut self) -> io::Result<bool> {
            loop {
                match self.pipe.recv_msg(&mut self.msg) {
                    Ok(0) => return Ok(false),
                    Ok(_) => {
                        self.buf.extend_from_slice(&self.msg);
                        return Ok(true);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
        }

        fn send(&mut self, mut data: &[u8]) -> io::Result<()> {
            while !data.is_empty() {
                match (&self.pipe).write(data) {
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }

        fn zero_message(&mut self) -> io::Result<()> {
            loop {
                match (&self.pipe).write(&[]) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                    Err(e) => return Err(e),
                }
            }
        }

        fn serve(mut self) -> io::Result<()> {
            loop {
                let head_end = loop {
                    if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    if self.buf.len() > 64 * 1024 || !self.more()? {
                        return Ok(());
                    }
                };
                let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
                self.buf.drain(..head_end);
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let length: u64 = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let close = head.to_ascii_lowercase().contains("\r\nconnection: close");
                let parts: Vec<&str> = path.split('/').collect();
                match (method, parts.as_slice()) {
                    ("GET", ["", "ping"]) => {
                        self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong")?
                    }
                    ("GET", ["", "bytes", n, seed]) => {
                        let (n, seed): (u64, u64) =
                            (n.parse().unwrap_or(0), seed.parse().unwrap_or(0));
                        self.send(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").as_bytes(),
                        )?;
                        let mut at = 0;
                        while at < n {
                            let k = (n - at).min(64 * 1024);
                            let chunk: Vec<u8> =
                                (at..at + k).map(|i| super::byte(i, seed)).collect();
                            self.send(&chunk)?;
                            at += k;
                        }
                    }
                    ("POST", ["", "echo"]) => {
                        self.send(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n")
                                .as_bytes(),
                        )?;
                        let mut left = length;
                        while left > 0 {
                            if self.buf.is_empty() && !self.more()? {
                                return Ok(());
                            }
                            let k = (self.buf.len() as u64).min(left) as usize;
                            let chunk: Vec<u8> = self.buf.drain(..k).collect();
                            self.send(&chunk)?;
                            left -= k as u64;
                        }
                    }
                    ("GET", ["", "halfclose"]) => {
                        self.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye")?;
                        self.zero_message()?;
                        // The pipe stays open until the client leaves.
                        while self.more()? {
                            self.buf.clear();
                        }
                        return Ok(());
                    }
                    _ => {
                        self.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")?
                    }
                }
                if close {
                    return Ok(());
                }
            }
        }
    }
}
