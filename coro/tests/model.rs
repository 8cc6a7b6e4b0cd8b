//! Model-based property test of the coroutine semantics (docs/semantics.md).
//!
//! A *program* is a list of [`Op`]s. Every coroutine runs the same interpreter loop: it pulls the
//! next op from a queue shared by all of them and executes it, so whichever coroutine is current
//! when an op is pulled performs it. The main coroutine runs the same loop at top level.
//!
//! The *interpreter* ([`execute`]) runs a program on the real library and records a trace of
//! everything observable: which coroutine performs each op (and whether `Coroutine::current()`
//! agrees), the value each body starts with, the result of every `switch` / `kill` /
//! `set_parent` (including resumed panics), when bodies return, panic or are unwound, and the
//! state and parent of every coroutine before each op.
//!
//! The *model* ([`Model`]) is a plain state machine (no coroutines, no unsafe) that computes the
//! trace the contract predicts. Handles are dropped only by `Op::Drop` and at the very end, so the
//! model also tracks the references that keep a control block alive (its handle, children whose
//! parent it is) and the "unwind on drop of the last handle of a SUSPENDED coroutine" rule. A
//! coroutine that loses its last reference while RUNNING is unwound the same way as soon as it
//! switches away: the coroutine it switched to (or started) unwinds it first thing, before its own
//! pending call returns (or its entry runs).
//!
//! When the program runs out of ops, the run winds down deterministically: a coroutine that finds
//! the queue empty returns `end_value(id)` (so control flows up the parent chain), and main's loop
//! ends when main finds it empty. Then main switches to every SUSPENDED coroutine it still has a
//! handle to (lowest id first) until none is left, takes a final snapshot and drops all handles.
//!
//! Set `PROPTEST_CASES` to change the number of random programs (default 1000);
//! `cargo test -p coro --test model -- --ignored --nocapture coverage_report` shows how often
//! each rule fires.

use coro::{Coroutine, Error, State};
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// Coroutines a program may create (besides main).
const MAX_COROS: usize = 6;
/// Longest random program.
const MAX_OPS: usize = 60;

/// Coroutine selector: `0` is main, `k` the k-th coroutine created. A selector beyond the ones
/// created so far is reduced modulo their number (so random programs never waste ops).
type Sel = u16;
/// Random selectors are below this multiple of 1..=7, so their reduction is uniform.
const SEL_RANGE: Sel = 420;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Create a coroutine (its parent is the current one). Skipped beyond [`MAX_COROS`].
    New,
    /// `target.switch(value)`.
    Switch(Sel),
    /// `target.kill(value)`.
    Kill(Sel),
    /// The current coroutine's body returns `value` (skipped in main).
    Return,
    /// `c.set_parent(p)`.
    SetParent(Sel, Sel),
    /// Drop the program's handle of a coroutine (skipped for main).
    Drop(Sel),
    /// The current coroutine's body panics (skipped in main).
    Panic,
}

/// The value an op carries: unique per position, so a wrongly routed value is obvious.
fn op_value(pos: usize) -> usize {
    1000 + pos
}
/// What a coroutine returns when it finds the queue empty.
fn end_value(id: usize) -> usize {
    500 + id
}
/// What main switches in with during the wind-down.
fn teardown_value(id: usize) -> usize {
    600 + id
}
fn resolve(sel: Sel, count: usize) -> usize {
    sel as usize % count
}

/// What a `switch` / `kill` call came back with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok(usize),
    Err(Error),
    /// The call resumed the panic of the body that panicked at this op position.
    Panic(usize),
}

