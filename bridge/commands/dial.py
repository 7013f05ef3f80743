"""`bridge dial`: ask the running bridge (over its HTTP API) to place a call, and print the result."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from bridge.config.ops import ApiConfig

EXIT_NOT_ANSWERED = 1
EXIT_UNREACHABLE = 3
POLL_SECONDS = 0.5


def dial(api: ApiConfig, number: str, persona: str | None, dtmf: str, wait: bool) -> int:
    host = "127.0.0.1" if api.bind in ("0.0.0.0", "::") else api.bind
    base = f"http://{host}:{api.port}/api/calls"
    body = {"number": number, "dtmf": dtmf, **({"persona": persona} if persona else {})}
    try:
        call = _request(api, base, body)
        print(f"{call['id']}: {call['status']} ({call['number']}, persona {call['persona']})")
        while wait and call["ended_at"] is None:
            time.sleep(POLL_SECONDS)
            call = _request(api, f"{base}/{call['id']}")
    except urllib.error.HTTPError as error:
        print(f"bridge dial: {error.code}: {error.read().decode(errors='replace')}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except OSError as error:
        print(f"bridge dial: cannot reach the bridge API at {base} ({error}); is `bridge run` up?", file=sys.stderr)
        return EXIT_UNREACHABLE
    if not wait:
        return 0
    print(f"{call['id']}: {call['status']} {call.get('reason', '')}".rstrip())
    for turn in (call.get("conversation") or {}).get("turns", []):
        print(f"  caller: {turn['caller']}\n  agent:  {turn['agent']}")
    return 0 if call["status"] == "answered" else EXIT_NOT_ANSWERED


def _request(api: ApiConfig, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    token = api.token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result
