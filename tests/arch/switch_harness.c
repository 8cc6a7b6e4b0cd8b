/* Standalone test of the architecture context switch (capi/src/arch/<arch>.s).
 *
 * Links only the assembly file of its architecture, nothing else from the project:
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g \
 *       tests/arch/switch_harness.c capi/src/arch/x86_64.s -o switch_harness
 *   aarch64-linux-gnu-gcc -static ... tests/arch/switch_harness.c capi/src/arch/aarch64.s
 *
 * Usage: switch_harness [--no-fork] [TEST...]   (no TEST: run every test)
 * Each test runs in a child process (so a crash is reported as that test's failure) unless
 * --no-fork is given, which is handy under a debugger.
 * Prints one line per test and ends with "N passed, M failed"; exits non-zero on any failure.
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

typedef void (*entry_fn)(void *data, uintptr_t value);
extern uintptr_t coro_arch_switch(void **save_sp, void *to_sp, uintptr_t value);
extern void coro_arch_trampoline(void);
extern void *coro_arch_init_stack(void *top, entry_fn entry, void *data);

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

/* ---- stacks and contexts ------------------------------------------------------------------ */

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

struct ctx {
    void *sp;        /* saved sp of this context while it is suspended */
    void *caller_sp; /* saved sp of whoever resumed it last */
    struct stack stack;
    unsigned id;
    uint64_t magic;
};

#define CTX_MAGIC UINT64_C(0xC0DEC0DE5EED1234)

static void ctx_init(struct ctx *c, struct stack st, unsigned id, entry_fn entry, void *data)
{
    memset(c, 0, sizeof *c);
    c->stack = st;
    c->id = id;
    c->magic = CTX_MAGIC;
    c->sp = coro_arch_init_stack(st.top, entry, data ? data : (void *)c);
}

/* Resume c from its resumer (main or another context). */
static uintptr_t ctx_resume(struct ctx *c, uintptr_t v)
{
    return coro_arch_switch(&c->caller_sp, c->sp, v);
}

