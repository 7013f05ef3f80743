"""The [ai-agent] contract: the BRIDGE_APPS list, and what a declining bridge tells the dialplan."""

from __future__ import annotations

import pytest

from bridge.dialplan import DialplanApps, apps_global, listed_apps


@pytest.mark.parametrize(
    ("listed", "decline_result", "problem", "fix"),
    [
        (("bridge-a", "bridge-b"), "declined", None, None),
        (("bridge-a",), "declined", None, None),
        # An old [ai-agent]: only `failed` reaches a person.
        ((), "failed", "no global BRIDGE_APPS", "copy [ai-agent] and BRIDGE_APPS from asterisk/extensions.conf"),
        (
            ("bridge-b", "bridge-c"),
            "declined",
            "ari.app 'bridge-a' is not in the dialplan's BRIDGE_APPS (bridge-b,bridge-c)",
            "add it to BRIDGE_APPS in [globals]",
        ),
    ],
)
def test_a_bridge_declines_with_the_word_its_dialplan_knows(
    listed: tuple[str, ...], decline_result: str, problem: str | None, fix: str | None
) -> None:
    apps = DialplanApps("bridge-a", listed)
    assert apps.decline_result == decline_result
    found = apps.problem()
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert fix is not None and fix in found  # the fix is named, the one for this problem


@pytest.mark.parametrize(
    ("value", "apps"),
    [
        ("bridge-a,bridge-b", ("bridge-a", "bridge-b")),
        ("bridge-a, bridge-b ,", ("bridge-a", "bridge-b")),
        ("solo", ("solo",)),
        ("", ()),
    ],
)
def test_the_global_is_read_as_a_list_of_names(value: str, apps: tuple[str, ...]) -> None:
    assert listed_apps(value) == apps


def test_the_global_is_written_only_from_names_the_dialplan_can_split() -> None:
    assert apps_global(["bridge-a", "bridge_b.2"]) == "bridge-a,bridge_b.2"
    for bad in ("a,b", "a b", "${SHELL(x)}", "a:b", ""):
        with pytest.raises(ValueError, match="not an ARI app name"):
            apps_global(["ok", bad])
    with pytest.raises(ValueError, match="no ARI app"):
        apps_global([])