/// State and parent of each coroutine (index = coroutine id, 0 = main); `None` once the program
/// no longer holds a handle to it.
type Snap = Vec<Option<(State, Option<usize>)>>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    /// Coroutine `by` pulled the op at `pos`; `current` is what `Coroutine::current()` says.
    Op {
        pos: usize,
        by: usize,
        current: usize,
        snap: Snap,
    },
    Created(usize),
    Skipped,
    NoHandle(usize),
    Switch {
        to: usize,
    },
    Kill {
        target: usize,
    },
    /// A `switch` / `kill` made by `by` returned.
    Got {
        by: usize,
        outcome: Outcome,
    },
    /// A body started with `value`.
    Start {
        id: usize,
        value: usize,
    },
    /// A body returns `value`.
    Return {
        id: usize,
        value: usize,
    },
    /// A body panics at op `pos`.
    Panic {
        id: usize,
        pos: usize,
    },
    /// A body was left by unwinding (its own panic, or a forced unwind).
    Unwound(usize),
    SetParent {
        c: usize,
        p: usize,
        result: Result<(), Error>,
    },
    Dropping(usize),
    Dropped(usize),
    /// Wind-down: main switches to this SUSPENDED coroutine.
    Teardown(usize),
    Final(Snap),
    /// After all handles are dropped: `Coroutine::current()`.
    End {
        current: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// The interpreter: runs a program on the real library.
// ---------------------------------------------------------------------------------------------

/// The payload of `Op::Panic`.
struct TestPanic(usize);

struct World {
    prog: Vec<Op>,
    next: Cell<usize>,
    /// The program's handles, by coroutine id (0 = main). A call in flight holds an `Rc` clone,
    /// so the handle itself (one per coroutine) lives while the table or a pending call has it.
    table: RefCell<Vec<Option<Rc<Coroutine>>>>,
    ids: RefCell<HashMap<u64, usize>>,
    trace: RefCell<Vec<Ev>>,
}

impl World {
    fn push(&self, e: Ev) {
        self.trace.borrow_mut().push(e);
    }

    fn pull(&self) -> Option<(usize, Op)> {
        let pos = self.next.get();
        let op = *self.prog.get(pos)?;
        self.next.set(pos + 1);
        Some((pos, op))
    }

    fn resolve(&self, sel: Sel) -> usize {
        resolve(sel, self.table.borrow().len())
    }

    fn handle(&self, id: usize) -> Option<Rc<Coroutine>> {
        self.table.borrow()[id].clone()
    }

    fn model_id(&self, c: &Coroutine) -> usize {
        self.ids.borrow().get(&c.id()).copied().unwrap_or(usize::MAX)
    }

    fn snapshot(&self) -> Snap {
        let table = self.table.borrow();
        // Every transition of the program keeps the switch fast path's key in step with the
        // state and (copying mode) the residency it summarises.
        for h in table.iter().flatten() {
            assert!(h.fast_key_is_consistent(), "stale fast-path key for a {:?} coroutine", h.state());
        }
        table.iter().map(|h| h.as_ref().map(|h| (h.state(), h.parent().map(|p| self.model_id(&p))))).collect()
    }

    /// `switch` or `kill` from coroutine `me`; records what it returns.
    fn call(&self, me: usize, h: Rc<Coroutine>, kill: bool, value: usize) {
        let r = catch_unwind(AssertUnwindSafe(|| if kill { h.kill(value) } else { h.switch(value) }));
        let outcome = match r {
            Ok(Ok(v)) => Outcome::Ok(v),
            Ok(Err(e)) => Outcome::Err(e),
            Err(payload) => match payload.downcast::<TestPanic>() {
                Ok(p) => Outcome::Panic(p.0),
                // The library's forced unwind (last handle dropped): let it through.
                Err(payload) => resume_unwind(payload),
            },
        };
        self.push(Ev::Got { by: me, outcome });
        drop(h);
    }

    /// Drops the program's handle of `id`, if it still has one.
    fn drop_handle(&self, id: usize) -> bool {
        let h = self.table.borrow_mut()[id].take();
        match h {
            None => false,
            Some(h) => {
                self.push(Ev::Dropping(id));
                drop(h);
                self.push(Ev::Dropped(id));
                true
            }
        }
    }
}

/// Records `Unwound` when a body is left other than by returning.
struct Guard<'a> {
    w: &'a World,
    id: usize,
    done: bool,
}

impl std::ops::Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.w.push(Ev::Unwound(self.id));
        }
    }
}

fn spawn(w: &Rc<World>, id: usize) -> Coroutine {
    let w = w.clone();
    // Odd coroutines run in copying mode, so every program mixes both modes.
    Coroutine::builder()
        .copying(id % 2 == 1)
        .spawn(move |value| {
            let mut guard = Guard { w: &w, id, done: false };
            w.push(Ev::Start { id, value });
            let r = run(&w, id).unwrap_or(end_value(id));
            w.push(Ev::Return { id, value: r });
            guard.done = true;
            r
        })
        .expect("Builder::spawn")
}

/// The interpreter loop of coroutine `me`. Returns `Some(value)` for `Op::Return` and `None` when
/// the queue is empty.
fn run(w: &Rc<World>, me: usize) -> Option<usize> {
    loop {
        let (pos, op) = w.pull()?;
        let current = w.model_id(&Coroutine::current());
        w.push(Ev::Op { pos, by: me, current, snap: w.snapshot() });
        let value = op_value(pos);
        match op {
            Op::New => {
                let id = w.table.borrow().len();
                if id > MAX_COROS {
                    w.push(Ev::Skipped);
                    continue;
                }
                let c = spawn(w, id);
                w.ids.borrow_mut().insert(c.id(), id);
                w.table.borrow_mut().push(Some(Rc::new(c)));
                w.push(Ev::Created(id));
            }
            Op::Switch(sel) | Op::Kill(sel) => {
                let t = w.resolve(sel);
                let Some(h) = w.handle(t) else {
                    w.push(Ev::NoHandle(t));
                    continue;
                };
                let kill = matches!(op, Op::Kill(_));
                w.push(if kill { Ev::Kill { target: t } } else { Ev::Switch { to: t } });
                w.call(me, h, kill, value);
            }
            Op::Return if me != 0 => return Some(value),
            Op::Panic if me != 0 => {
                w.push(Ev::Panic { id: me, pos });
                resume_unwind(Box::new(TestPanic(pos)));
            }
            Op::Return | Op::Panic => w.push(Ev::Skipped),
            Op::SetParent(a, b) => {
                let (c, p) = (w.resolve(a), w.resolve(b));
                let (Some(hc), Some(hp)) = (w.handle(c), w.handle(p)) else {
                    w.push(Ev::NoHandle(if w.handle(c).is_none() { c } else { p }));
                    continue;
                };
                let result = hc.set_parent(&hp);
                w.push(Ev::SetParent { c, p, result });
            }
            Op::Drop(sel) => {
                let t = w.resolve(sel);
                if t == 0 {
                    w.push(Ev::Skipped);
                } else if !w.drop_handle(t) {
                    w.push(Ev::NoHandle(t));
                }
            }
        }
    }
}