/* Called on c's own stack: suspend c and go back to its resumer. */
static uintptr_t ctx_yield(struct ctx *c, uintptr_t v)
{
    return coro_arch_switch(&c->sp, c->caller_sp, v);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- architecture helpers (file-scope asm, so no compiler register allocation interferes) -- */

/* uintptr_t harness_reg_probe(void **save_sp, void *to_sp, uintptr_t value,
 *                             const uint64_t *pattern, uint64_t *out)
 * Saves its caller's callee-saved registers, loads every callee-saved register from pattern,
 * calls coro_arch_switch(save_sp, to_sp, value), and once resumed stores every callee-saved
 * register into out, restores the caller's registers and returns the switch's result. */
extern uintptr_t harness_reg_probe(void **save_sp, void *to_sp, uintptr_t value,
                                   const uint64_t *pattern, uint64_t *out);
/* Returns the caller's stack pointer at the call instruction (before the call pushed anything). */
extern uintptr_t harness_caller_sp(void);

#if defined(__x86_64__)

#define ARCH_NAME "x86_64"
#define N_PROBE_REGS 6
static const char *const probe_reg_names[N_PROBE_REGS] = {"rbx", "rbp", "r12", "r13", "r14",
                                                          "r15"};

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
        "    pushq %r8\n" /* 7 pushes: rsp is 16-byte aligned again for the call */
        "    movq 0(%rcx), %rbx\n"
        "    movq 8(%rcx), %rbp\n"
        "    movq 16(%rcx), %r12\n"
        "    movq 24(%rcx), %r13\n"
        "    movq 32(%rcx), %r14\n"
        "    movq 40(%rcx), %r15\n"
        "    call coro_arch_switch\n"
        "    popq %r8\n"
        "    movq %rbx, 0(%r8)\n"
        "    movq %rbp, 8(%r8)\n"
        "    movq %r12, 16(%r8)\n"
        "    movq %r13, 24(%r8)\n"
        "    movq %r14, 32(%r8)\n"
        "    movq %r15, 40(%r8)\n"
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

/* Compares the control bits only: MXCSR bits 0-5 are sticky exception flags, which any
 * inexact division sets. */
static int fpctl_eq(struct fpctl a, struct fpctl b)
{
    return (a.mxcsr & 0xFFC0u) == (b.mxcsr & 0xFFC0u) && a.x87cw == b.x87cw;
}

static void fpctl_str(struct fpctl f, char *buf, size_t n)
{
    snprintf(buf, n, "mxcsr=%#x x87cw=%#x", (unsigned)f.mxcsr, (unsigned)f.x87cw);
}

#elif defined(__aarch64__)

#define ARCH_NAME "aarch64"
#define N_PROBE_REGS 19
static const char *const probe_reg_names[N_PROBE_REGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};

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
        "    str x4, [sp, #160]\n"
        "    ldp x19, x20, [x3, #0]\n"
        "    ldp x21, x22, [x3, #16]\n"
        "    ldp x23, x24, [x3, #32]\n"
        "    ldp x25, x26, [x3, #48]\n"
        "    ldp x27, x28, [x3, #64]\n"
        "    ldr x29, [x3, #80]\n"
        "    ldp d8, d9, [x3, #88]\n"
        "    ldp d10, d11, [x3, #104]\n"
        "    ldp d12, d13, [x3, #120]\n"
        "    ldp d14, d15, [x3, #136]\n"
        "    bl coro_arch_switch\n"
        "    ldr x4, [sp, #160]\n"
        "    stp x19, x20, [x4, #0]\n"
        "    stp x21, x22, [x4, #16]\n"
        "    stp x23, x24, [x4, #32]\n"
        "    stp x25, x26, [x4, #48]\n"
        "    stp x27, x28, [x4, #64]\n"
        "    str x29, [x4, #80]\n"
        "    stp d8, d9, [x4, #88]\n"
        "    stp d10, d11, [x4, #104]\n"
        "    stp d12, d13, [x4, #120]\n"
        "    stp d14, d15, [x4, #136]\n"
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

#endif

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
    for (unsigned i = 0; i < PP_CTXS; i++) {
        CHECK(st[i].rounds_seen == PP_ROUNDS, "ctx %u saw %lu rounds", i, st[i].rounds_seen);
        CHECK(st[i].bad_values == 0, "ctx %u received %lu wrong values", i, st[i].bad_values);
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
        /* Context i passes the value on to i+1; the last hands it back to main. */
        if (c->id + 1 < 3) {
            value = coro_arch_switch(&c->sp, g_chain[c->id + 1].sp, value + 1);
        } else {
            g_chain_laps++;
            value = coro_arch_switch(&c->sp, g_chain[0].caller_sp, value + 1);
        }
    }
}

static void test_chain(void)
{
    g_chain_laps = 0;
    for (unsigned i = 0; i < 3; i++)
        ctx_init(&g_chain[i], stack_mmap(64 * 1024), i, chain_entry, NULL);
    for (uintptr_t lap = 0; lap < 5000; lap++) {
        uintptr_t r = coro_arch_switch(&g_chain[0].caller_sp, g_chain[0].sp, lap * 10);
        if (r != lap * 10 + 3) {
            CHECK(0, "lap %lu: got %lu want %lu", (unsigned long)lap, (unsigned long)r,
                  (unsigned long)(lap * 10 + 3));
            break;
        }
    }
    CHECK(g_chain_laps == 5000, "laps %lu", g_chain_laps);
    for (unsigned i = 0; i < 3; i++)
        stack_free(&g_chain[i].stack);
}

/* ==== test: callee-saved registers =========================================================== */

#define REG_ROUNDS 200

struct reg_state {
    struct ctx c;
    unsigned long mismatches;
    unsigned long rounds;
    char first_bad[128];
};

static void make_pattern(uint64_t *p, uint64_t seed)
{
    for (int i = 0; i < N_PROBE_REGS; i++)
        p[i] = splitmix(&seed);
}

