import os
import stat
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstall, AsteriskSettings
from bridge.pbx.render import PLACEHOLDER, RenderError, render_config_dir, render_text


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
    assert "BRIDGE_APP = my-app" in (tmp_path / "extensions.conf").read_text()


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
