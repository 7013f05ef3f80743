"""How a call ends, in one vocabulary: we *hang up* (every leg goes), or we *hand the caller over*
to the dialplan (BRIDGE_RESULT=<result>, then Continue), which decides what comes next: a queue,
the next bridge, a person. A dialled leg (a transfer, an outbound call) ends with a Q.850 cause.

The strings these leave behind are older than the words and do not change: call records say
`handed_back_to_dialplan:<result>` (the dashboard, the metrics and stored history read it) and
the dialplan reads BRIDGE_RESULT.
"""

from __future__ import annotations

from typing import Literal

from bridge.ari.client import AriClient
from bridge.dialplan import RESULT_VARIABLE

# A call record's end_reason once the caller went back to the dialplan: this, then the result.
HANDED_OVER = "handed_back_to_dialplan:"

# Q.850 causes of a dialled leg that say why nobody answered; any other cause is a failure.
Unanswered = Literal["busy", "no_answer"]
Q850_UNANSWERED: dict[int, Unanswered] = {17: "busy", 18: "no_answer", 19: "no_answer", 21: "busy"}


def handed_over(result: str) -> str:
    """The end_reason of a call handed over to the dialplan with BRIDGE_RESULT=`result`."""
    return f"{HANDED_OVER}{result}"


async def hand_over_to_dialplan(ari: AriClient, channel_id: str, result: str) -> None:
    """The hand-over itself: BRIDGE_RESULT for the dialplan, then out of Stasis. Raises AriError."""
    await ari.set_variable(channel_id, RESULT_VARIABLE, result)
    await ari.continue_in_dialplan(channel_id)
