//! Copying (shared-stack) mode through the Rust API: frames survive being saved and restored,
//! at every depth, between copying coroutines (both directions of the overlap rule), with many
//! coroutines, kill and unwind, panics, mixing with own-stack coroutines, and threads.

use coro::{Coroutine, Error, State};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

fn copying() -> coro::Builder {
    Coroutine::builder().copying(true)
}

/// Recurses `depth` levels, each with a 256-byte local array filled from `seed`, switches to
/// `to` at the bottom (carrying `seed`), and checks every level's array on the way back up.
fn deep(depth: usize, seed: usize, to: &Coroutine) -> usize {
    let mut local = [0u8; 256];
    for (i, b) in local.iter_mut().enumerate() {
        *b = (seed.wrapping_mul(31).wrapping_add(depth * 7 + i)) as u8;
    }
    let got = if depth == 0 { to.switch(seed).unwrap() } else { deep(depth - 1, seed, to) };
    for (i, b) in std::hint::black_box(&local).iter().enumerate() {
        assert_eq!(*b, (seed.wrapping_mul(31).wrapping_add(depth * 7 + i)) as u8, "frame at depth {depth} damaged");
    }
    got
}

#[test]
fn values_and_locals_survive_switches_with_main() {
    let main = Coroutine::current();
    let c = copying()
        .spawn(move |first| {
            let mut sum = first;
            for i in 0..100 {
                sum += main.switch(sum).unwrap() + i;
            }
            sum
        })
        .unwrap();
    assert!(c.is_copying());
    let mut v = c.switch(1).unwrap();
    let mut expect = 1;
    for i in 0..100 {
        assert_eq!(v, expect);
        expect += 2 + i;
        v = c.switch(2).unwrap();
    }
    assert_eq!(v, expect);
    assert_eq!(c.state(), State::Dead);
}

#[test]
fn deep_copying_coroutines_switch_to_each_other_in_both_directions() {
    // A recurses deeply and switches to B; B is shallow (its restore lies above A's frames) and
    // switches back; then B goes deep and A is shallow; every level is checked.
    let main = Coroutine::current();
    let b_slot: Rc<RefCell<Option<Coroutine>>> = Rc::new(RefCell::new(None));
    let a_slot: Rc<RefCell<Option<Coroutine>>> = Rc::new(RefCell::new(None));
    let (bs, m1) = (b_slot.clone(), main.clone());
    let a = copying()
        .stack_size(1 << 20)
        .spawn(move |_| {
            let b = bs.borrow().clone().unwrap();
            let mut total = 0;
            for round in 0..20 {
                total += deep(200 + round, round, &b); // B answers round * 2
                total += b.switch(round).unwrap(); // shallow here; B may be deep
            }
            m1.switch(total).unwrap();
            0
        })
        .unwrap();
    let (as_, m2) = (a_slot.clone(), main.clone());
    let b = copying()
        .stack_size(1 << 20)
        .spawn(move |mut v| {
            let a = as_.borrow().clone().unwrap();
            loop {
                v = a.switch(v * 2).unwrap(); // shallow: A is deep
                v = deep(300, v, &a); // deep: A switches back shallow
                let _ = &m2;
            }
        })
        .unwrap();
    *b_slot.borrow_mut() = Some(b.clone());
    *a_slot.borrow_mut() = Some(a.clone());
    let total = a.switch(0).unwrap();
    let expect: usize = (0..20).map(|r| r * 2 + r).sum();
    assert_eq!(total, expect);
    assert!(a.stack_in_use() > 0);
    assert!(b.stack_in_use() > 300 * 256, "B is suspended deep: {}", b.stack_in_use());
    drop(a_slot.borrow_mut().take());
    drop(b_slot.borrow_mut().take());
}

#[test]
fn ten_thousand_copying_coroutines_keep_their_state() {
    let main = Coroutine::current();
    let n = 10_000;
    let cs: Vec<Coroutine> = (0..n)
        .map(|i| {
            let m = main.clone();
            copying()
                .spawn(move |x| {
                    let mine = [i; 8];
                    let y = m.switch(x + i).unwrap();
                    assert_eq!(std::hint::black_box(mine), [i; 8]);
                    y * 2 + mine[7]
                })
                .unwrap()
        })
        .collect();
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(c.switch(1).unwrap(), 1 + i);
    }
    let used: usize = cs.iter().map(Coroutine::stack_in_use).sum();
    assert!(used / n < 4096, "a suspended copying coroutine keeps only what it uses: {}", used / n);
    for (i, c) in cs.iter().enumerate().rev() {
        assert_eq!(c.switch(5).unwrap(), 10 + i);
        assert!(c.is_dead());
    }
}

