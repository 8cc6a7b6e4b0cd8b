"""examples/python/push_parser.py: random chunkings parse exactly like the whole input."""

import pathlib
import random
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"
sys.path.insert(0, str(EXAMPLES))
import push_parser as pp  # noqa: E402

sys.path.remove(str(EXAMPLES))


def random_request(rng):
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    target = "/" + "/".join(rng.choice(["a", "bb", "items", "42", "x%20y"]) for _ in range(rng.randint(0, 4)))
    headers = [("Host", "example.org")] + [("X-H%d" % i, "v" * rng.randint(0, 30)) for i in range(rng.randint(0, 6))]
    body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 7, 100, 1000])))
    head = "%s %s HTTP/1.1\r\n" % (method, target) + "".join("%s: %s\r\n" % h for h in headers)
    if body and rng.random() < 0.5:
        out = [head.encode() + b"Transfer-Encoding: chunked\r\n\r\n"]
        rest = body
        while rest:
            n = rng.randint(1, len(rest))
            out.append(b"%x\r\n" % n + rest[:n] + b"\r\n")
            rest = rest[n:]
        out.append(b"0\r\nX-Trailer: t\r\n\r\n")
        return b"".join(out), body
    if body or rng.random() < 0.5:
        return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body, body
    return head.encode() + b"\r\n", b""


def random_chunks(data, rng):
    chunks, i = [], 0
    while i < len(data):
        n = rng.choice([1, 1, 2, 3, 7, 64, 1000, len(data)])
        chunks.append(data[i:i + n])
        i += n
    return chunks


@pytest.mark.parametrize("seed", range(20))
def test_random_chunkings_match_whole_input(seed):
    rng = random.Random(seed)
    pieces = [random_request(rng) for _ in range(rng.randint(1, 12))]
    stream = b"".join(p[0] for p in pieces)
    whole = pp.parse_all(stream)
    assert [r.body for r in whole] == [p[1] for p in pieces]
    for _ in range(5):
        parser = pp.PushParser()
        got = []
        for chunk in random_chunks(stream, rng):
            got += parser.feed(chunk)
        got += parser.close()
        assert got == whole


def test_one_byte_at_a_time_and_requests_come_out_as_soon_as_complete():
    stream = b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
    p = pp.PushParser()
    completed_at = []
    for i in range(len(stream)):
        for r in p.feed(stream[i:i + 1]):
            completed_at.append((i, r.target))
    assert completed_at == [(17, "/"), (len(stream) - 1, "/2")]
    assert p.close() == []


@pytest.mark.parametrize("bad", [
    b"NONSENSE\r\n\r\n",
    b"GET / HTTP/1.1\r\n folded: no\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_bad_input_raises_parse_error_in_the_feeder(bad):
    p = pp.PushParser()
    with pytest.raises(pp.ParseError):
        for i in range(len(bad)):
            p.feed(bad[i:i + 1])
        p.close()
    with pytest.raises(ValueError):
        p.feed(b"more")


@pytest.mark.parametrize("cut", [b"GET / HTTP/1.1\r\nHost: x", b"PUT / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"])
def test_stream_ending_inside_a_request_is_an_error(cut):
    p = pp.PushParser()
    assert p.feed(cut) == []
    with pytest.raises(pp.ParseError):
        p.close()


def test_runs_as_a_program():
    p = subprocess.run([sys.executable, str(EXAMPLES / "push_parser.py")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "POST /upload b'hello world'" in p.stdout
