"""The contract with the shipped `[ai-agent]` dialplan: which ARI apps it offers a call to, and
what a bridge that will not take the call answers.

Several bridge instances on one Asterisk need one ARI app name each: a second events connection
with a name already in use silently takes the app over (the first gets ApplicationReplaced and
no more calls). So the dialplan lists the names in the global `BRIDGE_APPS`, starts each call at
the next name in turn and, when a bridge is not connected (`STASISSTATUS=FAILED`) or declines
(`BRIDGE_RESULT=declined`: at `limits.max_calls`, or draining), offers it to the next one. Only
`BRIDGE_RESULT=failed` (the agent failed during the call) or every bridge refusing sends the
caller to the fallback queue.

An `[ai-agent]` copied before `declined` existed only knows `failed`: a caller declined with the
new word would be hung up. The bridge reads `BRIDGE_APPS` when it connects, and answers
`failed` (the fallback queue, as before) until the dialplan shows it knows the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Letters, digits, '_', '.', '-': no ',' (the list's separator), no '$', '(', ')' (dialplan
# syntax) and no ':' (it ends the app prefix of our mixing bridges' names).
APP_NAME = re.compile(r"[A-Za-z0-9_.-]+")
APP_NAME_PATTERN = f"^{APP_NAME.pattern}$"
APP_NAME_RULE = "letters, digits, '_', '.' and '-' only"
APPS_GLOBAL = "BRIDGE_APPS"
# What a call handed over to the dialplan carries back: `declined`, `failed`, or a transfer's kind.
RESULT_VARIABLE = "BRIDGE_RESULT"

DeclineResult = Literal["declined", "failed"]
DECLINED: DeclineResult = "declined"
FAILED: DeclineResult = "failed"


def apps_global(apps: Sequence[str]) -> str:
    """The value of `BRIDGE_APPS` for these apps; ValueError names the app that cannot be listed."""
    if not apps:
        raise ValueError("no ARI app to offer calls to")
    for app in apps:
        if not APP_NAME.fullmatch(app):
            raise ValueError(f"{app!r} is not an ARI app name the dialplan can list: {APP_NAME_RULE}")
    return ",".join(apps)


def listed_apps(value: str) -> tuple[str, ...]:
    """The apps a `BRIDGE_APPS` value lists (empty: the global is not set)."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


@dataclass(frozen=True)
class DialplanApps:
    """What Asterisk's `BRIDGE_APPS` says, seen from the bridge running as `app`."""

    app: str
    listed: tuple[str, ...]

    @property
    def decline_result(self) -> DeclineResult:
        """`declined` only for a dialplan that knows to try the next bridge; else `failed`."""
        return DECLINED if self.listed else FAILED

    def problem(self) -> str | None:
        """What is wrong, phrased with the fix, or None when calls are offered to this bridge."""
        if not self.listed:
            return (
                f"the dialplan has no global {APPS_GLOBAL} (an [ai-agent] from before several bridges): "
                f"calls this bridge declines go to the fallback queue (BRIDGE_RESULT=failed), not to another "
                f"bridge; copy [ai-agent] and {APPS_GLOBAL} from asterisk/extensions.conf"
            )
        if self.app not in self.listed:
            return (
                f"ari.app {self.app!r} is not in the dialplan's {APPS_GLOBAL} ({','.join(self.listed)}): "
                f"[ai-agent] never offers a call to this bridge; add it to {APPS_GLOBAL} in [globals] "
                "(FreePBX: globals_custom.conf) and run 'dialplan reload', or fix ari.app"
            )
        return None
