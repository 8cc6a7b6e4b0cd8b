"""`_stack_saved`: how much of its stack a suspended greenlet of this thread is using (greenlet:
bytes of C stack copied to the heap), from the engine's `Coroutine::stack_in_use`; for a main
greenlet, the thread's stack from its top down to where it switched away."""

from conftest import run_in_thread
from uthread import getcurrent, greenlet


def test_suspended_greenlet_reports_its_stack_in_use():
    main = getcurrent()

    def body():
        main.switch()

    g = greenlet(body)
    assert g._stack_saved == 0  # not started
    g.switch()
    assert g._stack_saved > 0  # suspended
    g.switch()
    assert g.dead and g._stack_saved == 0


def test_deeper_suspension_uses_more_stack():
    main = getcurrent()

    def nest(n):
        if n == 0:
            main.switch()
        else:
            list(map(nest, [n - 1]))  # through C, so every level costs C stack (3.11+ inline
            # Python-to-Python calls)

    shallow, deep = greenlet(nest), greenlet(nest)
    shallow.switch(0)
    deep.switch(50)
    assert deep._stack_saved > shallow._stack_saved > 0
    shallow.switch()
    deep.switch()


def test_running_greenlet_and_suspended_main():
    main = getcurrent()
    assert main._stack_saved == 0  # running

    def body():
        return getcurrent()._stack_saved, main._stack_saved

    mine, mains = greenlet(body).switch()
    assert mine == 0  # running
    assert mains > 0  # suspended: the thread's stack in use


def test_greenlets_of_other_threads_report_zero():
    def body():
        getcurrent().parent.switch()

    def make():
        g = greenlet(body)
        g.switch()
        return g

    g = run_in_thread(make)
    assert g._stack_saved == 0
