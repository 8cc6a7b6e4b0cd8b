//! The safe Rust API: lifecycle, the parent rule, kill, panics, unwinding on drop, threads.

use coro::{Coroutine, Error, State};
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn lazy_start_and_values_both_ways() {
    let main = Coroutine::current();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let c = Coroutine::new(move |first| {
        l.borrow_mut().push(first);
        let got = main.switch(first + 1).unwrap();
        l.borrow_mut().push(got);
        got * 2
    })
    .unwrap();
    assert_eq!(c.state(), State::New);
    assert!(log.borrow().is_empty(), "nothing runs before the first switch");
    assert_eq!(c.switch(10), Ok(11));
    assert_eq!(c.state(), State::Suspended);
    assert_eq!(c.switch(21), Ok(42));
    assert_eq!(c.state(), State::Dead);
    assert_eq!(*log.borrow(), vec![10, 21]);
    assert_eq!(c.switch(0), Err(Error::Dead));
}

#[test]
fn switch_to_current_returns_at_once() {
    let me = Coroutine::current();
    assert_eq!(me.switch(7), Ok(7));
    let c = Coroutine::new(|v| {
        let me = Coroutine::current();
        me.switch(v + 1).unwrap()
    })
    .unwrap();
    assert_eq!(c.switch(1), Ok(2));
}

#[test]
fn return_goes_to_first_live_ancestor() {
    let main = Coroutine::current();
    // grandparent -> parent -> child, parent dies before child returns.
    let child_slot: Rc<RefCell<Option<Coroutine>>> = Rc::default();
    let slot = child_slot.clone();
    let parent = Coroutine::new(move |_| {
        let child = Coroutine::new(|v| v + 1000).unwrap();
        *slot.borrow_mut() = Some(child);
        5 // parent finishes without ever running the child
    })
    .unwrap();
    assert_eq!(parent.switch(0), Ok(5));
    assert!(parent.is_dead());
    let child = child_slot.borrow_mut().take().unwrap();
    assert_eq!(child.parent().unwrap(), parent);
    // child's parent is DEAD, so its return value comes to the parent's parent: main.
    assert_eq!(child.switch(1), Ok(1001));
    assert_eq!(Coroutine::current(), main);
}

#[test]
fn new_ancestor_is_started_with_the_return_value() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let p = Coroutine::new(move |v| {
        *s.borrow_mut() = Some(v);
        v + 1
    })
    .unwrap();
    let c = Coroutine::new(|v| v * 3).unwrap();
    c.set_parent(&p).unwrap();
    // c returns 30 to p (NEW), which starts with it; p returns 31 to its parent, main.
    assert_eq!(c.switch(10), Ok(31));
    assert_eq!(*seen.borrow(), Some(30));
}

#[test]
fn set_parent_refuses_cycles_and_mains() {
    let a = Coroutine::new(|v| v).unwrap();
    let b = Coroutine::new(|v| v).unwrap();
    b.set_parent(&a).unwrap();
    assert_eq!(a.set_parent(&b), Err(Error::Cycle));
    assert_eq!(a.set_parent(&a), Err(Error::Cycle));
    assert_eq!(Coroutine::main().set_parent(&a), Err(Error::Main));
    assert!(Coroutine::main().parent().is_none());
}

#[test]
fn kill_suspended_new_self_and_dead() {
    let main = Coroutine::current();
    let m = main.clone();
    let c = Coroutine::new(move |_| match m.switch(1) {
        Err(Error::Killed { reason }) => reason + 1,
        other => panic!("expected a kill, got {other:?}"),
    })
    .unwrap();
    assert_eq!(c.switch(0), Ok(1));
    assert_eq!(c.kill(41), Ok(42), "the killed coroutine cleans up and returns");
    assert_eq!(c.kill(0), Err(Error::Dead));

    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let n = Coroutine::new(move |v| {
        *r.borrow_mut() = true;
        v
    })
    .unwrap();
    assert_eq!(n.kill(9), Ok(9));
    assert_eq!(n.state(), State::Dead);
    assert!(!*ran.borrow(), "a killed NEW coroutine never runs");

    assert_eq!(main.kill(3), Err(Error::Killed { reason: 3 }));
}

#[test]
fn a_killed_coroutine_may_refuse_to_die() {
    let main = Coroutine::current();
    let m = main.clone();
    let c = Coroutine::new(move |_| {
        let first = m.switch(0);
        assert_eq!(first, Err(Error::Killed { reason: 5 }));
        let again = m.switch(6).unwrap(); // ignores the kill
        again + 1
    })
    .unwrap();
    c.switch(0).unwrap();
    assert_eq!(c.kill(5), Ok(6));
    assert_eq!(c.state(), State::Suspended);
    assert_eq!(c.switch(10), Ok(11));
}

#[test]
fn panic_is_resumed_in_the_parent() {
    let c = Coroutine::builder().name("boom").spawn(|_| panic!("inside the coroutine")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.switch(0)));
    let payload = caught.expect_err("the panic must come back to the switch caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside the coroutine"));
    assert_eq!(c.state(), State::Dead);
    // The thread keeps working.
    let d = Coroutine::new(|v| v + 1).unwrap();
    assert_eq!(d.switch(1), Ok(2));
}