/// Runs `prog` on the library (from the main coroutine) and returns the trace.
fn execute(prog: &[Op]) -> Vec<Ev> {
    let main = Coroutine::main();
    assert_eq!(Coroutine::current(), main, "a test program must start on the main coroutine");
    let w = Rc::new(World {
        prog: prog.to_vec(),
        next: Cell::new(0),
        table: RefCell::new(Vec::new()),
        ids: RefCell::new(HashMap::new()),
        trace: RefCell::new(Vec::new()),
    });
    w.ids.borrow_mut().insert(main.id(), 0);
    w.table.borrow_mut().push(Some(Rc::new(main)));

    run(&w, 0);
    // Wind down: resume every SUSPENDED coroutine we can reach; each finds the queue empty and
    // returns. Bounded in case the library misbehaves.
    for _ in 0..4 * MAX_COROS {
        let next = w
            .table
            .borrow()
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(i, h)| h.as_ref().filter(|h| h.state() == State::Suspended).map(|h| (i, h.clone())));
        let Some((t, h)) = next else { break };
        w.push(Ev::Teardown(t));
        w.call(0, h, false, teardown_value(t));
    }
    w.push(Ev::Final(w.snapshot()));
    let count = w.table.borrow().len();
    for id in 1..count {
        w.drop_handle(id);
    }
    let main = w.table.borrow_mut()[0].take();
    drop(main);
    w.push(Ev::End { current: w.model_id(&Coroutine::current()) });
    // Coroutines that can never run again (SUSPENDED with no handle left) keep `w` alive.
    w.trace.take()
}

// ---------------------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------------------

/// What a resumed coroutine receives.
#[derive(Clone, Copy, Debug)]
enum Sig {
    Value(usize),
    Killed(usize),
    /// A child panicked at this op position.
    Panic(usize),
}

#[derive(Clone, Debug)]
struct MCo {
    state: State,
    /// `None` for main, and once the control block is freed.
    parent: Option<usize>,
    started: bool,
    /// The program's table holds the handle.
    table: bool,
    /// Calls in flight holding (a clone of the `Rc` of) the handle.
    rcs: usize,
    /// References to the control block: the handle (while `table || rcs > 0`), children whose
    /// parent it is, and (for main) the thread's own reference.
    refs: u32,
    /// While SUSPENDED in a `switch` / `kill`: its target.
    pending: Option<usize>,
}

struct Model {
    prog: Vec<Op>,
    next: usize,
    co: Vec<MCo>,
    current: usize,
    trace: Vec<Ev>,
    /// The program with every selector replaced by the id it resolved to (same behaviour,
    /// easier to read and to paste into a regression test).
    canon: Vec<Op>,
    /// How often each interesting rule fired (see `coverage_report`).
    stats: HashMap<&'static str, usize>,
    unwinding: usize,
}

impl Model {
    fn new(prog: &[Op]) -> Model {
        let main = MCo {
            state: State::Running,
            parent: None,
            started: true,
            table: true,
            rcs: 0,
            refs: 2, // the thread's reference and the program's handle
            pending: None,
        };
        Model {
            prog: prog.to_vec(),
            next: 0,
            co: vec![main],
            current: 0,
            trace: Vec::new(),
            canon: Vec::new(),
            stats: HashMap::new(),
            unwinding: 0,
        }
    }

    fn push(&mut self, e: Ev) {
        self.trace.push(e);
    }

