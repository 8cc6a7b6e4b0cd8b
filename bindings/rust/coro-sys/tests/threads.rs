//! Threads: 8 threads x 1,000 coroutines each, per-thread main coroutines, and coroutines left
//! behind by a thread that has exited.

mod common;

use common::*;
use coro_sys::*;
use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

const THREADS: usize = 8;
const PER_THREAD: usize = 1_000;

/// Receives `k`, answers `k + 1` to main, then returns twice what it is sent next.
unsafe extern "C" fn worker(_me: *mut coro_t, k: *mut c_void) -> *mut c_void {
    let mut main = ptr::null_mut();
    let mut got = ptr::null_mut();
    unsafe {
        coro_main(&mut main);
        coro_switch(main, val(k as usize + 1), &mut got);
    }
    val(got as usize * 2)
}

/// Runs on its own thread: all coroutines alive (and SUSPENDED) at once, then finished and
/// destroyed. Returns the ids it saw (the main's first) or a description of the first failure.
fn run_thread(t: usize) -> Result<Vec<u64>, String> {
    let check = |what: &str, st: coro_status_t| {
        if st == CORO_OK {
            Ok(())
        } else {
            Err(format!("thread {t}: {what}: {}", strerror(st)))
        }
    };
    let mut ids = Vec::with_capacity(PER_THREAD + 1);
    let mut main = ptr::null_mut();
    let mut id = 0;
    unsafe {
        check("coro_main", coro_main(&mut main))?;
        check("coro_id(main)", coro_id(main, &mut id))?;
    }
    ids.push(id);
    let mut cs = Vec::with_capacity(PER_THREAD);
    for _ in 0..PER_THREAD {
        let mut c = ptr::null_mut();
        unsafe {
            check("coro_new", coro_new(Some(worker), ptr::null(), &mut c))?;
            check("coro_id", coro_id(c, &mut id))?;
        }
        ids.push(id);
        cs.push(c);
    }
    for (i, &c) in cs.iter().enumerate() {
        let k = t * 1_000_000 + i;
        let (st, got) = switch(c, k);
        check("first switch", st)?;
        if got != k + 1 {
            return Err(format!("thread {t}: coroutine {i} answered {got}, expected {}", k + 1));
        }
    }
    for (i, &c) in cs.iter().enumerate() {
        let (st, got) = switch(c, i);
        check("second switch", st)?;
        if got != 2 * i {
            return Err(format!("thread {t}: coroutine {i} returned {got}, expected {}", 2 * i));
        }
        let mut s = 0;
        unsafe {
            check("coro_state", coro_state(c, &mut s))?;
            if s != CORO_DEAD {
                return Err(format!("thread {t}: coroutine {i} in state {s} after returning"));
            }
            check("coro_destroy", coro_destroy(c))?;
        }
    }
    Ok(ids)
}

#[test]
fn eight_threads_times_a_thousand_coroutines() {
    let handles: Vec<_> = (0..THREADS).map(|t| std::thread::spawn(move || run_thread(t))).collect();
    let mut all = HashSet::new();
    let mut mains = HashSet::new();
    for h in handles {
        let ids = h.join().expect("thread panicked").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids.len(), PER_THREAD + 1);
        mains.insert(ids[0]);
        for id in ids {
            assert!(all.insert(id), "id {id} seen twice");
        }
    }
    assert_eq!(mains.len(), THREADS, "every thread has its own main coroutine");
    assert_eq!(all.len(), THREADS * (PER_THREAD + 1));
}

static ORPHAN_RESUMED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn orphan(_me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let mut main = ptr::null_mut();
    unsafe {
        coro_main(&mut main);
        coro_switch(main, ptr::null_mut(), ptr::null_mut());
    }
    // Never reached: its thread exits while it is SUSPENDED.
    ORPHAN_RESUMED.store(true, Ordering::SeqCst);
    ptr::null_mut()
}

unsafe extern "C" fn return_arg(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    v
}

#[test]
fn coroutines_of_an_exited_thread_can_be_destroyed_anywhere() {
    let (suspended, new, dead) = std::thread::spawn(|| {
        let s = spawn(orphan);
        assert_eq!(switch(s, 0).0, CORO_OK);
        assert_eq!(state(s), CORO_SUSPENDED);
        let n = spawn(return_arg);
        let d = spawn(return_arg);
        assert_eq!(switch(d, 0).0, CORO_OK);
        assert_eq!(state(d), CORO_DEAD);
        (SendPtr(s), SendPtr(n), SendPtr(d))
    })
    .join()
    .unwrap();
    let (s, n, d) = (suspended.get(), new.get(), dead.get());
    // Still foreign: they cannot run or be inspected here.
    expect(switch(s, 0).0, CORO_ETHREAD);
    expect(kill(n, 0).0, CORO_ETHREAD);
    let mut st = 0;
    expect(unsafe { coro_state(d, &mut st) }, CORO_ETHREAD);
    // But the owning thread is gone, so any thread may release them; the SUSPENDED one is
    // released without running.
    destroy(s);
    destroy(n);
    destroy(d);
    assert!(!ORPHAN_RESUMED.load(Ordering::SeqCst));
    expect(unsafe { coro_destroy(s) }, CORO_ESTALE);
}

#[test]
fn short_lived_threads_create_and_destroy_concurrently() {
    // Threads come and go, each with its own main coroutine and stack pool.
    let hs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..100 {
                    let c = spawn(return_arg);
                    assert_eq!(switch(c, 9), (CORO_OK, 9));
                    destroy(c);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}
