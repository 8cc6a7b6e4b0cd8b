#!/usr/bin/env python3
"""End-to-end test of examples/c/echo_server.c (Python standard library only).

usage: test_echo_server.py [PATH_TO_ECHO_SERVER]   (default: target/examples/echo_server)

1. Starts `echo_server --port 0`, reads "listening on 127.0.0.1:PORT".
2. Connects 1,000 clients at once (non-blocking sockets + selectors). Each sends a
   distinct pseudo-random payload of 4-32 KiB in random-size chunks while reading
   the echo, checks every echoed byte, then half-closes and expects the server to
   close its side once everything has been echoed.
3. Stops the server with SIGTERM (the documented shutdown mechanism) and checks the
   exit status 0 and the stats line (1,000 connections, exact byte count).
4. A second server is stopped with SIGINT while a few connections are still open
   (connected, waiting for data): it must cancel them and exit 0 promptly.

Prints `N passed, M failed` last; exits non-zero on any failure.
"""

import errno
import os
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

CLIENTS = 1000
MIN_PAYLOAD, MAX_PAYLOAD = 4 * 1024, 32 * 1024
MAX_CHUNK = 8 * 1024
CLIENT_PHASE_TIMEOUT = 20.0  # seconds
EXIT_TIMEOUT = 5.0
SEED = 20240611

