//! A message-mode server on a `PipeListener`, serving several clients at once.
//!
//! Each client sends messages of very different sizes; the server answers
//! each with one message saying how long it was. Messages arrive whole with
//! `recv_msg`, however large. The clients are threads of this example, so it
//! runs to completion by itself: `cargo run --example message_server` (or,
//! on Linux, under Wine through the xtask runner).

#[cfg(all(windows, feature = "mio-06"))]
fn main() -> std::io::Result<()> {
    use std::collections::HashMap;
    use std::io::{self, Write};
    use std::thread;

    use mio::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{NamedPipe, PipeMode, ServerOptions};

    const CLIENTS: usize = 3;
    const SIZES: [usize; 4] = [5, 4096, 70_000, 300_000];
    let name = format!(r"\\.\pipe\mio-named-pipes-messages-{}", std::process::id());

    let listener = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .listen(&name, 4)?;
    let poll = Poll::new()?;
    poll.register(&listener, Token(0), Ready::readable(), PollOpt::edge())?;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let name = name.clone();
            thread::spawn(move || client::run(&name, id, &SIZES))
        })
        .collect();

    let mut events = Events::with_capacity(64);
    let mut conns: HashMap<Token, NamedPipe> = HashMap::new();
    let mut next = 1;
    let mut finished = 0;
    let mut msg = Vec::new();
    while finished < CLIENTS {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == Token(0) {
                while let Ok(pipe) = listener.accept() {
                    poll.register(&pipe, Token(next), Ready::readable(), PollOpt::level())?;
                    conns.insert(Token(next), pipe);
                    next += 1;
                }
                continue;
            }
            let Some(pipe) = conns.get(&ev.token()) else {
                continue;
            };
            loop {
                match pipe.recv_msg(&mut msg) {
                    Ok(0) => {
                        // End of file: the client is done.
                        conns.remove(&ev.token());
                        finished += 1;
                        break;
                    }
                    Ok(n) => {
                        // A short reply is accepted at once, whole.
                        let mut p = pipe;
                        p.write_all(format!("got {n} bytes").as_bytes())?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for c in clients {
        c.join().expect("client thread")?;
    }
    println!(
        "message_server: {CLIENTS} clients, {} messages each, all answered",
        SIZES.len()
    );
    Ok(())
}

#[cfg(all(windows, feature = "mio-06"))]
mod client {
    use std::io::{self, Write};
    use std::time::Duration;

    use mio::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{ClientOptions, PipeMode};

    /// Sends one message of each size and checks each reply.
    pub fn run(name: &str, id: usize, sizes: &[usize]) -> io::Result<()> {
        let pipe = ClientOptions::new()
            .pipe_mode(PipeMode::Message)
            .busy_timeout(Some(Duration::from_secs(10)))
            .open(name)?;
        let poll = Poll::new()?;
        poll.register(&pipe, Token(0), Ready::all(), PollOpt::level())?;
        let mut events = Events::with_capacity(8);
        let mut reply = Vec::new();
        for &size in sizes {
            let msg = vec![id as u8; size];
            loop {
                match (&pipe).write(&msg) {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        poll.poll(&mut events, None).map(drop)?
                    }
                    Err(e) => return Err(e),
                }
            }
            loop {
                match pipe.recv_msg(&mut reply) {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        poll.poll(&mut events, None).map(drop)?
                    }
                    Err(e) => return Err(e),
                }
            }
            let expected = format!("got {size} bytes");
            if reply != expected.as_bytes() {
                let got = String::from_utf8_lossy(&reply).into_owned();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("client {id}: {got:?}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(not(all(windows, feature = "mio-06")))]
fn main() {
    eprintln!("this example runs on Windows (feature mio-06); on Linux, under Wine");
}
