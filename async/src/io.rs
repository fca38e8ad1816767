//! The I/O traits of tokio (feature `tokio`) and futures-io (feature
//! `futures-io`), for `NamedPipe` and `&NamedPipe`, over its poll methods;
//! the `Stream` of futures-core (feature `futures-core`) for
//! `PipeListener` and `&PipeListener`, over `poll_accept`.

#[cfg(feature = "tokio")]
mod tokio_io {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::NamedPipe;

    fn read(pipe: &NamedPipe, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match pipe.poll_read(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The same impls for the pipe and for a shared reference to it.
    macro_rules! impls {
        ($($t:ty),*) => {$(
            impl AsyncRead for $t {
                fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                    read(&self, cx, buf)
                }
            }

            impl AsyncWrite for $t {
                fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                    NamedPipe::poll_write(&self, cx, buf)
                }

                /// Every buffer gathered into one write.
                fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
                    NamedPipe::poll_write_vectored(&self, cx, bufs)
                }

                fn is_write_vectored(&self) -> bool {
                    true
                }

                /// Ready once every accepted byte was handed to the kernel
                /// (see [`NamedPipe::poll_flush`]).
                fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    NamedPipe::poll_flush(&self, cx)
                }

                /// Flushes, then refuses later writes; the peer sees no end
                /// of file (see [`NamedPipe::poll_shutdown`]).
                fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    NamedPipe::poll_shutdown(&self, cx)
                }
            }
        )*};
    }

    impls!(NamedPipe, &NamedPipe);

    impl AsyncRead for crate::OwnedReadHalf {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            read(self.as_pipe(), cx, buf)
        }
    }

    /// The write half's flush and shutdown are the pipe's (see
    /// [`NamedPipe::poll_flush`], [`NamedPipe::poll_shutdown`]).
    impl AsyncWrite for crate::OwnedWriteHalf {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.as_pipe().poll_write(cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.as_pipe().poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.as_pipe().poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.as_pipe().poll_shutdown(cx)
        }
    }
}

#[cfg(feature = "futures-io")]
mod futures_io_impl {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_io::{AsyncRead, AsyncWrite};

    use crate::NamedPipe;

    /// The same impls for the pipe and for a shared reference to it.
    macro_rules! impls {
        ($($t:ty),*) => {$(
            impl AsyncRead for $t {
                fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
                    NamedPipe::poll_read(&self, cx, buf)
                }
            }

            impl AsyncWrite for $t {
                fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                    NamedPipe::poll_write(&self, cx, buf)
                }

                /// Every buffer gathered into one write.
                fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
                    NamedPipe::poll_write_vectored(&self, cx, bufs)
                }


                /// Ready once every accepted byte was handed to the kernel
                /// (see [`NamedPipe::poll_flush`]).
                fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    NamedPipe::poll_flush(&self, cx)
                }

                /// Flushes, then refuses later writes; the peer sees no end
                /// of file (see [`NamedPipe::poll_shutdown`]).
                fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    NamedPipe::poll_shutdown(&self, cx)
                }
            }
        )*};
    }

    impls!(NamedPipe, &NamedPipe);

    impl AsyncRead for crate::OwnedReadHalf {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.as_pipe().poll_read(cx, buf)
        }
    }

    /// The write half's flush and close are the pipe's (see
    /// [`NamedPipe::poll_flush`], [`NamedPipe::poll_shutdown`]).
    impl AsyncWrite for crate::OwnedWriteHalf {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.as_pipe().poll_write(cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.as_pipe().poll_write_vectored(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.as_pipe().poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.as_pipe().poll_shutdown(cx)
        }
    }
}

#[cfg(feature = "futures-core")]
mod futures_core_impl {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_core::stream::{FusedStream, Stream};

    use crate::{NamedPipe, PipeListener};

    /// The same impls for the listener and for a shared reference to it.
    macro_rules! impls {
        ($($t:ty),*) => {$(
            /// Every item is an [`accept`](PipeListener::accept); an error
            /// is an item too, and the stream goes on after it (the next
            /// poll tries again). It never ends.
            impl Stream for $t {
                type Item = io::Result<NamedPipe>;

                fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<NamedPipe>>> {
                    PipeListener::poll_accept(&self, cx).map(Some)
                }
            }

            /// The stream never ends.
            impl FusedStream for $t {
                fn is_terminated(&self) -> bool {
                    false
                }
            }
        )*};
    }

    impls!(PipeListener, &PipeListener);
}
