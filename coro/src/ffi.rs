//! The C ABI: a thin shell over the engine that checks arguments, never lets a panic cross into C
//! (every status-returning call but `coro_switch` runs in [`boundary`], the one panic boundary;
//! `coro_switch` is a naked jump into `coro_arch_enter` whose hooks, in `engine/switch/hooks.rs`,
//! never unwind: its end hook drops a caught panic's payload under its own `catch_unwind`), and
//! writes out-params only on success. cbindgen turns this file (and only this file) into
//! `include/coro.h`, so the doc comments here are the header's documentation, and the status
//! numbers are written out here, in `coro_status_code`; `error.rs` derives the rest from them.
#![allow(non_camel_case_types)]

use crate::engine::block::{Block, CEntry, Entry, State};
use crate::engine::switch::{self, Received, Spawn};
use crate::engine::thread::Signal;
use crate::Error;
use core::ffi::{c_char, c_void, CStr};
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Major version of this header and library (semantic versioning).
pub const CORO_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const CORO_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const CORO_VERSION_PATCH: u32 = 0;

/// Usable stack size used when `coro_options_t.stack_size` is 0 (bytes). Only touched pages cost memory.
pub const CORO_DEFAULT_STACK_SIZE: usize = 262144;
/// Smallest accepted `stack_size` (bytes).
pub const CORO_MIN_STACK_SIZE: usize = 16384;
/// Largest accepted `stack_size` (bytes).
pub const CORO_MAX_STACK_SIZE: usize = 1073741824;

/// `coro_options_t.flags` bit: run in copying mode, on a stack shared with the thread's other
/// copying coroutines of the same `stack_size`; only the used part of the stack is kept (on the
/// heap) while the coroutine is switched out. Pointers into a copying coroutine's stack are
/// invalid while it is switched out (see docs/stacks.md).
pub const CORO_FLAG_COPYING: u32 = 1;
/// `coro_options_t.flags` bit: run on a stack of its own even when the thread's default is
/// copying mode (`coro_set_copying_default`). Not together with `CORO_FLAG_COPYING`.
pub const CORO_FLAG_OWN_STACK: u32 = 2;

/// Status codes. Every function returns one; the numbers never change.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum coro_status_code {
    /// Success.
    CORO_OK = 0,
    /// Not an error: the pending `coro_switch`/`coro_kill` of the caller was interrupted by
    /// `coro_kill`; `*received` holds the kill's reason.
    CORO_KILLED = 1,
    /// A NULL handle or required pointer, or a bad option.
    CORO_EINVAL = 2,
    /// The handle was destroyed.
    CORO_ESTALE = 3,
    /// The target coroutine has finished (DEAD).
    CORO_EDEAD = 4,
    /// The coroutine belongs to another OS thread (or to one that has exited).
    CORO_ETHREAD = 5,
    /// The coroutine is RUNNING or SUSPENDED, so it cannot be destroyed.
    CORO_EBUSY = 6,
    /// The new parent would make the coroutine its own ancestor.
    CORO_ECYCLE = 7,
    /// A stack, a control block or (on a thread's first call) the thread's own state could not be
    /// allocated.
    CORO_ENOMEM = 8,
    /// Not allowed on a thread's main coroutine.
    CORO_EMAIN = 9,
    /// A Rust panic was caught at the boundary (a bug in this library, or a panicking Rust
    /// coroutine whose parent chain led to a C caller).
    CORO_EPANIC = 10,
}

/// A status code: one of the `coro_status_code` values, carried as a fixed-width integer.
pub type coro_status_t = u32;

/// Where a coroutine is in its life.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum coro_state_code {
    /// Created, never switched to.
    CORO_NEW = 0,
    /// The current coroutine of its thread.
    CORO_RUNNING = 1,
    /// Started and switched away; waits for a switch back.
    CORO_SUSPENDED = 2,
    /// Finished: returned from its entry, or killed or destroyed before it started.
    CORO_DEAD = 3,
}

