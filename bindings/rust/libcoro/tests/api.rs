//! The safe wrapper over libcoro's C ABI: values, finishing, kill, panics, drop, errors, threads.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use libcoro::{Coroutine, Error, Handle, State, Status};

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn values_both_ways_and_return_to_parent() {
    let main = Handle::main().unwrap();
    let c = Coroutine::new(move |limit| {
        for i in 0..limit {
            assert_eq!(main.switch(i * 10).unwrap(), i + 100);
        }
        7777
    })
    .unwrap();
    assert_eq!(c.state().unwrap(), State::New);
    let mut v = c.switch(3).unwrap();
    let mut i = 0;
    while v != 7777 {
        assert_eq!(v, i * 10);
        assert_eq!(c.state().unwrap(), State::Suspended);
        v = c.switch(i + 100).unwrap();
        i += 1;
    }
    assert_eq!(i, 3);
    assert!(c.is_dead());
    assert_eq!(c.parent().unwrap(), Some(main));
    assert_eq!(main.parent().unwrap(), None);
    assert_eq!(Handle::current().unwrap(), main);
}

#[test]
fn switch_after_finish_is_edead() {
    let c = Coroutine::new(|v| v + 1).unwrap();
    assert_eq!(c.switch(1).unwrap(), 2);
    assert_eq!(c.switch(1), Err(Error::Status(Status::EDEAD)));
    assert_eq!(c.kill(0), Err(Error::Status(Status::EDEAD)));
}

#[test]
fn stale_handle_after_drop() {
    let c = Coroutine::new(|v| v).unwrap();
    let h = c.handle();
    drop(c);
    assert_eq!(h.switch(0), Err(Error::Status(Status::ESTALE)));
    assert_eq!(h.state(), Err(Status::ESTALE));
    assert!(h.is_dead());
}

#[test]
fn builder_options_and_errors() {
    let c = Coroutine::builder().stack_size(64 * 1024).name("worker-7").spawn(|v| v).unwrap();
    assert_eq!(c.name().unwrap().as_deref(), Some("worker-7"));
    assert!(c.id().unwrap() > 0);
    assert_eq!(Coroutine::builder().stack_size(1).spawn(|v| v).err(), Some(Status::EINVAL));
    assert_eq!(Coroutine::builder().name("a\0b").spawn(|v| v).err(), Some(Status::EINVAL));
    let a = Coroutine::new(|v| v).unwrap();
    let b = Coroutine::new(|v| v).unwrap();
    b.set_parent(*a).unwrap();
    assert_eq!(a.set_parent(*b), Err(Status::ECYCLE));
    assert!(!Status::ECYCLE.message().is_empty());
    assert_eq!(Status::ECYCLE.code(), 7);
    assert_eq!(Status::ECYCLE.to_string(), Status::ECYCLE.message());
}

#[test]
fn kill_is_an_error_value_the_entry_handles() {
    let main = Handle::main().unwrap();
    let cleaned = Rc::new(Cell::new(false));
    let flag = cleaned.clone();
    let c = Coroutine::new(move |_| {
        let _guard = SetOnDrop(flag);
        loop {
            if let Err(Error::Killed(reason)) = main.switch(0) {
                return reason * 2;
            }
        }
    })
    .unwrap();
    c.switch(0).unwrap();
    assert!(!cleaned.get());
    assert_eq!(c.kill(21).unwrap(), 42);
    assert!(cleaned.get());
    assert!(c.is_dead());

    // New: dead without running.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let n = Coroutine::new(move |_| {
        r.set(true);
        0
    })
    .unwrap();
    n.kill(0).unwrap();
    assert!(!ran.get());
    assert!(n.is_dead());

    // Yourself: at once.
    let s = Coroutine::new(|_| match Handle::current().unwrap().kill(5) {
        Err(Error::Killed(r)) => r + 1,
        _ => 0,
    })
    .unwrap();
    assert_eq!(s.switch(0).unwrap(), 6);
}

#[test]
fn panic_goes_to_the_coroutine_resumed_next() {
    let bad = Coroutine::new(|_| panic!("boom")).unwrap();
    let err = panic::catch_unwind(AssertUnwindSafe(|| bad.switch(0))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    assert!(bad.is_dead());
    // Nothing left over: the next switch is clean.
    let good = Coroutine::new(|v| v).unwrap();
    assert_eq!(good.switch(9).unwrap(), 9);

    // Through a parent that catches it.
    let outer = Coroutine::new(|_| {
        let inner = Coroutine::new(|_| -> usize { panic!("inner") }).unwrap();
        match panic::catch_unwind(AssertUnwindSafe(|| inner.switch(0))) {
            Err(_) => 99,
            Ok(_) => 1,
        }
    })
    .unwrap();
    assert_eq!(outer.switch(0).unwrap(), 99);
}

#[test]
fn drop_of_a_suspended_coroutine_kills_and_unwinds_it() {
    let main = Handle::main().unwrap();
    let cleaned = Rc::new(Cell::new(false));
    let flag = cleaned.clone();
    let keeper = Coroutine::new(|v| v).unwrap();
    let c = Coroutine::new(move |_| {
        let _guard = SetOnDrop(flag);
        let _big = vec![1u8; 1 << 16];
        main.switch(0).unwrap(); // a kill makes this unwrap panic: also fine, it is dropped
        0
    })
    .unwrap();
    c.switch(0).unwrap();
    c.set_parent(*keeper).unwrap(); // drop re-parents it to the dropper first
    drop(c);
    assert!(cleaned.get());
    assert_eq!(Handle::current().unwrap(), main);
}

#[test]
fn many_coroutines_alive_at_once() {
    let main = Handle::main().unwrap();
    let cs: Vec<Coroutine> = (0..2000)
        .map(|i| {
            Coroutine::new(move |_| {
                let s = format!("coroutine {i}");
                let _ = main.switch(i);
                s.len()
            })
            .unwrap()
        })
        .collect();
    let sum: usize = cs.iter().map(|c| c.switch(0).unwrap()).sum();
    assert_eq!(sum, 2000 * 1999 / 2);
    for (i, c) in cs.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        assert_eq!(c.switch(0).unwrap(), format!("coroutine {i}").len());
    }
    drop(cs); // the odd ones are still suspended: killed and unwound here
}

#[test]
fn another_thread_gets_ethread() {
    let c = Coroutine::new(|v| v).unwrap();
    let raw = c.as_raw() as usize;
    let (status, own) = std::thread::spawn(move || {
        // SAFETY: `raw` is a pointer libcoro returned.
        let h = unsafe { Handle::from_raw(raw as *mut coro_sys::coro_t) }.unwrap();
        let mine = Coroutine::new(|v| v + 1).unwrap();
        (h.switch(0), mine.switch(41))
    })
    .join()
    .unwrap();
    assert_eq!(status, Err(Error::Status(Status::ETHREAD)));
    assert_eq!(own, Ok(42));
    assert_eq!(c.switch(3).unwrap(), 3);
}