STATS_RE = re.compile(
    rb"^stats: connections_served=(\d+) bytes_echoed=(\d+) peak_concurrent=(\d+)$", re.M
)

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class Server:
    """The echo server as a subprocess; stdout captured, stderr passed through."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--port", "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0
        )
        self.output = b""
        self.port = None

    def read_port(self, timeout=5.0):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.output:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None
                self.output += chunk
        m = re.match(rb"listening on 127\.0\.0\.1:(\d+)\n", self.output)
        if m:
            self.port = int(m.group(1))
        return self.port

    def stop(self, sig):
        """Send `sig`, wait for exit; returns (exit status or None on timeout, stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, _ = self.proc.communicate(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
            self.output += rest or b""
            return None, self.output
        self.output += rest or b""
        return self.proc.returncode, self.output


class Client:
    def __init__(self, index, port, rng):
        size = rng.randint(MIN_PAYLOAD, MAX_PAYLOAD)
        self.index = index
        self.payload = rng.randbytes(size)
        self.chunk_rng = random.Random(rng.getrandbits(64))
        self.sent = 0
        self.received = 0
        self.error = None
        self.done = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            self.error = f"connect: {os.strerror(err)}"

    def on_writable(self):
        if self.sent == 0:  # first writability: the connect finished (or failed)
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect: {os.strerror(err)}")
        n = self.chunk_rng.randint(1, MAX_CHUNK)
        try:
            self.sent += self.sock.send(self.payload[self.sent : self.sent + n])
        except BlockingIOError:
            return False
        if self.sent == len(self.payload):
            self.sock.shutdown(socket.SHUT_WR)  # server sees EOF after the last byte
            return True  # no more writing
        return False

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:  # server closed its side
            if self.received != len(self.payload):
                raise OSError(0, f"EOF after {self.received} of {len(self.payload)} bytes")
            self.done = True
            return
        end = self.received + len(data)
        if end > self.sent:
            raise OSError(0, f"received {end} bytes but only sent {self.sent}")
        if data != self.payload[self.received : end]:
            bad = next(i for i, (a, b) in enumerate(zip(data, self.payload[self.received :])) if a != b)
            raise OSError(0, f"echoed byte {self.received + bad} differs")
        self.received = end


def run_clients(port):
    rng = random.Random(SEED)
    clients = [Client(i, port, rng) for i in range(CLIENTS)]
    sel = selectors.DefaultSelector()
    for c in clients:
        if c.error is None:
            sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    active = sum(1 for c in clients if c.error is None)
    deadline = time.monotonic() + CLIENT_PHASE_TIMEOUT
    while active and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.5):
            c = key.data
            try:
                if events & selectors.EVENT_READ:
                    c.on_readable()
                if not c.done and events & selectors.EVENT_WRITE and c.sent < len(c.payload):
                    if c.on_writable():
                        sel.modify(c.sock, selectors.EVENT_READ, c)
            except OSError as e:
                c.error = e.strerror or str(e)
            if c.done or c.error:
                sel.unregister(c.sock)
                c.sock.close()
                active -= 1
    for c in clients:
        if not c.done and c.error is None:
            c.error = f"timed out ({c.sent} sent, {c.received} echoed of {len(c.payload)})"
        if c.sock.fileno() >= 0:
            c.sock.close()
    sel.close()
    return clients


def test_echo_1000(binary):
    server = Server(binary)
    try:
        port = server.read_port()
        if not check(port is not None, "server prints 'listening on 127.0.0.1:PORT'", repr(server.output)):
            return
        start = time.monotonic()
        clients = run_clients(port)
        elapsed = time.monotonic() - start
        bad = [c for c in clients if not c.done]
        total = sum(len(c.payload) for c in clients)
        detail = "; ".join(f"client {c.index}: {c.error}" for c in bad[:5])
        check(
            not bad,
            f"{CLIENTS} concurrent clients, {total} bytes echoed and verified in {elapsed:.2f} s",
            f"{len(bad)} clients failed: {detail}",
        )

        status, out = server.stop(signal.SIGTERM)
        check(status == 0, "server exits with status 0 on SIGTERM", f"status {status}")
        m = STATS_RE.search(out)
        if not check(m is not None, "server prints the stats line", repr(out)):
            return
        served, echoed, peak = (int(x) for x in m.groups())
        check(served == CLIENTS, f"stats: connections_served == {CLIENTS}", f"got {served}")
        check(echoed == total, f"stats: bytes_echoed == {total}", f"got {echoed}")
        check(1 <= peak <= CLIENTS, f"stats: 1 <= peak_concurrent ({peak}) <= {CLIENTS}")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_shutdown_with_open_connections(binary):
    server = Server(binary)
    socks = []
    try:
        port = server.read_port()
        if not check(port is not None, "second server starts", repr(server.output)):
            return
        # Three idle connections and one that has exchanged some data.
        for _ in range(4):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # Once the echo is back, all four were accepted (they were queued in order).
        socks[-1].sendall(b"x" * 1000)
        echoed = b""
        while len(echoed) < 1000:
            data = socks[-1].recv(1000 - len(echoed))
            if not data:
                break
            echoed += data
        check(echoed == b"x" * 1000, "second server echoes")
        # ...and from now on nobody reads or writes: the server must cancel them.
        t0 = time.monotonic()
        status, out = server.stop(signal.SIGINT)
        took = time.monotonic() - t0
        m = STATS_RE.search(out)
        check(
            status == 0 and m is not None and m.group(1) == b"4" and m.group(2) == b"1000",
            f"SIGINT with 4 open connections: exit 0, stats report them ({took:.2f} s)",
            f"status {status}, output {out!r}",
        )
        # The server cancelled those connections: every socket must now see EOF.
        eofs = 0
        for s in socks:
            try:
                data = s.recv(4096)
                while data:
                    data = s.recv(4096)
                eofs += 1
            except OSError:
                eofs += 1  # reset is fine too: the connection is gone
        check(eofs == 4, "open connections are closed at shutdown")
    finally:
        for s in socks:
            s.close()
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/examples/echo_server")
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is not an executable (build it with ci/test-examples.sh)")
        print("0 passed, 1 failed")
        return 1
    raise_fd_limit()
    t0 = time.monotonic()
    test_echo_1000(binary)
    test_shutdown_with_open_connections(binary)
    print(f"(took {time.monotonic() - t0:.2f} s)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
