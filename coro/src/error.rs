//! Errors of the Rust API, and the one table that ties each of them to its C status code and its
//! message.
//!
//! The status numbers themselves, with their C documentation, are the `coro_status_code` enum in
//! `ffi.rs`: cbindgen reads only literal items (it does not expand macros), so the header's enum
//! must be written out there. Everything else about a status is derived from the table below:
//! the [`Error`] enum, [`Error::code`], [`Error::from_code`], the messages (Rust `Display` and C
//! `coro_strerror`), and the tests that check the table against the enum. This is the one place
//! below the C shell that names `ffi.rs`, and only for those numbers.

use crate::ffi::coro_status_code;
use core::ffi::CStr;
use core::fmt;

/// The status number of success (`CORO_OK`), for the C switch hooks and `coro_strerror`.
pub(crate) const SUCCESS: u32 = coro_status_code::CORO_OK as u32;

/// Defines [`Error`] and its mappings from one table. Each row: the variant's docs, the variant
/// (with its field, if any, and the value that field takes when an `Error` is made from a bare
/// status number), `=>` its `coro_status_code` constant, and its message.
macro_rules! status_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $({ $(#[doc = $fdoc:literal])* $field:ident: $ty:ty = $default:expr })?
            => $code:ident, $message:literal;
    )*) => {
        /// Why an operation did not complete normally.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Error {
            $(
                $(#[doc = $doc])*
                $variant $({ $(#[doc = $fdoc])* $field: $ty })?,
            )*
        }

        impl Error {
            /// The C status number of this error (`coro_status_code`); fixed forever.
            pub const fn code(self) -> u32 {
                match self {
                    $(Error::$variant { .. } => coro_status_code::$code as u32,)*
                }
            }

            /// The error for a C status number (`Killed` carries no reason here); `None` for
            /// success or an unknown number.
            pub const fn from_code(code: u32) -> Option<Error> {
                $(
                    if code == coro_status_code::$code as u32 {
                        return Some(Error::$variant $({ $field: $default })?);
                    }
                )*
                None
            }

            /// [`Error::message`] as a static C string.
            pub(crate) const fn c_message(self) -> &'static CStr {
                match self {
                    $(Error::$variant { .. } => $message,)*
                }
            }

            /// Every error, once (with the `from_code` field values), in status order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Error] = &[$(Error::$variant $({ $field: $default })?,)*];
        }
    };
}

status_table! {
    /// Not a failure of the call: the caller's pending `switch` (or `kill`) was interrupted by a
    /// kill, which carried `reason`.
    Killed {
        /// The value passed to `kill`.
        reason: usize = 0
    } => CORO_KILLED, c"the pending switch was interrupted by coro_kill";
    /// An argument is invalid (a null handle, a bad option).
    Invalid => CORO_EINVAL, c"invalid argument (NULL handle or pointer, or bad option)";
    /// The handle was destroyed.
    Stale => CORO_ESTALE, c"stale handle: the coroutine was destroyed";
    /// The target coroutine has finished.
    Dead => CORO_EDEAD, c"the coroutine has finished (DEAD)";
    /// The target belongs to another OS thread (or to one that has exited).
    WrongThread => CORO_ETHREAD, c"the coroutine belongs to another OS thread";
    /// The coroutine is running or suspended and cannot be destroyed.
    Busy => CORO_EBUSY, c"the coroutine is running or suspended";
    /// The new parent would make the coroutine its own ancestor.
    Cycle => CORO_ECYCLE, c"the new parent would create a cycle";
    /// A stack or control block could not be allocated.
    NoMemory => CORO_ENOMEM, c"out of memory (stack or control block)";
    /// The operation is not allowed on a thread's main coroutine.
    Main => CORO_EMAIN, c"not allowed on a main coroutine";
    /// A panic was caught (it is never allowed to cross the C ABI).
    Panicked => CORO_EPANIC, c"a Rust panic was caught at the API boundary";
}

impl Error {
    /// A one-line English description, the same text `coro_strerror` returns.
    pub fn message(self) -> &'static str {
        self.c_message().to_str().unwrap_or("")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_status_once() {
        // The numbers 1.. are the errors, in order and without gaps; 0 is success.
        assert_eq!(SUCCESS, 0);
        assert_eq!(Error::from_code(SUCCESS), None);
        for (i, &e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.code(), i as u32 + 1);
            assert_eq!(Error::from_code(e.code()), Some(e));
        }
        assert_eq!(Error::from_code(Error::ALL.len() as u32 + 1), None);
        assert_eq!(coro_status_code::CORO_EPANIC as usize, Error::ALL.len());
    }
}
