//! A small safe Rust API over **libcoro**, the C library of the uthread stackful coroutine engine,
//! built on the raw [`coro_sys`] bindings (generated from `include/coro.h`).
//!
//! Use it when a Rust program shares libcoro with C code: it links `libcoro.so` / `libcoro.a` like
//! the C side does, so both see the same coroutines, per-thread main coroutine and stack pool (a
//! [`Handle`] converts to and from the C `coro_t *`). A pure Rust program can use the `coro` crate
//! of the same repository instead (same engine, no C library).
//!
//! # Example
//!
//! ```
//! use libcoro::{Coroutine, Handle};
//!
//! // A consumer that adds up what it is sent; its running total lives in a local variable.
//! let main = Handle::main().unwrap();
//! let adder = Coroutine::new(move |first| {
//!     let mut total = first;
//!     loop {
//!         match main.switch(total) {
//!             Ok(0) => return total * 100, // finished: the parent (main) receives this
//!             Ok(n) => total += n,
//!             Err(_) => return total,      // killed (or an error): clean up and finish
//!         }
//!     }
//! })
//! .unwrap();
//! assert_eq!(adder.switch(1).unwrap(), 1); // lazy start: the entry gets 1
//! assert_eq!(adder.switch(2).unwrap(), 3);
//! assert_eq!(adder.switch(39).unwrap(), 42);
//! assert_eq!(adder.switch(0).unwrap(), 4200);
//! assert!(adder.is_dead());
//! ```
//!
//! # The rules
//!
//! They are the C library's (`docs/semantics.md`), in Rust terms:
//!
//! - A coroutine is [`State::New`] until first switched to; its entry receives that first value.
//!   Values are `usize` both ways (the C `void *`).
//! - Returning from the entry finishes the coroutine ([`State::Dead`]) and switches to its parent
//!   (by default its creator) with the return value.
//! - [`Handle::kill`] makes the target's pending [`Handle::switch`] return
//!   [`Error::Killed`]`(reason)`. The library never unwinds a coroutine behind its back: the entry
//!   decides what to do (usually: return).
//! - A panic inside an entry is caught at the coroutine's root, finishes it, and is resumed (with
//!   [`std::panic::resume_unwind`]) in the coroutine that runs next, out of its pending `switch` or
//!   `kill`: normally the parent. A panic never crosses the C library.
//! - Dropping a suspended [`Coroutine`] re-parents it to the caller and kills it, so that its
//!   entry can return and its stack is unwound; then it is destroyed.
//! - Coroutines and handles are not `Send`: a coroutine belongs to the OS thread that created it
//!   (the library checks this too, [`Status::ETHREAD`]).
//!
//! ```
//! use libcoro::{Coroutine, Error, Handle};
//!
//! let main = Handle::main().unwrap();
//! let worker = Coroutine::new(move |_| {
//!     let mut handled = 0;
//!     loop {
//!         match main.switch(handled) {
//!             Ok(_) => handled += 1,
//!             Err(Error::Killed(reason)) => return reason + handled, // asked to stop
//!             Err(e) => panic!("{e}"),
//!         }
//!     }
//! })
//! .unwrap();
//! worker.switch(0).unwrap();
//! worker.switch(0).unwrap();
//! assert_eq!(worker.kill(1000).unwrap(), 1001); // its return value comes back to the killer
//!
//! // A panic is carried to the coroutine that is resumed when the panicking one dies.
//! let bad = Coroutine::new(|_| panic!("boom")).unwrap();
//! let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bad.switch(0)));
//! assert!(caught.is_err());
//! assert!(bad.is_dead());
//! ```
//!
//! # Building
//!
//! As for `coro-sys`: in the repository the library must be built first (`cargo build -p coro`);
//! outside it, an installed libcoro is found with pkg-config, or `CORO_LIB_DIR` /
//! `CORO_INCLUDE_DIR` name it. The `static` feature links `libcoro.a`.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_void, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use coro_sys as sys;

/// A status code of the C library other than `CORO_OK`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(u32);

