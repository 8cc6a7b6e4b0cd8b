//! Making stack switches visible to the tools that watch memory: valgrind and AddressSanitizer.
//!
//! Both hooks cost nothing when the tool is absent: valgrind's client request is a few no-op
//! rotations of a register, and the sanitizer entry points are looked up once with `dlsym`; when
//! the process was not built with ASan they are absent and a single predictable branch skips them.

use core::ffi::c_void;
use std::sync::OnceLock;

/// Valgrind client request numbers (from valgrind's public protocol, `valgrind.h`).
const VG_USERREQ_STACK_REGISTER: usize = 0x1501;

/// Issues a valgrind client request; returns `default` when not running under valgrind.
#[inline]
fn valgrind_request(default: usize, args: [usize; 6]) -> usize {
    let result: usize;
    // SAFETY: the "special instruction preamble" rotates a register by a total multiple of 64 bits,
    // which leaves it unchanged, and the marker instruction is a no-op (`xchg %rbx,%rbx`,
    // `orr x10,x10,x10`). Natively the sequence has no effect except `result = default`; under
    // valgrind the tool reads `args` and writes the result register.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") default => result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!(
            "ror x12, x12, #3", "ror x12, x12, #13", "ror x12, x12, #51", "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") default => result,
            in("x4") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

/// Tells valgrind that `[low, high)` is a stack, so a switch onto it is not mistaken for a
/// wild stack-pointer change. Returns valgrind's id for the stack. Stack slots are immortal
/// (see `stack.rs`), so they are never deregistered.
pub(crate) fn valgrind_stack_register(low: *const u8, high: *const u8) -> usize {
    valgrind_request(0, [VG_USERREQ_STACK_REGISTER, low as usize, high as usize, 0, 0, 0])
}

type StartSwitchFiber = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type FinishSwitchFiber = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);

/// AddressSanitizer's fiber-switch entry points, when the process has the ASan runtime.
#[derive(Clone, Copy)]
pub(crate) struct AsanFibers {
    start: StartSwitchFiber,
    finish: FinishSwitchFiber,
}

/// Where ASan keeps the state of a stack while it is switched out.
#[derive(Clone, Copy)]
pub(crate) struct StackBounds {
    pub bottom: *const c_void,
    pub size: usize,
}

impl StackBounds {
    pub const UNKNOWN: StackBounds = StackBounds { bottom: core::ptr::null(), size: 0 };
}

impl AsanFibers {
    /// The ASan runtime's hooks, or `None` (looked up once per process).
    #[inline]
    pub(crate) fn get() -> Option<AsanFibers> {
        static HOOKS: OnceLock<Option<AsanFibers>> = OnceLock::new();
        *HOOKS.get_or_init(|| {
            // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only reads; the symbols,
            // when present, are ASan's documented functions with exactly these signatures.
            unsafe {
                let start = libc::dlsym(libc::RTLD_DEFAULT, c"__sanitizer_start_switch_fiber".as_ptr());
                let finish = libc::dlsym(libc::RTLD_DEFAULT, c"__sanitizer_finish_switch_fiber".as_ptr());
                if start.is_null() || finish.is_null() {
                    return None;
                }
                Some(AsanFibers {
                    start: core::mem::transmute::<*mut c_void, StartSwitchFiber>(start),
                    finish: core::mem::transmute::<*mut c_void, FinishSwitchFiber>(finish),
                })
            }
        })
    }

    /// Announces a switch to the stack `to`. `fake_stack` is where ASan saves the leaving stack's
    /// state; pass `None` when the leaving stack is finished for good.
    ///
    /// # Safety
    /// Must be immediately followed by the switch, and the code resumed on `to` must call
    /// [`AsanFibers::finish`] first thing.
    pub(crate) unsafe fn start(self, fake_stack: Option<&mut *mut c_void>, to: StackBounds) {
        let save = fake_stack.map_or(core::ptr::null_mut(), |f| f as *mut *mut c_void);
        // SAFETY: forwarded contract; ASan accepts a null save slot for a dying stack.
        unsafe { (self.start)(save, to.bottom, to.size) }
    }

    /// Completes a switch on the resumed stack; returns the bounds of the stack we came from.
    ///
    /// # Safety
    /// `fake_stack` is the value [`AsanFibers::start`] stored when this stack was left (null on
    /// first entry).
    pub(crate) unsafe fn finish(self, fake_stack: *mut c_void) -> StackBounds {
        let mut bounds = StackBounds::UNKNOWN;
        // SAFETY: forwarded contract; the out-params point to live locals.
        unsafe { (self.finish)(fake_stack, &mut bounds.bottom, &mut bounds.size) };
        bounds
    }
}
