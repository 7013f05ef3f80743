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