/// A coroutine state: one of the `coro_state_code` values.
pub type coro_state_t = u32;

/// A coroutine handle. Opaque: a token, not a pointer to dereference. A handle stays valid until
/// `coro_destroy`; after that every call with it returns `CORO_ESTALE` (see `coro_destroy`).
pub struct coro_t {
    _opaque: [u8; 0],
}

/// A coroutine's entry function. It receives its own handle and the value of the first switch
/// into it; what it returns is delivered to its parent (the first ancestor that is not DEAD),
/// whose pending switch returns it. It must not unwind (no C++ exception, no longjmp out).
pub type coro_entry_t = Option<unsafe extern "C" fn(coro: *mut coro_t, value: *mut c_void) -> *mut c_void>;

/// Options for `coro_new`. Initialise with `coro_options_init`, then set fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct coro_options_t {
    /// `sizeof(coro_options_t)` as the caller knows it; set by `coro_options_init`. Lets later
    /// versions add fields without breaking callers built against this header.
    pub struct_size: usize,
    /// Usable stack bytes, rounded up to whole pages; 0 = `CORO_DEFAULT_STACK_SIZE`. Must be
    /// within `CORO_MIN_STACK_SIZE`..`CORO_MAX_STACK_SIZE`.
    pub stack_size: usize,
    /// Name shown in diagnostics (e.g. the stack overflow message); copied; NULL = none.
    pub name: *const c_char,
    /// Initial value of `coro_userdata`.
    pub userdata: *mut c_void,
    /// `CORO_FLAG_*` bits; 0 = the thread's default mode (own stacks unless changed with
    /// `coro_set_copying_default`). Unknown bits, and `CORO_FLAG_COPYING` together with
    /// `CORO_FLAG_OWN_STACK`, are refused (`CORO_EINVAL`).
    pub flags: u32,
}

/// Runs an API body: catches any panic and maps the result to a status.
fn boundary(body: impl FnOnce() -> Result<coro_status_code, Error>) -> coro_status_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status as coro_status_t,
        Ok(Err(e)) => status_of(e),
        Err(payload) => {
            // Dropping a payload runs foreign code; keep that inside a boundary too.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            coro_status_code::CORO_EPANIC as coro_status_t
        }
    }
}

fn status_of(e: Error) -> coro_status_t {
    e.code()
}

/// The block a C handle names, after its null and generation checks.
///
/// # Safety
/// A non-null handle must have come from this library (see `Block::from_handle`).
unsafe fn block_of(handle: *const coro_t) -> Result<*mut Block, Error> {
    // SAFETY: forwarded.
    match unsafe { Block::from_handle(handle.cast()) } {
        None => Err(Error::Invalid),
        Some(Err(())) => Err(Error::Stale),
        Some(Ok(b)) => Ok(b),
    }
}

/// Writes an out-param that was checked non-null.
///
/// # Safety
/// `out` is non-null and writable.
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: per the contract.
    unsafe { out.write(value) }
}

/// A required out-param: `Err(Invalid)` when NULL.
fn required<T>(out: *mut T) -> Result<*mut T, Error> {
    if out.is_null() {
        Err(Error::Invalid)
    } else {
        Ok(out)
    }
}

fn handle(b: *mut Block) -> *mut coro_t {
    Block::handle(b).cast()
}

/// Maps what a switch brought back to a status, storing the value in `*received` (nullable).
///
/// # Safety
/// `received` is NULL or writable.
unsafe fn deliver(r: Received, received: *mut *mut c_void) -> Result<coro_status_code, Error> {
    let status = match r.signal {
        Signal::Value => coro_status_code::CORO_OK,
        Signal::Killed | Signal::Unwind => coro_status_code::CORO_KILLED,
        Signal::Panic => {
            drop(switch::take_panic());
            return Err(Error::Panicked);
        }
        Signal::Refused => unreachable!("only coro_switch refuses in its begin hook"),
    };
    if !received.is_null() {
        // SAFETY: per the contract.
        unsafe { put(received, r.value as *mut c_void) };
    }
    Ok(status)
}

