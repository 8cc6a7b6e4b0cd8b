//! Stack overflow reporting: a SIGSEGV/SIGBUS handler that recognises a fault in the guard region
//! of the running coroutine's stack, prints one line naming the coroutine, and aborts.
//!
//! The handler runs on an alternate signal stack (the faulting stack has no room left), which this
//! module installs for every thread that uses coroutines unless the thread already has one.
//! Faults that are not ours go to whatever handler was installed before (or the default action).

use crate::engine::block::Block;
use crate::engine::thread::ThreadCtx;
use std::sync::{Once, OnceLock};

/// The dispositions that were in place before ours, for faults that are not overflows.
struct Previous {
    segv: libc::sigaction,
    bus: libc::sigaction,
}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Installs the fault handler once per process.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: querying and setting signal dispositions with valid, initialised structs.
        // PREVIOUS is filled before our handler (its only reader) is installed.
        unsafe {
            let query = |sig| {
                let mut old: libc::sigaction = core::mem::zeroed();
                libc::sigaction(sig, core::ptr::null(), &mut old);
                old
            };
            PREVIOUS.get_or_init(|| Previous { segv: query(libc::SIGSEGV), bus: query(libc::SIGBUS) });
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, core::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &action, core::ptr::null_mut());
        }
    });
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(report) = overflowed_coroutine(addr) {
        report.write_and_abort();
    }
    // OnceLock::get is a plain atomic load: fine in a signal handler.
    match PREVIOUS.get() {
        Some(p) => chain(sig, info, uctx, if sig == libc::SIGBUS { &p.bus } else { &p.segv }),
        None => reset_to_default(sig),
    }
}

/// Restores the default action; returning from the handler then re-runs the faulting
/// instruction and the kernel applies it (a core dump, as if we had never been here).
fn reset_to_default(sig: libc::c_int) {
    // SAFETY: resetting a signal disposition has no memory preconditions.
    unsafe {
        let mut dfl: libc::sigaction = core::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, core::ptr::null_mut());
    }
}

/// Hands a fault that is not a coroutine overflow to the handler that was there before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void, previous: &libc::sigaction) {
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        reset_to_default(sig);
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous owner installed this as an SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(handler) };
        f(sig, info, uctx);
    } else {
        // SAFETY: the previous owner installed this as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(handler) };
        f(sig);
    }
}

/// What the message says about the coroutine that overflowed.
struct OverflowReport {
    id: u64,
    name: *const libc::c_char,
    stack_bytes: usize,
    /// How it was noticed, when not by a fault in the guard (the canary tier).
    how: &'static [u8],
}

impl OverflowReport {
    fn of(block: &Block, stack_bytes: usize, how: &'static [u8]) -> OverflowReport {
        // SAFETY: names are only replaced by the owning thread, which is the caller.
        let name = match unsafe { &*block.name.get() } {
            Some(n) => n.as_ptr(),
            None => core::ptr::null(),
        };
        OverflowReport { id: block.id.get(), name, stack_bytes, how }
    }
}

/// Reports an overflow of `block`'s unguarded stack, found by its damaged canary, and aborts.
#[cold]
pub(crate) fn report_canary(block: &Block, stack_bytes: usize) -> ! {
    OverflowReport::of(block, stack_bytes, b" (found by its canary at a switch)").write_and_abort()
}

/// The running coroutine, if `addr` lies in the guard region of its stack.
fn overflowed_coroutine(addr: usize) -> Option<OverflowReport> {
    let ctx = ThreadCtx::peek();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: this thread's ctx and its current block are alive while the thread runs code on a
    // coroutine stack; the fault interrupted that code, not our bookkeeping, so nothing is
    // half-updated. Only plain reads follow.
    unsafe {
        let block = &*(*ctx).current.get();
        let stack = match (*block.stack.get()).as_ref() {
            Some(stack) => stack,
            // Copying mode: the thread's shared stack the coroutine runs on.
            None if !block.shared.get().is_null() => &(*block.shared.get()).stack,
            None => return None,
        };
        if !stack.guard_contains(addr) {
            return None;
        }
        Some(OverflowReport::of(block, stack.usable(), b""))
    }
}

impl OverflowReport {
    /// Writes the one-line report with async-signal-safe calls only, then aborts.
    fn write_and_abort(&self) -> ! {
        let mut line = LineBuf::new();
        line.push(b"uthread: stack overflow in coroutine ");
        if self.name.is_null() {
            line.push(b"#");
            line.push_u64(self.id);
        } else {
            line.push(b"'");
            // SAFETY: names are NUL-terminated CStrings owned by the block.
            line.push(unsafe { core::ffi::CStr::from_ptr(self.name) }.to_bytes());
            line.push(b"' (id ");
            line.push_u64(self.id);
            line.push(b")");
        }
        line.push(b": its ");
        line.push_u64(self.stack_bytes as u64);
        line.push(b"-byte stack is exhausted");
        line.push(self.how);
        line.push(b" (raise coro_options_t.stack_size); aborting\n");
        // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer is initialised.
        unsafe {
            libc::write(2, line.buf.as_ptr().cast(), line.len);
            libc::abort();
        }
    }
}

/// A fixed buffer for formatting without allocating (we are in a signal handler).
struct LineBuf {
    buf: [u8; 512],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        LineBuf { buf: [0; 512], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// An alternate signal stack this module installed for a thread (none is installed when the
/// thread already has one, e.g. one set up by the Rust runtime or the application).
pub(crate) struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

const ALTSTACK_BYTES: usize = 64 * 1024;

impl AltStack {
    pub(crate) fn install() -> Option<AltStack> {
        // SAFETY: querying and setting this thread's alternate stack; the mapping is ours.
        unsafe {
            let mut current: libc::stack_t = core::mem::zeroed();
            if libc::sigaltstack(core::ptr::null(), &mut current) != 0 || current.ss_flags & libc::SS_DISABLE == 0 {
                return None;
            }
            let len = ALTSTACK_BYTES;
            let base = libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let stack = libc::stack_t { ss_sp: base, ss_flags: 0, ss_size: len };
            if libc::sigaltstack(&stack, core::ptr::null_mut()) != 0 {
                libc::munmap(base, len);
                return None;
            }
            Some(AltStack { base, len })
        }
    }

    pub(crate) fn uninstall(self) {
        // SAFETY: disables the alternate stack we installed (only if it is still ours), then
        // unmaps it.
        unsafe {
            let mut current: libc::stack_t = core::mem::zeroed();
            if libc::sigaltstack(core::ptr::null(), &mut current) == 0 && current.ss_sp == self.base {
                let off = libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                libc::sigaltstack(&off, core::ptr::null_mut());
                libc::munmap(self.base, self.len);
            }
        }
    }
}
