"""A pull-style HTTP/1.1 request parser driven by pushed chunks of any size.

The parser, ``parse_requests()``, is written the natural way: it pulls -- ``read_line()``,
``read_exact(n)`` -- as if the whole stream were there. ``PushParser`` runs it in a uthread: when
it needs bytes that have not arrived, it switches back to whoever pushed the last chunk, and the
next ``feed()`` resumes it exactly where it was. No state machine, no "need more data" return
codes threaded through every function.

    p = PushParser()
    for chunk in chunks:            # chunks of any size, split anywhere
        for request in p.feed(chunk):
            print(request.method, request.target, len(request.body))
    p.close()                       # end of stream (raises ParseError if it ends mid-request)

Handles request lines, headers (folded lines refused), Content-Length bodies and chunked
transfer coding with trailers, pipelined requests. Uses Guido van Rossum's uthread API.
"""

import sys
from dataclasses import dataclass, field

import uthread

MAX_LINE = 8192


class ParseError(ValueError):
    """The byte stream is not valid HTTP/1.1 requests."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list = field(default_factory=list)  # [(name lowercased, value)]
    body: bytes = b""


class _EndOfStream(Exception):
    pass


def parse_requests(read_line, read_exact, emit):
    """Pulls requests from the stream until it ends cleanly between two requests."""
    while True:
        try:
            line = read_line()
        except _EndOfStream:
            return
        if line == b"":
            continue  # tolerated: empty lines before a request line (RFC 9112 2.2)
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise ParseError("bad request line: %r" % line[:80])
        method, target, version = (x.decode("latin-1") for x in parts)
        try:
            headers = read_headers(read_line)
            names = dict(headers)
            if "chunked" in names.get("transfer-encoding", "").lower():
                body, trailers = read_chunked(read_line, read_exact)
                headers.extend(trailers)
            elif "content-length" in names:
                n = names["content-length"]
                if not n.isdigit():
                    raise ParseError("bad Content-Length: %r" % n)
                body = read_exact(int(n))
            else:
                body = b""
        except _EndOfStream:
            raise ParseError("stream ends inside a request") from None
        emit(Request(method, target, version, headers, body))


def read_headers(read_line):
    headers = []
    while True:
        line = read_line()
        if line == b"":
            return headers
        if line[:1] in (b" ", b"\t"):
            raise ParseError("obsolete line folding is not accepted")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ParseError("bad header line: %r" % line[:80])
        headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))


def read_chunked(read_line, read_exact):
    body = []
    while True:
        size_line = read_line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ParseError("bad chunk size: %r" % size_line[:20]) from None
        if size == 0:
            return b"".join(body), read_headers(read_line)
        body.append(read_exact(size))
        if read_exact(2) != b"\r\n":
            raise ParseError("chunk not followed by CRLF")


class PushParser:
    """Feeds pushed chunks to the pull parser running in its own uthread."""

    def __init__(self):
        self._buf = bytearray()
        self._eof = False
        self._failed = False
        self._done = []
        self._feeder = None
        self._parser = uthread.new(parse_requests, self._read_line, self._read_exact, self._done.append)

    def _more(self):
        """Waits (in the parser's uthread) until the next feed() or close()."""
        if self._eof:
            raise _EndOfStream
        self._feeder.switch()

    def _read_line(self):
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 2]
                return line
            if len(self._buf) > MAX_LINE:
                raise ParseError("line longer than %d bytes" % MAX_LINE)
            if self._eof and self._buf:
                raise ParseError("stream ends inside a line")
            self._more()

    def _read_exact(self, n):
        while len(self._buf) < n:
            if self._eof:
                raise ParseError("stream ends inside a body")
            self._more()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _run(self):
        if self._failed:
            raise ValueError("the stream already failed to parse")
        self._feeder = uthread.current()
        if self._parser.runnable:
            try:
                self._parser.switch()  # runs until it needs more bytes, or ends (returns here)
            except ParseError:
                self._failed = True
                raise
        out, self._done[:] = list(self._done), []
        return out

    def feed(self, data):
        """Pushes bytes; returns the requests completed by them. A ParseError from the parser
        is raised here (the resume rule brings it to whoever fed it)."""
        if self._eof:
            raise ValueError("feed() after close()")
        self._buf += data
        return self._run()

    def close(self):
        """Ends the stream; returns the last requests, or raises ParseError if the stream
        stops inside a request."""
        self._eof = True
        return self._run()


def parse_all(data):
    """Parses a whole stream at once (the reference the chunked feeding must match)."""
    p = PushParser()
    return p.feed(data) + p.close()


def main():
    stream = (b"GET /hello HTTP/1.1\r\nHost: example\r\n\r\n"
              b"POST /upload HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
              b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    p = PushParser()
    got = []
    for i in range(len(stream)):  # one byte at a time
        got += p.feed(stream[i:i + 1])
    got += p.close()
    for r in got:
        print(r.method, r.target, r.body)
    assert got == parse_all(stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