impl Status {
    /// `CORO_KILLED`: a switch was interrupted by a kill (reported as [`Error::Killed`]).
    pub const KILLED: Status = Status(sys::CORO_KILLED);
    /// `CORO_EINVAL`: an invalid argument (a null handle, a stack size out of range, ...).
    pub const EINVAL: Status = Status(sys::CORO_EINVAL);
    /// `CORO_ESTALE`: the coroutine was destroyed.
    pub const ESTALE: Status = Status(sys::CORO_ESTALE);
    /// `CORO_EDEAD`: the coroutine has finished.
    pub const EDEAD: Status = Status(sys::CORO_EDEAD);
    /// `CORO_ETHREAD`: the coroutine belongs to another thread.
    pub const ETHREAD: Status = Status(sys::CORO_ETHREAD);
    /// `CORO_EBUSY`: the coroutine is running or suspended.
    pub const EBUSY: Status = Status(sys::CORO_EBUSY);
    /// `CORO_ECYCLE`: the new parent would make a cycle.
    pub const ECYCLE: Status = Status(sys::CORO_ECYCLE);
    /// `CORO_ENOMEM`: out of memory (or of address space for stacks).
    pub const ENOMEM: Status = Status(sys::CORO_ENOMEM);
    /// `CORO_EMAIN`: the operation does not apply to a main coroutine.
    pub const EMAIN: Status = Status(sys::CORO_EMAIN);
    /// `CORO_EPANIC`: the library caught an internal panic.
    pub const EPANIC: Status = Status(sys::CORO_EPANIC);

    /// The numeric `coro_status_t` (stable: the numbers never change).
    pub fn code(self) -> u32 {
        self.0
    }

    /// The library's one-line description (`coro_strerror`).
    pub fn message(self) -> &'static str {
        // SAFETY: coro_strerror accepts any value and returns a pointer to a static,
        // NUL-terminated string (unknown codes get a generic message), never NULL; the check
        // below is belt and braces.
        let p = unsafe { sys::coro_strerror(self.0) };
        if p.is_null() {
            return "unknown status";
        }
        // SAFETY: non-null, NUL-terminated, and static for the life of the program (see above).
        unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("unknown status")
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({}: {})", self.0, self.message())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Status {}

/// Why a switch or kill did not return a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The waiting coroutine was killed; the payload is the killer's reason. Not a failure of the
    /// call: the coroutine is running again and decides what to do.
    Killed(usize),
    /// The call failed and nothing changed.
    Status(Status),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Killed(reason) => write!(f, "killed (reason {reason})"),
            Error::Status(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Status> for Error {
    fn from(s: Status) -> Error {
        Error::Status(s)
    }
}

/// The lifecycle state of a coroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, not started.
    New,
    /// Running (the current coroutine, or one that switched to it and waits).
    Running,
    /// Suspended in a switch.
    Suspended,
    /// Finished.
    Dead,
}

fn check(st: sys::coro_status_t) -> Result<(), Status> {
    if st == sys::CORO_OK {
        Ok(())
    } else {
        Err(Status(st))
    }
}

/// The entry of a coroutine, boxed once more so the C userdata is a thin pointer. `None` once it
/// has started.
type Body = Option<Box<dyn FnOnce(usize) -> usize>>;

thread_local! {
    /// A panic that finished a coroutine of this thread, for the coroutine that runs next.
    static CARRIED: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

fn take_carried() -> Option<Box<dyn Any + Send>> {
    CARRIED.try_with(|c| c.borrow_mut().take()).ok().flatten()
}

/// What a `coro_switch` / `coro_kill` that returned `st` and `received` means for its caller.
fn after_switch(st: sys::coro_status_t, received: *mut c_void) -> Result<usize, Error> {
    match st {
        sys::CORO_OK => {
            if let Some(payload) = take_carried() {
                panic::resume_unwind(payload);
            }
            Ok(received as usize)
        }
        sys::CORO_KILLED => Err(Error::Killed(received as usize)),
        other => Err(Error::Status(Status(other))),
    }
}

/// The C entry of every coroutine made here. Runs the Rust entry inside `catch_unwind`, so that
/// no panic unwinds into the C library.
///
/// # Safety
///
/// Called by libcoro only, with `me` the coroutine being started, whose userdata is the
/// `*mut Body` that [`Builder::spawn`] set.
unsafe extern "C" fn trampoline(me: *mut sys::coro_t, value: *mut c_void) -> *mut c_void {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut ud = ptr::null_mut();
        // SAFETY: `me` is the running coroutine, handed to us by the library.
        if unsafe { sys::coro_userdata(me, &mut ud) } != sys::CORO_OK || ud.is_null() {
            return 0;
        }
        // SAFETY: the userdata is the Box<Body> leaked by Builder::spawn; it is freed only after
        // coro_destroy succeeded, which the library refuses while this coroutine runs. Only this
        // function touches it while the coroutine is alive, and it runs once per coroutine.
        let body = unsafe { &mut *ud.cast::<Body>() };
        match body.take() {
            Some(entry) => entry(value as usize),
            None => 0,
        }
    }));
    match result {
        Ok(v) => v as *mut c_void,
        Err(payload) => {
            // If the thread is being torn down there is no one to carry it to: drop it, and
            // never panic here (this frame must not unwind).
            let _ = CARRIED.try_with(|c| *c.borrow_mut() = Some(payload));
            ptr::null_mut()
        }
    }
}

