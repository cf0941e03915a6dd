"""Configuration: defaults, then the TOML file, then the environment; bad values refused with
the place they came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.config import REPO_ROOT, ConfigError, load_config
from service.eventloop import loop_factory

SAMPLE = REPO_ROOT / "deploy" / "orikaeshi.toml.sample"


def test_the_sample_file_loads_as_written() -> None:
    config = load_config(SAMPLE, environ={})
    assert [p.pbx_id for p in config.pbxs] == ["tokyo-1"]
    # The shipped dialplan's contexts and cdr.conf.sample's UTC dates (dialplan check
    # compares them with the PBX's files: tests/test_pbx_check.py).
    assert config.pbxs[0].clock_tz == "UTC"
    assert config.pbxs[0].inbound_contexts == ("orikaeshi-inbound",)
    assert config.pbxs[0].outbound_contexts == ("orikaeshi-outbound",)
    assert config.pbxs[0].callback_context == "orikaeshi-outbound"
    assert (config.web_port, config.event_loop, config.ami_event_queue) == (8080, "uvloop", 5000)


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "o.toml"
    path.write_text('web_port = 9000\nlog_format = "console"\n'
                    '[[pbx]]\npbx_id = "a"\nami_port = 5038\n[[pbx]]\npbx_id = "b"\n')
    config = load_config(path, environ={
        "ORIKAESHI_WEB_PORT": "9100", "DATABASE_URL": "postgresql://x/y",
        "ORIKAESHI_AMI_PORT": "6000", "ORIKAESHI_AMI_SECRET": "s3cret",
        "ORIKAESHI_PBX_ID": "a2"})
    assert config.web_port == 9100 and config.log_format == "console"
    assert config.database_url == "postgresql://x/y"
    # The ORIKAESHI_AMI_* variables are for the first PBX only.
    first, second = config.pbxs
    assert (first.pbx_id, first.ami_port, first.ami_secret) == ("a2", 6000, "s3cret")
    assert (second.pbx_id, second.ami_port, second.ami_secret) == ("b", 5038, "")


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("web_prot = 1\n", {}, "unknown setting 'web_prot'"),
    ("web_port = 'eighty'\n", {}, "web_port: cannot use 'eighty'"),
    ("", {"ORIKAESHI_AMI_LOCK": "maybe"}, "ami_lock: cannot use 'maybe'"),
    ("[[pbx]]\npbx_id = 'a'\n[[pbx]]\npbx_id = 'a'\n", {}, "duplicate pbx_id"),
    ("pbx = []\n", {}, "non-empty array"),
    ("web_port = \n", {}, "o.toml"),
])
def test_bad_settings_say_what_and_where(tmp_path: Path, text: str, environ: dict[str, str],
                                        message: str) -> None:
    path = tmp_path / "o.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    assert message in str(caught.value)


def test_event_loops() -> None:
    assert loop_factory("asyncio") is None
    factory = loop_factory("uvloop")
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    with pytest.raises(ConfigError, match="event_loop: 'trio' is not one of uvloop, asyncio"):
        loop_factory("trio")


def test_the_command_refuses_a_bad_configuration_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "o.toml"
    path.write_text('event_loop = "trio"\n')
    done = subprocess.run([sys.executable, "-m", "service", "--config", str(path), "db", "url"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "configuration error: event_loop: 'trio'" in done.stderr
