#!/usr/bin/env bash
# Runs the Python demos (`make demo`): builds the uthread wheel for the default Python (PYTHON, else
# python3) with ci/python-wheel.sh, installs it into target/venv-3.X-demo and runs there
# examples/python/uthread_demo.py (arguments go to it: --count N, --steps S), then the blackjack
# server playing itself for BLACKJACK_SECONDS (3) and the 10,000-agent swarm for SWARM_SECONDS (1).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. ci/lib/python.sh
wheel_venv demo "$(default_python)"
venv=$VENV
"$venv/bin/python" examples/python/uthread_demo.py "$@"
echo
# Guido's uthread API: a blackjack server whose every visitor's game is one uthread, playing itself.
"$venv/bin/python" examples/python/blackjack_server.py --demo "${BLACKJACK_SECONDS:-3}" --bots 50
echo
# uthread.stackless with preemption: 10,000 agents, each a plain `while True:` loop.
"$venv/bin/python" examples/python/swarm.py --agents 10000 --seconds "${SWARM_SECONDS:-1}"