    fn hit(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn snapshot(&self) -> Snap {
        self.co.iter().map(|c| c.table.then_some((c.state, c.parent))).collect()
    }

    fn run(&mut self) {
        self.steps();
        for _ in 0..4 * MAX_COROS {
            let next = (1..self.co.len()).find(|&i| self.co[i].table && self.co[i].state == State::Suspended);
            let Some(t) = next else { break };
            self.push(Ev::Teardown(t));
            self.hit("wind-down switch");
            self.call(0, t, false, teardown_value(t));
            self.steps();
        }
        let snap = self.snapshot();
        self.push(Ev::Final(snap));
        self.unwinding = usize::MAX / 2; // count unwinds at the final drop separately
        for id in 1..self.co.len() {
            self.drop_handle(id);
        }
        self.co[0].table = false;
        self.release(0);
        let current = self.current;
        self.push(Ev::End { current });
        for i in 1..self.co.len() {
            if self.co[i].state == State::Suspended {
                // Nothing can resume or unwind it any more (its stack is never released). One
                // with no reference at all would have been unwound.
                assert!(self.co[i].refs > 0, "model: {i} left SUSPENDED with no reference at all");
                self.hit("left SUSPENDED, held by another such coroutine");
            }
        }
    }

    /// Lets the current coroutine pull and execute ops until main finds the queue empty.
    fn steps(&mut self) {
        loop {
            let me = self.current;
            let Some(&op) = self.prog.get(self.next) else {
                if me == 0 {
                    return;
                }
                let value = end_value(me);
                self.push(Ev::Return { id: me, value });
                self.finish(me, Sig::Value(value));
                continue;
            };
            let pos = self.next;
            self.next += 1;
            let snap = self.snapshot();
            self.push(Ev::Op { pos, by: me, current: me, snap });
            if me != 0 {
                self.hit("op run by a coroutine");
            }
            self.exec(me, pos, op);
        }
    }

    fn exec(&mut self, me: usize, pos: usize, op: Op) {
        let value = op_value(pos);
        let count = self.co.len();
        let r = |sel| resolve(sel, count) as Sel;
        self.canon.push(match op {
            Op::Switch(t) => Op::Switch(r(t)),
            Op::Kill(t) => Op::Kill(r(t)),
            Op::SetParent(c, p) => Op::SetParent(r(c), r(p)),
            Op::Drop(t) => Op::Drop(r(t)),
            Op::New | Op::Return | Op::Panic => op,
        });
        match op {
            Op::New => {
                if count > MAX_COROS {
                    self.push(Ev::Skipped);
                    return;
                }
                self.co.push(MCo {
                    state: State::New,
                    parent: Some(me),
                    started: false,
                    table: true,
                    rcs: 0,
                    refs: 1,
                    pending: None,
                });
                self.co[me].refs += 1;
                self.push(Ev::Created(count));
            }
            Op::Switch(sel) | Op::Kill(sel) => {
                let t = resolve(sel, count);
                if !self.co[t].table {
                    self.push(Ev::NoHandle(t));
                    return;
                }
                let kill = matches!(op, Op::Kill(_));
                self.push(if kill { Ev::Kill { target: t } } else { Ev::Switch { to: t } });
                self.call(me, t, kill, value);
            }
            Op::Return if me != 0 => {
                self.push(Ev::Return { id: me, value });
                self.finish(me, Sig::Value(value));
            }
            Op::Panic if me != 0 => {
                self.push(Ev::Panic { id: me, pos });
                self.push(Ev::Unwound(me));
                self.finish(me, Sig::Panic(pos));
            }
            Op::Return | Op::Panic => self.push(Ev::Skipped),
            Op::SetParent(a, b) => {
                let (c, p) = (resolve(a, count), resolve(b, count));
                if !self.co[c].table || !self.co[p].table {
                    self.push(Ev::NoHandle(if self.co[c].table { p } else { c }));
                    return;
                }
                let result = self.set_parent(c, p);
                self.hit(match result {
                    Ok(()) => "set_parent ok",
                    Err(Error::Cycle) => "set_parent cycle",
                    Err(_) => "set_parent main",
                });
                self.push(Ev::SetParent { c, p, result });
            }
            Op::Drop(sel) => {
                let t = resolve(sel, count);
                if t == 0 {
                    self.push(Ev::Skipped);
                } else if !self.drop_handle(t) {
                    self.push(Ev::NoHandle(t));
                }
            }
        }
    }

    fn set_parent(&mut self, c: usize, p: usize) -> Result<(), Error> {
        if c == 0 {
            return Err(Error::Main);
        }
        let mut a = Some(p);
        while let Some(x) = a {
            if x == c {
                return Err(Error::Cycle);
            }
            a = self.co[x].parent;
        }
        self.co[p].refs += 1;
        let old = self.co[c].parent.replace(p).expect("a live coroutine has a parent");
        self.release(old);
        Ok(())
    }

    /// `t.switch(value)` / `t.kill(value)` made by the current coroutine `me`.
    fn call(&mut self, me: usize, t: usize, kill: bool, value: usize) {
        self.co[t].rcs += 1; // the call holds the handle
        let immediate = if t == me {
            // Switching to (or killing) yourself returns at once.
            Some(if kill { Outcome::Err(Error::Killed { reason: value }) } else { Outcome::Ok(value) })
        } else {
            match self.co[t].state {
                State::Dead => Some(Outcome::Err(Error::Dead)),
                State::New if kill => {
                    // Dies unrun; no switch.
                    self.co[t].state = State::Dead;
                    Some(Outcome::Ok(value))
                }
                State::New | State::Suspended => None,
                State::Running => unreachable!("only the current coroutine runs"),
            }
        };
        self.hit(match (kill, &immediate, self.co[t].state) {
            (false, Some(Outcome::Ok(_)), _) => "switch to self",
            (false, Some(_), _) => "switch to dead",
            (false, None, State::New) => "switch starts new",
            (false, None, _) => "switch to suspended",
            (true, Some(Outcome::Ok(_)), _) => "kill new",
            (true, Some(Outcome::Err(Error::Dead)), _) => "kill dead",
            (true, Some(_), _) => "kill self",
            (true, None, _) => "kill suspended",
        });
        if let Some(outcome) = immediate {
            self.push(Ev::Got { by: me, outcome });
            self.drop_rc(t);
            return;
        }
        self.co[me].pending = Some(t);
        // What `t` receives is fixed by the switch, before anything below runs on its stack.
        let sig = if kill { Sig::Killed(value) } else { Sig::Value(value) };
        self.transfer(me, t);
        // First thing on `t`'s stack: if `me` lost its last reference while it ran, it is
        // unreferenced now that it is SUSPENDED, and unwound with `t` as its parent.
        if self.co[me].state == State::Suspended && self.co[me].refs == 0 {
            self.hit(if self.co[t].started {
                "unreferenced switcher unwound by the resumed coroutine"
            } else {
                "unreferenced switcher unwound by the started coroutine"
            });
            self.unwind(me);
        }
        self.resume(t, sig);
    }

    fn transfer(&mut self, from: usize, to: usize) {
        if self.co[from].state == State::Running {
            self.co[from].state = State::Suspended;
        }
        self.co[to].state = State::Running;
        self.current = to;
    }

    /// Coroutine `t` (now current) continues after being switched to with `sig`.
    fn resume(&mut self, t: usize, sig: Sig) {
        if !self.co[t].started {
            // Lazy start: the entry gets the value. (A panic never starts one: `finish` kills
            // NEW ancestors on a panic's way up.)
            self.co[t].started = true;
            if self.trace.last().is_some_and(|e| !matches!(e, Ev::Switch { .. })) {
                self.hit("new ancestor started by a finishing child");
            }
            let value = match sig {
                Sig::Value(v) => v,
                Sig::Panic(_) => unreachable!("model: a panic never starts a coroutine"),
                Sig::Killed(_) => unreachable!("a kill never starts a coroutine"),
            };
            self.push(Ev::Start { id: t, value });
            return;
        }
        let target = self.co[t].pending.take().expect("a SUSPENDED coroutine waits in a call");
        let outcome = match sig {
            Sig::Value(v) => Outcome::Ok(v),
            Sig::Killed(reason) => Outcome::Err(Error::Killed { reason }),
            Sig::Panic(pos) => {
                self.hit("panic resumed in a pending call");
                Outcome::Panic(pos)
            }
        };
        self.push(Ev::Got { by: t, outcome });
        self.drop_rc(target);
    }

    /// The running coroutine `me` finishes: the parent rule. A panic kills the NEW ancestors on
    /// its way (they die unrun) and is resumed in the first one with a pending call (or main).
    fn finish(&mut self, me: usize, sig: Sig) {
        self.co[me].state = State::Dead;
        let mut t = self.co[me].parent.expect("a running coroutine has a parent");
        loop {
            match (self.co[t].state, sig) {
                (State::Dead, _) => self.hit("finish skips a dead ancestor"),
                (State::New, Sig::Panic(_)) => {
                    self.hit("panic kills a new ancestor");
                    self.co[t].state = State::Dead; // dies unrun; its block stays referenced
                }
                _ => break,
            }
            t = self.co[t].parent.expect("the walk ends at main");
        }
        self.hit(if t == 0 { "finish returns to main" } else { "finish returns to a coroutine" });
        self.transfer(me, t);
        self.bury(me);
        self.resume(t, sig);
    }

    /// After a finished coroutine left its stack: free its block if nothing refers to it.
    fn bury(&mut self, b: usize) {
        if self.co[b].refs == 0 {
            self.hit("finished block freed at once");
            if let Some(p) = self.free(b) {
                self.release(p);
            }
        }
    }

    fn free(&mut self, b: usize) -> Option<usize> {
        self.co[b].state = State::Dead;
        self.co[b].parent.take()
    }

    fn drop_handle(&mut self, t: usize) -> bool {
        if !self.co[t].table {
            return false;
        }
        self.push(Ev::Dropping(t));
        self.co[t].table = false;
        if self.co[t].rcs == 0 {
            self.release(t);
        }
        self.push(Ev::Dropped(t));
        true
    }

    fn drop_rc(&mut self, t: usize) {
        self.co[t].rcs -= 1;
        if self.co[t].rcs == 0 && !self.co[t].table {
            self.release(t);
        }
    }

    /// Drops one reference to `b`'s control block.
    fn release(&mut self, mut b: usize) {
        loop {
            self.co[b].refs -= 1;
            if self.co[b].refs > 0 {
                return;
            }
            match self.co[b].state {
                // Freed when it finishes; unwound if it switches away instead (see `call`).
                State::Running => {
                    self.hit("last reference released while running");
                    return;
                }
                State::Suspended => {
                    self.unwind(b);
                    return;
                }
                State::New => {
                    self.hit("release buries a new coroutine");
                    self.co[b].state = State::Dead; // dies unrun
                }
                State::Dead => self.hit("release frees a dead block"),
            }
            match self.free(b) {
                Some(p) => b = p,
                None => return,
            }
        }
    }

    /// The last reference of SUSPENDED `x` is gone: it is unwound with the current coroutine as
    /// its parent, so control comes back here.
    fn unwind(&mut self, x: usize) {
        let me = self.current;
        self.hit(match self.unwinding {
            0 => "forced unwind",
            n if n >= usize::MAX / 2 => "forced unwind at the final drop",
            _ => "forced unwind nested in another",
        });
        self.unwinding += 1;
        self.co[me].refs += 1;
        let old = self.co[x].parent.replace(me).expect("a suspended coroutine has a parent");
        self.co[x].refs = 1; // held while it unwinds
        self.release(old);
        self.transfer(me, x);
        // Its pending call unwinds: the call's handle is dropped, then the body is left.
        let target = self.co[x].pending.take().expect("a SUSPENDED coroutine waits in a call");
        self.drop_rc(target);
        self.push(Ev::Unwound(x));
        // It finishes (a forced unwind passes 0) and control comes back.
        self.co[x].state = State::Dead;
        let mut t = self.co[x].parent.expect("parent set above");
        while self.co[t].state == State::Dead {
            t = self.co[t].parent.expect("the walk ends at main");
        }
        assert_eq!(t, me, "model: an unwound coroutine returns to its dropper");
        self.transfer(x, t);
        self.bury(x);
        if self.co[x].state == State::Dead {
            self.release(x);
        }
        self.unwinding -= 1;
    }
}

/// The trace the contract predicts for `prog` (and the model, for its `canon` program).
fn expected(prog: &[Op]) -> Model {
    let mut m = Model::new(prog);
    m.run();
    m
}

/// `None` if the traces agree, else a readable account of the first difference.
fn divergence(got: &[Ev], want: &[Ev]) -> Option<String> {
    let i = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i))?;
    let from = i.saturating_sub(8);
    let mut s = format!("traces differ at event {i}\n  common prefix tail:\n");
    for e in &got[from..i] {
        s += &format!("    {e:?}\n");
    }
    s += &format!("  library: {:?}\n  model:   {:?}\n", got.get(i), want.get(i));
    s += &format!("  library next: {:?}\n  model next:   {:?}\n", got.get(i + 1), want.get(i + 1));
    Some(s)
}

