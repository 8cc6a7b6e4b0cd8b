//! Making stack switches visible to the tools that watch memory: valgrind, AddressSanitizer and
//! ThreadSanitizer.
//!
//! The hooks cost nothing when the tool is absent: valgrind's client request is a few no-op
//! rotations of a register, and the sanitizer entry points are looked up once with `dlsym`; when
//! the process was not built with ASan (or TSan) they are absent and a single predictable branch
//! skips them. The library itself is never built instrumented: the runtime of an instrumented
//! program (C built with `-fsanitize=...`, Rust with `-Zsanitizer=...`) exports the entry points,
//! and that is what the lookup finds.
//!
//! A Rust program built with `-Zsanitizer=...` links the sanitizer runtime statically and keeps
//! only the parts it references, without exporting them, so `dlsym` cannot find the fiber API
//! there. Building with `--cfg coro_sanitize="address"` (or `"thread"`) next to the sanitizer
//! flag makes this module reference the entry points directly instead (`ci/sanitize.sh` does).

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

/// Memcheck's client request that makes a range addressable with undefined contents
/// (`VALGRIND_MAKE_MEM_UNDEFINED`: tool base 'M','C' plus 1).
const VG_USERREQ_MAKE_MEM_UNDEFINED: usize = 0x4d43_0001;

/// Tells memcheck that `[addr, addr + len)` may be written (copying mode restores a coroutine's
/// frames below where the shared stack's last occupant left its stack pointer, which memcheck
/// has marked inaccessible). The bytes copied in then carry their own definedness.
pub(crate) fn valgrind_make_mem_undefined(addr: *const u8, len: usize) {
    valgrind_request(0, [VG_USERREQ_MAKE_MEM_UNDEFINED, addr as usize, len, 0, 0, 0]);
}

type StartSwitchFiber = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type FinishSwitchFiber = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);
type UnpoisonRegion = unsafe extern "C" fn(*const c_void, usize);

