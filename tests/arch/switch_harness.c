/* Standalone test of the architecture context switch (coro/src/arch/<arch>.s).
 *
 * Links only the assembly file of its architecture, nothing else from the project:
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g \
 *       tests/arch/switch_harness.c coro/src/arch/x86_64.s -o switch_harness
 *   aarch64-linux-gnu-gcc -static ... tests/arch/switch_harness.c coro/src/arch/aarch64.s
 *
 * The assembly provides one switch primitive, coro_arch_enter(a, b, c, begin, end), plus
 * coro_arch_init_stack; the harness brings its own tiny runtime on top (see "the harness's
 * runtime" below): a begin hook that records the leaving stack pointer in the current context
 * and returns the target's (or takes the fast path), an end hook that returns the value in
 * flight, and a first end hook for fresh stacks. Every hook call checks the stack alignment and that it runs on the stack it
 * should.
 *
 * Usage: switch_harness [--no-fork] [TEST...]   (no TEST: run every test)
 * Each test runs in a child process (so a crash is reported as that test's failure) unless
 * --no-fork is given, which is handy under a debugger.
 * Prints one line per test and ends with "N passed, M failed"; exits non-zero on any failure.
 * A test marked as a known bug on this architecture prints XFAIL instead of FAIL and counts as
 * neither (XPASS if it passes: then drop the mark).
 */
#define _DEFAULT_SOURCE 1

#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "switch_harness supports x86_64 and aarch64 only"
#endif

/* ---- the code under test ------------------------------------------------------------------ */

/* What a begin hook returns: the stack pointer to continue on and a word for the end hook. */
struct departure {
    void *sp;
    void *ctx;
};

/* What an end hook returns: two words, rax:rdx / x0:x1, which coro_arch_enter returns. The
 * harness's runtime sends (signal, value) like the Rust side: the value in the second word, which
 * is also what the fast path and the trampoline use. */
struct arrival {
    uintptr_t signal;
    uintptr_t value;
};

/* Bit 0 of departure.sp: the fast path (no end hook runs; the call returns (0, departure.ctx)). */
#define FAST_BIT ((uintptr_t)1)

typedef struct departure (*begin_fn)(uintptr_t a, uintptr_t b, uintptr_t c, void *sp);
typedef struct arrival (*end_fn)(void *ctx);
typedef struct arrival (*first_end_fn)(void *ctx); /* entry gets the second word */
typedef void (*entry_fn)(void *data, uintptr_t value);

extern struct arrival coro_arch_enter(uintptr_t a, uintptr_t b, uintptr_t c, begin_fn begin,
                                      end_fn end);
extern void *coro_arch_init_stack(void *top, entry_fn entry, void *data, first_end_fn first_end);
extern void coro_arch_trampoline(void);

#if defined(__x86_64__)
#define FRAME_SIZE 80   /* coro_arch_enter's saved frame */
#define LINK_OFFSET 96  /* link word below the aligned top of a fresh stack */
#else
#define FRAME_SIZE 192
#define LINK_OFFSET 208
#endif

/* ---- tiny test framework ------------------------------------------------------------------ */

static int g_failed_checks;
static char g_first_failure[512];

/* Records a failed check; the first few of each test are also printed as they happen. */
static void check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (g_failed_checks < 5)
        printf("  check failed: %s\n", msg);
    if (g_failed_checks++ == 0)
        memcpy(g_first_failure, msg, sizeof msg);
}

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond))                                                                              \
            check_fail(__FILE__, __LINE__, __VA_ARGS__);                                          \
    } while (0)

/* ---- stacks ------------------------------------------------------------------------------- */

