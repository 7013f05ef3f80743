import os
import stat
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstall, AsteriskSettings
from bridge.pbx.render import CONFIG_SOURCE, PLACEHOLDER, RenderError, render_config_dir, render_text


def test_missing_value_is_an_error() -> None:
    with pytest.raises(RenderError, match="no value for HTTP_PORT"):
        render_text("bindport = {{HTTP_PORT}}", {}, "http.conf")


def test_dialplan_variables_are_left_alone() -> None:
    assert render_text("Set(X=${EXTEN}) {{A}}", {"A": "1"}) == "Set(X=${EXTEN}) 1"


def test_every_shipped_config_renders_completely(tmp_path: Path) -> None:
    install = AsteriskInstall(Path("/usr/sbin/asterisk"), Path("/mods"), Path("/data"))
    settings = AsteriskSettings(sip_port=5099, ari_app="my-app")
    written = render_config_dir(tmp_path, settings.values(tmp_path, tmp_path / "var", install))
    names = {path.name for path in written}
    assert {"pjsip.conf", "extensions.conf", "ari.conf", "http.conf", "queues.conf", "rtp.conf"} <= names
    for path in written:
        assert not PLACEHOLDER.search(path.read_text()), path
    assert "bind = 127.0.0.1:5099" in (tmp_path / "pjsip.conf").read_text()
    assert "BRIDGE_APPS = my-app\n" in (tmp_path / "extensions.conf").read_text()  # one bridge: as before


def test_several_bridges_are_listed_for_the_dialplan_to_offer_calls_to_in_turn(tmp_path: Path) -> None:
    install = AsteriskInstall(Path("/usr/sbin/asterisk"), Path("/mods"), Path("/data"))
    settings = AsteriskSettings(ari_app="bridge-a", ari_apps=("bridge-a", "bridge-b"))
    render_config_dir(tmp_path, settings.values(tmp_path, tmp_path / "var", install))
    dialplan = (tmp_path / "extensions.conf").read_text()
    assert "BRIDGE_APPS = bridge-a,bridge-b\n" in dialplan
    # [ai-agent] picks names with CUT(): its module must be loaded (autoload = no).
    assert "${CUT(BRIDGE_APPS," in dialplan and "load = func_cut.so" in (tmp_path / "modules.conf").read_text()
    with pytest.raises(ValueError, match="'b,c' is not an ARI app name"):
        AsteriskSettings(ari_apps=("a", "b,c")).values(tmp_path, tmp_path / "var", install)


def test_caller_chosen_text_reaches_stasis_only_filtered() -> None:
    """The dialled number and the web phone's session id come from the caller: a comma in them
    would add a Stasis() argument of their choosing."""
    ai_agent = (CONFIG_SOURCE / "extensions.conf").read_text().split("\n[ai-agent]\n")[1]
    (stasis,) = [line for line in ai_agent.splitlines() if ",Stasis(" in line and not line.startswith(";")]
    assert "${ARG2}" not in stasis and "${ARG3}" not in stasis
    assert "Set(LOCAL(number)=${FILTER(" in ai_agent and "Set(LOCAL(session)=${FILTER(A-Za-z0-9-," in ai_agent


def test_rendered_configs_holding_passwords_are_owner_only(tmp_path: Path) -> None:
    install = AsteriskInstall(Path("/usr/sbin/asterisk"), Path("/mods"), Path("/data"))
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "ari.conf").write_text("left over from an earlier run")
    (etc / "ari.conf").chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        written = render_config_dir(etc, AsteriskSettings(ari_password="s3cret").values(etc, tmp_path / "var", install))
    finally:
        os.umask(old_umask)
    assert "s3cret" in (etc / "ari.conf").read_text()
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o600}


def test_a_new_config_folder_is_owner_only(tmp_path: Path) -> None:
    install = AsteriskInstall(Path("/usr/sbin/asterisk"), Path("/mods"), Path("/data"))
    etc = tmp_path / "instance" / "etc"
    old_umask = os.umask(0o022)
    try:
        render_config_dir(etc, AsteriskSettings().values(etc, tmp_path / "var", install))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(etc.stat().st_mode) == stat.S_IMODE(etc.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "var" / "keys").stat().st_mode) == 0o700