/// Runs `prog` on both sides; `Err` describes the first difference and the program.
fn compare(prog: &[Op]) -> Result<Vec<Ev>, String> {
    let got = execute(prog);
    let model = expected(prog);
    match divergence(&got, &model.trace) {
        None => Ok(got),
        Some(d) => Err(format!("{d}  program (selectors resolved): {:?}\n", model.canon)),
    }
}

/// Runs `prog` on both sides, asserts that they agree, and returns the trace.
fn check(prog: &[Op]) -> Vec<Ev> {
    compare(prog).unwrap_or_else(|d| panic!("{d}"))
}

/// Whether `needle` occurs in `trace` in this order (not necessarily adjacent).
fn in_order(trace: &[Ev], needle: &[Ev]) -> bool {
    let mut it = trace.iter();
    needle.iter().all(|n| it.any(|e| e == n))
}

fn assert_in_order(trace: &[Ev], needle: &[Ev]) {
    assert!(in_order(trace, needle), "expected in order {needle:#?}\nin trace {trace:#?}");
}

// ---------------------------------------------------------------------------------------------
// The property.
// ---------------------------------------------------------------------------------------------

fn op() -> impl Strategy<Value = Op> {
    let sel = || 0..SEL_RANGE;
    prop_oneof![
        3 => Just(Op::New),
        6 => sel().prop_map(Op::Switch),
        2 => sel().prop_map(Op::Kill),
        2 => Just(Op::Return),
        3 => (sel(), sel()).prop_map(|(c, p)| Op::SetParent(c, p)),
        1 => sel().prop_map(Op::Drop),
        1 => Just(Op::Panic),
    ]
}