struct stack {
    unsigned char *base; /* lowest usable byte */
    unsigned char *top;  /* one past the highest usable byte */
    void *map;
    size_t map_len;
    int malloced;
};

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* mmap'd stack with a PROT_NONE guard page below it. */
static struct stack stack_mmap(size_t size)
{
    struct stack s;
    size_t pg = page_size();
    size = (size + pg - 1) / pg * pg;
    memset(&s, 0, sizeof s);
    s.map_len = size + pg;
    s.map = mmap(NULL, s.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (mprotect(s.map, pg, PROT_NONE) != 0) {
        perror("mprotect");
        exit(2);
    }
    s.base = (unsigned char *)s.map + pg;
    s.top = s.base + size;
    return s;
}

static struct stack stack_malloc(size_t size)
{
    struct stack s;
    memset(&s, 0, sizeof s);
    s.map = malloc(size);
    if (!s.map) {
        perror("malloc");
        exit(2);
    }
    s.malloced = 1;
    s.base = s.map;
    s.top = s.base + size;
    return s;
}

static void stack_free(struct stack *s)
{
    if (s->malloced)
        free(s->map);
    else
        munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- architecture helpers (file-scope asm, so no compiler register allocation interferes) -- */

/* void harness_reg_probe(uintptr_t a, uintptr_t b, uintptr_t c, begin_fn begin, end_fn end,
 *                        uint64_t *io)
 * Saves its caller's callee-saved registers, loads every callee-saved register from
 * io[PROBE_PAT...], calls coro_arch_enter(a, b, c, begin, end), and once that returns stores every
 * callee-saved register into io[PROBE_OUT...] and the two result registers (rax, rdx / x0, x1)
 * into io[PROBE_RET], io[PROBE_RET + 1], then restores the caller's registers. */
extern void harness_reg_probe(uintptr_t a, uintptr_t b, uintptr_t c, begin_fn begin, end_fn end,
                              uint64_t *io);
/* Returns the caller's stack pointer at the call instruction (before the call pushed anything). */
extern uintptr_t harness_caller_sp(void);

#if defined(__x86_64__)

#define ARCH_NAME "x86_64"
#define N_PROBE_REGS 6
static const char *const probe_reg_names[N_PROBE_REGS] = {"rbx", "rbp", "r12", "r13", "r14",
                                                          "r15"};
static const char *const probe_ret_names[2] = {"rax", "rdx"};

/* io layout: pattern at 0, registers after at 48, rax at 96, rdx at 104. */
__asm__(".text\n"
        ".globl harness_reg_probe\n"
        ".hidden harness_reg_probe\n"
        ".type harness_reg_probe,@function\n"
        ".p2align 4\n"
        "harness_reg_probe:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    pushq %r9\n" /* 7 pushes: rsp is 16-byte aligned again for the call */
        "    movq 0(%r9), %rbx\n"
        "    movq 8(%r9), %rbp\n"
        "    movq 16(%r9), %r12\n"
        "    movq 24(%r9), %r13\n"
        "    movq 32(%r9), %r14\n"
        "    movq 40(%r9), %r15\n"
        "    call coro_arch_enter\n"
        "    popq %r9\n"
        "    movq %rbx, 48(%r9)\n"
        "    movq %rbp, 56(%r9)\n"
        "    movq %r12, 64(%r9)\n"
        "    movq %r13, 72(%r9)\n"
        "    movq %r14, 80(%r9)\n"
        "    movq %r15, 88(%r9)\n"
        "    movq %rax, 96(%r9)\n"
        "    movq %rdx, 104(%r9)\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size harness_reg_probe, .-harness_reg_probe\n"
        "\n"
        ".globl harness_caller_sp\n"
        ".hidden harness_caller_sp\n"
        ".type harness_caller_sp,@function\n"
        ".p2align 4\n"
        "harness_caller_sp:\n"
        "    leaq 8(%rsp), %rax\n"
        "    ret\n"
        ".size harness_caller_sp, .-harness_caller_sp\n");

/* Floating-point control state of one context: MXCSR and the x87 control word. */
struct fpctl {
    uint32_t mxcsr;
    uint16_t x87cw;
};

static struct fpctl fpctl_get(void)
{
    struct fpctl f;
    __asm__ __volatile__("stmxcsr %0" : "=m"(f.mxcsr) : : "memory");
    __asm__ __volatile__("fnstcw %0" : "=m"(f.x87cw) : : "memory");
    return f;
}

static void fpctl_set(struct fpctl f)
{
    __asm__ __volatile__("ldmxcsr %0" : : "m"(f.mxcsr) : "memory");
    __asm__ __volatile__("fldcw %0" : : "m"(f.x87cw) : "memory");
}

/* Rounding modes, encoded as in MXCSR.RC and x87 CW.RC. */
enum { R_NEAR = 0, R_DOWN = 1, R_UP = 2, R_ZERO = 3 };

/* sse: rounding mode for SSE (double arithmetic); x87: for long double arithmetic. */
static struct fpctl fpctl_round(struct fpctl f, int sse, int x87)
{
    f.mxcsr = (uint32_t)((f.mxcsr & ~UINT32_C(0x6000)) | ((uint32_t)sse << 13));
    f.x87cw = (uint16_t)((f.x87cw & ~0x0C00u) | ((unsigned)x87 << 10));
    return f;
}

/* Compares the control bits only: MXCSR bits 0-5 are sticky exception flags (per thread, not
 * per context), which any inexact division sets. */
static int fpctl_eq(struct fpctl a, struct fpctl b)
{
    return (a.mxcsr & 0xFFC0u) == (b.mxcsr & 0xFFC0u) && a.x87cw == b.x87cw;
}

static void fpctl_str(struct fpctl f, char *buf, size_t n)
{
    snprintf(buf, n, "mxcsr=%#x x87cw=%#x", (unsigned)f.mxcsr, (unsigned)f.x87cw);
}

/* Sticky FP exception flags: MXCSR bits 0-5 (PE, the inexact flag, is bit 5). */
#define FPFLAG_INEXACT 0x20u
static unsigned fpflags_get(void)
{
    uint32_t m;
    __asm__ __volatile__("stmxcsr %0" : "=m"(m) : : "memory");
    return m & 0x3Fu;
}

static void fpflags_clear(void)
{
    uint32_t m;
    __asm__ __volatile__("stmxcsr %0" : "=m"(m) : : "memory");
    m &= ~UINT32_C(0x3F);
    __asm__ __volatile__("ldmxcsr %0" : : "m"(m) : "memory");
}

#elif defined(__aarch64__)

#define ARCH_NAME "aarch64"
#define N_PROBE_REGS 19
static const char *const probe_reg_names[N_PROBE_REGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
static const char *const probe_ret_names[2] = {"x0", "x1"};

/* io layout: pattern at 0, registers after at 152, x0 at 304, x1 at 312. */
__asm__(".text\n"
        ".globl harness_reg_probe\n"
        ".hidden harness_reg_probe\n"
        ".type harness_reg_probe,%function\n"
        ".p2align 4\n"
        "harness_reg_probe:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    str x5, [sp, #160]\n"
        "    ldp x19, x20, [x5, #0]\n"
        "    ldp x21, x22, [x5, #16]\n"
        "    ldp x23, x24, [x5, #32]\n"
        "    ldp x25, x26, [x5, #48]\n"
        "    ldp x27, x28, [x5, #64]\n"
        "    ldr x29, [x5, #80]\n"
        "    ldp d8, d9, [x5, #88]\n"
        "    ldp d10, d11, [x5, #104]\n"
        "    ldp d12, d13, [x5, #120]\n"
        "    ldp d14, d15, [x5, #136]\n"
        "    bl coro_arch_enter\n"
        "    ldr x5, [sp, #160]\n"
        "    stp x19, x20, [x5, #152]\n"
        "    stp x21, x22, [x5, #168]\n"
        "    stp x23, x24, [x5, #184]\n"
        "    stp x25, x26, [x5, #200]\n"
        "    stp x27, x28, [x5, #216]\n"
        "    str x29, [x5, #232]\n"
        "    stp d8, d9, [x5, #240]\n"
        "    stp d10, d11, [x5, #256]\n"
        "    stp d12, d13, [x5, #272]\n"
        "    stp d14, d15, [x5, #288]\n"
        "    stp x0, x1, [x5, #304]\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size harness_reg_probe, .-harness_reg_probe\n"
        "\n"
        ".globl harness_caller_sp\n"
        ".hidden harness_caller_sp\n"
        ".type harness_caller_sp,%function\n"
        ".p2align 4\n"
        "harness_caller_sp:\n"
        "    mov x0, sp\n"
        "    ret\n"
        ".size harness_caller_sp, .-harness_caller_sp\n");

/* Floating-point control state of one context: FPCR. */
struct fpctl {
    uint64_t fpcr;
};

static struct fpctl fpctl_get(void)
{
    struct fpctl f;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(f.fpcr) : : "memory");
    return f;
}

static void fpctl_set(struct fpctl f)
{
    __asm__ __volatile__("msr fpcr, %0" : : "r"(f.fpcr) : "memory");
}

enum { R_NEAR, R_DOWN, R_UP, R_ZERO };

/* aarch64 has one FP unit; the x87 argument is ignored. FPCR.RMode: 0 RN, 1 RP, 2 RM, 3 RZ. */
static struct fpctl fpctl_round(struct fpctl f, int sse, int x87)
{
    static const uint64_t rmode[4] = {0, 2, 1, 3}; /* indexed by R_* */
    (void)x87;
    f.fpcr = (f.fpcr & ~(UINT64_C(3) << 22)) | (rmode[sse] << 22);
    return f;
}

static int fpctl_eq(struct fpctl a, struct fpctl b)
{
    return a.fpcr == b.fpcr;
}

static void fpctl_str(struct fpctl f, char *buf, size_t n)
{
    snprintf(buf, n, "fpcr=%#llx", (unsigned long long)f.fpcr);
}

/* Sticky FP exception flags: FPSR bits 0-4 and 7 (IXC, the inexact flag, is bit 4). */
#define FPFLAG_INEXACT 0x10u
static unsigned fpflags_get(void)
{
    uint64_t r;
    __asm__ __volatile__("mrs %0, fpsr" : "=r"(r) : : "memory");
    return (unsigned)(r & 0x9Fu);
}

static void fpflags_clear(void)
{
    uint64_t r;
    __asm__ __volatile__("mrs %0, fpsr" : "=r"(r) : : "memory");
    r &= ~UINT64_C(0x9F);
    __asm__ __volatile__("msr fpsr, %0" : : "r"(r) : "memory");
}

#endif

#define PROBE_PAT 0
#define PROBE_OUT N_PROBE_REGS
#define PROBE_RET (2 * N_PROBE_REGS)
#define PROBE_IO_WORDS (2 * N_PROBE_REGS + 2)

/* ---- the harness's runtime ----------------------------------------------------------------- */

/* One context: main (g_main_ctx) or a coroutine with its own stack. */
struct ctx {
    void *sp;               /* saved sp of this context while it is suspended */
    struct ctx *resumer;    /* who switched to it last */
    uintptr_t out_signal, out; /* what this context sent with its last switch */
    void **link;            /* its stack's link word, kept current on every switch; NULL: don't */
    struct stack stack;
    unsigned id;
    unsigned long arrivals; /* end hooks (rt_end or a wrapper) that ran arriving here */
    uint64_t magic;
};

#define CTX_MAGIC UINT64_C(0xC0DEC0DE5EED1234)

static struct ctx g_main_ctx = {.id = 0xFFFFu, .magic = CTX_MAGIC};
static struct ctx *g_cur = &g_main_ctx; /* the running context */
static void *g_expect_end_sp;           /* frame the next end hook must run just below */

/* When rt_begin takes the fast path for a plain switch (signal 0): */
enum { FAST_NEVER, FAST_ALWAYS, FAST_MIXED /* pseudo-randomly, per switch */ };
static int g_fast;
static uint64_t g_fast_seed;
static unsigned long g_fast_taken;

/* What the hooks found wrong: alignment, wrong stack, corrupted contexts. Checked after every
 * test (the hooks themselves must not print or take long). */
static struct {
    unsigned long calls;
    unsigned long bad;
    char first_bad[200];
} g_hooks;

static void hook_bad(const char *fmt, ...)
{
    if (g_hooks.bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_hooks.first_bad, sizeof g_hooks.first_bad, fmt, ap);
        va_end(ap);
    }
}

/* Checks the ABI's stack alignment inside a hook (csp: its sp at a call, frame: its frame
 * address), and that it runs on the stack just below the saved frame at `above`. */
static __attribute__((noinline)) void hook_check(const char *hook, uintptr_t csp, uintptr_t frame,
                                                 uintptr_t above)
{
    g_hooks.calls++;
    if (csp & 15)
        hook_bad("%s: sp %#lx at a call not 16-byte aligned", hook, (unsigned long)csp);
    if (frame & 15)
        hook_bad("%s: frame address %#lx not 16-byte aligned", hook, (unsigned long)frame);
    if (above && !(csp < above && above - csp < 1024))
        hook_bad("%s: running at sp %#lx, not just below the frame at %#lx", hook,
                 (unsigned long)csp, (unsigned long)above);
}

#define HOOK_CHECK(name, above)                                                                   \
    hook_check(name, harness_caller_sp(), (uintptr_t)__builtin_frame_address(0), (uintptr_t)(above))

static void check_on_stack(const char *hook, const struct ctx *c, uintptr_t sp)
{
    if (c->stack.base && !(sp > (uintptr_t)c->stack.base && sp < (uintptr_t)c->stack.top))
        hook_bad("%s: sp %#lx is not on context %u's stack", hook, (unsigned long)sp, c->id);
}

/* begin hook: a = the context to switch to (the running one: no switch), b = the value,
 * c = the signal. A plain switch (c == 0) may take the fast path, per g_fast. */
static __attribute__((noinline)) struct departure rt_begin(uintptr_t a, uintptr_t b, uintptr_t c,
                                                           void *sp)
{
    struct ctx *from = g_cur, *to = (struct ctx *)a;
    HOOK_CHECK("begin", sp);
    if (from->magic != CTX_MAGIC || to->magic != CTX_MAGIC) {
        hook_bad("begin: corrupted context (from %p, to %p)", (void *)from, (void *)to);
        abort();
    }
    if ((uintptr_t)sp & 15)
        hook_bad("begin: saved frame at %p not 16-byte aligned", sp);
    check_on_stack("begin", from, (uintptr_t)sp);
    from->sp = sp;
    from->out = b;
    from->out_signal = c;
    void *dest = to->sp;
    if (to != from) {
        if (!dest) {
            hook_bad("begin: switch to context %u, which is running", to->id);
            abort();
        }
        to->sp = NULL; /* running from now on */
        to->resumer = from;
        if (to->link)
            *to->link = &from->sp;
    }
    g_cur = to;
    g_expect_end_sp = dest;
    if (c == 0 && (g_fast == FAST_ALWAYS || (g_fast == FAST_MIXED && (splitmix(&g_fast_seed) & 1)))) {
        g_fast_taken++;
        return (struct departure){(void *)((uintptr_t)dest | FAST_BIT), (void *)b};
    }
    return (struct departure){dest, from};
}

/* end hook: ctx is the context that switched here; returns what it sent. */
static __attribute__((noinline)) struct arrival rt_end(void *ctx)
{
    struct ctx *from = ctx;
    HOOK_CHECK("end", g_expect_end_sp);
    if (from->magic != CTX_MAGIC)
        hook_bad("end: ctx %p is not a context", ctx);
    check_on_stack("end", g_cur, harness_caller_sp());
    g_cur->arrivals++;
    return (struct arrival){from->out_signal, from->out};
}

/* first end hook of a fresh stack: the entry gets the second word, the value. */
static unsigned long g_first_ends;
static __attribute__((noinline)) struct arrival rt_first_end(void *ctx)
{
    struct ctx *from = ctx;
    HOOK_CHECK("first_end", g_expect_end_sp);
    if (from->magic != CTX_MAGIC)
        hook_bad("first_end: ctx %p is not a context", ctx);
    check_on_stack("first_end", g_cur, harness_caller_sp());
    g_first_ends++;
    g_cur->arrivals++;
    return (struct arrival){from->out_signal, from->out};
}

static void ctx_init_with(struct ctx *c, struct stack st, unsigned id, entry_fn entry, void *data,
                          first_end_fn first_end)
{
    memset(c, 0, sizeof *c);
    c->stack = st;
    c->id = id;
    c->magic = CTX_MAGIC;
    c->sp = coro_arch_init_stack(st.top, entry, data ? data : (void *)c, first_end);
}

static void ctx_init(struct ctx *c, struct stack st, unsigned id, entry_fn entry, void *data)
{
    ctx_init_with(c, st, id, entry, data, rt_first_end);
}

/* Switch to `to` (which may be the running context: then no switch happens). */
static struct arrival ctx_switch2(struct ctx *to, uintptr_t v, uintptr_t signal)
{
    return coro_arch_enter((uintptr_t)to, v, signal, rt_begin, rt_end);
}

static uintptr_t ctx_switch(struct ctx *to, uintptr_t v)
{
    return ctx_switch2(to, v, 0).value;
}

/* Resume c from the running context (main or another context). */
static uintptr_t ctx_resume(struct ctx *c, uintptr_t v)
{
    return ctx_switch(c, v);
}

/* Called on c's own stack: suspend c and go back to its resumer. */
static uintptr_t ctx_yield(struct ctx *c, uintptr_t v)
{
    return ctx_switch(c->resumer, v);
}

/* The link word of a stack whose high end is top. */
static void **link_slot(void *top)
{
    return (void **)(((uintptr_t)top & ~(uintptr_t)15) - LINK_OFFSET);
}

/* Divisions whose results depend on the rounding mode; kept out of line and fed through
 * volatiles so the compiler cannot fold them or move them across the mode changes. */
struct fpresults {
    double d_pos, d_neg;          /* 1/3 and -1/3 in double (SSE / aarch64 FP) */
    long double ld_pos, ld_neg;   /* 1/3 and -1/3 in long double (x87 on x86_64) */
};

static volatile double vd_one = 1.0, vd_three = 3.0;
#if defined(__x86_64__)
static volatile long double vld_one = 1.0L, vld_three = 3.0L;
#endif

static __attribute__((noinline)) struct fpresults fp_compute(void)
{
    struct fpresults r;
    volatile double d;
    volatile long double ld;
    memset(&r, 0, sizeof r);
    d = vd_one / vd_three;
    r.d_pos = d;
    d = -vd_one / vd_three;
    r.d_neg = d;
#if defined(__x86_64__)
    ld = vld_one / vld_three;
    r.ld_pos = ld;
    ld = -vld_one / vld_three;
    r.ld_neg = ld;
#else
    (void)ld;
#endif
    return r;
}

static int fpresults_eq(const struct fpresults *a, const struct fpresults *b)
{
    return memcmp(&a->d_pos, &b->d_pos, sizeof a->d_pos) == 0 &&
           memcmp(&a->d_neg, &b->d_neg, sizeof a->d_neg) == 0 && a->ld_pos == b->ld_pos &&
           a->ld_neg == b->ld_neg;
}

static struct fpresults fp_compute_in_mode(int sse, int x87)
{
    struct fpctl saved = fpctl_get();
    struct fpresults r;
    fpctl_set(fpctl_round(saved, sse, x87));
    r = fp_compute();
    fpctl_set(saved);
    return r;
}

/* Raises the inexact flag (SSE / aarch64 FP). */
static __attribute__((noinline)) void fp_raise_inexact(void)
{
    volatile double d = vd_one / vd_three;
    (void)d;
}

/* ==== test: ping-pong ======================================================================== */

#define PP_CTXS 3
#define PP_ROUNDS 20000

struct pp_state {
    struct ctx c;
    uintptr_t first_value;
    void *first_data;
    unsigned long rounds_seen;
    unsigned long bad_values;
};

static uintptr_t pp_reply(unsigned id, uintptr_t v)
{
    return v * 3u + id + 1u;
}

static void pp_entry(void *data, uintptr_t value)
{
    struct pp_state *s = data;
    uintptr_t expect = value;
    s->first_value = value;
    s->first_data = data;
    for (;;) {
        if (value != expect)
            s->bad_values++;
        s->rounds_seen++;
        value = ctx_yield(&s->c, pp_reply(s->c.id, value));
        expect = (uintptr_t)s->rounds_seen * 7919u + s->c.id;
    }
}

static void test_pingpong(void)
{
    struct pp_state st[PP_CTXS];
    unsigned long first_ends = g_first_ends;
    for (unsigned i = 0; i < PP_CTXS; i++) {
        struct stack stk = i == 1 ? stack_malloc(64 * 1024) : stack_mmap(64 * 1024);
        memset(&st[i], 0, sizeof st[i]);
        ctx_init(&st[i].c, stk, i, pp_entry, &st[i]);
        CHECK(((uintptr_t)st[i].c.sp & 15) == 0, "init_stack returned misaligned sp %p",
              st[i].c.sp);
    }
    /* First values: distinct per context, delivered as entry's `value` argument. */
    for (unsigned i = 0; i < PP_CTXS; i++) {
        uintptr_t first = (uintptr_t)0xF1F1F1F1u + i;
        uintptr_t r = ctx_resume(&st[i].c, first);
        CHECK(st[i].first_value == first, "ctx %u: entry value %#lx, want %#lx", i,
              (unsigned long)st[i].first_value, (unsigned long)first);
        CHECK(st[i].first_data == &st[i], "ctx %u: entry data %p, want %p", i, st[i].first_data,
              (void *)&st[i]);
        CHECK(r == pp_reply(i, first), "ctx %u: first reply %#lx", i, (unsigned long)r);
    }
    for (unsigned long round = 1; round < PP_ROUNDS; round++) {
        for (unsigned i = 0; i < PP_CTXS; i++) {
            uintptr_t v = (uintptr_t)round * 7919u + i;
            uintptr_t r = ctx_resume(&st[i].c, v);
            if (r != pp_reply(i, v)) {
                CHECK(0, "ctx %u round %lu: got %#lx want %#lx", i, round, (unsigned long)r,
                      (unsigned long)pp_reply(i, v));
                break;
            }
        }
    }
    if (g_fast == FAST_NEVER)
        CHECK(g_first_ends - first_ends == PP_CTXS, "first_end ran %lu times, want %d",
              g_first_ends - first_ends, PP_CTXS);
    if (g_fast == FAST_ALWAYS)
        CHECK(g_first_ends == first_ends, "first_end ran on the fast path");
    for (unsigned i = 0; i < PP_CTXS; i++) {
        CHECK(st[i].rounds_seen == PP_ROUNDS, "ctx %u saw %lu rounds", i, st[i].rounds_seen);
        CHECK(st[i].bad_values == 0, "ctx %u received %lu wrong values", i, st[i].bad_values);
        if (g_fast != FAST_MIXED)
            CHECK(st[i].c.arrivals == (g_fast == FAST_NEVER ? PP_ROUNDS : 0),
                  "ctx %u: end hooks ran %lu times", i, st[i].c.arrivals);
        stack_free(&st[i].c.stack);
    }
}

/* ==== test: chain (context to context switches, not via main) ================================ */

static struct ctx g_chain[3];
static unsigned long g_chain_laps;

static void chain_entry(void *data, uintptr_t value)
{
    struct ctx *c = data;
    for (;;) {
        /* Context i passes the value on to i+1; the last hands it back to whoever resumed 0. */
        if (c->id + 1 < 3) {
            value = ctx_switch(&g_chain[c->id + 1], value + 1);
        } else {
            g_chain_laps++;
            value = ctx_switch(g_chain[0].resumer, value + 1);
        }
    }
}

static void test_chain(void)
{
    g_chain_laps = 0;
    for (unsigned i = 0; i < 3; i++)
        ctx_init(&g_chain[i], stack_mmap(64 * 1024), i, chain_entry, NULL);
    for (uintptr_t lap = 0; lap < 5000; lap++) {
        uintptr_t r = ctx_resume(&g_chain[0], lap * 10);
        if (r != lap * 10 + 3) {
            CHECK(0, "lap %lu: got %lu want %lu", (unsigned long)lap, (unsigned long)r,
                  (unsigned long)(lap * 10 + 3));
            break;
        }
    }
    CHECK(g_chain_laps == 5000, "laps %lu", g_chain_laps);
    CHECK(g_chain[2].resumer == &g_chain[1] && g_chain[1].resumer == &g_chain[0],
          "resumers not recorded along the chain");
    for (unsigned i = 0; i < 3; i++)
        stack_free(&g_chain[i].stack);
}

/* ==== test: callee-saved registers (and both result registers) ============================== */

#define REG_ROUNDS 200

struct reg_state {
    struct ctx c;
    unsigned long mismatches;
    unsigned long rounds;
    unsigned long bad_values;
    char first_bad[128];
};

static void make_pattern(uint64_t *io, uint64_t seed)
{
    for (int i = 0; i < PROBE_IO_WORDS; i++)
        io[i] = 0;
    for (int i = 0; i < N_PROBE_REGS; i++)
        io[PROBE_PAT + i] = splitmix(&seed);
}

static unsigned long compare_regs(const uint64_t *io, char *first, size_t n)
{
    unsigned long bad = 0;
    for (int i = 0; i < N_PROBE_REGS; i++) {
        if (io[PROBE_PAT + i] != io[PROBE_OUT + i]) {
            if (bad++ == 0 && first[0] == 0)
                snprintf(first, n, "%s = %#llx, want %#llx", probe_reg_names[i],
                         (unsigned long long)io[PROBE_OUT + i],
                         (unsigned long long)io[PROBE_PAT + i]);
        }
    }
    return bad;
}

/* The signal (first word) sent with value v: nonzero takes the end hook, 0 (fast variant) the
 * fast path. Either way the result is (signal, value). */
static uintptr_t reg_signal(uintptr_t v)
{
    return g_fast == FAST_ALWAYS ? 0 : (~v * 0x9E3779B1u) | 1;
}

static void reg_entry(void *data, uintptr_t value)
{
    struct reg_state *s = data;
    uint64_t io[PROBE_IO_WORDS];
    for (uint64_t round = 0;; round++) {
        /* Clobber every callee-saved register with this context's own pattern, switch away,
         * and check the pattern survived the other side's clobbering. */
        make_pattern(io, 0xBBBB0000u + round);
        harness_reg_probe((uintptr_t)s->c.resumer, value + 1, reg_signal(value + 1), rt_begin,
                          rt_end, io);
        s->mismatches += compare_regs(io, s->first_bad, sizeof s->first_bad);
        value = (uintptr_t)io[PROBE_RET + 1];
        if (io[PROBE_RET] != reg_signal(value))
            s->bad_values++;
        s->rounds++;
    }
}

static void test_callee_saved(void)
{
    struct reg_state s;
    uint64_t io[PROBE_IO_WORDS];
    char first[128] = "";
    unsigned long bad = 0;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, reg_entry, &s);
    for (uint64_t round = 0; round < REG_ROUNDS; round++) {
        make_pattern(io, 0xAAAA0000u + round);
        harness_reg_probe((uintptr_t)&s.c, round * 2, reg_signal(round * 2), rt_begin, rt_end,
                          io);
        bad += compare_regs(io, first, sizeof first);
        CHECK(io[PROBE_RET + 1] == round * 2 + 1, "round %lu: %s = %lu, want %lu",
              (unsigned long)round, probe_ret_names[1], (unsigned long)io[PROBE_RET + 1],
              (unsigned long)(round * 2 + 1));
        CHECK(io[PROBE_RET] == reg_signal(round * 2 + 1), "round %lu: %s = %#llx, want %#lx",
              (unsigned long)round, probe_ret_names[0], (unsigned long long)io[PROBE_RET],
              (unsigned long)reg_signal(round * 2 + 1));
        /* And across a begin that does not switch (the caller's own end hook runs, or none). */
        make_pattern(io, 0xCCCC0000u + round);
        harness_reg_probe((uintptr_t)&g_main_ctx, round, reg_signal(round), rt_begin, rt_end, io);
        bad += compare_regs(io, first, sizeof first);
        CHECK(io[PROBE_RET] == reg_signal(round) && io[PROBE_RET + 1] == round,
              "round %lu without a switch: result %#llx:%#llx", (unsigned long)round,
              (unsigned long long)io[PROBE_RET], (unsigned long long)io[PROBE_RET + 1]);
    }
    CHECK(bad == 0, "main side: %lu registers clobbered; first: %s", bad, first);
    CHECK(s.rounds == REG_ROUNDS - 1, "context rounds %lu", s.rounds);
    CHECK(s.mismatches == 0, "context side: %lu registers clobbered; first: %s", s.mismatches,
          s.first_bad);
    CHECK(s.bad_values == 0, "context side: %lu wrong second result words", s.bad_values);
    stack_free(&s.c.stack);
}