/// A non-owning reference to a coroutine: cheap to copy, checked by the library on every use (a
/// destroyed coroutine gives [`Status::ESTALE`], another thread's [`Status::ETHREAD`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    raw: NonNull<sys::coro_t>,
    /// Not `Send`/`Sync`: coroutines belong to their thread.
    _thread: PhantomData<*mut ()>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("raw", &self.raw).finish()
    }
}

impl Handle {
    fn new(raw: *mut sys::coro_t) -> Option<Handle> {
        NonNull::new(raw).map(|raw| Handle { raw, _thread: PhantomData })
    }

    /// The running coroutine of this thread (its main coroutine outside any other).
    pub fn current() -> Result<Handle, Status> {
        let mut c = ptr::null_mut();
        // SAFETY: a valid out-pointer; written only on success.
        check(unsafe { sys::coro_current(&mut c) })?;
        Handle::new(c).ok_or(Status::EPANIC)
    }

    /// This thread's main coroutine: the thread's own stack. Created on first use.
    pub fn main() -> Result<Handle, Status> {
        let mut c = ptr::null_mut();
        // SAFETY: a valid out-pointer; written only on success.
        check(unsafe { sys::coro_main(&mut c) })?;
        Handle::new(c).ok_or(Status::EPANIC)
    }

    /// A handle from a C `coro_t *`; `None` for NULL.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or a pointer that libcoro returned (from `coro_new`, `coro_current`,
    /// ...), destroyed or not; never an arbitrary address.
    pub unsafe fn from_raw(raw: *mut sys::coro_t) -> Option<Handle> {
        Handle::new(raw)
    }

    /// The C `coro_t *`, for C code sharing the library.
    pub fn as_raw(self) -> *mut sys::coro_t {
        self.raw.as_ptr()
    }

    /// Suspends the caller and runs this coroutine (starting it with `value` if it is new).
    /// Returns the value of the next switch back into the caller; [`Error::Killed`] if the caller
    /// was killed meanwhile; [`Error::Status`] if nothing happened (dead, destroyed, another
    /// thread's). A panic of a coroutine that finished and passed control here is resumed here.
    pub fn switch(self, value: usize) -> Result<usize, Error> {
        let mut received = ptr::null_mut();
        // SAFETY: `raw` came from the library (Handle is only built from its pointers); the
        // library validates it (stale, other thread, dead) and writes `received` only on success.
        let st = unsafe { sys::coro_switch(self.raw.as_ptr(), value as *mut c_void, &mut received) };
        after_switch(st, received)
    }

    /// Kills this coroutine: its pending switch returns [`Error::Killed`]`(reason)`. A new one
    /// just becomes dead; killing yourself returns `Err(Killed(reason))` at once. Returns what the
    /// next switch back into the caller carries, like [`Handle::switch`].
    pub fn kill(self, reason: usize) -> Result<usize, Error> {
        let mut received = ptr::null_mut();
        // SAFETY: as in `switch`.
        let st = unsafe { sys::coro_kill(self.raw.as_ptr(), reason as *mut c_void, &mut received) };
        after_switch(st, received)
    }

    /// The coroutine's state.
    pub fn state(self) -> Result<State, Status> {
        let mut s = sys::CORO_DEAD;
        // SAFETY: as in `switch`; `s` is a valid out-pointer.
        check(unsafe { sys::coro_state(self.raw.as_ptr(), &mut s) })?;
        Ok(match s {
            sys::CORO_NEW => State::New,
            sys::CORO_RUNNING => State::Running,
            sys::CORO_SUSPENDED => State::Suspended,
            _ => State::Dead,
        })
    }

    /// True if it has finished (or cannot be asked: destroyed, another thread's).
    pub fn is_dead(self) -> bool {
        !matches!(self.state(), Ok(State::New | State::Running | State::Suspended))
    }

    /// Its parent (`None` for a main coroutine).
    pub fn parent(self) -> Result<Option<Handle>, Status> {
        let mut p = ptr::null_mut();
        // SAFETY: as in `switch`.
        check(unsafe { sys::coro_parent(self.raw.as_ptr(), &mut p) })?;
        Ok(Handle::new(p))
    }

    /// Sets its parent (who receives its return value). A cycle is refused ([`Status::ECYCLE`]).
    pub fn set_parent(self, parent: Handle) -> Result<(), Status> {
        // SAFETY: both handles came from the library, which validates them.
        check(unsafe { sys::coro_set_parent(self.raw.as_ptr(), parent.raw.as_ptr()) })
    }

    /// Its id: unique in the process, never reused.
    pub fn id(self) -> Result<u64, Status> {
        let mut id = 0;
        // SAFETY: as in `switch`.
        check(unsafe { sys::coro_id(self.raw.as_ptr(), &mut id) })?;
        Ok(id)
    }

