"""examples/python/blackjack_server.py for real: 200 concurrent sessions over HTTP."""

import http.client
import json
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"
sys.path.insert(0, str(EXAMPLES))
import blackjack_server as bj  # noqa: E402

sys.path.remove(str(EXAMPLES))


@pytest.fixture
def server():
    s = bj.start_server(seed=7)
    yield s
    s.stop.set()
    s.thread.join(10)
    assert not s.thread.is_alive()


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def test_200_concurrent_sessions_every_response_checked(server):
    rounds, requests = bj.play_sessions(server.port, sessions=200, rounds=3, workers=20)
    assert rounds == 200 * 3
    assert requests >= 200 * (1 + 3 * 2 + 1)  # new, at least an action and "next" per round, quit
    assert server.games_finished == 200
    assert server.sessions == {}  # every game uthread ended


def test_all_sessions_are_alive_at_once(server):
    players = [bj.Player(server.port) for _ in range(200)]
    for p in players:
        p.start()
    assert len(server.sessions) == 200
    assert all(u.runnable for u in server.sessions.values())
    for p in players:
        p.quit()
    assert server.sessions == {}


def test_bad_requests_get_clear_errors(server):
    assert get(server.port, "/nope")[0] == 404
    assert get(server.port, "/s/999/hit")[0] == 404
    status, page = get(server.port, "/new")
    assert status == 200 and page["state"] == "playing"
    sid = page["session"]
    status, again = get(server.port, "/s/%d/dance" % sid)
    assert status == 200 and "unknown action" in again["error"]
    assert again["player"] == page["player"]  # nothing happened to the game
    status, last = get(server.port, "/s/%d/quit" % sid)
    assert last["state"] == "quit"
    assert get(server.port, "/s/%d/hit" % sid)[0] == 404  # the game has ended


def test_game_logic():
    assert bj.hand_total(["AS", "KH"]) == 21
    assert bj.hand_total(["AS", "AH", "9D"]) == 21
    assert bj.hand_total(["KS", "QH", "2D"]) == 22
    assert bj.outcome(["KS", "QH", "2D"], ["2S", "3S"]) == "lose"
    assert bj.outcome(["KS", "QH"], ["KD", "7S"]) == "win"
    assert bj.outcome(["KS", "7H"], ["KD", "7S"]) == "push"


def test_demo_mode_runs_as_a_program():
    p = subprocess.run([sys.executable, str(EXAMPLES / "blackjack_server.py"), "--demo", "0.5", "--bots", "10"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "every answer checked" in p.stdout