/* ==== test: floating-point control state is per context ====================================== */

struct fp_state {
    struct ctx c;
    struct fpctl seen_at_entry;
    struct fpctl seen_after_resume;
    struct fpctl own;
    struct fpresults res1, res2;
};

static void fp_entry(void *data, uintptr_t value)
{
    struct fp_state *s = data;
    (void)value;
    s->seen_at_entry = fpctl_get();
    /* Own mode: SSE/FPCR toward zero, x87 downward. */
    s->own = fpctl_round(s->seen_at_entry, R_ZERO, R_DOWN);
    fpctl_set(s->own);
    s->res1 = fp_compute();
    ctx_yield(&s->c, 1);
    /* main has changed its own mode meanwhile. */
    s->seen_after_resume = fpctl_get();
    s->res2 = fp_compute();
    ctx_yield(&s->c, 2);
    for (;;)
        ctx_yield(&s->c, 0);
}

static void inherit_entry(void *data, uintptr_t value)
{
    struct fp_state *s = data;
    (void)value;
    s->seen_at_entry = fpctl_get();
    s->res1 = fp_compute();
    for (;;)
        ctx_yield(&s->c, 3);
}

#if defined(__x86_64__)
/* Only one of the two x86 control registers differs between the contexts: each is compared and
 * restored on its own. */
