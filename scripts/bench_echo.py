#!/usr/bin/env python3
"""Echo benchmark: the agent's own voice fed back into the caller's audio, with and without the
echo guard, on the real local models (Whisper tiny.en, Qwen2.5 1.5B, Piper) in a simulated call
(20 ms in, 20 ms out, real time; no PBX, so the echo level and delay are exactly what we set).

Each call: the caller asks a question, then only the echo of the agent's greeting and answer
comes back. A barge-in there is false: the agent stopped for its own voice. Then the caller
really talks over the answer (at its normal level, echo still on): that barge-in must still be
seen, and how fast.

    .venv/bin/python scripts/bench_echo.py          # or: bridge bench echo
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.controller import Conversation
from bridge.conversation.loading import load_agent
from bridge.logs import configure_logging
from tests.support.sim_call import SimulatedCall
from tests.support.speech import caller_says, silence

QUESTIONS = ("What are your opening hours?", "Where are you located?", "Can I book a cleaning?")
LEVELS_DB = (-20.0, -12.0, -6.0)
DELAYS_FRAMES = (3, 10)  # 60 ms and 200 ms


async def one_call(
    agent: Agent, guard_db: float, echo_db: float, delay: int, question: str, talk_over: bool
) -> tuple[int, bool]:
    settings = agent.settings.model_copy(update={"echo_return_loss_db": guard_db})
    conversation = Conversation(dataclasses.replace(agent, settings=settings), "receptionist")
    call = SimulatedCall(conversation, echo=(10 ** (echo_db / 20), delay))
    audio = silence(5.0) + caller_says(question)
    if talk_over:
        audio += silence(1.4) + caller_says("Sorry, one more thing.")
    await call.run(audio + silence(6.0), len(audio) / 16000 + 6.0)
    interrupted = any(turn.interrupted or turn.continued for turn in conversation.turns)
    # The agent stopped for what it heard: a barge-in, or (early in a reply) the caller taken to
    # be going on with their turn (conversation.continue_within_ms).
    stops = conversation.barge_ins + sum(turn.continued for turn in conversation.turns)
    return stops, interrupted


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guard-db", type=float, default=6.0, help="conversation.echo_return_loss_db to test")
    args = parser.parse_args()
    configure_logging("error")
    started = time.monotonic()
    agent = load_agent(parse_config({}))
    await agent.warm(8000)
    print(f"models ready in {time.monotonic() - started:.1f} s")
    print(f"{'echo':>7} {'delay':>6}  {'false barge-ins: no guard':>26}  {f'guard {args.guard_db:g} dB':>12}")
    totals = {0.0: 0, args.guard_db: 0}
    for level in LEVELS_DB:
        for delay in DELAYS_FRAMES:
            row = {}
            for guard in (0.0, args.guard_db):
                false = 0
                for question in QUESTIONS:
                    barge_ins, _ = await one_call(agent, guard, level, delay, question, talk_over=False)
                    false += barge_ins
                row[guard] = false
                totals[guard] += false
            print(f"{level:>5.0f}dB {delay * 20:>4}ms  {row[0.0]:>26}  {row[args.guard_db]:>12}")
    seen = {}
    for guard in (0.0, args.guard_db):
        seen[guard] = sum(
            [(await one_call(agent, guard, -12.0, 5, question, talk_over=True))[0] > 0 for question in QUESTIONS]
        )
    calls = len(LEVELS_DB) * len(DELAYS_FRAMES) * len(QUESTIONS)
    print(
        f"echo: false barge-ins {totals[0.0]} without the guard, {totals[args.guard_db]} with it ({calls} calls each); "
        f"real talk-over seen {seen[0.0]}/{len(QUESTIONS)} without, {seen[args.guard_db]}/{len(QUESTIONS)} with"
    )


if __name__ == "__main__":
    asyncio.run(main())
