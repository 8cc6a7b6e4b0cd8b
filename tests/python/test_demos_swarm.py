"""examples/python/swarm.py for real: agents that never yield, interleaved by preemption."""

import pathlib
import re
import subprocess
import sys

import uthread
import uthread.stackless as stackless

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"
sys.path.insert(0, str(EXAMPLES))
import swarm  # noqa: E402

sys.path.remove(str(EXAMPLES))


def check_world(world):
    alive = [a for a in world.agents if not a.dead]
    # The grid and the agents agree: atomic sections kept every move whole.
    assert len(world.grid) == len(alive)
    for a in alive:
        assert world.grid[(a.x, a.y)] is a
    assert all(not a.tasklet.alive for a in world.agents)  # the referee ended every loop
    assert len(world.agents) == 1000 + world.births["prey"] + world.births["predator"]
    assert len(alive) == len(world.agents) - world.deaths["eaten"] - world.deaths["starved"]
    assert world.steps == sum(a.steps for a in world.agents)


def test_swarm_of_1000_interleaved_by_preemption():
    lines = []
    world = swarm.run_swarm(agents=1000, seconds=0.0, timeslice=0.0001, seed=3, out=lines.append)
    check_world(world)
    assert world.rounds >= 2
    assert world.min_steps >= 1  # round robin: every surviving agent has had turns
    assert world.deaths["eaten"] > 0  # predators and prey met
    assert stackless.getruncount() == 1
    assert uthread._uthread._preempt_state()[0] is False
    # The referee's end is the end: the agents it kills end without another move (killing them
    # one by one with an immediate kill() gave every other agent a turn per kill).
    assert world.steps == world.steps_at_end
    assert re.search(r"[\d,]+ steps in [\d.]+ s = [\d,]+ steps/s", lines[1])


def test_swarm_runs_as_a_program():
    p = subprocess.run([sys.executable, str(EXAMPLES / "swarm.py"), "--agents", "2000", "--seconds", "0.2"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "2,000 agents" in p.stdout and "steps/s" in p.stdout and "every surviving agent moved" in p.stdout