static unsigned long compare_regs(const uint64_t *want, const uint64_t *got, char *first,
                                  size_t n)
{
    unsigned long bad = 0;
    for (int i = 0; i < N_PROBE_REGS; i++) {
        if (want[i] != got[i]) {
            if (bad++ == 0 && first[0] == 0)
                snprintf(first, n, "%s = %#llx, want %#llx", probe_reg_names[i],
                         (unsigned long long)got[i], (unsigned long long)want[i]);
        }
    }
    return bad;
}

static void reg_entry(void *data, uintptr_t value)
{
    struct reg_state *s = data;
    uint64_t pat[N_PROBE_REGS], out[N_PROBE_REGS];
    for (uint64_t round = 0;; round++) {
        /* Clobber every callee-saved register with this context's own pattern, switch away,
         * and check the pattern survived the other side's clobbering. */
        make_pattern(pat, 0xBBBB0000u + round);
        value = harness_reg_probe(&s->c.sp, s->c.caller_sp, value + 1, pat, out);
        s->mismatches += compare_regs(pat, out, s->first_bad, sizeof s->first_bad);
        s->rounds++;
    }
}

static void test_callee_saved(void)
{
    struct reg_state s;
    uint64_t pat[N_PROBE_REGS], out[N_PROBE_REGS];
    char first[128] = "";
    unsigned long bad = 0;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, reg_entry, &s);
    for (uint64_t round = 0; round < REG_ROUNDS; round++) {
        make_pattern(pat, 0xAAAA0000u + round);
        uintptr_t r = harness_reg_probe(&s.c.caller_sp, s.c.sp, round * 2, pat, out);
        bad += compare_regs(pat, out, first, sizeof first);
        CHECK(r == round * 2 + 1, "round %lu: value %lu", (unsigned long)round,
              (unsigned long)r);
    }
    CHECK(bad == 0, "main side: %lu registers clobbered; first: %s", bad, first);
    CHECK(s.rounds == REG_ROUNDS - 1, "context rounds %lu", s.rounds);
    CHECK(s.mismatches == 0, "context side: %lu registers clobbered; first: %s", s.mismatches,
          s.first_bad);
    stack_free(&s.c.stack);
}

/* ==== test: floating-point control state is per context ====================================== */

struct fp_state {
    struct ctx c;
    struct fpctl inherited_expect;
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

    fpctl_set(orig);
}

/* ==== test: stack alignment in entry ========================================================= */

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

#if defined(__x86_64__)
#define LINK_OFFSET 80
#else
#define LINK_OFFSET 192
#endif

static void test_alignment(void)
{
    static const size_t offsets[] = {0, 1, 3, 7, 8, 9, 15, 16, 24};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        struct align_state s;
        struct stack st = stack_mmap(64 * 1024);
        unsigned char *top = st.top - 64 - offsets[k];
        uintptr_t atop = (uintptr_t)top & ~(uintptr_t)15;
        memset(&s, 0, sizeof s);
        memset(st.base, 0xAA, (size_t)(st.top - st.base));
        s.c.stack = st;
        s.c.sp = coro_arch_init_stack(top, align_entry, &s);
        uintptr_t sp = (uintptr_t)s.c.sp;
        CHECK((sp & 15) == 0, "top-%zu: init sp %#lx misaligned", offsets[k], (unsigned long)sp);
        CHECK(sp < atop && atop - sp <= 512, "top-%zu: init sp %#lx, aligned top %#lx",
              offsets[k], (unsigned long)sp, (unsigned long)atop);
        /* The link word for unwinders starts out pointing at itself (see the trampoline's CFI). */
        uintptr_t link = atop - LINK_OFFSET;
        CHECK(*(uintptr_t *)link == link, "top-%zu: link word %#lx does not point at itself",
              offsets[k], (unsigned long)*(uintptr_t *)link);
        for (unsigned char *p = (unsigned char *)atop - 16; p < (unsigned char *)atop; p++)
            CHECK(*p == 0, "top-%zu: reserved byte at top-%ld not zeroed", offsets[k],
                  (long)(atop - (uintptr_t)p));
        for (unsigned char *p = (unsigned char *)atop; p < st.top; p++)
            CHECK(*p == 0xAA, "top-%zu: init_stack wrote above the aligned top", offsets[k]);
        ctx_resume(&s.c, 0);
        CHECK((s.local_addr & 15) == 0, "top-%zu: alignas(16) local at %#lx", offsets[k],
              (unsigned long)s.local_addr);
        CHECK((s.caller_sp & 15) == 0, "top-%zu: sp at a call in entry %#lx not 16-aligned",
              offsets[k], (unsigned long)s.caller_sp);
        CHECK((s.frame & 15) == 0, "top-%zu: frame address %#lx not 16-aligned", offsets[k],
              (unsigned long)s.frame);
        CHECK(s.caller_sp < atop && s.caller_sp > (uintptr_t)st.base,
              "top-%zu: entry not running on its stack", offsets[k]);
        stack_free(&st);
    }
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

