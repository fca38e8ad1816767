//! Owned halves: a pipe split into a read half and a write half that can
//! move to different tasks, as tokio's `TcpStream::into_split`.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::named_pipe::NamedPipe;

impl NamedPipe {
    /// Splits the pipe into a read half and a write half, each owned, each
    /// `Send`, for two tasks (as tokio's `TcpStream::into_split`). Every
    /// method of `NamedPipe` takes `&self` already, so `&NamedPipe` (or an
    /// `Arc<NamedPipe>`) splits too; the owned halves are for code written
    /// for tokio's halves. [`reunite`](OwnedReadHalf::reunite) puts them
    /// back together.
    ///
    /// A named pipe has no half-close: dropping the write half sends
    /// nothing to the peer (tokio's TCP half shuts the write side down);
    /// data its writes accepted is still delivered. The pipe is closed once
    /// both halves are dropped, as the whole pipe would be.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use async_named_pipes::ClientOptions;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let pipe = ClientOptions::new().open(r"\\.\pipe\async-named-pipes-doc-split")?;
    /// let (mut rd, mut wr) = pipe.into_split();
    /// let writer = tokio::spawn(async move { wr.write_all(b"hello").await.map(|()| wr) });
    /// let mut buf = [0u8; 5];
    /// rd.read_exact(&mut buf).await?;
    /// let wr = writer.await.expect("the writer task")?;
    /// let _pipe = rd.reunite(wr).expect("halves of the same pipe");
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let pipe = Arc::new(self);
        (
            OwnedReadHalf {
                pipe: Arc::clone(&pipe),
            },
            OwnedWriteHalf { pipe },
        )
    }
}

/// The read half of [`NamedPipe::into_split`]: reads, receives messages
/// and waits for read readiness. With feature `tokio` it is a tokio
/// `AsyncRead`, with feature `futures-io` a futures-io one.
#[derive(Debug)]
pub struct OwnedReadHalf {
    pipe: Arc<NamedPipe>,
}

/// The write half of [`NamedPipe::into_split`]: writes, flushes, shuts
/// down and waits for write readiness. With feature `tokio` it is a tokio
/// `AsyncWrite`, with feature `futures-io` a futures-io one. Dropping it
/// sends nothing to the peer (a pipe has no half-close); the pipe closes
/// when the read half is dropped too.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pipe: Arc<NamedPipe>,
}

/// The halves given to [`reunite`](OwnedReadHalf::reunite) came from
/// different pipes: both are handed back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same named pipe")
    }
}

impl Error for ReuniteError {}

fn reunite(read: OwnedReadHalf, write: OwnedWriteHalf) -> Result<NamedPipe, ReuniteError> {
    if !Arc::ptr_eq(&read.pipe, &write.pipe) {
        return Err(ReuniteError(read, write));
    }
    drop(write);
    // The halves held the only two references: with the write half gone,
    // this one is the last.
    Arc::try_unwrap(read.pipe)
        .map_err(|_| ())
        .map_err(|()| unreachable!("only the two halves hold the pipe"))
}

impl OwnedReadHalf {
    /// Puts the pipe back together from its two halves.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], holding both halves, if they are not the halves of
    /// the same pipe.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<NamedPipe, ReuniteError> {
        reunite(self, other)
    }

    /// The pipe both halves share: its `&self` methods (`info`, peer ids,
    /// `ready`) work through it.
    pub fn as_pipe(&self) -> &NamedPipe {
        &self.pipe
    }

    /// [`NamedPipe::poll_read`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::poll_read`].
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.pipe.poll_read(cx, buf)
    }

    /// [`NamedPipe::readable`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::readable`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.pipe.readable().await
    }

    /// [`NamedPipe::try_read`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.pipe.try_read(buf)
    }

    /// [`NamedPipe::recv_msg`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::recv_msg`].
    ///
    /// # Cancel safety
    ///
    /// As [`NamedPipe::recv_msg`].
    pub async fn recv_msg(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.pipe.recv_msg(buf).await
    }
}

impl OwnedWriteHalf {
    /// Puts the pipe back together from its two halves.
    ///
    /// # Errors
    ///
    /// As [`OwnedReadHalf::reunite`].
    pub fn reunite(self, other: OwnedReadHalf) -> Result<NamedPipe, ReuniteError> {
        reunite(other, self)
    }

    /// The pipe both halves share.
    pub fn as_pipe(&self) -> &NamedPipe {
        &self.pipe
    }

    /// [`NamedPipe::poll_write`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::poll_write`].
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.pipe.poll_write(cx, buf)
    }

    /// [`NamedPipe::writable`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::writable`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.pipe.writable().await
    }

    /// [`NamedPipe::try_write`].
    ///
    /// # Errors
    ///
    /// As [`NamedPipe::try_write`].
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.try_write(buf)
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<OwnedReadHalf>();
    is::<OwnedWriteHalf>();
    is::<ReuniteError>();
}
