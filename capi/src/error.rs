//! Errors of the Rust API. Each variant maps to one fixed C status code (`ffi::coro_status_code`).

use core::ffi::CStr;
use core::fmt;

/// Why an operation did not complete normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Not a failure of the call: the caller's pending `switch` (or `kill`) was interrupted by a
    /// kill, which carried `reason`.
    Killed {
        /// The value passed to `kill`.
        reason: usize,
    },
    /// An argument is invalid (a null handle, a bad option).
    Invalid,
    /// The handle was destroyed.
    Stale,
    /// The target coroutine has finished.
    Dead,
    /// The target belongs to another OS thread (or to one that has exited).
    WrongThread,
    /// The coroutine is running or suspended and cannot be destroyed.
    Busy,
    /// The new parent would make the coroutine its own ancestor.
    Cycle,
    /// A stack or control block could not be allocated.
    NoMemory,
    /// The operation is not allowed on a thread's main coroutine.
    Main,
    /// A panic was caught (it is never allowed to cross the C ABI).
    Panicked,
}

impl Error {
    /// A one-line English description, the same text `coro_strerror` returns.
    pub fn message(self) -> &'static str {
        self.c_message().to_str().unwrap_or("")
    }

    /// The C status number of this error (`coro_status_code`); fixed forever.
    pub const fn code(self) -> u32 {
        match self {
            Error::Killed { .. } => 1,
            Error::Invalid => 2,
            Error::Stale => 3,
            Error::Dead => 4,
            Error::WrongThread => 5,
            Error::Busy => 6,
            Error::Cycle => 7,
            Error::NoMemory => 8,
            Error::Main => 9,
            Error::Panicked => 10,
        }
    }

    /// The error for a C status number (`Killed` carries no reason here); `None` for success or
    /// an unknown number.
    pub const fn from_code(code: u32) -> Option<Error> {
        Some(match code {
            1 => Error::Killed { reason: 0 },
            2 => Error::Invalid,
            3 => Error::Stale,
            4 => Error::Dead,
            5 => Error::WrongThread,
            6 => Error::Busy,
            7 => Error::Cycle,
            8 => Error::NoMemory,
            9 => Error::Main,
            10 => Error::Panicked,
            _ => return None,
        })
    }

    /// [`Error::message`] as a static C string.
    pub(crate) const fn c_message(self) -> &'static CStr {
        match self {
            Error::Killed { .. } => c"the pending switch was interrupted by coro_kill",
            Error::Invalid => c"invalid argument (NULL handle or pointer, or bad option)",
            Error::Stale => c"stale handle: the coroutine was destroyed",
            Error::Dead => c"the coroutine has finished (DEAD)",
            Error::WrongThread => c"the coroutine belongs to another OS thread",
            Error::Busy => c"the coroutine is running or suspended",
            Error::Cycle => c"the new parent would create a cycle",
            Error::NoMemory => c"out of memory (stack or control block)",
            Error::Main => c"not allowed on a main coroutine",
            Error::Panicked => c"a Rust panic was caught at the API boundary",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Killed { reason } => write!(f, "{} (reason {reason:#x})", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for Error {}

/// The status number of success (`CORO_OK`), for the C switch hooks.
pub(crate) const SUCCESS: u32 = crate::ffi::coro_status_code::CORO_OK as u32;
