//! `coro-bench`: the switch round trip and the create/run/destroy cost of coro next to
//! corosensei 0.3, measured in the same run with the contenders interleaved.
//!
//! Usage: `cargo run --release -p coro-bench [-- --quick] [--rounds R] [--iters N]`
//! (see bench/README.md).

use core::ffi::c_void;
use std::hint::black_box;
use std::time::Instant;

use coro::ffi::{
    coro_destroy, coro_kill, coro_main, coro_new, coro_options_init, coro_options_t, coro_status_code, coro_switch,
    coro_t, CORO_FLAG_COPYING,
};

const OK: u32 = coro_status_code::CORO_OK as u32;

/// The target for coro's switch round trip, as a fraction of corosensei's (now / moonshot).
const TARGET: f64 = 1.0;
const MOONSHOT: f64 = 0.8;

/// Something that runs `n` operations (round trips, or create+run+destroy cycles) and returns a
/// checksum that depends on every one of them.
trait Contender {
    fn name(&self) -> &'static str;
    fn run(&mut self, n: u64) -> u64;
}

fn check(status: u32, what: &str) {
    if status != OK {
        eprintln!("coro-bench: {what} failed with status {status}");
        std::process::exit(2);
    }
}

// ---------------------------------------------------------------------------------------------
// Switch round trip: main -> child -> main.

/// coro through the C ABI, written as a C program would: the child's entry loops
/// `coro_switch(main, ...)`, the main side loops `coro_switch(child, ...)`.
struct CAbiPing {
    child: *mut coro_t,
    copying: bool,
}

/// Options for `coro_new`: the defaults, or copying mode.
fn options(copying: bool) -> coro_options_t {
    let mut o = core::mem::MaybeUninit::<coro_options_t>::uninit();
    // SAFETY: coro_options_init fills the whole struct.
    let mut o = unsafe {
        check(coro_options_init(o.as_mut_ptr()), "coro_options_init");
        o.assume_init()
    };
    if copying {
        o.flags = CORO_FLAG_COPYING;
    }
    o
}

/// The child: learns the main handle from its first value, then bounces every value back.
/// Returns when its pending switch reports anything but CORO_OK (the kill in `Drop`).
unsafe extern "C" fn ping_entry(_this: *mut coro_t, first: *mut c_void) -> *mut c_void {
    let main = first.cast::<coro_t>();
    let mut v: *mut c_void = core::ptr::null_mut();
    loop {
        // SAFETY: `main` is the thread's main handle; `v` is writable.
        if unsafe { coro_switch(main, black_box(v), &mut v) } != OK {
            return v;
        }
    }
}

impl CAbiPing {
    fn new(copying: bool) -> CAbiPing {
        let opts = options(copying);
        let mut main = core::ptr::null_mut();
        let mut child = core::ptr::null_mut();
        let mut got = core::ptr::null_mut();
        // SAFETY: out-params are writable; handles come from the library.
        unsafe {
            check(coro_main(&mut main), "coro_main");
            check(coro_new(Some(ping_entry), &opts, &mut child), "coro_new");
            // Start it: its first value is the main handle; it switches straight back.
            check(coro_switch(child, main.cast(), &mut got), "coro_switch (start)");
        }
        CAbiPing { child, copying }
    }
}

impl Contender for CAbiPing {
    fn name(&self) -> &'static str {
        if self.copying {
            "coro (C ABI, copying mode)"
        } else {
            "coro (C ABI)"
        }
    }

    fn run(&mut self, n: u64) -> u64 {
        let child = self.child;
        let mut sum = 0u64;
        let mut bad = 0u32;
        for i in 0..n {
            let mut got: *mut c_void = core::ptr::null_mut();
            // SAFETY: a live handle; `got` is writable.
            bad |= unsafe { coro_switch(child, black_box(i as usize as *mut c_void), &mut got) };
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        check(bad, "coro_switch");
        sum
    }
}

impl Drop for CAbiPing {
    fn drop(&mut self) {
        let mut got = core::ptr::null_mut();
        // SAFETY: a live handle of a SUSPENDED coroutine, killed (so it returns) then destroyed.
        unsafe {
            check(coro_kill(self.child, core::ptr::null_mut(), &mut got), "coro_kill");
            check(coro_destroy(self.child), "coro_destroy");
        }
    }
}

/// coro through the safe Rust API, same shape.
struct RustPing {
    child: coro::Coroutine,
}

impl RustPing {
    fn new() -> RustPing {
        let main = coro::Coroutine::current();
        let child = coro::Coroutine::new(move |mut v| loop {
            match main.switch(black_box(v)) {
                Ok(next) => v = next,
                Err(_) => return 0,
            }
        })
        .expect("Coroutine::new");
        child.switch(0).expect("start");
        RustPing { child }
    }
}