/// AddressSanitizer's fiber-switch entry points, when the process has the ASan runtime.
#[derive(Clone, Copy)]
pub(crate) struct AsanFibers {
    start: StartSwitchFiber,
    finish: FinishSwitchFiber,
    unpoison: UnpoisonRegion,
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
        #[cfg(coro_sanitize = "address")]
        {
            extern "C" {
                fn __sanitizer_start_switch_fiber(save: *mut *mut c_void, bottom: *const c_void, size: usize);
                fn __sanitizer_finish_switch_fiber(save: *mut c_void, bottom: *mut *const c_void, size: *mut usize);
                fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
            }
            Some(AsanFibers {
                start: __sanitizer_start_switch_fiber,
                finish: __sanitizer_finish_switch_fiber,
                unpoison: __asan_unpoison_memory_region,
            })
        }
        #[cfg(not(coro_sanitize = "address"))]
        Self::find()
    }

    /// The hooks of an ASan runtime found at run time (looked up once per process).
    #[cfg_attr(coro_sanitize = "address", allow(dead_code))]
    fn find() -> Option<AsanFibers> {
        static HOOKS: OnceLock<Option<AsanFibers>> = OnceLock::new();
        *HOOKS.get_or_init(|| {
            // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only reads; the symbols,
            // when present, are ASan's documented functions with exactly these signatures.
            unsafe {
                let start = libc::dlsym(libc::RTLD_DEFAULT, c"__sanitizer_start_switch_fiber".as_ptr());
                let finish = libc::dlsym(libc::RTLD_DEFAULT, c"__sanitizer_finish_switch_fiber".as_ptr());
                let unpoison = libc::dlsym(libc::RTLD_DEFAULT, c"__asan_unpoison_memory_region".as_ptr());
                if start.is_null() || finish.is_null() || unpoison.is_null() {
                    return None;
                }
                Some(AsanFibers {
                    start: core::mem::transmute::<*mut c_void, StartSwitchFiber>(start),
                    finish: core::mem::transmute::<*mut c_void, FinishSwitchFiber>(finish),
                    unpoison: core::mem::transmute::<*mut c_void, UnpoisonRegion>(unpoison),
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

    /// Clears whatever poison earlier users of a stack left in ASan's shadow memory. Frames that
    /// never returned (a finished coroutine's root, an abandoned or killed coroutine's frames)
    /// leave their redzones poisoned; a coroutine starting on that memory must not inherit them,
    /// or ASan would report its own valid accesses.
    ///
    /// # Safety
    /// `stack` is a stack nothing runs on (a coroutine's that is about to start).
    pub(crate) unsafe fn unpoison(self, stack: StackBounds) {
        if !stack.bottom.is_null() {
            // SAFETY: the region is mapped stack memory of ours; unpoisoning only writes shadow.
            unsafe { (self.unpoison)(stack.bottom, stack.size) }
        }
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

/// Clears ASan's poison over `[addr, addr + len)` when the process runs under ASan (no-op
/// otherwise). For code that reads or writes stack memory it does not own as frames, e.g. the
/// copying mode saving or restoring a suspended coroutine's frames: the redzones of those frames
/// are poisoned, and a plain copy of them would be reported.
///
/// # Safety
/// `[addr, addr + len)` is mapped stack memory of this process that no running code uses as
/// frames.
pub(crate) unsafe fn asan_unpoison(addr: *const u8, len: usize) {
    if let Some(asan) = AsanFibers::get() {
        // SAFETY: forwarded contract.
        unsafe { asan.unpoison(StackBounds { bottom: addr.cast(), size: len }) }
    }
}

type TsanCreateFiber = unsafe extern "C" fn(u32) -> *mut c_void;
type TsanFiberOp = unsafe extern "C" fn(*mut c_void);
type TsanSwitchToFiber = unsafe extern "C" fn(*mut c_void, u32);
type TsanCurrentFiber = unsafe extern "C" fn() -> *mut c_void;

/// ThreadSanitizer's fiber API, when the process has the TSan runtime.
///
/// Every coroutine gets its own TSan fiber (a shadow call stack and vector clock of its own),
/// created when it first runs and destroyed when its control block is freed; a thread's main
/// coroutine uses the thread's own fiber. Each switch is announced with `__tsan_switch_to_fiber`
/// with flags 0, which makes it a synchronisation point: everything before the switch happens
/// before everything the resumed coroutine does next, exactly as the program observes it.
#[derive(Clone, Copy)]
pub(crate) struct TsanFibers {
    create: TsanCreateFiber,
    destroy: TsanFiberOp,
    switch_to: TsanSwitchToFiber,
    current: TsanCurrentFiber,
}

impl TsanFibers {
    /// The TSan runtime's hooks, or `None` (looked up once per process).
    #[inline]
    pub(crate) fn get() -> Option<TsanFibers> {
        #[cfg(coro_sanitize = "thread")]
        {
            extern "C" {
                fn __tsan_create_fiber(flags: u32) -> *mut c_void;
                fn __tsan_destroy_fiber(fiber: *mut c_void);
                fn __tsan_switch_to_fiber(fiber: *mut c_void, flags: u32);
                fn __tsan_get_current_fiber() -> *mut c_void;
            }
            Some(TsanFibers {
                create: __tsan_create_fiber,
                destroy: __tsan_destroy_fiber,
                switch_to: __tsan_switch_to_fiber,
                current: __tsan_get_current_fiber,
            })
        }
        #[cfg(not(coro_sanitize = "thread"))]
        Self::find()
    }

    /// The hooks of a TSan runtime found at run time (looked up once per process).
    #[cfg_attr(coro_sanitize = "thread", allow(dead_code))]
    fn find() -> Option<TsanFibers> {
        static HOOKS: OnceLock<Option<TsanFibers>> = OnceLock::new();
        *HOOKS.get_or_init(|| {
            // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only reads; the symbols,
            // when present, are TSan's documented fiber functions with exactly these signatures
            // (`tsan_interface.h`).
            unsafe {
                let find = |name: &core::ffi::CStr| libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
                let create = find(c"__tsan_create_fiber");
                let destroy = find(c"__tsan_destroy_fiber");
                let switch_to = find(c"__tsan_switch_to_fiber");
                let current = find(c"__tsan_get_current_fiber");
                if create.is_null() || destroy.is_null() || switch_to.is_null() || current.is_null() {
                    return None;
                }
                Some(TsanFibers {
                    create: core::mem::transmute::<*mut c_void, TsanCreateFiber>(create),
                    destroy: core::mem::transmute::<*mut c_void, TsanFiberOp>(destroy),
                    switch_to: core::mem::transmute::<*mut c_void, TsanSwitchToFiber>(switch_to),
                    current: core::mem::transmute::<*mut c_void, TsanCurrentFiber>(current),
                })
            }
        })
    }

    /// Announces a switch from the running coroutine, whose fiber slot is `from`, to the
    /// coroutine whose fiber slot is `to`. A null `from` is the running fiber (a main coroutine
    /// seen for the first time): it is recorded. A null `to` is a coroutine that never ran: it
    /// gets a new fiber.
    ///
    /// When this crate is itself instrumented (`--cfg coro_sanitize="thread"`), every function
    /// with calls records its entry and exit on the running fiber's shadow call stack. The begin
    /// hook that announces the switch was entered on the leaving fiber but returns (to
    /// `coro_arch_enter`, which then jumps stacks) after the arriving fiber has become current:
    /// left alone, its exit would pop a frame of the arriving fiber, one per switch, until that
    /// shadow stack underflows. So the hook's entry is taken off the leaving fiber just before the
    /// announcement and a stand-in is put on the arriving one just after, for its exit to pop.
    /// That is exact only if the hook's own frame is the one calling this (everything between is
    /// `#[inline(always)]`), which is why this function is too.
    ///
    /// # Safety
    /// Must be followed by the switch to the coroutine owning `to`, with nothing in between that
    /// the leaving coroutine must see as its own. `from` and `to` are those coroutines' fiber
    /// slots. Called only from the frame of a begin hook of `coro_arch_enter` (see above).
    #[inline(always)]
    pub(crate) unsafe fn switch(self, from: &core::cell::Cell<*mut c_void>, to: &core::cell::Cell<*mut c_void>) {
        #[cfg(coro_sanitize = "thread")]
        extern "C" {
            fn __tsan_func_entry(call_pc: *const c_void);
            fn __tsan_func_exit();
        }
        // SAFETY: forwarded contract; the runtime owns the fibers, we only pass its handles back.
        // The entry/exit pair keeps each fiber's shadow stack balanced, as explained above.
        unsafe {
            if from.get().is_null() {
                from.set((self.current)());
            }
            if to.get().is_null() {
                to.set((self.create)(0));
            }
            #[cfg(coro_sanitize = "thread")]
            __tsan_func_exit();
            (self.switch_to)(to.get(), 0);
            #[cfg(coro_sanitize = "thread")]
            __tsan_func_entry(Self::switch as *const c_void);
        }
    }

    /// Releases a fiber created by [`TsanFibers::switch`] (null: nothing to do).
    ///
    /// # Safety
    /// `fiber` was created by this runtime, is not running, and is not used again. Never pass a
    /// main coroutine's fiber: it is the thread's own.
    pub(crate) unsafe fn destroy(self, fiber: *mut c_void) {
        if !fiber.is_null() {
            // SAFETY: forwarded contract.
            unsafe { (self.destroy)(fiber) }
        }
    }
}
