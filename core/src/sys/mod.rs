//! The Win32 layer: every `unsafe` call of the crate lives below here.

pub(crate) mod client;
pub(crate) mod front;
pub(crate) mod info;
pub(crate) mod kernel;
pub(crate) mod op;
pub(crate) mod pipe;
pub(crate) mod port;
pub(crate) mod reaper;
pub(crate) mod security;
pub(crate) mod stdio;
pub(crate) mod tcp;

use windows_sys::Win32::Foundation as w;

use crate::engine::policy as p;
use crate::engine::table as t;
use windows_sys::Win32::Storage::FileSystem as fs;

// The engine's error table names Win32 codes by number; they must be the real ones.
const _: () = {
    assert!(t::ERROR_BROKEN_PIPE == w::ERROR_BROKEN_PIPE as i32);
    assert!(t::ERROR_PIPE_NOT_CONNECTED == w::ERROR_PIPE_NOT_CONNECTED as i32);
    assert!(t::ERROR_NO_DATA == w::ERROR_NO_DATA as i32);
    assert!(t::ERROR_MORE_DATA == w::ERROR_MORE_DATA as i32);
    assert!(t::ERROR_PIPE_CONNECTED == w::ERROR_PIPE_CONNECTED as i32);
    assert!(t::ERROR_PIPE_LISTENING == w::ERROR_PIPE_LISTENING as i32);
    assert!(t::ERROR_OPERATION_ABORTED == w::ERROR_OPERATION_ABORTED as i32);
    assert!(p::SECURITY_SQOS_PRESENT == fs::SECURITY_SQOS_PRESENT);
    assert!(p::SECURITY_VALID_SQOS_FLAGS == fs::SECURITY_VALID_SQOS_FLAGS);
};
