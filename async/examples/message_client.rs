//! A message-mode client and server in one process, on tokio (feature
//! `tokio`): every message arrives whole, whatever its size, and the server
//! answers each with one message of its own.
//!
//! Run under Wine from Linux with `cargo xtask demo` (it runs the examples of
//! both fronts), or alone: `cargo run -p async-named-pipes --features tokio
//! --example message_client --target x86_64-pc-windows-gnu`.

#[cfg(windows)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    use async_named_pipes::{ClientOptions, PipeMode, ServerOptions};
    use tokio::io::AsyncWriteExt;

    let name = format!(
        r"\\.\pipe\async-named-pipes-messages-{}",
        std::process::id()
    );
    let sizes = [1usize, 100, 10_000, 200_000];

    // The server: message pipes; it answers each message with "got N bytes".
    let listener = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .listen(&name, 1)?;
    let server = tokio::spawn(async move {
        let mut pipe = listener.accept().await?;
        let mut msg = Vec::new();
        for _ in sizes {
            pipe.recv_msg(&mut msg).await?;
            let answer = format!("got {} bytes", msg.len());
            pipe.write_all(answer.as_bytes()).await?;
        }
        Ok::<_, std::io::Error>(())
    });

    // The client reads in message mode too: `recv_msg` returns one answer.
    let mut client = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .open(&name)?;
    let mut answer = Vec::new();
    for n in sizes {
        let msg: Vec<u8> = (0..n).map(|i| i as u8).collect();
        client.write_all(&msg).await?;
        client.recv_msg(&mut answer).await?;
        let text = String::from_utf8_lossy(&answer);
        println!("sent {n} bytes as one message; the server says: {text}");
        assert_eq!(
            text,
            format!("got {n} bytes"),
            "a message was split or merged"
        );
    }
    server.await.expect("the server task")?;
    Ok(())
}

#[cfg(not(windows))]
fn main() {
    eprintln!("this example runs on Windows (or under Wine)");
}
