"""10,000 predators and prey on a grid, each a plain infinite loop, interleaved by preemption.

Every agent is a tasklet running ``while True:`` with no explicit yield anywhere: no
``schedule()``, no channel, no ``await``. They share the processor only because
``stackless.run(timeslice=...)`` preempts each one after its slice (the native hook counts ticks
and sets a flag; the switch happens at a safe point) and runs the next, round robin. Moves touch
the shared grid, so they are done inside ``stackless.atomic()``: a tasklet is never preempted
halfway through one.

    python swarm.py [--agents 10000] [--seconds 2] [--slice 0.00002]

Prints steps per second and a summary (populations, births, deaths, fairness).
"""

import argparse
import random
import sys
import time

import uthread.stackless as stackless

MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))


class Agent:
    __slots__ = ("id", "kind", "x", "y", "energy", "steps", "dead", "tasklet", "rng")

    def __init__(self, ident, kind, x, y, energy):
        self.id, self.kind, self.x, self.y, self.energy = ident, kind, x, y, energy
        self.rng = random.Random(ident)
        self.steps = 0
        self.dead = False
        self.tasklet = None


class World:
    def __init__(self, size, seed):
        self.size = size
        self.grid = {}  # (x, y) -> Agent
        self.rng = random.Random(seed)
        self.agents = []
        self.next_id = 0
        self.steps = 0
        self.births = {"prey": 0, "predator": 0}
        self.deaths = {"eaten": 0, "starved": 0}
        self.max_prey = 0

    def free_cell(self, rng):
        for _ in range(100):
            cell = (rng.randrange(self.size), rng.randrange(self.size))
            if cell not in self.grid:
                return cell
        return None

    def spawn(self, kind, cell, energy):
        a = Agent(self.next_id, kind, cell[0], cell[1], energy)
        self.next_id += 1
        self.grid[cell] = a
        self.agents.append(a)
        body = prey if kind == "prey" else predator
        a.tasklet = stackless.tasklet(body)(self, a)
        return a

    def remove(self, a, why):
        a.dead = True
        del self.grid[(a.x, a.y)]
        self.deaths[why] += 1

    def alive(self, kind):
        return sum(1 for a in self.agents if not a.dead and a.kind == kind)


def wander(world, a, rng):
    """One move to a free neighbouring cell (the caller holds the atomic section)."""
    dx, dy = MOVES[rng.randrange(4)]
    cell = ((a.x + dx) % world.size, (a.y + dy) % world.size)
    other = world.grid.get(cell)
    if other is None:
        del world.grid[(a.x, a.y)]
        a.x, a.y = cell
        world.grid[cell] = a
    return other


def prey(world, me):
    rng = me.rng
    while True:
        with stackless.atomic():
            if me.dead:  # eaten (checked inside the atomic section: a predator may strike anytime)
                return
            me.steps += 1
            world.steps += 1
            wander(world, me, rng)
            if rng.random() < 0.02 and world.alive_prey < world.max_prey:
                cell = world.free_cell(rng)
                if cell is not None:
                    world.spawn("prey", cell, 0)
                    world.births["prey"] += 1
                    world.alive_prey += 1
        grazing = 0
        for _ in range(rng.randrange(20)):  # chewing: some work between moves
            grazing += 1


def predator(world, me):
    rng = me.rng
    while True:
        with stackless.atomic():
            me.steps += 1
            world.steps += 1
            other = wander(world, me, rng)
            if other is not None and other.kind == "prey" and not other.dead:
                world.remove(other, "eaten")
                world.alive_prey -= 1
                me.energy += 30
            me.energy -= 1
            if me.energy <= 0:
                world.remove(me, "starved")
                world.alive_predators -= 1
                return
            if me.energy > 80 and world.alive_predators < world.max_predators:
                cell = world.free_cell(rng)
                if cell is not None:
                    me.energy //= 2
                    world.spawn("predator", cell, me.energy)
                    world.births["predator"] += 1
                    world.alive_predators += 1
        hunting = 0
        for _ in range(rng.randrange(20)):
            hunting += 1


def run_swarm(agents=10_000, seconds=2.0, timeslice=0.00002, max_steps=None, seed=1, out=print):
    """Runs the swarm until ``seconds`` pass (or ``max_steps`` moves are made); returns the
    world. A referee tasklet (cooperative, it yields with schedule()) ends it by killing every
    agent."""
    size = int((agents * 4) ** 0.5) + 1
    world = World(size, seed)
    world.max_prey = agents
    n_pred = agents // 10
    for i in range(agents):
        cell = world.free_cell(world.rng)
        world.spawn("predator" if i < n_pred else "prey", cell, 40)
    world.alive_prey = agents - n_pred
    world.alive_predators = n_pred
    world.max_predators = agents // 4  # populations stay bounded: prey up to `agents`, predators a quarter
    start = {"t": 0.0}

    def referee():
        # Scheduled once per round (round robin), it ends the run after ``seconds`` (or
        # ``max_steps`` moves), but never before two full rounds.
        end = time.perf_counter() + seconds
        world.rounds = 0
        while world.rounds < 2 or (time.perf_counter() < end and (max_steps is None or world.steps < max_steps)):
            world.rounds += 1
            world.population_at_round = len(world.agents)
            stackless.schedule()
        start["elapsed"] = time.perf_counter() - start["t"]
        world.steps_at_end = world.steps
        # pending=True: each agent is made runnable with TaskletExit waiting for it, and the
        # scheduler ends them in one round after the referee. (A plain kill() runs its target at
        # once and comes back only when the run queue has turned back to the referee: a whole
        # round of timeslices per agent.)
        with stackless.atomic():
            for a in world.agents:
                if a.tasklet.alive:
                    a.tasklet.kill(pending=True)

    stackless.tasklet(referee)()
    out("swarm: %s agents (%s predators, %s prey) on a %dx%d grid, each a plain `while True:` loop; "
        "preempted every %g s" % (format(agents, ","), format(n_pred, ","), format(agents - n_pred, ","),
                                   size, size, timeslice))
    start["t"] = time.perf_counter()
    stackless.run(timeslice=timeslice)
    elapsed = start["elapsed"]
    # Round robin: every agent alive at the end that existed before the last round has moved.
    veterans = [a for a in world.agents[: world.population_at_round] if not a.dead]
    world.min_steps = min((a.steps for a in veterans), default=0)
    out("  %s steps in %.2f s = %s steps/s over %d rounds; every surviving agent moved (at least %d steps each)"
        % (format(world.steps, ","), elapsed, format(round(world.steps / elapsed), ","), world.rounds,
           world.min_steps))
    out("  now: %s prey, %s predators; born: %s prey, %s predators; died: %s eaten, %s starved"
        % (format(world.alive("prey"), ","), format(world.alive("predator"), ","), format(world.births["prey"], ","),
           format(world.births["predator"], ","), format(world.deaths["eaten"], ","),
           format(world.deaths["starved"], ",")))
    world.elapsed = elapsed
    return world


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--slice", type=float, default=0.00002, help="timeslice in seconds")
    a = ap.parse_args(argv)
    run_swarm(a.agents, a.seconds, a.slice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