#[test]
fn copying_coroutines_chain_switches_without_main() {
    // Each coroutine passes the token to the next one directly: every switch moves a copying
    // coroutine off the shared stack and another one on.
    let n = 50;
    let ring: Rc<RefCell<Vec<Coroutine>>> = Rc::new(RefCell::new(Vec::new()));
    let main = Coroutine::current();
    for i in 0..n {
        let r = ring.clone();
        let m = main.clone();
        let c = copying()
            .spawn(move |mut token| {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    seen.push(token);
                    let next = r.borrow()[(i + 1) % n].clone();
                    token = if i == n - 1 && seen.len() == 10 {
                        m.switch(token + 1).unwrap()
                    } else {
                        next.switch(token + 1).unwrap()
                    };
                }
                assert!(seen.windows(2).all(|w| w[1] == w[0] + n));
                0
            })
            .unwrap();
        ring.borrow_mut().push(c);
    }
    let first = ring.borrow()[0].clone();
    assert_eq!(first.switch(0).unwrap(), n * 10);
    ring.borrow_mut().clear();
}

struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn dropping_a_suspended_copying_coroutine_unwinds_it_while_another_occupies_the_stack() {
    let main = Coroutine::current();
    let unwound = Rc::new(Cell::new(false));
    let (u, m) = (unwound.clone(), main.clone());
    let victim = copying()
        .spawn(move |_| {
            let _flag = Flag(u);
            let buf = [7u8; 1000];
            m.switch(1).unwrap();
            std::hint::black_box(buf)[999] as usize
        })
        .unwrap();
    let m = main.clone();
    let other = copying()
        .spawn(move |_| {
            let buf = [9u8; 4000];
            m.switch(std::hint::black_box(buf)[0] as usize).unwrap();
            0
        })
        .unwrap();
    victim.switch(0).unwrap();
    assert_eq!(other.switch(0).unwrap(), 9); // `other` now occupies the shared stack
    drop(victim);
    assert!(unwound.get(), "the victim was restored and unwound");
    assert_eq!(other.switch(0).unwrap(), 0, "the occupant's frames were saved around the unwind");
}

#[test]
fn kill_and_panic_in_copying_mode() {
    let main = Coroutine::current();
    let m = main.clone();
    let c = copying()
        .spawn(move |_| match m.switch(0) {
            Err(Error::Killed { reason }) => reason + 1,
            _ => 0,
        })
        .unwrap();
    c.switch(0).unwrap();
    assert_eq!(c.kill(41), Ok(42));
    let p = copying().spawn(|_| panic!("boom in copying mode")).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.switch(0)));
    assert!(r.is_err());
    assert!(p.is_dead());
}

#[test]
fn mixed_modes_switch_among_each_other() {
    let main = Coroutine::current();
    let own_slot: Rc<RefCell<Option<Coroutine>>> = Rc::new(RefCell::new(None));
    let os = own_slot.clone();
    let m = main.clone();
    let cp = copying()
        .spawn(move |v| {
            let own = os.borrow().clone().unwrap();
            let local = [v; 64];
            let w = own.switch(v + 1).unwrap(); // own-stack coroutine answers
            assert_eq!(std::hint::black_box(local), [v; 64]);
            m.switch(w + 1).unwrap();
            0
        })
        .unwrap();
    let cp2 = cp.clone();
    let own = Coroutine::builder()
        .copying(false)
        .spawn(move |v| {
            // While here, start another copying coroutine that takes the shared stack.
            let other = Coroutine::builder().copying(true).spawn(|x| x * 3).unwrap();
            let x = other.switch(v).unwrap();
            cp2.switch(x).unwrap();
            0
        })
        .unwrap();
    assert!(!own.is_copying());
    *own_slot.borrow_mut() = Some(own.clone());
    assert_eq!(cp.switch(1).unwrap(), 2 * 3 + 1);
    own_slot.borrow_mut().take();
}

#[test]
fn thread_default_mode() {
    std::thread::spawn(|| {
        let c = Coroutine::new(|x| x).unwrap();
        assert!(!c.is_copying());
        Coroutine::set_copying_default(true).unwrap();
        let c = Coroutine::new(|x| x + 1).unwrap();
        assert!(c.is_copying());
        assert_eq!(c.switch(1), Ok(2));
        let own = Coroutine::builder().copying(false).spawn(|x| x).unwrap();
        assert!(!own.is_copying());
        Coroutine::set_copying_default(false).unwrap();
        assert!(!Coroutine::new(|x| x).unwrap().is_copying());
    })
    .join()
    .unwrap();
}

#[test]
fn a_thread_may_exit_with_copying_coroutines_suspended() {
    let leftovers = std::thread::spawn(|| {
        let main = Coroutine::current();
        let mut v = Vec::new();
        for i in 0..10 {
            let m = main.clone();
            let c = copying()
                .unwind_on_drop(false)
                .spawn(move |_| {
                    m.switch(i).unwrap();
                    0
                })
                .unwrap();
            c.switch(0).unwrap();
            v.push(c.stack_in_use());
        }
        v
    })
    .join()
    .unwrap();
    assert!(leftovers.iter().all(|&n| n > 0));
}
