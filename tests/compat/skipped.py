"""pytest plugin: applies tests/compat/SKIPPED.md to greenlet's test suite, and only that.

SKIPPED.md is the single source of truth. Every row of its table whose first cell is a
backquoted test id is an entry:

    | `test_some_module.py` | all | skip | reason |                          (a whole module)
    | `test_greenlet.py::TestBrokenGreenlets::test_x` | 3.10 3.11 | skip | reason |  (one test)
    | `test_greenlet.py::TestGreenlet::test_y` | 3.10 | no leak check | reason |

Columns: the test id; the CPython versions the entry applies to ("all", or minor versions); the
action: ``skip`` (not run, reported as skipped with the reason) or ``no leak check`` (run, and it
must pass, but without the object-count leak check that greenlet's suite wraps around every
test: for tests that greenlet marks as *expected to leak*, where uthread does not leak); the
reason. An entry that matches no collected test is an error (the list must not go stale), and
so is a test id listed twice.
"""

import os
import pathlib
import re
import sys

import pytest

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$")
_ACTIONS = ("skip", "no leak check")
_HERE_VERSION = "%d.%d" % sys.version_info[:2]


def _load(path):
    entries = {}
    seen = set()
    for lineno, line in enumerate(pathlib.Path(path).read_text(encoding="utf-8").splitlines(), 1):
        m = _ROW.match(line)
        if not m:
            continue
        test_id, versions, action, reason = (m.group(1).strip(), m.group(2).split(),
                                             m.group(3).strip(), m.group(4).strip())
        where = "%s:%d: %s" % (path, lineno, test_id)
        if not reason:
            raise pytest.UsageError(where + " has no reason")
        if action not in _ACTIONS:
            raise pytest.UsageError("%s: action must be one of %s, not %r" % (where, _ACTIONS, action))
        if test_id in seen:
            raise pytest.UsageError(where + " is listed twice")
        seen.add(test_id)
        versions = [v.strip(",") for v in versions]
        if versions != ["all"] and not all(re.fullmatch(r"3\.\d+", v) for v in versions):
            raise pytest.UsageError("%s: bad Python column %r" % (where, " ".join(versions)))
        if action == "no leak check" and "::" not in test_id:
            raise pytest.UsageError(where + ": 'no leak check' applies to single tests only")
        if versions == ["all"] or _HERE_VERSION in versions:
            entries[test_id] = (action, reason)
    return entries


class _SkippedModule(pytest.File):
    """Stands for a whole test module listed in SKIPPED.md: not imported, reported as skipped."""

    reason = ""

    def collect(self):
        raise pytest.skip.Exception("SKIPPED.md: %s: %s" % (self.path.name, self.reason))


def pytest_configure(config):
    path = os.environ.get("UTHREAD_COMPAT_SKIPPED") or str(pathlib.Path(__file__).with_name("SKIPPED.md"))
    config._uthread_entries = _load(path)
    config._uthread_used = set()
    config._uthread_unchecked = []


def pytest_pycollect_makemodule(module_path, parent):
    entry = parent.config._uthread_entries.get(module_path.name)
    if entry is not None:
        parent.config._uthread_used.add(module_path.name)
        node = _SkippedModule.from_parent(parent, path=module_path)
        node.reason = entry[1]
        return node
    return None


def _short_id(item):
    return "::".join([item.path.name] + item.nodeid.split("::")[1:])


def pytest_collection_modifyitems(session, config, items):
    entries = config._uthread_entries
    for item in items:
        test_id = _short_id(item)
        entry = entries.get(test_id)
        if entry is None:
            continue
        config._uthread_used.add(test_id)
        action, reason = entry
        if action == "skip":
            item.add_marker(pytest.mark.skip(reason="SKIPPED.md: " + reason))
            continue
        # "no leak check": greenlet's TestCaseMetaClass wrapped the method with
        # leakcheck.wrap_refcount (functools.wraps, so the original is __wrapped__).
        cls, name = item.cls, item.name
        wrapped = getattr(cls.__dict__.get(name), "__wrapped__", None) if cls is not None else None
        if wrapped is None:
            raise pytest.UsageError("SKIPPED.md: %s has no leak check to turn off" % test_id)
        setattr(cls, name, wrapped)
        # pytest bound the (wrapped) method when it collected the item; drop that so that it is
        # looked up again, unwrapped, when the test runs.
        item.obj = None
        config._uthread_unchecked.append(test_id)


def pytest_collection_finish(session):
    config = session.config
    if os.environ.get("UTHREAD_COMPAT_PARTIAL") or config.getoption("keyword"):
        return  # a partial run: entries outside it are not stale
    stale = sorted(set(config._uthread_entries) - config._uthread_used)
    if stale:
        raise pytest.UsageError("SKIPPED.md entries that match no collected test: " + ", ".join(stale))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for test_id in config._uthread_unchecked:
        terminalreporter.write_line("RAN WITHOUT LEAK CHECK (SKIPPED.md): %s: %s"
                                    % (test_id, config._uthread_entries[test_id][1]))