/// Creates a coroutine in state NEW that will run `entry` when first switched to. Its parent is
/// the calling thread's current coroutine. Nothing runs until the first `coro_switch` to it.
///
/// `opts` may be NULL for the defaults. On success `*out` receives a handle owned by the caller,
/// who releases it with `coro_destroy` once the coroutine is NEW or DEAD.
///
/// Thread: the coroutine belongs to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `entry` or `out`, `struct_size` smaller than this
/// header's `coro_options_t`, `stack_size` out of range, unknown `flags` bits or both
/// `CORO_FLAG_COPYING` and `CORO_FLAG_OWN_STACK`); `CORO_ENOMEM` (no stack, shared stack or
/// control block).
///
/// # Safety
/// `opts` is NULL or points to a readable `coro_options_t` of `opts->struct_size` bytes whose `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_new(
    entry: coro_entry_t,
    opts: *const coro_options_t,
    out: *mut *mut coro_t,
) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let entry = entry.ok_or(Error::Invalid)?;
        let mut spawn = Spawn {
            // SAFETY: `coro_t` and `Block` are the same object seen from C and from Rust; the
            // function pointer types differ only in that pointee type.
            entry: Entry::C(unsafe {
                core::mem::transmute::<unsafe extern "C" fn(*mut coro_t, *mut c_void) -> *mut c_void, CEntry>(entry)
            }),
            stack_size: 0,
            name: None,
            userdata: core::ptr::null_mut(),
            unwind_on_drop: false,
            copying: None,
        };
        if !opts.is_null() {
            // SAFETY: non-null; the caller provides a readable struct of at least `struct_size`,
            // and we read the fields only after checking that it covers them.
            let struct_size = unsafe { (*opts).struct_size };
            if struct_size < core::mem::size_of::<coro_options_t>() {
                return Err(Error::Invalid);
            }
            // SAFETY: as above.
            let o = unsafe { &*opts };
            spawn.copying = match o.flags {
                0 => None,
                CORO_FLAG_COPYING => Some(true),
                CORO_FLAG_OWN_STACK => Some(false),
                _ => return Err(Error::Invalid),
            };
            spawn.stack_size = o.stack_size;
            spawn.userdata = o.userdata;
            if !o.name.is_null() {
                // SAFETY: the caller passes a NUL-terminated string.
                spawn.name = Some(CString::from(unsafe { CStr::from_ptr(o.name) }));
            }
        }
        let b = switch::create(spawn)?;
        // SAFETY: checked non-null.
        unsafe { put(out, handle(b)) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Suspends the calling coroutine and resumes `to`, which receives `value`: a NEW `to` starts
/// with `value` as its entry's argument; a SUSPENDED one sees its own pending `coro_switch` return
/// with `*received = value`. The caller stays suspended until something switches back into it;
/// then this call returns `CORO_OK` with that switch's value (or a finishing child's return value)
/// in `*received`. Switching to the current coroutine returns `CORO_OK` at once with
/// `*received = value`. `received` may be NULL.
///
/// Thread: `to` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_KILLED` when the caller was resumed by `coro_kill` (`*received` = the
/// reason); `CORO_EINVAL` (NULL `to`); `CORO_ESTALE`; `CORO_EDEAD`; `CORO_ETHREAD` (also when
/// `to`'s thread has exited); `CORO_ENOMEM` (first call of a thread whose state cannot be
/// allocated); `CORO_EPANIC` (a Rust coroutine panicked and its parent chain led here). On an
/// error nothing changes and no switch happens.
///
/// # Safety
/// `to` is NULL or a handle returned by this library; `received` is NULL or writable.
#[no_mangle]
#[unsafe(naked)]
pub unsafe extern "C" fn coro_switch(to: *mut coro_t, value: *mut c_void, received: *mut *mut c_void) -> coro_status_t {
    // The whole call is assembly: the fast path (engine/switch/fast.rs), else one
    // `coro_arch_enter` with the C hooks (engine/switch/hooks.rs). No Rust frame sits between the
    // caller and the stack switch, so the resumed side returns straight to its own caller. The
    // hooks never unwind, so no panic boundary is needed here.
    crate::engine::switch::c_switch_body!();
}

/// Kills `target`. A SUSPENDED target is resumed and its pending `coro_switch`/`coro_kill`
/// returns `CORO_KILLED` with `*received = reason`; the caller is suspended exactly as by
/// `coro_switch` and this call returns what the next switch back into it carries. The library
/// never unwinds the target behind its back: it may clean up and return, switch elsewhere, or
/// ignore the kill. A NEW target becomes DEAD without running and this call returns `CORO_OK`
/// at once with `*received = reason`. Killing the calling coroutine itself returns `CORO_KILLED`
/// at once with `*received = reason`. `received` may be NULL.
///
/// Thread: `target` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_KILLED`; `CORO_EINVAL` (NULL `target`); `CORO_ESTALE`; `CORO_EDEAD`;
/// `CORO_ETHREAD` (also when `target`'s thread has exited); `CORO_EPANIC`.
///
/// # Safety
/// `target` is NULL or a handle returned by this library; `received` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_kill(
    target: *mut coro_t,
    reason: *mut c_void,
    received: *mut *mut c_void,
) -> coro_status_t {
    boundary(|| {
        // SAFETY: the handle is checked before use; `received` is NULL or writable.
        unsafe {
            let b = block_of(target)?;
            deliver(switch::kill(b, reason as usize)?, received)
        }
    })
}