/* ==== test: unwinding from an entry stops cleanly at the trampoline ========================== */

struct bt_info {
    int frames;
    uintptr_t ips[64];
};

static _Unwind_Reason_Code bt_cb(struct _Unwind_Context *uc, void *arg)
{
    struct bt_info *b = arg;
    if (b->frames < 64)
        b->ips[b->frames] = (uintptr_t)_Unwind_GetIP(uc);
    b->frames++;
    return b->frames > 1000 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

struct unwind_state {
    struct ctx c;
    struct bt_info bt;
    _Unwind_Reason_Code code;
};

/* A named frame to put a debugger breakpoint on (see ci/test-arch.sh / report). */
__attribute__((noinline)) void harness_bt_probe(struct unwind_state *s)
{
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

static void test_unwind(void)
{
    struct unwind_state s;
    memset(&s, 0, sizeof s);
    ctx_init(&s.c, stack_mmap(64 * 1024), 0, unwind_entry, &s);
    ctx_resume(&s.c, 0);
    uintptr_t tr = (uintptr_t)&coro_arch_trampoline;
    CHECK(s.code == _URC_END_OF_STACK, "_Unwind_Backtrace returned %d after %d frames",
          (int)s.code, s.bt.frames);
    /* libgcc reports the end of the chain as one more frame with ip 0; drop it. */
    int frames = s.bt.frames;
    while (frames > 0 && frames <= 64 && s.bt.ips[frames - 1] == 0)
        frames--;
    /* harness_bt_probe, unwind_entry, coro_arch_trampoline */
    CHECK(frames >= 3 && frames <= 8, "%d frames", frames);
    if (frames >= 1 && frames <= 64) {
        uintptr_t last = s.bt.ips[frames - 1];
        CHECK(last > tr && last <= tr + 32, "outermost frame ip %#lx, trampoline at %#lx",
              (unsigned long)last, (unsigned long)tr);
    }
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
};

static const struct test tests[] = {
    {"pingpong", test_pingpong},
    {"chain", test_chain},
    {"callee_saved", test_callee_saved},
    {"fp_control", test_fp_control},
    {"alignment", test_alignment},
    {"deep_recursion", test_deep_recursion},
    {"interleaved", test_interleaved},
    {"unwind", test_unwind},
    {"entry_return_traps", test_entry_return_traps},
};

/* Runs one test in the current process; prints its line and returns 1 if it passed. */
static int run_test(const struct test *t)
{
    g_failed_checks = 0;
    g_first_failure[0] = 0;
    t->fn();
    if (g_failed_checks == 0)
        printf("PASS %s\n", t->name);
    else
        printf("FAIL %s: %d failed checks; first: %s\n", t->name, g_failed_checks,
               g_first_failure);
    fflush(stdout);
    return g_failed_checks == 0;
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
        _exit(run_test(t) ? 0 : 1);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        printf("FAIL %s: waitpid failed\n", t->name);
        return 0;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 0;
    printf("FAIL %s: crashed (signal %d)\n", t->name,
           WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, nofork = 0, selected_any = 0;
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
        if (nofork ? run_test(&tests[i]) : run_test_forked(&tests[i]))
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