impl Contender for RustPing {
    fn name(&self) -> &'static str {
        "coro (Rust API)"
    }

    fn run(&mut self, n: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..n {
            let got = self.child.switch(black_box(i as usize)).expect("switch");
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        sum
    }
}

/// corosensei: one round trip = resume + suspend, default stack.
struct CorosenseiPing {
    co: corosensei::Coroutine<usize, usize, ()>,
}

impl CorosenseiPing {
    fn new() -> CorosenseiPing {
        let co = corosensei::Coroutine::new(|yielder: &corosensei::Yielder<usize, usize>, mut input: usize| loop {
            input = yielder.suspend(black_box(input));
        });
        CorosenseiPing { co }
    }
}

impl Contender for CorosenseiPing {
    fn name(&self) -> &'static str {
        "corosensei 0.3"
    }

    fn run(&mut self, n: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..n {
            let got = match self.co.resume(black_box(i as usize)) {
                corosensei::CoroutineResult::Yield(v) => v,
                corosensei::CoroutineResult::Return(()) => unreachable!(),
            };
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        sum
    }
}

/// Boost.Context 1.74's `jump_fcontext` (the raw switch under Boost.Coroutine2 and Boost.Fiber):
/// one round trip = jump to the child + jump back, on a malloc'd 64 KiB stack.
#[cfg(have_boost_context)]
mod boost {
    use core::ffi::c_void;
    use std::hint::black_box;

    #[repr(C)]
    struct Transfer {
        fctx: *mut c_void,
        data: *mut c_void,
    }

    #[link(name = "boost_context")]
    extern "C" {
        fn jump_fcontext(to: *mut c_void, data: *mut c_void) -> Transfer;
        fn make_fcontext(sp: *mut c_void, size: usize, entry: extern "C" fn(Transfer)) -> *mut c_void;
    }

    extern "C" fn child(mut t: Transfer) {
        loop {
            // SAFETY: `t.fctx` is the context that just jumped here, suspended in jump_fcontext.
            t = unsafe { jump_fcontext(t.fctx, black_box(t.data)) };
        }
    }

    pub struct BoostPing {
        ctx: *mut c_void,
        _stack: Vec<u8>,
    }

    impl BoostPing {
        pub fn new() -> BoostPing {
            let mut stack = vec![0u8; 64 * 1024];
            // SAFETY: the stack outlives the context (both owned here); its top is passed.
            let ctx = unsafe { make_fcontext(stack.as_mut_ptr().add(stack.len()).cast(), stack.len(), child) };
            BoostPing { ctx, _stack: stack }
        }
    }

    impl super::Contender for BoostPing {
        fn name(&self) -> &'static str {
            "Boost.Context 1.74 jump_fcontext"
        }

