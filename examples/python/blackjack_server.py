"""Blackjack over HTTP, one uthread per visitor: the whole game is a plain loop.

Every visitor's game (deal, hit, stand, next round, ...) is one function, ``game()``, written top
to bottom with its state -- the deck, both hands, the chips -- in local variables. When it needs
the visitor's next move it hands the page to the event loop and waits (``ask()``: one
``uthread.switch``); the event loop resumes it with the action when that visitor's next request
arrives. There is no session state machine anywhere.

    python blackjack_server.py [--port 8080]            serve until interrupted
    python blackjack_server.py --demo SECONDS [--bots N] the server plays itself for a while

HTTP API (JSON answers, HTTP/1.1 keep-alive):
    GET /new                      start a game: {"session": id, ...first page...}
    GET /s/<id>/<action>          hit, stand, next (next round) or quit

Uses Guido van Rossum's uthread API (uthread.new / uthread.current / switch).
"""

import argparse
import http.client
import json
import random
import selectors
import socket
import sys
import threading
import time

import uthread

RANKS = ["A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K"]
SUITS = ["S", "H", "D", "C"]
START_CHIPS = 100
BET = 10


def card_value(card):
    rank = card[:-1]
    if rank == "A":
        return 11
    if rank in ("J", "Q", "K"):
        return 10
    return int(rank)


def hand_total(cards):
    """Best blackjack total: aces count 11 unless that busts."""
    total = sum(card_value(c) for c in cards)
    aces = sum(1 for c in cards if c[:-1] == "A")
    while total > 21 and aces:
        total -= 10
        aces -= 1
    return total


def outcome(player, dealer):
    """'win', 'lose' or 'push' for final hands (the dealer has drawn to 17 unless the player
    busted)."""
    p, d = hand_total(player), hand_total(dealer)
    if p > 21:
        return "lose"
    if d > 21 or p > d:
        return "win"
    if p < d:
        return "lose"
    return "push"


# --- the game: one uthread per visitor ---------------------------------------------------------


def game(session, seed, loop):
    """One visitor's whole game. ``loop`` is the event loop's uthread: ``ask(page)`` switches to
    it with the page to send and returns the visitor's next action."""
    rng = random.Random(seed)
    chips = START_CHIPS
    rounds = 0

    def page(state, player, dealer, options, hide_hole, **extra):
        shown = [dealer[0], "??"] if hide_hole else list(dealer)
        return dict(session=session, round=rounds, state=state, chips=chips, player=list(player),
                    player_total=hand_total(player), dealer=shown,
                    dealer_total=None if hide_hole else hand_total(dealer), options=options, **extra)

    def ask(p):
        while True:
            action = loop.switch(p)
            if action in p["options"]:
                return action
            p = dict(p, error="unknown action %r; expected one of %s" % (action, p["options"]))

    while chips >= BET:
        rounds += 1
        deck = [r + s for r in RANKS for s in SUITS]
        rng.shuffle(deck)
        player = [deck.pop(), deck.pop()]
        dealer = [deck.pop(), deck.pop()]
        while hand_total(player) < 21:
            action = ask(page("playing", player, dealer, ["hit", "stand", "quit"], True))
            if action == "quit":
                return page("quit", player, dealer, [], False)
            if action == "stand":
                break
            player.append(deck.pop())
        if hand_total(player) <= 21:
            while hand_total(dealer) < 17:
                dealer.append(deck.pop())
        result = outcome(player, dealer)
        chips += {"win": BET, "lose": -BET, "push": 0}[result]
        if ask(page(result, player, dealer, ["next", "quit"], False)) == "quit":
            return page("quit", player, dealer, [], False)
    return page("broke", [], [], [], False)


# --- the HTTP server: an event loop on selectors ----------------------------------------------


class Server:
    """A small HTTP/1.1 server on one thread. Each request for a session is handed to that
    session's uthread; what it switches back is the answer."""

    def __init__(self, host="127.0.0.1", port=0, seed=0):
        self.sock = socket.create_server((host, port), backlog=1024)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.sessions = {}
        self.next_session = 1
        self.seed = seed
        self.stop = threading.Event()
        self.requests = 0
        self.games_finished = 0
        self.loop = None

    def serve(self):
        self.loop = uthread.current()
        try:
            while not self.stop.is_set():
                for key, _ in self.sel.select(timeout=0.05):
                    if key.data is None:
                        self._accept()
                    else:
                        self._read(key.fileobj, key.data)
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()
            self.sel.close()
            for u in self.sessions.values():
                if u.runnable:
                    u.kill()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sel.register(conn, selectors.EVENT_READ, {"buf": b""})

    def _read(self, conn, state):
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()
            return
        state["buf"] += data
        while b"\r\n\r\n" in state["buf"]:
            head, state["buf"] = state["buf"].split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            status, body = self._handle(parts[1] if len(parts) == 3 and parts[0] == "GET" else None)
            payload = json.dumps(body).encode()
            conn.setblocking(True)  # answers are small: send them whole
            try:
                conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % (status, b"OK" if status == 200 else b"Error", len(payload)) + payload)
            except OSError:
                self.sel.unregister(conn)
                conn.close()
                return
            finally:
                if conn.fileno() >= 0:
                    conn.setblocking(False)

    def _handle(self, target):
        self.requests += 1
        if target is None:
            return 400, {"error": "only GET requests"}
        if target == "/new":
            sid = self.next_session
            self.next_session += 1
            u = uthread.new(game, sid, self.seed * 1_000_003 + sid, self.loop)
            self.sessions[sid] = u
            return 200, u.switch()  # runs the game up to its first question
        parts = target.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "s" or not parts[1].isdigit():
            return 404, {"error": "no such page: %s" % target}
        u = self.sessions.get(int(parts[1]))
        if u is None or not u.runnable:
            return 404, {"error": "no such session: %s" % parts[1]}
        answer = u.switch(parts[2])  # resumes that visitor's game with the action
        if not u.runnable:  # the game returned: its last page came back by the resume rule
            del self.sessions[int(parts[1])]
            self.games_finished += 1
        return 200, answer