/// Releases the caller's handle of a NEW or DEAD coroutine (a NEW one becomes DEAD without
/// running). Every later call with this handle returns `CORO_ESTALE`; handles carry a generation
/// number, so this holds even after the memory is reused by a new coroutine, except once per 128
/// reuses of the same slot. A handle never returned by this library is undefined behaviour.
///
/// Thread: the owning thread; or any thread once the owning thread has exited (then a SUSPENDED
/// coroutine, which can never run again, is released without running).
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL); `CORO_ESTALE`; `CORO_EBUSY` (RUNNING or SUSPENDED);
/// `CORO_EMAIN` (a main coroutine); `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library.
#[no_mangle]
pub unsafe extern "C" fn coro_destroy(c: *mut coro_t) -> coro_status_t {
    boundary(|| {
        // SAFETY: the handle is checked before use.
        unsafe { switch::destroy(block_of(c)?)? };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Fills `*opts` with the defaults: `struct_size = sizeof(coro_options_t)`,
/// `stack_size = CORO_DEFAULT_STACK_SIZE`,
/// no name, NULL userdata, no flags (the thread's default mode).
///
/// Returns `CORO_OK`, or `CORO_EINVAL` if `opts` is NULL.
///
/// # Safety
/// `opts` is NULL or points to writable memory for a `coro_options_t`.
#[no_mangle]
pub unsafe extern "C" fn coro_options_init(opts: *mut coro_options_t) -> coro_status_t {
    boundary(|| {
        let opts = required(opts)?;
        let defaults = coro_options_t {
            struct_size: core::mem::size_of::<coro_options_t>(),
            stack_size: CORO_DEFAULT_STACK_SIZE,
            name: core::ptr::null(),
            userdata: core::ptr::null_mut(),
            flags: 0,
        };
        // SAFETY: checked non-null; the caller provides a writable struct.
        unsafe { put(opts, defaults) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Sets the calling thread's default mode for coroutines it creates from now on whose
/// `coro_options_t.flags` choose none: copying mode when `copying` is nonzero, a stack of their
/// own (the initial default) when it is 0. Coroutines already created keep their mode.
///
/// Thread: affects the calling thread only. Returns `CORO_OK`; `CORO_ENOMEM`.
#[no_mangle]
pub extern "C" fn coro_set_copying_default(copying: i32) -> coro_status_t {
    boundary(|| {
        switch::set_copying_default(copying != 0)?;
        Ok(coro_status_code::CORO_OK)
    })
}

/// Stores the calling thread's default mode in `*out`: 1 for copying mode, 0 for own stacks.
///
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `out`); `CORO_ENOMEM`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_copying_default(out: *mut i32) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let copying = switch::copying_default()?;
        // SAFETY: checked non-null.
        unsafe { put(out, i32::from(copying)) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Stores the calling thread's current coroutine in `*out` (its main coroutine if no other
/// runs), creating the thread's main coroutine on first use. The handle is borrowed: do not
/// destroy it.
///
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `out`); `CORO_ENOMEM`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_current(out: *mut *mut coro_t) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let b = switch::current()?;
        // SAFETY: checked non-null.
        unsafe { put(out, handle(b)) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Stores the calling thread's main coroutine in `*out`, creating it on first use. It stands for
/// the thread's own stack, has no parent, and lives until the thread exits. Borrowed: do not
/// destroy it.
///
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `out`); `CORO_ENOMEM`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_main(out: *mut *mut coro_t) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let b = switch::main()?;
        // SAFETY: checked non-null.
        unsafe { put(out, handle(b)) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Runs `f` on the block behind a handle of the calling thread.
fn inspect<T>(c: *const coro_t, f: impl FnOnce(&Block) -> Result<T, Error>) -> Result<T, Error> {
    // SAFETY: the handle is checked (null, generation, owner thread) before use.
    let b = unsafe { switch::owned(block_of(c)?)? };
    f(b)
}

/// Stores the state of `c` (a `coro_state_code` value) in `*out`.
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_state(c: *const coro_t, out: *mut coro_state_t) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let state = inspect(c, |b| {
            Ok(match b.state() {
                State::New => coro_state_code::CORO_NEW,
                State::Running => coro_state_code::CORO_RUNNING,
                State::Suspended => coro_state_code::CORO_SUSPENDED,
                State::Dead => coro_state_code::CORO_DEAD,
            })
        })?;
        // SAFETY: checked non-null.
        unsafe { put(out, state as coro_state_t) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Stores the parent of `c` in `*out` (a borrowed handle), or NULL for a main coroutine. The
/// parent receives `c`'s return value (or, if DEAD, its own parent does, and so on).
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_parent(c: *const coro_t, out: *mut *mut coro_t) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let parent = inspect(c, |b| Ok(b.parent.get()))?;
        let h = if parent.is_null() { core::ptr::null_mut() } else { handle(parent) };
        // SAFETY: checked non-null.
        unsafe { put(out, h) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Makes `parent` the parent of `c`: the coroutine that receives `c`'s return value.
///
/// Thread: both must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`;
/// `CORO_ECYCLE` (`c` would become its own ancestor, including `parent == c`); `CORO_EMAIN`
/// (`c` is a main coroutine: mains have no parent).
///
/// # Safety
/// `c` and `parent` are NULL or handles returned by this library.
#[no_mangle]
pub unsafe extern "C" fn coro_set_parent(c: *mut coro_t, parent: *mut coro_t) -> coro_status_t {
    boundary(|| {
        // SAFETY: both handles are checked before use.
        unsafe { switch::set_parent(block_of(c)?, block_of(parent)?)? };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Sets the caller's pointer attached to `c` (the library never touches it).
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `c`); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library.
#[no_mangle]
pub unsafe extern "C" fn coro_set_userdata(c: *mut coro_t, userdata: *mut c_void) -> coro_status_t {
    boundary(|| {
        inspect(c, |b| {
            b.userdata.set(userdata);
            Ok(coro_status_code::CORO_OK)
        })
    })
}

/// Stores the pointer set by `coro_set_userdata` (or `coro_options_t.userdata`) in `*out`.
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_userdata(c: *const coro_t, out: *mut *mut c_void) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let ud = inspect(c, |b| Ok(b.userdata.get()))?;
        // SAFETY: checked non-null.
        unsafe { put(out, ud) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Sets the name of `c` (copied), shown in diagnostics such as the stack overflow message;
/// NULL clears it.
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL `c`); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn coro_set_name(c: *mut coro_t, name: *const c_char) -> coro_status_t {
    boundary(|| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = (!name.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(name) }));
        inspect(c, |b| {
            // SAFETY: names are only replaced on the owning thread (checked by `inspect`).
            unsafe { *b.name.get() = name };
            Ok(coro_status_code::CORO_OK)
        })
    })
}

/// Stores the name of `c` in `*out`, or NULL if it has none. The string belongs to the library
/// and stays valid until the name changes or the handle is destroyed.
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_name(c: *const coro_t, out: *mut *const c_char) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        // SAFETY: read on the owning thread (checked by `inspect`).
        let name = inspect(c, |b| Ok(unsafe { (*b.name.get()).as_ref().map_or(core::ptr::null(), |n| n.as_ptr()) }))?;
        // SAFETY: checked non-null.
        unsafe { put(out, name) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// Stores the id of `c` in `*out`: unique in the process and never reused (main coroutines have
/// ids too). It names the coroutine in diagnostics when it has no name.
///
/// Thread: `c` must belong to the calling thread.
/// Returns `CORO_OK`; `CORO_EINVAL` (NULL argument); `CORO_ESTALE`; `CORO_ETHREAD`.
///
/// # Safety
/// `c` is NULL or a handle returned by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn coro_id(c: *const coro_t, out: *mut u64) -> coro_status_t {
    boundary(|| {
        let out = required(out)?;
        let id = inspect(c, |b| Ok(b.id.get()))?;
        // SAFETY: checked non-null.
        unsafe { put(out, id) };
        Ok(coro_status_code::CORO_OK)
    })
}

/// The library version as a static string, e.g. "0.1.0". Never NULL; never freed.
#[no_mangle]
pub extern "C" fn coro_version() -> *const c_char {
    c"0.1.0".as_ptr()
}

/// A static, one-line English description of `status`. Never NULL, also for unknown numbers.
#[no_mangle]
pub extern "C" fn coro_strerror(status: coro_status_t) -> *const c_char {
    let text: &'static CStr = match Error::from_code(status) {
        Some(e) => e.c_message(),
        None if status == crate::error::SUCCESS => c"success",
        None => c"unknown coro status",
    };
    text.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo() {
        assert_eq!(CORO_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(CORO_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(CORO_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        // SAFETY: coro_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(coro_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn stack_constants_match_core() {
        assert_eq!(CORO_DEFAULT_STACK_SIZE, crate::DEFAULT_STACK_SIZE);
        assert_eq!(CORO_MIN_STACK_SIZE, crate::MIN_STACK_SIZE);
        assert_eq!(CORO_MAX_STACK_SIZE, crate::MAX_STACK_SIZE);
    }

    #[test]
    fn strerror_matches_error_messages() {
        for &e in Error::ALL {
            // SAFETY: static NUL-terminated strings.
            let s = unsafe { CStr::from_ptr(coro_strerror(status_of(e))) };
            assert_eq!(s.to_str().unwrap(), e.message());
        }
        // SAFETY: as above.
        let ok = unsafe { CStr::from_ptr(coro_strerror(coro_status_code::CORO_OK as coro_status_t)) };
        assert_eq!(ok.to_str().unwrap(), "success");
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(coro_strerror(1000)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown coro status");
    }
}