static void x87only_entry(void *data, uintptr_t value)
{
    struct fp_state *s = data;
    (void)value;
    s->own = fpctl_round(fpctl_get(), R_NEAR, R_ZERO);
    fpctl_set(s->own);
    for (;;) {
        ctx_yield(&s->c, 0);
        s->seen_after_resume = fpctl_get();
        s->res2 = fp_compute();
    }
}
#endif

static void test_fp_control(void)
{
    char a[64], b[64];
    struct fpctl orig = fpctl_get();
    struct fpctl base = fpctl_round(orig, R_NEAR, R_NEAR);
    struct fpresults ref_near = fp_compute_in_mode(R_NEAR, R_NEAR);
    struct fpresults ref_up = fp_compute_in_mode(R_UP, R_UP);
    struct fpresults ref_ctx = fp_compute_in_mode(R_ZERO, R_DOWN);
    struct fpresults ref_inh = fp_compute_in_mode(R_DOWN, R_ZERO);
    struct fp_state s, t;

    /* Sanity: the chosen modes must give observably different results. */
    CHECK(memcmp(&ref_up.d_pos, &ref_near.d_pos, sizeof(double)) != 0,
          "rounding mode has no effect on double division");
    CHECK(memcmp(&ref_ctx.d_neg, &ref_inh.d_neg, sizeof(double)) != 0,
          "toward-zero and downward give the same -1/3");
#if defined(__x86_64__)
    /* In extended precision 1/3 rounds up to nearest, so compare -1/3 here. */
    CHECK(ref_up.ld_neg != ref_near.ld_neg, "x87 rounding mode has no effect");
    CHECK(ref_ctx.ld_neg != ref_inh.ld_neg, "x87 downward and toward-zero agree on -1/3");
#endif

    fpctl_set(base);

    /* 1. Context changes its mode; main keeps its own, and vice versa. */
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, fp_entry, &s);
    ctx_resume(&s.c, 0);
    fpctl_str(s.seen_at_entry, a, sizeof a);
    fpctl_str(base, b, sizeof b);
    CHECK(fpctl_eq(s.seen_at_entry, base), "fresh context started with %s, creator had %s", a, b);
    fpctl_str(fpctl_get(), a, sizeof a);
    CHECK(fpctl_eq(fpctl_get(), base), "main's FP control leaked from context: %s, want %s", a,
          b);
    {
        struct fpresults m = fp_compute();
        CHECK(fpresults_eq(&m, &ref_near), "main's arithmetic not round-to-nearest");
    }
    CHECK(fpresults_eq(&s.res1, &ref_ctx), "context arithmetic not in its own mode (1)");

    struct fpctl main_up = fpctl_round(base, R_UP, R_UP);
    fpctl_set(main_up);
    ctx_resume(&s.c, 0);
    fpctl_str(s.seen_after_resume, a, sizeof a);
    fpctl_str(s.own, b, sizeof b);
    CHECK(fpctl_eq(s.seen_after_resume, s.own), "context resumed with %s, want its own %s", a, b);
    CHECK(fpresults_eq(&s.res2, &ref_ctx), "context arithmetic not in its own mode (2)");
    fpctl_str(fpctl_get(), a, sizeof a);
    fpctl_str(main_up, b, sizeof b);
    CHECK(fpctl_eq(fpctl_get(), main_up), "main resumed with %s, want %s", a, b);
    {
        struct fpresults m = fp_compute();
        CHECK(fpresults_eq(&m, &ref_up), "main's arithmetic not rounding upward");
    }
    fpctl_set(base);
    stack_free(&s.c.stack);

    /* 2. A fresh context inherits the creator's mode at creation time. */
    memset(&t, 0, sizeof t);
    struct fpctl creator = fpctl_round(base, R_DOWN, R_ZERO);
    fpctl_set(creator);
    ctx_init(&t.c, stack_mmap(64 * 1024), 1, inherit_entry, &t);
    fpctl_set(base);
    ctx_resume(&t.c, 0);
    fpctl_str(t.seen_at_entry, a, sizeof a);
    fpctl_str(creator, b, sizeof b);
    CHECK(fpctl_eq(t.seen_at_entry, creator), "context started with %s, creator had %s", a, b);
    CHECK(fpresults_eq(&t.res1, &ref_inh), "inherited mode not in effect");
    CHECK(fpctl_eq(fpctl_get(), base), "main's mode changed by switching back");
    stack_free(&t.c.stack);

#if defined(__x86_64__)
    /* 3. Only the x87 control word differs (MXCSR equal): it alone must be swapped. */
    memset(&t, 0, sizeof t);
    ctx_init(&t.c, stack_mmap(64 * 1024), 2, x87only_entry, &t);
    ctx_resume(&t.c, 0);
    fpctl_str(fpctl_get(), a, sizeof a);
    fpctl_str(base, b, sizeof b);
    CHECK(fpctl_eq(fpctl_get(), base), "x87 only: main came back with %s, want %s", a, b);
    ctx_resume(&t.c, 0);
    fpctl_str(t.seen_after_resume, a, sizeof a);
    fpctl_str(t.own, b, sizeof b);
    CHECK(fpctl_eq(t.seen_after_resume, t.own), "x87 only: context resumed with %s, want %s", a,
          b);
    {
        struct fpresults want = fp_compute_in_mode(R_NEAR, R_ZERO);
        CHECK(fpresults_eq(&t.res2, &want), "x87 only: context arithmetic not in its mode");
    }
    CHECK(fpctl_eq(fpctl_get(), base), "x87 only: main's mode changed");
    stack_free(&t.c.stack);

    /* 4. Only MXCSR's control bits differ (x87 equal). */
    memset(&s, 0, sizeof s);
    fpctl_set(fpctl_round(base, R_NEAR, R_DOWN)); /* x87 downward, like fp_entry's own mode */
    ctx_init(&s.c, stack_mmap(64 * 1024), 3, fp_entry, &s);
    ctx_resume(&s.c, 0);
    CHECK(fpctl_eq(fpctl_get(), fpctl_round(base, R_NEAR, R_DOWN)),
          "MXCSR only: main's mode changed");
    ctx_resume(&s.c, 0);
    fpctl_str(s.seen_after_resume, a, sizeof a);
    fpctl_str(s.own, b, sizeof b);
    CHECK(fpctl_eq(s.seen_after_resume, s.own), "MXCSR only: context resumed with %s, want %s", a,
          b);
    CHECK(fpresults_eq(&s.res2, &ref_ctx), "MXCSR only: context arithmetic not in its mode");
    stack_free(&s.c.stack);
#endif

    fpctl_set(orig);
}

/* ==== test: sticky FP exception flags stay with the thread =================================== */

/* The design keeps the control state per context but the exception flags (MXCSR bits 0-5,
 * FPSR) per thread: a flag raised in a context is still set after switching away, and a
 * context does not get its old flags back when resumed. */

struct flags_state {
    struct ctx c;
    int own_mode; /* set a rounding mode of its own: every switch reloads the control state */
    unsigned at_entry, at_resume, after_raise;
};

static void flags_entry(void *data, uintptr_t value)
{
    struct flags_state *s = data;
    (void)value;
    s->at_entry = fpflags_get();
    if (s->own_mode)
        fpctl_set(fpctl_round(fpctl_get(), R_ZERO, R_DOWN));
    fp_raise_inexact();
    s->after_raise = fpflags_get();
    ctx_yield(&s->c, 1);
    s->at_resume = fpflags_get();
    for (;;)
        ctx_yield(&s->c, 2);
}

static void run_flags_test(int own_mode)
{
    struct flags_state s;
    struct fpctl orig = fpctl_get();
    fpctl_set(fpctl_round(orig, R_NEAR, R_NEAR));
    memset(&s, 0, sizeof s);
    s.own_mode = own_mode;
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, flags_entry, &s);

    fpflags_clear();
    ctx_resume(&s.c, 0);
    unsigned main_after_ctx = fpflags_get();
    CHECK(s.at_entry == 0, "context started with flags %#x, the thread had none", s.at_entry);
    CHECK(s.after_raise & FPFLAG_INEXACT, "1/3 did not raise inexact (flags %#x)",
          s.after_raise);
    CHECK(main_after_ctx & FPFLAG_INEXACT,
          "inexact raised in the context is gone after switching back to main (flags %#x)",
          main_after_ctx);

    /* main raises, clears again: the context must not see its own old flag come back. */
    fpflags_clear();
    ctx_resume(&s.c, 0);
    unsigned main_end = fpflags_get();
    CHECK(s.at_resume == 0, "context resumed with flags %#x (its own old ones?), thread had none",
          s.at_resume);
    CHECK(main_end == 0, "main came back with flags %#x, none were raised", main_end);

    /* And a flag main raises while the context is suspended is seen by the context. */
    fp_raise_inexact();
    ctx_resume(&s.c, 0);
    CHECK(fpflags_get() & FPFLAG_INEXACT, "main's own inexact flag lost over a switch");

    fpflags_clear();
    fpctl_set(orig);
    stack_free(&s.c.stack);
}

/* Same control state everywhere: the switch never reloads it. */
static void test_fp_flags(void)
{
    run_flags_test(0);
}

/* The context has its own rounding mode: every switch reloads the control state, which must not
 * bring back the flags saved with it. */
static void test_fp_flags_mode_change(void)
{
    run_flags_test(1);
}

/* ==== test: stack alignment in entry (and the fresh stack's layout) ========================== */

struct align_state {
    struct ctx c;
    uintptr_t local_addr;
    uintptr_t caller_sp;
    uintptr_t frame;
};

static __attribute__((noinline)) void align_entry(void *data, uintptr_t value)
{
    struct align_state *s = data;
    alignas(16) volatile unsigned char buf[16];
    (void)value;
    buf[0] = 1;
    s->local_addr = (uintptr_t)&buf[0];
    s->caller_sp = harness_caller_sp();
    s->frame = (uintptr_t)__builtin_frame_address(0);
    for (;;)
        ctx_yield(&s->c, 0);
}