struct SetOnDrop(Rc<RefCell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        *self.0.borrow_mut() = true;
    }
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_it() {
    let dropped = Rc::new(RefCell::new(false));
    let d = dropped.clone();
    let main = Coroutine::current();
    let c = Coroutine::new(move |_| {
        let _guard = SetOnDrop(d);
        main.switch(1).unwrap();
        unreachable!("never resumed normally");
    })
    .unwrap();
    assert_eq!(c.switch(0), Ok(1));
    assert!(!*dropped.borrow());
    drop(c);
    assert!(*dropped.borrow(), "the coroutine's locals were dropped by the unwind");
    assert_eq!(Coroutine::current(), Coroutine::main());
}

#[test]
fn dropping_new_coroutine_drops_its_closure() {
    let dropped = Rc::new(RefCell::new(false));
    let guard = SetOnDrop(dropped.clone());
    let c = Coroutine::new(move |v| {
        let _g = &guard;
        v
    })
    .unwrap();
    drop(c);
    assert!(*dropped.borrow());
}

#[test]
fn names_ids_and_stack_sizes() {
    let c = Coroutine::builder().name("worker").stack_size(64 * 1024).spawn(|v| v).unwrap();
    assert_eq!(c.name().as_deref(), Some("worker"));
    c.set_name(None).unwrap();
    assert_eq!(c.name(), None);
    assert_eq!(c.set_name(Some("a\0b")), Err(Error::Invalid));
    let d = Coroutine::new(|v| v).unwrap();
    assert_ne!(c.id(), d.id());
    assert_eq!(Coroutine::builder().stack_size(1024).spawn(|v| v).unwrap_err(), Error::Invalid);
    assert_eq!(Coroutine::builder().stack_size(coro::MAX_STACK_SIZE + 1).spawn(|v| v).unwrap_err(), Error::Invalid);
}

#[test]
fn deep_recursion_fits_in_a_large_stack() {
    fn depth(n: usize) -> usize {
        // A frame with a 512-byte local the optimiser cannot remove.
        let pad = std::hint::black_box([n as u8; 512]);
        if n == 0 {
            0
        } else {
            1 + depth(n - 1) + usize::from(pad[0] == 1 && pad[1] == 0)
        }
    }
    let c = Coroutine::builder().stack_size(8 << 20).spawn(depth).unwrap();
    assert_eq!(c.switch(3_000), Ok(3_000));
}

#[test]
fn threads_have_their_own_mains_and_coroutines() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let main = Coroutine::main();
                let coros: Vec<Coroutine> = (0..1000)
                    .map(|i| {
                        let m = main.clone();
                        Coroutine::new(move |v| {
                            let w = m.switch(v + i).unwrap();
                            w + i
                        })
                        .unwrap()
                    })
                    .collect();
                let mut sum = 0;
                for (i, c) in coros.iter().enumerate() {
                    assert_eq!(c.switch(t), Ok(t + i));
                }
                for (i, c) in coros.iter().enumerate() {
                    let r = c.switch(1).unwrap();
                    assert_eq!(r, 1 + i);
                    sum += r;
                }
                assert!(coros.iter().all(Coroutine::is_dead));
                (main.id(), sum)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ids: Vec<_> = results.iter().map(|r| r.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every thread has its own main");
    assert!(results.iter().all(|r| r.1 == (1..=1000).sum::<usize>()));
}

#[test]
fn many_create_finish_cycles_reuse_stacks() {
    for i in 0..20_000usize {
        let c = Coroutine::new(move |v| v + i).unwrap();
        assert_eq!(c.switch(1), Ok(1 + i));
    }
}

#[test]
fn abandon_releases_a_suspended_coroutine_without_running_it() {
    let dropped = Rc::new(RefCell::new(false));
    let d = dropped.clone();
    let main = Coroutine::current();
    let c = Coroutine::builder()
        .unwind_on_drop(false)
        .spawn(move |_| {
            let _guard = SetOnDrop(d);
            main.switch(1).unwrap();
            unreachable!("an abandoned coroutine never runs again");
        })
        .unwrap();
    assert_eq!(c.switch(0), Ok(1));
    assert!(c.stack_in_use() > 0, "a suspended coroutine uses some of its stack");
    assert_eq!(c.abandon(), Ok(()));
    assert_eq!(c.state(), State::Dead);
    assert_eq!(c.stack_in_use(), 0);
    assert!(!*dropped.borrow(), "nothing on an abandoned stack is dropped");
    assert_eq!(c.abandon(), Err(Error::Dead));
    assert_eq!(Coroutine::main().abandon(), Err(Error::Main));
    assert_eq!(Coroutine::current().abandon(), Err(Error::Main));
    let running = Coroutine::new(|_| match Coroutine::current().abandon() {
        Err(Error::Busy) => 1,
        _ => 0,
    })
    .unwrap();
    assert_eq!(running.switch(0), Ok(1));
}
