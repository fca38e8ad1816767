//! A client that waits for a busy server with `busy_timeout`.
//!
//! The server allows one instance (`max_instances(1)`) and is busy with a
//! first client. A second client opens with a `busy_timeout`: instead of
//! failing with `ERROR_PIPE_BUSY`, it waits (`WaitNamedPipeW`) until the
//! server frees the instance, then connects. Without a `busy_timeout` the
//! same open fails at once.

#[cfg(all(windows, feature = "mio-06"))]
fn main() -> std::io::Result<()> {
    use std::io;
    use std::thread;
    use std::time::{Duration, Instant};

    use mio::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{ClientOptions, ServerOptions};

    let name = format!(r"\\.\pipe\mio-named-pipes-busy-{}", std::process::id());
    let server = ServerOptions::new().max_instances(1).create(&name)?;
    let poll = Poll::new()?;
    poll.register(&server, Token(0), Ready::all(), PollOpt::edge())?;
    let first = ClientOptions::new().open(&name)?;

    // Without a timeout: busy, at once.
    let e = ClientOptions::new().open(&name).unwrap_err();
    println!("busy_client: without busy_timeout: {e}");

    // With one: the open waits while the server is busy...
    let n = name.clone();
    let waiting = thread::spawn(move || {
        let t = Instant::now();
        let pipe = ClientOptions::new()
            .busy_timeout(Some(Duration::from_secs(10)))
            .open(&n);
        (pipe, t.elapsed())
    });
    // ... until the server is done with the first client and listens again.
    thread::sleep(Duration::from_millis(300));
    drop(first);
    server.disconnect()?;
    let mut events = Events::with_capacity(4);
    loop {
        match server.connect() {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll.poll(&mut events, None).map(drop)?
            }
            Err(e) => return Err(e),
        }
    }
    let (pipe, waited) = waiting.join().expect("client thread");
    pipe?;
    println!(
        "busy_client: with busy_timeout: connected after waiting {} ms",
        waited.as_millis()
    );
    Ok(())
}

#[cfg(not(all(windows, feature = "mio-06")))]
fn main() {
    eprintln!("this example runs on Windows (feature mio-06); on Linux, under Wine");
}