static void test_alignment(void)
{
    static const size_t offsets[] = {0, 1, 3, 7, 8, 9, 15, 16, 24};
    unsigned long hooks = g_hooks.calls;
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        struct align_state s;
        struct stack st = stack_mmap(64 * 1024);
        unsigned char *top = st.top - 64 - offsets[k];
        uintptr_t atop = (uintptr_t)top & ~(uintptr_t)15;
        memset(&s, 0, sizeof s);
        memset(st.base, 0xAA, (size_t)(st.top - st.base));
        s.c.stack = st;
        s.c.magic = CTX_MAGIC;
        s.c.id = (unsigned)k;
        s.c.sp = coro_arch_init_stack(top, align_entry, &s, rt_first_end);
        uintptr_t sp = (uintptr_t)s.c.sp;
        CHECK((sp & 15) == 0, "top-%zu: init sp %#lx misaligned", offsets[k], (unsigned long)sp);
        CHECK(sp == atop - LINK_OFFSET - FRAME_SIZE, "top-%zu: init sp is top-%ld, want top-%d",
              offsets[k], (long)(atop - sp), LINK_OFFSET + FRAME_SIZE);
        /* init_stack writes [sp, aligned top) and nothing else. */
        for (unsigned char *p = st.base; p < (unsigned char *)sp; p++)
            if (*p != 0xAA) {
                CHECK(0, "top-%zu: init_stack wrote below its sp, at top-%ld", offsets[k],
                      (long)(atop - (uintptr_t)p));
                break;
            }
        for (unsigned char *p = (unsigned char *)atop; p < st.top; p++)
            CHECK(*p == 0xAA, "top-%zu: init_stack wrote above the aligned top", offsets[k]);
        ctx_resume(&s.c, 0);
        CHECK((s.local_addr & 15) == 0, "top-%zu: alignas(16) local at %#lx", offsets[k],
              (unsigned long)s.local_addr);
        CHECK((s.caller_sp & 15) == 0, "top-%zu: sp at a call in entry %#lx not 16-aligned",
              offsets[k], (unsigned long)s.caller_sp);
        CHECK((s.frame & 15) == 0, "top-%zu: frame address %#lx not 16-aligned", offsets[k],
              (unsigned long)s.frame);
        CHECK(s.caller_sp < atop - LINK_OFFSET && s.caller_sp > (uintptr_t)st.base,
              "top-%zu: entry not running on its stack below the link word", offsets[k]);
        stack_free(&st);
    }
    /* The hooks (begin, first_end, end; on the fast path begin only) check their own alignment
     * on every call. */
    CHECK(g_hooks.calls - hooks >= (g_fast == FAST_NEVER ? 4u : 2u) * (sizeof offsets / sizeof offsets[0]),
          "hooks checked only %lu times", g_hooks.calls - hooks);
}

/* ==== test: the link word of a fresh stack =================================================== */

static void test_link_word(void)
{
    static const size_t offsets[] = {0, 1, 8, 15, 16, 40};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        struct stack st = stack_mmap(16 * 1024);
        unsigned char *top = st.top - offsets[k];
        uintptr_t atop = (uintptr_t)top & ~(uintptr_t)15;
        memset(st.base, 0x55, (size_t)(st.top - st.base));
        coro_arch_init_stack(top, align_entry, NULL, rt_first_end);
        /* The link word for unwinders starts out pointing at itself (see the trampoline's CFI). */
        uintptr_t link = atop - LINK_OFFSET;
        CHECK((uintptr_t)link_slot(top) == link, "link_slot");
        CHECK(*(uintptr_t *)link == link, "top-%zu: link word at top-%d is %#lx, want %#lx",
              offsets[k], LINK_OFFSET, (unsigned long)*(uintptr_t *)link, (unsigned long)link);
        /* The rest of the reserved area is zero: the saved slots the trampoline's CFI reads for
         * a fresh stack, a return address of 0 among them. */
        for (unsigned char *p = (unsigned char *)link + 8; p < (unsigned char *)atop; p++)
            if (*p != 0) {
                CHECK(0, "top-%zu: reserved byte at top-%ld not zeroed", offsets[k],
                      (long)(atop - (uintptr_t)p));
                break;
            }
        /* The fresh frame's return address (just below the link word) is in the trampoline. */
        uintptr_t ra = *(uintptr_t *)(link - 8);
        uintptr_t tr = (uintptr_t)&coro_arch_trampoline;
        CHECK(ra > tr && ra <= tr + 8, "top-%zu: fresh return address %#lx, trampoline at %#lx",
              offsets[k], (unsigned long)ra, (unsigned long)tr);
        stack_free(&st);
    }
}

/* ==== test: first_end's result (second word) reaches entry as its value ====================== */

struct fe_state {
    struct ctx c;
    uintptr_t value;
    void *data;
    uintptr_t entry_sp;
    unsigned long first_ends_at_entry;
};

static struct {
    unsigned long calls;
    void *ctx;
    struct ctx *running;
    uintptr_t sp;
} g_fe;

static uintptr_t fe_transform(uintptr_t v)
{
    return v * 5u + 0x1234567u;
}

static __attribute__((noinline)) struct arrival fe_first_end(void *ctx)
{
    struct ctx *from = ctx;
    HOOK_CHECK("fe_first_end", g_expect_end_sp);
    g_fe.calls++;
    g_fe.ctx = ctx;
    g_fe.running = g_cur;
    g_fe.sp = harness_caller_sp();
    /* The first word goes nowhere: the entry gets the second. */
    return (struct arrival){UINT64_C(0xBADBADBAD), fe_transform(from->out)};
}

/* An end hook that must not run: the resumed frame's end runs, not the resumer's. */
static unsigned long g_wrong_end_calls;
static struct arrival wrong_end(void *ctx)
{
    g_wrong_end_calls++;
    return rt_end(ctx);
}

static void fe_entry(void *data, uintptr_t value)
{
    struct fe_state *s = data;
    s->value = value;
    s->data = data;
    s->entry_sp = harness_caller_sp();
    s->first_ends_at_entry = g_fe.calls;
    for (;;)
        ctx_yield(&s->c, value);
}

static void test_first_end_value(void)
{
    struct fe_state s;
    memset(&s, 0, sizeof s);
    memset(&g_fe, 0, sizeof g_fe);
    g_wrong_end_calls = 0;
    ctx_init_with(&s.c, stack_mmap(64 * 1024), 7, fe_entry, &s, fe_first_end);
    uintptr_t first = (uintptr_t)0xFEEDF00Du;
    /* main's own end hook is wrong_end: on the way in, first_end must run instead. */
    struct arrival r = coro_arch_enter((uintptr_t)&s.c, first, 0, rt_begin, wrong_end);
    CHECK(g_fe.calls == 1, "first_end ran %lu times", g_fe.calls);
    CHECK(s.first_ends_at_entry == 1, "entry ran before first_end");
    CHECK(g_fe.ctx == &g_main_ctx, "first_end got ctx %p, begin returned %p", g_fe.ctx,
          (void *)&g_main_ctx);
    CHECK(g_fe.running == &s.c, "first_end ran with the wrong context current");
    CHECK(g_fe.sp > (uintptr_t)s.c.stack.base && g_fe.sp < (uintptr_t)s.c.stack.top,
          "first_end did not run on the fresh stack (sp %#lx)", (unsigned long)g_fe.sp);
    CHECK(s.value == fe_transform(first),
          "entry value %#lx, want the second word of first_end's result, %#lx",
          (unsigned long)s.value, (unsigned long)fe_transform(first));
    CHECK(s.data == &s, "entry data %p, want %p", s.data, (void *)&s);
    CHECK(r.value == fe_transform(first), "reply %#lx", (unsigned long)r.value);
    /* Coming back, main's frame holds wrong_end: that is the end hook that must run now. */
    CHECK(g_wrong_end_calls == 1, "main's end hook ran %lu times, want once (on the way back)",
          g_wrong_end_calls);
    /* first_end runs once per stack: later switches in run the frame's end hook. */
    ctx_resume(&s.c, 1);
    CHECK(g_fe.calls == 1, "first_end ran again");
    stack_free(&s.c.stack);
}

/* ==== test: the end hook that runs is the one saved in the arriving frame ==================== */

#define TAG_MAIN UINT64_C(0x4D41494E)
#define TAG_CTX UINT64_C(0x43545820)
#define TAG_SELF UINT64_C(0x53454C46)

static struct {
    unsigned long main_runs, ctx_runs, self_runs, wrong_stack;
} g_tags;

static struct ctx *g_tag_ctx;

static struct arrival end_main(void *ctx)
{
    struct arrival r = rt_end(ctx);
    g_tags.main_runs++;
    if (g_cur != &g_main_ctx)
        g_tags.wrong_stack++;
    r.signal = TAG_MAIN;
    return r;
}

static struct arrival end_ctx(void *ctx)
{
    struct arrival r = rt_end(ctx);
    g_tags.ctx_runs++;
    if (g_cur != g_tag_ctx)
        g_tags.wrong_stack++;
    r.signal = TAG_CTX;
    return r;
}

static struct arrival end_self(void *ctx)
{
    struct arrival r = rt_end(ctx);
    g_tags.self_runs++;
    r.signal = TAG_SELF;
    return r;
}

struct tag_state {
    struct ctx c;
    unsigned long bad;
    unsigned long rounds;
};

static void tag_entry(void *data, uintptr_t value)
{
    struct tag_state *s = data;
    for (;;) {
        struct arrival r = coro_arch_enter((uintptr_t)s->c.resumer, value + 1, 0, rt_begin,
                                           end_ctx);
        if (r.signal != TAG_CTX || r.value != value + 2)
            s->bad++;
        value = r.value;
        /* No switch from inside the context: its own end hook for this call runs. */
        r = coro_arch_enter((uintptr_t)&s->c, value, 0, rt_begin, end_self);
        if (r.signal != TAG_SELF || r.value != value)
            s->bad++;
        s->rounds++;
    }
}

static void test_end_per_frame(void)
{
    struct tag_state s;
    memset(&s, 0, sizeof s);
    memset(&g_tags, 0, sizeof g_tags);
    g_tag_ctx = &s.c;
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, tag_entry, &s);
    uintptr_t v = 100;
    for (int round = 0; round < 1000; round++) {
        struct arrival r = coro_arch_enter((uintptr_t)&s.c, v, 0, rt_begin, end_main);
        if (r.signal != TAG_MAIN || r.value != v + 1) {
            CHECK(0, "round %d: got %#lx:%#lx, want %#lx:%#lx", round, (unsigned long)r.signal,
                  (unsigned long)r.value, (unsigned long)TAG_MAIN, (unsigned long)(v + 1));
            break;
        }
        v = r.value + 1;
        r = coro_arch_enter((uintptr_t)&g_main_ctx, v, 7, rt_begin, end_self);
        CHECK(r.signal == TAG_SELF && r.value == v, "main, no switch: %#lx:%#lx",
              (unsigned long)r.signal, (unsigned long)r.value);
    }
    CHECK(s.bad == 0, "context saw %lu wrong results", s.bad);
    CHECK(s.rounds == 999, "context rounds %lu", s.rounds);
    CHECK(g_tags.main_runs == 1000, "main's end hook ran %lu times", g_tags.main_runs);
    CHECK(g_tags.ctx_runs == 999, "context's end hook ran %lu times", g_tags.ctx_runs);
    CHECK(g_tags.self_runs == 1000 + 999, "no-switch end hooks ran %lu times", g_tags.self_runs);
    CHECK(g_tags.wrong_stack == 0, "%lu end hooks ran on the wrong context", g_tags.wrong_stack);
    stack_free(&s.c.stack);
}