/// Most programs start by creating a few coroutines, so that fewer early ops target main.
fn program((news, ops): (usize, Vec<Op>)) -> Vec<Op> {
    let mut prog = vec![Op::New; news];
    prog.extend(ops);
    prog
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_programs_match_the_model(
        news in 0..=3usize,
        ops in proptest::collection::vec(op(), 0..=MAX_OPS),
    ) {
        let prog = program((news, ops));
        if let Err(d) = compare(&prog) {
            prop_assert!(false, "{}", d);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic regressions for the trickiest rules. Each also pins the expected events
// directly, so a bug shared by the model and the library is caught too.
// ---------------------------------------------------------------------------------------------

use Op::*;

fn got(by: usize, v: usize) -> Ev {
    Ev::Got { by, outcome: Outcome::Ok(v) }
}
fn got_err(by: usize, e: Error) -> Ev {
    Ev::Got { by, outcome: Outcome::Err(e) }
}

#[test]
fn dead_parent_passes_the_return_value_to_the_grandparent() {
    let t = check(&[
        New,       // 0 main: A = 1
        Switch(1), // 1 main -> A (starts with 1001)
        New,       // 2 A: B = 2, parent A
        Switch(2), // 3 A -> B
        Switch(1), // 4 B -> A
        Return,    // 5 A returns 1005 to main
        Switch(2), // 6 main -> B
        Return,    // 7 B returns 1007: A is DEAD, so main gets it
    ]);
    assert_in_order(
        &t,
        &[
            Ev::Start { id: 1, value: 1001 },
            Ev::Start { id: 2, value: 1003 },
            got(1, 1004),
            Ev::Return { id: 1, value: 1005 },
            got(0, 1005),
            got(2, 1006),
            Ev::Return { id: 2, value: 1007 },
            got(0, 1007),
        ],
    );
}

#[test]
fn new_ancestor_is_started_with_the_return_value() {
    let t = check(&[
        New,             // 0: A = 1
        New,             // 1: B = 2
        SetParent(2, 1), // 2: B's parent is A (NEW)
        Switch(2),       // 3: main -> B
        Return,          // 4: B returns 1004; A starts with it
        Return,          // 5: A returns 1005 to main
    ]);
    assert_in_order(
        &t,
        &[
            Ev::SetParent { c: 2, p: 1, result: Ok(()) },
            Ev::Start { id: 2, value: 1003 },
            Ev::Return { id: 2, value: 1004 },
            Ev::Start { id: 1, value: 1004 },
            Ev::Return { id: 1, value: 1005 },
            got(0, 1005),
        ],
    );
}

#[test]
fn kill_new_coroutine_kills_it_unrun() {
    let t = check(&[New, Kill(1), Switch(1), Kill(1)]);
    assert_in_order(&t, &[got(0, 1001), got_err(0, Error::Dead), got_err(0, Error::Dead)]);
    assert!(!t.iter().any(|e| matches!(e, Ev::Start { .. })));
}

#[test]
fn kill_self_and_kill_suspended() {
    let t = check(&[
        New,       // 0: A = 1
        Switch(1), // 1: main -> A
        Kill(1),   // 2: A kills itself
        Kill(0),   // 3: A kills main: main's pending switch gets Killed(1003)
        Kill(0),   // 4: main kills itself
        Switch(1), // 5: main -> A: A's pending kill returns 1005
        Kill(1),   // 6: A kills itself again
    ]);
    assert_in_order(
        &t,
        &[
            got_err(1, Error::Killed { reason: 1002 }),
            got_err(0, Error::Killed { reason: 1003 }),
            got_err(0, Error::Killed { reason: 1004 }),
            got(1, 1005),
            got_err(1, Error::Killed { reason: 1006 }),
        ],
    );
}

#[test]
fn set_parent_refuses_cycles_and_main() {
    let t = check(&[
        New,             // 0: A = 1
        New,             // 1: B = 2
        SetParent(1, 1), // 2: self
        SetParent(1, 2), // 3: A under B
        SetParent(2, 1), // 4: B under A: cycle
        SetParent(0, 1), // 5: main
        SetParent(2, 0), // 6: fine
        Kill(1),         // 7
        SetParent(2, 1), // 8: still a cycle through a DEAD A
    ]);
    assert_in_order(
        &t,
        &[
            Ev::SetParent { c: 1, p: 1, result: Err(Error::Cycle) },
            Ev::SetParent { c: 1, p: 2, result: Ok(()) },
            Ev::SetParent { c: 2, p: 1, result: Err(Error::Cycle) },
            Ev::SetParent { c: 0, p: 1, result: Err(Error::Main) },
            Ev::SetParent { c: 2, p: 0, result: Ok(()) },
            Ev::SetParent { c: 2, p: 1, result: Err(Error::Cycle) },
        ],
    );
}

#[test]
fn switching_to_the_current_coroutine_returns_at_once() {
    let t = check(&[Switch(0), New, Switch(1), Switch(1), Switch(0)]);
    assert_in_order(&t, &[got(0, 1000), Ev::Start { id: 1, value: 1002 }, got(1, 1003), got(0, 1004)]);
}

#[test]
fn dropping_the_last_handle_of_a_suspended_coroutine_unwinds_it() {
    let t = check(&[New, Switch(1), Switch(0), Drop(1), Switch(1)]);
    assert_in_order(&t, &[got(0, 1002), Ev::Dropping(1), Ev::Unwound(1), Ev::Dropped(1), Ev::NoHandle(1)]);
}

#[test]
fn a_panic_is_resumed_in_the_parent_and_kill_can_be_refused() {
    let t = check(&[
        New,       // 0: A = 1
        Switch(1), // 1: main -> A
        Switch(0), // 2: A -> main
        Kill(1),   // 3: main kills A; A refuses to die and goes on
        Panic,     // 4: A panics: main's kill resumes the panic
    ]);
    assert_in_order(
        &t,
        &[
            got_err(1, Error::Killed { reason: 1003 }),
            Ev::Panic { id: 1, pos: 4 },
            Ev::Unwound(1),
            Ev::Got { by: 0, outcome: Outcome::Panic(4) },
        ],
    );
}

#[test]
fn the_wind_down_resumes_every_suspended_coroutine() {
    let t = check(&[New, New, Switch(1), Switch(2), Switch(0)]);
    let Some(Ev::Final(snap)) = t.iter().rev().find(|e| matches!(e, Ev::Final(_))) else {
        panic!("no final snapshot");
    };
    assert!(snap.iter().skip(1).all(|s| matches!(s, Some((State::Dead, _)))), "{snap:?}");
}

/// How often each rule fires in the random programs (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn coverage_report() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (0..=3usize, proptest::collection::vec(op(), 0..=MAX_OPS));
    let cases = config().cases;
    let mut total: HashMap<&'static str, usize> = HashMap::new();
    let mut programs: HashMap<&'static str, usize> = HashMap::new();
    for _ in 0..cases {
        let prog = strategy.new_tree(&mut runner).unwrap().current();
        let mut m = Model::new(&program(prog));
        m.run();
        for (k, v) in m.stats {
            *total.entry(k).or_default() += v;
            *programs.entry(k).or_default() += 1;
        }
    }
    let mut rows: Vec<_> = total.into_iter().collect();
    rows.sort();
    println!("{cases} programs; rule: times fired (programs where it fired)");
    for (k, v) in rows {
        println!("  {k:45} {v:7} ({})", programs[k]);
    }
}

/// A's last handle is dropped while it is SUSPENDED, but its child B's parent link keeps it
/// (correct: B may return into it). B returns into A, and A re-parents B, which releases A's last
/// reference while A is RUNNING. When A then switches to main it is SUSPENDED with no reference:
/// main unwinds it (as its new parent) before main's pending switch returns what A sent.
#[test]
fn last_reference_released_while_running_then_suspending_unwinds() {
    let t = check(&[
        New,             // 0 main: A = 1
        Switch(1),       // 1 main -> A
        New,             // 2 A: B = 2, parent A
        Switch(0),       // 3 A -> main
        Drop(1),         // 4 main drops A's handle: A stays (B's parent link)
        Switch(2),       // 5 main -> B
        Return,          // 6 B returns into A
        SetParent(2, 0), // 7 A: B's parent is main now: A's last reference goes, A runs
        Switch(0),       // 8 A -> main: A is SUSPENDED with no reference: main unwinds it
    ]);
    assert_in_order(
        &t,
        &[
            Ev::Dropping(1),
            Ev::Dropped(1),
            got(1, 1006),
            Ev::SetParent { c: 2, p: 0, result: Ok(()) },
            Ev::Switch { to: 0 },
            Ev::Unwound(1),
            got(0, 1008),
        ],
    );
    assert!(!t.contains(&Ev::Return { id: 1, value: end_value(1) }), "{t:#?}");
}

/// The same when the coroutine that lost its last reference while running starts a NEW one: the
/// new coroutine unwinds it (as its new parent) before its entry runs. (A is started by its
/// finishing child, so no pending call holds A's handle.)
#[test]
fn last_reference_released_while_running_then_starting_a_new_one_unwinds() {
    let t = check(&[
        New,             // 0 main: A = 1
        New,             // 1 main: B = 2
        New,             // 2 main: C = 3
        SetParent(2, 1), // 3 B under A (NEW)
        Switch(2),       // 4 main -> B
        Return,          // 5 B returns 1005: A starts with it
        SetParent(2, 0), // 6 A: B under main: only A's handle refers to A now
        Drop(1),         // 7 A drops its own handle: its last reference, A runs
        Switch(3),       // 8 A -> C (NEW): C unwinds A first, then starts with 1008
        Return,          // 9 C returns 1009 to main, whose switch at 4 is still pending
    ]);
    assert_in_order(
        &t,
        &[
            Ev::Start { id: 1, value: 1005 },
            Ev::Dropping(1),
            Ev::Dropped(1),
            Ev::Switch { to: 3 },
            Ev::Unwound(1),
            Ev::Start { id: 3, value: 1008 },
            Ev::Return { id: 3, value: 1009 },
            got(0, 1009),
        ],
    );
}

/// A panic whose parent chain reaches NEW ancestors kills them unrun (skipping DEAD ones as
/// always) and is resumed in the first ancestor with a pending call.
#[test]
fn a_panic_kills_new_ancestors_on_its_way_up() {
    let t = check(&[
        New,             // 0 main: A = 1
        Switch(1),       // 1 main -> A
        New,             // 2 A: B = 2
        New,             // 3 A: C = 3
        New,             // 4 A: D = 4
        New,             // 5 A: E = 5
        SetParent(5, 2), // 6 E under B
        Kill(5),         // 7 E dies unrun
        SetParent(3, 5), // 8 C under E
        SetParent(4, 3), // 9 D under C: D -> C (NEW) -> E (DEAD) -> B (NEW) -> A
        Switch(4),       // 10 A -> D
        Panic,           // 11 D panics: C and B die unrun, A's switch resumes the panic
        Switch(2),       // 12 A -> B: DEAD
        Switch(3),       // 13 A -> C: DEAD
    ]);
    assert_in_order(
        &t,
        &[
            got(1, 1007),
            Ev::Start { id: 4, value: 1010 },
            Ev::Panic { id: 4, pos: 11 },
            Ev::Unwound(4),
            Ev::Got { by: 1, outcome: Outcome::Panic(11) },
            got_err(1, Error::Dead),
            got_err(1, Error::Dead),
            Ev::Return { id: 1, value: end_value(1) },
            got(0, end_value(1)),
        ],
    );
    assert!(!t.iter().any(|e| matches!(e, Ev::Start { id: 2 | 3 | 5, .. })), "{t:#?}");
    let snap = t.iter().find_map(|e| match e {
        Ev::Op { pos: 12, snap, .. } => Some(snap),
        _ => None,
    });
    let dead = |id: usize| snap.is_some_and(|s| matches!(s[id], Some((State::Dead, _))));
    assert!(dead(2) && dead(3) && dead(5), "{snap:?}");
}
