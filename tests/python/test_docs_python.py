"""The examples of docs/python.md's chapters on Guido's API, uthread.stackless and preemption run
as doctests (output compared exactly)."""

import doctest
import pathlib

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
CHAPTERS = ("## Guido van Rossum's uthread API", "## Stackless tasklets and channels", "## Preemption")


def chapter(title):
    """The chapter's text, code fences turned into blank lines (so they end expected output)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    text = text[start:] if end < 0 else text[start:end]
    return "\n".join("" if line.startswith("```") else line for line in text.splitlines())


def run_chapter(titles, globs):
    parser = doctest.DocTestParser()
    test = parser.get_doctest("\n".join(chapter(t) for t in titles), globs, titles[0], str(DOC), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    runner.run(test)
    return runner.summarize(verbose=False), len(test.examples)


def test_guido_chapter():
    (failed, attempted), n = run_chapter(CHAPTERS[:1], {})
    assert n >= 15 and attempted == n and failed == 0


def test_stackless_and_preemption_chapters():
    (failed, attempted), n = run_chapter(CHAPTERS[1:], {})  # preemption uses stackless's names
    assert n >= 20 and attempted == n and failed == 0