/* ==== test: begin returning the caller's own sp (no switch) ================================== */

static struct {
    int fast; /* ns_begin takes the fast path: (sp | FAST_BIT, a + c) */
    uintptr_t a, b, c;
    void *sp;
    unsigned long begins, ends;
    void *end_ctx;
    uintptr_t end_sp;
} g_ns;

static char g_ns_token;

static __attribute__((noinline)) struct departure ns_begin(uintptr_t a, uintptr_t b, uintptr_t c,
                                                           void *sp)
{
    HOOK_CHECK("ns_begin", sp);
    g_ns.a = a;
    g_ns.b = b;
    g_ns.c = c;
    g_ns.sp = sp;
    g_ns.begins++;
    if (g_ns.fast)
        return (struct departure){(void *)((uintptr_t)sp | FAST_BIT), (void *)(a + c)};
    return (struct departure){sp, &g_ns_token};
}

static __attribute__((noinline)) struct arrival ns_end(void *ctx)
{
    HOOK_CHECK("ns_end", g_ns.sp);
    g_ns.ends++;
    g_ns.end_ctx = ctx;
    g_ns.end_sp = harness_caller_sp();
    return (struct arrival){g_ns.c + 1, g_ns.a ^ g_ns.b};
}

/* Calls coro_arch_enter from a known stack pointer (*caller_sp: sp at the call). */
static __attribute__((noinline)) struct arrival ns_call(uintptr_t a, uintptr_t b, uintptr_t c,
                                                       uintptr_t *caller_sp)
{
    *caller_sp = harness_caller_sp();
    struct arrival r = coro_arch_enter(a, b, c, ns_begin, ns_end);
    __asm__ __volatile__("" : "+r"(r.signal), "+r"(r.value) : : "memory"); /* no tail call */
    return r;
}

struct ns_state {
    struct ctx c;
    unsigned long bad;
    uintptr_t last_sp;
};

/* Checks one no-switch call; returns the number of problems (reported through CHECK). */
static int ns_check(const char *where, uintptr_t a, uintptr_t b, uintptr_t c, struct arrival r,
                    uintptr_t caller_sp, unsigned long begins, unsigned long ends)
{
    int before = g_failed_checks;
    unsigned long want_ends = g_ns.fast ? 0 : 1;
    CHECK(g_ns.begins == begins + 1 && g_ns.ends == ends + want_ends,
          "%s: begin ran %lu, end %lu times", where, g_ns.begins - begins, g_ns.ends - ends);
    CHECK(g_ns.a == a && g_ns.b == b && g_ns.c == c, "%s: begin got %#lx %#lx %#lx", where,
          (unsigned long)g_ns.a, (unsigned long)g_ns.b, (unsigned long)g_ns.c);
    CHECK((uintptr_t)g_ns.sp == caller_sp - FRAME_SIZE,
          "%s: begin's sp %p, want the caller's sp %#lx - %d", where, g_ns.sp,
          (unsigned long)caller_sp, FRAME_SIZE);
    if (g_ns.fast) {
        CHECK(r.signal == 0 && r.value == a + c, "%s, fast: result %#lx:%#lx, want 0:%#lx", where,
              (unsigned long)r.signal, (unsigned long)r.value, (unsigned long)(a + c));
        return g_failed_checks - before;
    }
    CHECK(g_ns.end_ctx == &g_ns_token, "%s: end got ctx %p, want begin's %p", where, g_ns.end_ctx,
          (void *)&g_ns_token);
    CHECK(g_ns.end_sp < (uintptr_t)g_ns.sp && (uintptr_t)g_ns.sp - g_ns.end_sp < 1024,
          "%s: end ran at %#lx, not on the caller's stack below %p", where,
          (unsigned long)g_ns.end_sp, g_ns.sp);
    CHECK(r.signal == c + 1 && r.value == (a ^ b), "%s: result %#lx:%#lx, want %#lx:%#lx", where,
          (unsigned long)r.signal, (unsigned long)r.value, (unsigned long)(c + 1),
          (unsigned long)(a ^ b));
    return g_failed_checks - before;
}

static void ns_entry(void *data, uintptr_t value)
{
    struct ns_state *s = data;
    for (;;) {
        uintptr_t csp;
        unsigned long begins = g_ns.begins, ends = g_ns.ends;
        struct arrival r = ns_call(value, value * 3, ~value, &csp);
        s->bad += (unsigned long)ns_check("in a context", value, value * 3, ~value, r, csp,
                                          begins, ends);
        s->last_sp = csp;
        g_ns.fast ^= 1; /* alternate with the fast path */
        value = ctx_yield(&s->c, r.value);
    }
}

static void test_no_switch(void)
{
    uint64_t io[PROBE_IO_WORDS];
    memset(&g_ns, 0, sizeof g_ns);

    /* From main, several times, with the end hook and on the fast path. */
    for (uintptr_t i = 0; i < 200; i++) {
        uintptr_t csp, a = 0x1111 + i, b = 0x2222 << (i % 8), c = 0x3333 * i;
        unsigned long begins = g_ns.begins, ends = g_ns.ends;
        g_ns.fast = (int)(i & 1);
        struct arrival r = ns_call(a, b, c, &csp);
        if (ns_check(g_ns.fast ? "main, fast" : "main", a, b, c, r, csp, begins, ends))
            break;
    }

    /* Registers survive and the result arrives in both registers. */
    for (int fast = 0; fast < 2; fast++) {
        char first[128] = "";
        uintptr_t want0 = fast ? 0 : 8, want1 = fast ? 5 + 7 : 5 ^ 6;
        g_ns.fast = fast;
        make_pattern(io, 0xDDDDu + (unsigned)fast);
        harness_reg_probe(5, 6, 7, ns_begin, ns_end, io);
        unsigned long bad = compare_regs(io, first, sizeof first);
        CHECK(bad == 0, "no switch (fast %d): %lu registers clobbered; first: %s", fast, bad,
              first);
        CHECK(io[PROBE_RET] == want0 && io[PROBE_RET + 1] == want1,
              "no switch (fast %d): %s:%s = %#llx:%#llx, want %#lx:%#lx", fast,
              probe_ret_names[0], probe_ret_names[1], (unsigned long long)io[PROBE_RET],
              (unsigned long long)io[PROBE_RET + 1], (unsigned long)want0, (unsigned long)want1);
    }
    g_ns.fast = 0;

    /* From a context, interleaved with real switches. */
    struct ns_state s;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, ns_entry, &s);
    for (uintptr_t i = 1; i <= 100; i++) {
        uintptr_t v = i * 0x10001;
        uintptr_t r = ctx_resume(&s.c, v);
        /* The context alternates: end hook (a ^ b) in odd rounds, fast path (a + c) in even. */
        uintptr_t want = (i & 1) ? v ^ (v * 3) : v + ~v;
        CHECK(r == want, "context round %lu: reply %#lx, want %#lx", (unsigned long)i,
              (unsigned long)r, (unsigned long)want);
        if (g_failed_checks)
            break;
    }
    CHECK(s.bad == 0, "context: %lu problems", s.bad);
    CHECK(s.last_sp > (uintptr_t)s.c.stack.base && s.last_sp < (uintptr_t)s.c.stack.top,
          "context's no-switch calls not on its stack");
    stack_free(&s.c.stack);
}

/* ==== test: end's two-word result arrives in both registers ================================== */

struct tw_state {
    struct ctx c;
    unsigned long bad;
};

static void tw_entry(void *data, uintptr_t value)
{
    struct tw_state *s = data;
    uint64_t io[PROBE_IO_WORDS];
    uintptr_t signal = 1;
    for (uint64_t round = 0;; round++) {
        make_pattern(io, round);
        /* Send (signal, value) back swapped and inverted; receive through the probe. */
        harness_reg_probe((uintptr_t)s->c.resumer, ~signal, ~value, rt_begin, rt_end, io);
        signal = (uintptr_t)io[PROBE_RET];
        value = (uintptr_t)io[PROBE_RET + 1];
        if (signal != (value * 31u + 17u) || signal == 0)
            s->bad++;
    }
}

static void test_two_word_result(void)
{
    struct tw_state s;
    uint64_t io[PROBE_IO_WORDS];
    uint64_t seed = 99;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, tw_entry, &s);
    /* The first switch: the entry gets only the value; then every word pair counts. */
    ctx_resume(&s.c, 0);
    for (int round = 0; round < 1000; round++) {
        uintptr_t v = (uintptr_t)splitmix(&seed);
        uintptr_t x = v * 31u + 17u; /* the signal; nonzero: the end hook runs */
        make_pattern(io, (uint64_t)round + 1000);
        harness_reg_probe((uintptr_t)&s.c, v, x, rt_begin, rt_end, io);
        if (io[PROBE_RET] != ~v || io[PROBE_RET + 1] != ~x) {
            CHECK(0, "round %d: %s:%s = %#llx:%#llx, want %#lx:%#lx", round, probe_ret_names[0],
                  probe_ret_names[1], (unsigned long long)io[PROBE_RET],
                  (unsigned long long)io[PROBE_RET + 1], (unsigned long)~v, (unsigned long)~x);
            break;
        }
        /* The same through the C declaration (struct in rax:rdx / x0:x1). */
        struct arrival r = ctx_switch2(&s.c, v + 1, (v + 1) * 31u + 17u);
        if (r.signal != ~(v + 1) || r.value != ~((v + 1) * 31u + 17u)) {
            CHECK(0, "round %d (C): %#lx:%#lx", round, (unsigned long)r.signal,
                  (unsigned long)r.value);
            break;
        }
    }
    CHECK(s.bad == 0, "context received %lu wrong word pairs", s.bad);
    stack_free(&s.c.stack);
}

/* ==== test: deep recursion with floating point inside a context ============================= */

#define REC_DEPTH 20000

struct rec_state {
    struct ctx c;
    int in_context;
    double result;
    unsigned long max_depth_switches;
};

static struct rec_state *g_rec;

static __attribute__((noinline)) double rec(int n, double x)
{
    volatile double pad[4];
    pad[0] = x;
    pad[1] = x * 0.5;
    pad[2] = x + 1.25;
    pad[3] = (double)n;
    if (n == 0) {
        uintptr_t r = 77;
        if (g_rec->in_context) {
            /* Suspend at the bottom of the recursion; main does its own FP work meanwhile. */
            r = ctx_yield(&g_rec->c, 1);
            g_rec->max_depth_switches++;
        }
        return x + (double)r;
    }
    if (n % 5000 == 0 && g_rec->in_context) {
        /* Also switch away half-way down, with FP values live in callee-saved registers. */
        ctx_yield(&g_rec->c, 2);
        g_rec->max_depth_switches++;
    }
    double y = rec(n - 1, x * 1.0000001 + 0.25);
    return y * 0.9999999 + pad[n & 3] / 3.0;
}