        fn run(&mut self, n: u64) -> u64 {
            let mut sum = 0u64;
            for i in 0..n {
                // SAFETY: `ctx` is the child, suspended in jump_fcontext (or fresh).
                let t = unsafe { jump_fcontext(self.ctx, black_box(i as usize as *mut c_void)) };
                self.ctx = t.fctx;
                sum = sum.wrapping_add(black_box(t.data as u64));
            }
            sum
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Create + run to completion + destroy.

unsafe extern "C" fn plus_one(_this: *mut coro_t, v: *mut c_void) -> *mut c_void {
    (v as usize).wrapping_add(1) as *mut c_void
}

/// `coro_new`, `coro_switch` until it returns (once: the entry returns at once), `coro_destroy`.
struct CAbiLife {
    copying: bool,
}

impl Contender for CAbiLife {
    fn name(&self) -> &'static str {
        if self.copying {
            "coro (C ABI, copying mode)"
        } else {
            "coro (C ABI)"
        }
    }

    fn run(&mut self, n: u64) -> u64 {
        let opts = options(self.copying);
        let mut sum = 0u64;
        let mut bad = 0u32;
        for i in 0..n {
            let mut c = core::ptr::null_mut();
            let mut got: *mut c_void = core::ptr::null_mut();
            // SAFETY: out-params are writable; `c` comes from coro_new (a failed coro_new leaves
            // it NULL, which the later calls reject with CORO_EINVAL).
            unsafe {
                bad |= coro_new(Some(plus_one), &opts, &mut c);
                bad |= coro_switch(c, black_box(i as usize as *mut c_void), &mut got);
                bad |= coro_destroy(c);
            }
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        check(bad, "coro_new/coro_switch/coro_destroy");
        sum
    }
}

/// `Coroutine::new`, one switch (the entry returns at once), drop.
struct RustLife;

impl Contender for RustLife {
    fn name(&self) -> &'static str {
        "coro (Rust API)"
    }

    fn run(&mut self, n: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..n {
            let c = coro::Coroutine::new(|v| v.wrapping_add(1)).expect("Coroutine::new");
            let got = c.switch(black_box(i as usize)).expect("switch");
            drop(c);
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        sum
    }
}

/// `corosensei::Coroutine::new` (maps a fresh default stack), resume to completion, drop.
struct CorosenseiLife;

impl Contender for CorosenseiLife {
    fn name(&self) -> &'static str {
        "corosensei 0.3"
    }

    fn run(&mut self, n: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..n {
            let mut co = corosensei::Coroutine::new(|_: &corosensei::Yielder<usize, ()>, v: usize| v.wrapping_add(1));
            let got = match co.resume(black_box(i as usize)) {
                corosensei::CoroutineResult::Return(v) => v,
                corosensei::CoroutineResult::Yield(()) => unreachable!(),
            };
            drop(co);
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        sum
    }
}

/// The same, but with one default stack reused through `with_stack`/`into_stack` (corosensei
/// does not pool stacks itself; this shows its cost without the mmap/munmap).
struct CorosenseiLifeReused {
    stack: Option<corosensei::stack::DefaultStack>,
}

impl Contender for CorosenseiLifeReused {
    fn name(&self) -> &'static str {
        "corosensei 0.3 (stack reused)"
    }

    fn run(&mut self, n: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..n {
            let stack = self.stack.take().expect("stack");
            let mut co = corosensei::Coroutine::with_stack(stack, |_: &corosensei::Yielder<usize, ()>, v: usize| {
                v.wrapping_add(1)
            });
            let got = match co.resume(black_box(i as usize)) {
                corosensei::CoroutineResult::Return(v) => v,
                corosensei::CoroutineResult::Yield(()) => unreachable!(),
            };
            self.stack = Some(co.into_stack());
            sum = sum.wrapping_add(black_box(got) as u64);
        }
        sum
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement and report.

struct Stats {
    name: &'static str,
    median: f64,
    min: f64,
    max: f64,
}

/// Warms every contender up, then runs `rounds` rounds; each round times `n` operations of each
/// contender in turn (A, B, C, A, B, C, ...). Returns ns per operation.
fn measure(contenders: &mut [Box<dyn Contender>], rounds: usize, n: u64) -> Vec<Stats> {
    let warm = (n / 4).max(1);
    for c in contenders.iter_mut() {
        black_box(c.run(warm));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds {
        for (c, s) in contenders.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            black_box(c.run(n));
            s.push(t.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    contenders
        .iter()
        .zip(samples)
        .map(|(c, mut s)| {
            s.sort_by(f64::total_cmp);
            let mid = s.len() / 2;
            let median = if s.len() % 2 == 1 { s[mid] } else { (s[mid - 1] + s[mid]) / 2.0 };
            Stats { name: c.name(), median, min: s[0], max: s[s.len() - 1] }
        })
        .collect()
}

/// Prints one section; ratios are against the row named `baseline` (NaN when it was filtered
/// out). Returns that ratio per row.
fn table(title: &str, stats: &[Stats], baseline: &str) -> Vec<(&'static str, f64)> {
    let base = stats.iter().find(|s| s.name == baseline).map_or(f64::NAN, |s| s.median);
    println!("{title}");
    println!("  {:<32} {:>10}   {:<21} ratio vs corosensei", "contender", "median", "[min – max] ns");
    let mut ratios = Vec::new();
    for s in stats {
        let ratio = s.median / base;
        let spread = format!("[{} – {}]", fmt_ns(s.min), fmt_ns(s.max));
        let digits = if ratio < 0.1 { 3 } else { 2 };
        println!("  {:<32} {:>7} ns   {:<21} {ratio:.digits$}", s.name, fmt_ns(s.median), spread);
        ratios.push((s.name, ratio));
    }
    println!();
    ratios
}

fn fmt_ns(ns: f64) -> String {
    if ns < 100.0 {
        format!("{ns:.2}")
    } else if ns < 10_000.0 {
        format!("{ns:.0}")
    } else {
        format!("{:.1}k", ns / 1000.0)
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn usage(code: i32) -> ! {
    eprintln!("usage: coro-bench [--quick] [--rounds R] [--iters N] [--only S] [--json F]");
    eprintln!("  --quick     smoke run (5 rounds, 100k round trips; a few seconds at most)");
    eprintln!("  --rounds R  rounds per contender (default 15)");
    eprintln!("  --iters N   switch round trips per round (default 2000000); create cycles are N/40");
    eprintln!("  --only S    run only the rows whose name contains S (for profilers)");
    eprintln!("  --json F    also write every row to F, one JSON object per line (bench/report.py)");
    eprintln!("  --count S N no timing: N switch round trips of the one switch row named exactly S, for");
    eprintln!("              callgrind (ci/budget.sh counts two values of N and takes the difference)");
    std::process::exit(code);
}

/// The switch rows, in table order (Boost.Context's only when it is linked).
fn switch_contenders() -> Vec<Box<dyn Contender>> {
    #[allow(unused_mut)]
    let mut ping: Vec<Box<dyn Contender>> =
        vec![Box::new(CAbiPing::new(false)), Box::new(RustPing::new()), Box::new(CorosenseiPing::new())];
    #[cfg(have_boost_context)]
    ping.push(Box::new(boost::BoostPing::new()));
    ping.push(Box::new(CAbiPing::new(true)));
    ping
}

/// `--count`: `n` untimed round trips of the switch row named `name`; exit status 2 if none is.
fn count_one(name: &str, n: u64) {
    let mut rows = switch_contenders();
    let Some(row) = rows.iter_mut().find(|c| c.name() == name) else {
        let names: Vec<&str> = rows.iter().map(|c| c.name()).collect();
        eprintln!("coro-bench: no switch row named {name:?}; rows: {names:?}");
        std::process::exit(2);
    };
    let sum = row.run(n);
    println!("{name}: {n} round trips, checksum {sum}");
}

fn main() {
    let mut quick = false;
    let mut rounds: Option<usize> = None;
    let mut iters: Option<u64> = None;
    let mut only: Option<String> = None;
    let mut json: Option<String> = None;
    let mut count: Option<(String, u64)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--rounds" => {
                rounds = Some(args.next().and_then(|v| v.parse().ok()).filter(|&r| r > 0).unwrap_or_else(|| usage(2)))
            }
            "--iters" => {
                iters = Some(args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| usage(2)))
            }
            "--only" => only = Some(args.next().unwrap_or_else(|| usage(2))),
            "--json" => json = Some(args.next().unwrap_or_else(|| usage(2))),
            "--count" => {
                let name = args.next().unwrap_or_else(|| usage(2));
                let n = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(2));
                count = Some((name, n));
            }
            // `cargo bench`-style harness flags are ignored.
            "--bench" => {}
            "--help" | "-h" => usage(0),
            _ => usage(2),
        }
    }
    if let Some((name, n)) = count {
        count_one(&name, n);
        return;
    }
    let rounds = rounds.unwrap_or(if quick { 5 } else { 15 });
    let n_switch = iters.unwrap_or(if quick { 100_000 } else { 2_000_000 });
    let n_life = (n_switch / 40).max(1);

    println!(
        "coro-bench ({}): {rounds} interleaved rounds; {n_switch} round trips / {n_life} create cycles per round; {}",
        if quick { "quick" } else { "full" },
        cpu_model()
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; numbers are meaningless (use --release)");
    }
    println!();

    let keep = |c: &dyn Contender| only.as_deref().is_none_or(|s| c.name().contains(s));
    let mut ping = switch_contenders();
    #[cfg(not(have_boost_context))]
    println!("(Boost.Context row left out: libboost-context-dev is not installed)");
    ping.retain(|c| keep(c.as_ref()));
    let stats = measure(&mut ping, rounds, n_switch);
    drop(ping);
    let ratios = table("switch round trip (main -> child -> main)", &stats, "corosensei 0.3");

    let mut life: Vec<Box<dyn Contender>> = vec![
        Box::new(CAbiLife { copying: false }),
        Box::new(CAbiLife { copying: true }),
        Box::new(RustLife),
        Box::new(CorosenseiLife),
        Box::new(CorosenseiLifeReused { stack: Some(corosensei::stack::DefaultStack::default()) }),
    ];
    life.retain(|c| keep(c.as_ref()));
    let life_stats = measure(&mut life, rounds, n_life);
    drop(life);
    table(
        "create + run to completion + destroy (coro pools stacks; corosensei maps one per coroutine)",
        &life_stats,
        "corosensei 0.3",
    );

    if let Some(path) = json {
        let mut out = String::new();
        for (section, rows) in [("switch", &stats), ("life", &life_stats)] {
            for r in rows.iter() {
                out.push_str(&format!(
                    "{{\"section\": \"{section}\", \"name\": \"{}\", \"median\": {}, \"min\": {}, \"max\": {}, \"rounds\": {rounds}}}\n",
                    r.name, r.median, r.min, r.max
                ));
            }
        }
        if let Err(e) = std::fs::write(&path, out) {
            eprintln!("coro-bench: cannot write {path}: {e}");
            std::process::exit(2);
        }
    }

    let Some(&(_, c_abi)) = ratios.iter().find(|r| r.0 == "coro (C ABI)") else { return };
    let verdict = if c_abi <= MOONSHOT {
        "moonshot met"
    } else if c_abi <= TARGET {
        "target met, moonshot not yet"
    } else {
        "target NOT met"
    };
    println!(
        "target: switch round trip of coro (C ABI) <= {TARGET:.2}x corosensei now, moonshot <= {MOONSHOT:.2}x; measured {c_abi:.2}x: {verdict}"
    );
}
