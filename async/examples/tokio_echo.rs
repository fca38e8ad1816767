//! An echo server and a client in one process, on tokio (feature `tokio`).
//!
//! Run under Wine from Linux: `cargo run -p async-named-pipes --features tokio
//! --example tokio_echo --target x86_64-pc-windows-gnu`.

#[cfg(windows)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    use async_named_pipes::{ClientOptions, PipeListener};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let name = format!(r"\\.\pipe\async-named-pipes-echo-{}", std::process::id());

    // The server: a listener keeps instances listening; each connected pipe
    // gets a task of its own.
    let listener = PipeListener::bind(&name)?;
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let mut pipe = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if pipe.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        Ok::<_, std::io::Error>(())
    });

    // Two clients.
    for text in ["hello", "world"] {
        let mut client = ClientOptions::new().open(&name)?;
        client.write_all(text.as_bytes()).await?;
        let mut back = vec![0u8; text.len()];
        client.read_exact(&mut back).await?;
        println!("echoed: {}", String::from_utf8_lossy(&back));
    }
    server.await.expect("the server task")?;
    Ok(())
}

#[cfg(not(windows))]
fn main() {
    eprintln!("this example runs on Windows (or under Wine)");
}