static void rec_entry(void *data, uintptr_t value)
{
    struct rec_state *s = data;
    (void)value;
    s->result = rec(REC_DEPTH, 1.5);
    for (;;)
        ctx_yield(&s->c, 3);
}

static __attribute__((noinline)) double main_fp_noise(int k)
{
    volatile double acc = 0;
    for (int i = 1; i < 200; i++)
        acc = acc * 1.0001 + (double)(i * k) / 7.0;
    return acc;
}

static void test_deep_recursion(void)
{
    struct rec_state s;
    memset(&s, 0, sizeof s);
    g_rec = &s;
    s.in_context = 0;
    double ref = rec(REC_DEPTH, 1.5);

    ctx_init(&s.c, stack_mmap(8u << 20), 0, rec_entry, &s);
    s.in_context = 1;
    uintptr_t r;
    int switches = 0;
    double noise = 0;
    while ((r = ctx_resume(&s.c, 77)) != 3) {
        switches++;
        noise += main_fp_noise(switches);
        if (switches > 100)
            break;
    }
    CHECK(r == 3, "recursion did not finish (last value %lu)", (unsigned long)r);
    CHECK(switches == REC_DEPTH / 5000 + 1, "%d switches", switches);
    CHECK(memcmp(&s.result, &ref, sizeof ref) == 0, "result %.17g, reference %.17g", s.result,
          ref);
    CHECK(noise > 0, "noise");
    stack_free(&s.c.stack);
    g_rec = NULL;
}

/* ==== test: many contexts interleaved ======================================================== */

#define IL_CTXS 10
#define IL_STEPS 50000

struct il_model {
    uint64_t h;
    double acc;
    unsigned long count;
};

static void il_step(struct il_model *m, unsigned id, uintptr_t v)
{
    m->h = m->h * UINT64_C(6364136223846793005) + (uint64_t)v + id;
    m->acc = m->acc * 0.75 + (double)(v % 1000) / 7.0 + (double)id;
    m->count++;
}

static uintptr_t il_reply(const struct il_model *m, unsigned id)
{
    uint64_t acc_bits;
    memcpy(&acc_bits, &m->acc, sizeof acc_bits);
    return (uintptr_t)(m->h ^ acc_bits ^ id);
}

struct il_state {
    struct ctx c;
    struct il_model final;
};

static void il_entry(void *data, uintptr_t value)
{
    struct il_state *s = data;
    unsigned id = s->c.id;
    /* State lives in locals (registers) across the switches. */
    struct il_model m;
    m.h = id * UINT64_C(0x9E3779B97F4A7C15);
    m.acc = (double)id;
    m.count = 0;
    for (;;) {
        il_step(&m, id, value);
        s->final = m;
        value = ctx_yield(&s->c, il_reply(&m, id));
    }
}

static void test_interleaved(void)
{
    struct il_state st[IL_CTXS];
    struct il_model model[IL_CTXS];
    uint64_t seed = 12345;
    unsigned long bad = 0;
    for (unsigned i = 0; i < IL_CTXS; i++) {
        memset(&st[i], 0, sizeof st[i]);
        ctx_init(&st[i].c, (i & 1) ? stack_malloc(32 * 1024) : stack_mmap(32 * 1024), i,
                 il_entry, &st[i]);
        model[i].h = i * UINT64_C(0x9E3779B97F4A7C15);
        model[i].acc = (double)i;
        model[i].count = 0;
    }
    for (unsigned long step = 0; step < IL_STEPS; step++) {
        uint64_t rnd = splitmix(&seed);
        unsigned i = (unsigned)(rnd % IL_CTXS);
        uintptr_t v = (uintptr_t)(rnd >> 8);
        uintptr_t r = ctx_resume(&st[i].c, v);
        il_step(&model[i], i, v);
        if (r != il_reply(&model[i], i) && bad++ == 0)
            CHECK(0, "step %lu ctx %u: reply %#lx, want %#lx", step, i, (unsigned long)r,
                  (unsigned long)il_reply(&model[i], i));
    }
    for (unsigned i = 0; i < IL_CTXS; i++) {
        CHECK(st[i].final.count == model[i].count, "ctx %u ran %lu steps, want %lu", i,
              st[i].final.count, model[i].count);
        CHECK(model[i].count > 0, "ctx %u never ran", i);
        stack_free(&st[i].c.stack);
    }
    CHECK(bad == 0, "%lu wrong replies", bad);
}

/* ==== test: unwinding from an entry ========================================================== */

#define BT_MAX 64

struct bt_info {
    int frames;
    uintptr_t ips[BT_MAX];
    uintptr_t cfas[BT_MAX];
};

static _Unwind_Reason_Code bt_cb(struct _Unwind_Context *uc, void *arg)
{
    struct bt_info *b = arg;
    if (b->frames < BT_MAX) {
        b->ips[b->frames] = (uintptr_t)_Unwind_GetIP(uc);
        b->cfas[b->frames] = (uintptr_t)_Unwind_GetCFA(uc);
    }
    b->frames++;
    return b->frames > 1000 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

struct unwind_state {
    struct ctx c;
    struct bt_info bt;
    _Unwind_Reason_Code code;
    uintptr_t resumer_sp; /* the resumer's saved sp while the backtrace ran */
};

/* A named frame to put a debugger breakpoint on. */
__attribute__((noinline)) void harness_bt_probe(struct unwind_state *s)
{
    s->resumer_sp = s->c.resumer ? (uintptr_t)s->c.resumer->sp : 0;
    s->code = _Unwind_Backtrace(bt_cb, &s->bt);
    __asm__ __volatile__("" : : : "memory");
}

static __attribute__((noinline)) void unwind_entry(void *data, uintptr_t value)
{
    struct unwind_state *s = data;
    (void)value;
    harness_bt_probe(s);
    for (;;)
        ctx_yield(&s->c, 0);
}

/* Index of the trampoline's frame in the backtrace, or -1. */
static int bt_find_trampoline(const struct bt_info *bt)
{
    uintptr_t tr = (uintptr_t)&coro_arch_trampoline;
    for (int i = 0; i < bt->frames && i < BT_MAX; i++)
        if (bt->ips[i] > tr && bt->ips[i] <= tr + 32)
            return i;
    return -1;
}

/* A fresh stack's link word points at itself: the walk ends at the trampoline. */
static void test_unwind(void)
{
    struct unwind_state s;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, unwind_entry, &s);
    ctx_resume(&s.c, 0);
    uintptr_t atop = (uintptr_t)s.c.stack.top & ~(uintptr_t)15;
    CHECK(s.code == _URC_END_OF_STACK, "_Unwind_Backtrace returned %d after %d frames",
          (int)s.code, s.bt.frames);
    /* libgcc reports the end of the chain as one more frame with ip 0; drop it. */
    int frames = s.bt.frames;
    while (frames > 0 && frames <= BT_MAX && s.bt.ips[frames - 1] == 0)
        frames--;
    /* harness_bt_probe, unwind_entry, coro_arch_trampoline */
    CHECK(frames >= 3 && frames <= 8, "%d frames", frames);
    int t = bt_find_trampoline(&s.bt);
    CHECK(t >= 1 && t == frames - 1, "trampoline frame %d, %d frames: not the outermost", t,
          frames);
    if (t >= 1) {
        /* libgcc's CFA of a frame is its sp at the call: the trampoline called entry with sp at
         * the link word. The end-of-chain frame after it has the trampoline's CFA, top-16. */
        CHECK(s.bt.cfas[t] == atop - LINK_OFFSET, "trampoline's sp is top-%ld, want top-%d",
              (long)(atop - s.bt.cfas[t]), LINK_OFFSET);
        if (t + 1 < s.bt.frames && t + 1 < BT_MAX)
            CHECK(s.bt.cfas[t + 1] == atop - 16, "trampoline's CFA is top-%ld, want top-16",
                  (long)(atop - s.bt.cfas[t + 1]));
    }
    stack_free(&s.c.stack);
}

/* Calls into the context; the caller the linked backtrace must find. */
static __attribute__((noinline)) uintptr_t unwind_resumer(struct ctx *c)
{
    uintptr_t r = ctx_resume(c, 0);
    __asm__ __volatile__("" : "+r"(r) : : "memory"); /* no tail call */
    return r;
}

/* With the link word kept current (as the core does), the walk continues from the trampoline into
 * the context that resumed the coroutine, at the frame it saved. */
static void test_unwind_linked(void)
{
    struct unwind_state s;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, unwind_entry, &s);
    s.c.link = link_slot(s.c.stack.top);
    unwind_resumer(&s.c);
    CHECK(s.code == _URC_END_OF_STACK, "_Unwind_Backtrace returned %d after %d frames",
          (int)s.code, s.bt.frames);
    int t = bt_find_trampoline(&s.bt);
    CHECK(t >= 1 && t + 2 < s.bt.frames && t + 1 < BT_MAX,
          "trampoline frame %d of %d: the walk did not continue into main", t, s.bt.frames);
    if (t >= 1 && t + 1 < BT_MAX && s.resumer_sp) {
        uintptr_t want_ip = *(uintptr_t *)(s.resumer_sp + FRAME_SIZE - 8);
        CHECK(s.bt.cfas[t] == (uintptr_t)s.c.link, "trampoline's sp %#lx, want the link word %p",
              (unsigned long)s.bt.cfas[t], (void *)s.c.link);
        CHECK(s.bt.cfas[t + 1] == s.resumer_sp + FRAME_SIZE,
              "trampoline's CFA %#lx, want the resumer's saved sp %#lx + %d",
              (unsigned long)s.bt.cfas[t + 1], (unsigned long)s.resumer_sp, FRAME_SIZE);
        CHECK(s.bt.ips[t + 1] == want_ip, "frame after the trampoline at ip %#lx, want %#lx",
              (unsigned long)s.bt.ips[t + 1], (unsigned long)want_ip);
        uintptr_t fn = (uintptr_t)&unwind_resumer;
        CHECK(want_ip > fn && want_ip < fn + 256,
              "resumer's return address %#lx not in unwind_resumer (%#lx)",
              (unsigned long)want_ip, (unsigned long)fn);
    }
    stack_free(&s.c.stack);
}

/* ==== test: the fast path (begin sets bit 0 of the sp: no end hook, result (0, word)) ======== */

static unsigned long g_forbidden_ends, g_forbidden_first_ends;

/* End hooks saved in the frames of this test: they may run only for a switch with a signal. */
static struct arrival forbidden_end(void *ctx)
{
    g_forbidden_ends++;
    return rt_end(ctx);
}

static struct arrival forbidden_first_end(void *ctx)
{
    g_forbidden_first_ends++;
    return rt_first_end(ctx);
}