def start_server(seed=0):
    """Starts a server on a loopback port in a daemon thread; returns it (``.port``)."""
    server = Server(seed=seed)
    thread = threading.Thread(target=server.serve, name="blackjack-server", daemon=True)
    thread.start()
    server.thread = thread
    return server


# --- a client that plays and checks every answer ---------------------------------------------


class Player:
    """One visitor: plays with a simple strategy (hit below 17) and checks every page against
    the rules (totals, dealer draws to 17, outcome, chips)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.session = None
        self.page = None
        self.chips = START_CHIPS
        self.rounds_done = 0
        self.requests = 0

    def get(self, path):
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        body = json.loads(resp.read())
        self.requests += 1
        assert resp.status == 200, (path, resp.status, body)
        return body

    def start(self):
        self.page = self.get("/new")
        self.session = self.page["session"]
        self.check(self.page, None)

    def step(self):
        """Sends one action; returns False once the game is over."""
        p = self.page
        if p["state"] == "playing":
            action = "hit" if p["player_total"] < 17 else "stand"
        elif p["state"] in ("win", "lose", "push"):
            action = "next"
        else:
            return False
        new = self.get("/s/%d/%s" % (self.session, action))
        self.check(new, (p, action))
        self.page = new
        return new["state"] not in ("quit", "broke")

    def quit(self):
        if self.page["state"] in ("playing", "win", "lose", "push"):
            p = self.get("/s/%d/quit" % self.session)
            assert p["state"] == "quit" and p["session"] == self.session, p
        self.conn.close()

    def check(self, p, previous):
        assert p["session"] == (self.session if self.session is not None else p["session"]), p
        assert "error" not in p, p
        if p["state"] == "broke":
            assert self.chips < BET
            return
        cards = p["player"] + [c for c in p["dealer"] if c != "??"]
        assert len(set(cards)) == len(cards), ("a card dealt twice", p)
        assert p["player_total"] == hand_total(p["player"]), p
        if p["state"] == "playing":
            assert p["dealer"][1] == "??" and len(p["dealer"]) == 2 and p["player_total"] < 21, p
            assert p["chips"] == self.chips, (p, self.chips)
        else:
            assert p["dealer_total"] == hand_total(p["dealer"]), p
            if p["player_total"] <= 21:
                # The dealer drew while under 17, and only then.
                assert p["dealer_total"] >= 17, p
                assert len(p["dealer"]) == 2 or hand_total(p["dealer"][:-1]) < 17, p
            expected = outcome(p["player"], p["dealer"])
            assert p["state"] == expected, (p, expected)
            self.chips += {"win": BET, "lose": -BET, "push": 0}[expected]
            assert p["chips"] == self.chips, (p, self.chips)
            self.rounds_done += 1
        if previous is not None:
            before, action = previous
            if before["state"] == "playing":
                assert p["round"] == before["round"], (before, p)
                assert p["player"][: len(before["player"])] == before["player"], (before, p)
                grew = len(p["player"]) - len(before["player"])
                assert grew == (1 if action == "hit" else 0), (before, action, p)
            else:
                assert p["round"] == before["round"] + 1, (before, p)


def play_sessions(port, sessions, rounds, workers=20):
    """Starts ``sessions`` games (all alive at once), then plays them interleaved from
    ``workers`` client threads until each has finished ``rounds`` rounds; checks every answer.
    Returns (rounds played, requests sent)."""
    players = [Player(port) for _ in range(sessions)]
    for p in players:
        p.start()
    errors = []

    def work(mine):
        try:
            active = list(mine)
            while active:
                for p in list(active):
                    if p.rounds_done >= rounds or not p.step():
                        active.remove(p)
            for p in mine:
                p.quit()
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(players[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(p.rounds_done for p in players), sum(p.requests for p in players)


def demo(seconds, bots):
    server = start_server(seed=1)
    print("blackjack server on http://127.0.0.1:%d/ -- %d bots play for %.0f s, every visitor's game "
          "one uthread" % (server.port, bots, seconds))
    t0 = time.perf_counter()
    total_rounds = total_requests = 0
    while time.perf_counter() - t0 < seconds:
        r, q = play_sessions(server.port, bots, rounds=5, workers=min(bots, 10))
        total_rounds += r
        total_requests += q
    elapsed = time.perf_counter() - t0
    server.stop.set()
    server.thread.join(10)
    print("  %s rounds in %s games, %s requests in %.1f s = %s requests/s, every answer checked"
          % (format(total_rounds, ","), format(server.games_finished, ","), format(total_requests, ","),
             elapsed, format(round(total_requests / elapsed), ",")))
    return total_rounds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--demo", type=float, metavar="SECONDS", help="play against itself for SECONDS")
    ap.add_argument("--bots", type=int, default=50)
    a = ap.parse_args(argv)
    if a.demo:
        demo(a.demo, a.bots)
        return 0
    server = Server(port=a.port)
    print("blackjack on http://127.0.0.1:%d/new" % server.port)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