    /// Its name, if it has one.
    pub fn name(self) -> Result<Option<String>, Status> {
        let mut p = ptr::null();
        // SAFETY: as in `switch`; on success `p` is NULL or the coroutine's NUL-terminated name,
        // valid until it is renamed or destroyed, which cannot happen before we copy it (this
        // thread is busy here, and only this thread can do either).
        check(unsafe { sys::coro_name(self.raw.as_ptr(), &mut p) })?;
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: see above.
        Ok(Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()))
    }
}

/// Options for a new coroutine: `Coroutine::builder().stack_size(..).name(..).spawn(entry)`.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    stack_size: Option<usize>,
    name: Option<String>,
}

impl Builder {
    /// Usable stack bytes (`coro_sys::CORO_MIN_STACK_SIZE`..=`CORO_MAX_STACK_SIZE`; out of range
    /// is [`Status::EINVAL`] at spawn). Default: `CORO_DEFAULT_STACK_SIZE`.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// A name, shown in the stack overflow message. A name with a NUL byte is
    /// [`Status::EINVAL`] at spawn.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Creates the coroutine ([`State::New`]: `entry` runs at the first switch to it, with that
    /// switch's value).
    pub fn spawn<F>(self, entry: F) -> Result<Coroutine, Status>
    where
        F: FnOnce(usize) -> usize + 'static,
    {
        let name = match self.name {
            Some(n) => Some(CString::new(n).map_err(|_| Status::EINVAL)?),
            None => None,
        };
        // SAFETY: coro_options_t is plain data; coro_options_init fills every field.
        let mut opts: sys::coro_options_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to an options struct.
        check(unsafe { sys::coro_options_init(&mut opts) })?;
        if let Some(bytes) = self.stack_size {
            opts.stack_size = bytes;
        }
        if let Some(n) = &name {
            opts.name = n.as_ptr(); // copied by coro_new
        }
        let body: *mut Body = Box::into_raw(Box::new(Some(Box::new(entry))));
        opts.userdata = body.cast();
        let mut raw = ptr::null_mut();
        // SAFETY: `trampoline` meets coro_entry_t's contract; `opts` is initialised and outlives
        // the call; `raw` is written only on success.
        let st = unsafe { sys::coro_new(Some(trampoline), &opts, &mut raw) };
        match (check(st), Handle::new(raw)) {
            (Ok(()), Some(handle)) => Ok(Coroutine { handle, body }),
            (result, _) => {
                // SAFETY: coro_new failed, so nothing else refers to `body`.
                drop(unsafe { Box::from_raw(body) });
                Err(result.err().unwrap_or(Status::EPANIC))
            }
        }
    }
}

/// One coroutine, owned: destroyed (after being killed, if suspended) when dropped. Derefs to its
/// [`Handle`], which has the operations.
pub struct Coroutine {
    handle: Handle,
    body: *mut Body,
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine").field("raw", &self.handle.raw).finish()
    }
}

impl Coroutine {
    /// A new coroutine with the default options; see [`Builder::spawn`].
    pub fn new<F>(entry: F) -> Result<Coroutine, Status>
    where
        F: FnOnce(usize) -> usize + 'static,
    {
        Builder::default().spawn(entry)
    }

    /// Options for a new coroutine.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A copyable handle to it (valid to use after the coroutine is dropped: then
    /// [`Status::ESTALE`]).
    pub fn handle(&self) -> Handle {
        self.handle
    }
}

impl std::ops::Deref for Coroutine {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Coroutine {
    /// New or dead: destroyed. Suspended: re-parented to the caller and killed (its pending
    /// switch returns [`Error::Killed`]`(0)`), so its entry can return and its stack unwinds; a
    /// panic it raises while dying is dropped. If it refuses to die, or if it is running (dropped
    /// from inside itself), it cannot be destroyed and is leaked rather than break anything.
    fn drop(&mut self) {
        let h = self.handle;
        let Ok(mut state) = h.state() else { return };
        if state == State::Suspended {
            let Ok(me) = Handle::current() else { return };
            if h.set_parent(me).is_err() {
                return;
            }
            let mut ignored = ptr::null_mut();
            // SAFETY: a live coroutine of this thread (its state was just read).
            let _ = unsafe { sys::coro_kill(h.as_raw(), ptr::null_mut(), &mut ignored) };
            drop(take_carried());
            state = match h.state() {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        if matches!(state, State::New | State::Dead) {
            // SAFETY: a coroutine of this thread that is new or dead: the library accepts it.
            if unsafe { sys::coro_destroy(h.as_raw()) } == sys::CORO_OK {
                // SAFETY: the coroutine is gone, and with it the only other user of `body`
                // (the trampoline); `body` came from Box::into_raw in Builder::spawn.
                drop(unsafe { Box::from_raw(self.body) });
            }
        }
    }
}

/// The README's example runs as a doc-test too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