#define SIG_SLOW UINT64_C(0x510)

struct fast_state {
    struct ctx c;
    uintptr_t first;
    uintptr_t entry_caller_sp;
    unsigned long bad_regs, bad_results, slow_seen;
    char first_bad[128];
};

static void fast_entry(void *data, uintptr_t value)
{
    struct fast_state *s = data;
    uint64_t io[PROBE_IO_WORDS];
    s->first = value;
    s->entry_caller_sp = harness_caller_sp();
    for (uint64_t round = 0;; round++) {
        make_pattern(io, 0xEEEE0000u + round);
        harness_reg_probe((uintptr_t)s->c.resumer, value + 1, 0, rt_begin, forbidden_end, io);
        s->bad_regs += compare_regs(io, s->first_bad, sizeof s->first_bad);
        if (io[PROBE_RET] == SIG_SLOW)
            s->slow_seen++;
        else if (io[PROBE_RET] != 0)
            s->bad_results++;
        value = (uintptr_t)io[PROBE_RET + 1];
    }
}

static void test_fast_path(void)
{
    struct fast_state s;
    uint64_t io[PROBE_IO_WORDS];
    char first[128] = "";
    unsigned long bad_regs = 0, taken = g_fast_taken;
    memset(&s, 0, sizeof s);
    g_forbidden_ends = g_forbidden_first_ends = 0;
    g_fast = FAST_ALWAYS;

    /* Into a fresh stack: no first_end; the entry gets the word, aligned as usual. */
    ctx_init_with(&s.c, stack_mmap(64 * 1024), 0, fast_entry, &s, forbidden_first_end);
    make_pattern(io, 0xF00);
    harness_reg_probe((uintptr_t)&s.c, 0xABC, 0, rt_begin, forbidden_end, io);
    bad_regs += compare_regs(io, first, sizeof first);
    CHECK(g_forbidden_first_ends == 0, "first_end ran on the fast path");
    CHECK(s.first == 0xABC, "entry value %#lx, want 0xabc", (unsigned long)s.first);
    CHECK((s.entry_caller_sp & 15) == 0, "entry's sp %#lx at a call not 16-byte aligned",
          (unsigned long)s.entry_caller_sp);
    CHECK(io[PROBE_RET] == 0 && io[PROBE_RET + 1] == 0xABD, "first reply %s:%s = %#llx:%#llx",
          probe_ret_names[0], probe_ret_names[1], (unsigned long long)io[PROBE_RET],
          (unsigned long long)io[PROBE_RET + 1]);

    /* Back and forth: both frames hold forbidden_end, which never runs. */
    for (uintptr_t round = 0; round < 1000; round++) {
        make_pattern(io, 0xF000u + round);
        harness_reg_probe((uintptr_t)&s.c, round * 5, 0, rt_begin, forbidden_end, io);
        bad_regs += compare_regs(io, first, sizeof first);
        if (io[PROBE_RET] != 0 || io[PROBE_RET + 1] != round * 5 + 1) {
            CHECK(0, "round %lu: %s:%s = %#llx:%#llx, want 0:%#lx", (unsigned long)round,
                  probe_ret_names[0], probe_ret_names[1], (unsigned long long)io[PROBE_RET],
                  (unsigned long long)io[PROBE_RET + 1], (unsigned long)(round * 5 + 1));
            break;
        }
    }
    /* Without a switch. */
    make_pattern(io, 0xF1F1);
    harness_reg_probe((uintptr_t)&g_main_ctx, 77, 0, rt_begin, forbidden_end, io);
    bad_regs += compare_regs(io, first, sizeof first);
    CHECK(io[PROBE_RET] == 0 && io[PROBE_RET + 1] == 77, "no switch, fast: %#llx:%#llx",
          (unsigned long long)io[PROBE_RET], (unsigned long long)io[PROBE_RET + 1]);
    CHECK(g_forbidden_ends == 0, "an end hook ran %lu times on the fast path", g_forbidden_ends);

    /* A switch with a signal takes the slow path: now the context's saved end hook runs. */
    struct arrival r = ctx_switch2(&s.c, 1000, SIG_SLOW);
    CHECK(g_forbidden_ends == 1, "the context's end hook ran %lu times, want once",
          g_forbidden_ends);
    CHECK(s.slow_seen == 1, "the context saw the signal %lu times", s.slow_seen);
    CHECK(r.signal == 0 && r.value == 1001, "reply %#lx:%#lx", (unsigned long)r.signal,
          (unsigned long)r.value);

    CHECK(bad_regs == 0, "main side: %lu registers clobbered; first: %s", bad_regs, first);
    CHECK(s.bad_regs == 0, "context side: %lu registers clobbered; first: %s", s.bad_regs,
          s.first_bad);
    CHECK(s.bad_results == 0, "context: %lu results with a nonzero first word", s.bad_results);
    CHECK(g_fast_taken - taken >= 2002, "fast path taken %lu times", g_fast_taken - taken);
    stack_free(&s.c.stack);
}

/* ==== test: an entry that returns traps ===================================================== */

static void returning_entry(void *data, uintptr_t value)
{
    (void)data;
    (void)value;
}

/* The child reports the trap through its exit status: no core dump, no "uncaught signal" noise
 * from qemu-user. */
static void trap_handler(int sig)
{
    _exit(100 + sig);
}

static void test_entry_return_traps(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK(0, "fork failed");
        return;
    }
    if (pid == 0) {
        struct ctx c;
        signal(SIGILL, trap_handler);
        signal(SIGTRAP, trap_handler);
        ctx_init(&c, stack_mmap(64 * 1024), 0, returning_entry, NULL);
        ctx_resume(&c, 0);
        _exit(0); /* not reached if the trampoline traps */
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        CHECK(0, "waitpid failed");
        return;
    }
#if defined(__x86_64__)
    int want = SIGILL; /* ud2 */
#else
    int want = SIGTRAP; /* brk #0 */
#endif
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 100 + want,
          "child status %#x, want a trap (signal %d)", (unsigned)status, want);
}

/* ==== driver ================================================================================= */

struct test {
    const char *name;
    void (*fn)(void);
    int fast;              /* rt_begin's fast-path policy for plain switches: FAST_* */
    const char *known_bug; /* on this architecture; NULL: none */
};


static const struct test tests[] = {
    {"pingpong", test_pingpong, FAST_NEVER, NULL},
    {"pingpong_fast", test_pingpong, FAST_ALWAYS, NULL},
    {"chain", test_chain, FAST_MIXED, NULL},
    {"callee_saved", test_callee_saved, FAST_NEVER, NULL},
    {"callee_saved_fast", test_callee_saved, FAST_ALWAYS, NULL},
    {"fp_control", test_fp_control, FAST_NEVER, NULL},
    {"fp_control_fast", test_fp_control, FAST_ALWAYS, NULL},
    {"fp_flags", test_fp_flags, FAST_MIXED, NULL},
    {"fp_flags_mode_change", test_fp_flags_mode_change, FAST_MIXED, NULL},
    {"alignment", test_alignment, FAST_NEVER, NULL},
    {"alignment_fast", test_alignment, FAST_ALWAYS, NULL},
    {"link_word", test_link_word, FAST_NEVER, NULL},
    {"first_end_value", test_first_end_value, FAST_NEVER, NULL},
    {"end_per_frame", test_end_per_frame, FAST_NEVER, NULL},
    {"no_switch", test_no_switch, FAST_NEVER, NULL},
    {"two_word_result", test_two_word_result, FAST_NEVER, NULL},
    {"fast_path", test_fast_path, FAST_ALWAYS, NULL},
    {"deep_recursion", test_deep_recursion, FAST_MIXED, NULL},
    {"interleaved", test_interleaved, FAST_MIXED, NULL},
    {"unwind", test_unwind, FAST_NEVER, NULL},
    {"unwind_linked", test_unwind_linked, FAST_MIXED, NULL},
    {"entry_return_traps", test_entry_return_traps, FAST_NEVER, NULL},
};

enum { T_PASS, T_FAIL, T_XFAIL };

/* Runs one test in the current process; prints its line. */
static int run_test(const struct test *t)
{
    g_failed_checks = 0;
    g_first_failure[0] = 0;
    memset(&g_hooks, 0, sizeof g_hooks);
    g_fast = t->fast;
    g_fast_seed = 0x5EED;
    g_fast_taken = 0;
    t->fn();
    if (t->fast != FAST_NEVER)
        CHECK(g_fast_taken > 0, "the fast path was never taken");
    CHECK(g_hooks.bad == 0, "hooks: %lu problems in %lu calls; first: %s", g_hooks.bad,
          g_hooks.calls, g_hooks.first_bad);
    CHECK(g_cur == &g_main_ctx, "test ended outside main's context");
    if (g_failed_checks == 0) {
        printf("%s %s\n", t->known_bug ? "XPASS (drop the known-bug mark)" : "PASS", t->name);
        fflush(stdout);
        return T_PASS;
    }
    if (t->known_bug)
        printf("XFAIL %s: known bug: %s; %d failed checks; first: %s\n", t->name, t->known_bug,
               g_failed_checks, g_first_failure);
    else
        printf("FAIL %s: %d failed checks; first: %s\n", t->name, g_failed_checks,
               g_first_failure);
    fflush(stdout);
    return t->known_bug ? T_XFAIL : T_FAIL;
}

/* Runs one test in a child process, so that a test that crashes (as a broken switch tends to)
 * is reported as a failure and the other tests still run. */
static int run_test_forked(const struct test *t)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return run_test(t);
    }
    if (pid == 0)
        _exit(run_test(t));
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        printf("FAIL %s: waitpid failed\n", t->name);
        return T_FAIL;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) <= T_XFAIL)
        return WEXITSTATUS(status);
    printf("FAIL %s: crashed (%s %d)\n", t->name, WIFSIGNALED(status) ? "signal" : "exit status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    fflush(stdout);
    return T_FAIL;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, xfailed = 0, nofork = 0, selected_any = 0;
    size_t n = sizeof tests / sizeof tests[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int a = 1; a < argc; a++) {
        int known = strcmp(argv[a], "--no-fork") == 0;
        nofork |= known;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(argv[a], tests[i].name) == 0;
        if (!known) {
            fprintf(stderr, "usage: %s [--no-fork] [TEST...]\ntests:", argv[0]);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %s", tests[i].name);
            fprintf(stderr, "\n");
            return 2;
        }
        selected_any |= strcmp(argv[a], "--no-fork") != 0;
    }
    printf("switch harness (%s)\n", ARCH_NAME);
    for (size_t i = 0; i < n; i++) {
        int selected = !selected_any;
        for (int a = 1; a < argc; a++)
            selected |= strcmp(argv[a], tests[i].name) == 0;
        if (!selected)
            continue;
        int r = nofork ? run_test(&tests[i]) : run_test_forked(&tests[i]);
        passed += r == T_PASS;
        failed += r == T_FAIL;
        xfailed += r == T_XFAIL;
    }
    if (xfailed)
        printf("%d known failures (XFAIL, see above)\n", xfailed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
