"""KeyboardInterrupt (a signal handled by the interpreter) raised while a greenlet runs."""

import _thread
import signal
import time

import pytest

from uthread import getcurrent, greenlet


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt():
    """Python's own SIGINT handler for each test: a process started in the background (`make test
    &`, a non-interactive shell's job) inherits SIGINT ignored, and then Python installs none."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_keyboard_interrupt_inside_greenlet_propagates_to_parent():
    def body():
        _thread.interrupt_main()
        for _ in range(10_000_000):  # the interrupt is delivered at an eval break
            pass
        return "not interrupted"

    with pytest.raises(KeyboardInterrupt):
        greenlet(body).switch()


def test_keyboard_interrupt_can_be_caught_inside_greenlet():
    def body():
        try:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0)
        except KeyboardInterrupt:
            return "caught inside"
        return "missed"

    assert greenlet(body).switch() == "caught inside"


def test_keyboard_interrupt_while_suspended_greenlets_exist():
    waiting = greenlet(lambda: getcurrent().parent.switch())
    waiting.switch()

    def body():
        signal.raise_signal(signal.SIGINT)
        time.sleep(0)

    with pytest.raises(KeyboardInterrupt):
        greenlet(body).switch()
    assert waiting and not waiting.dead
    waiting.switch()
    assert waiting.dead
