"""What counts as a running Asterisk, and refusing to start one that is not provisioned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.asterisk.conf import Layout
from ivr.asterisk.instance import AsteriskError, Instance


def _instance(tmp_path: Path) -> Instance:
    instance = Instance(tmp_path, Layout.private("unit"))
    instance.host_path(instance.layout.run).mkdir(parents=True)
    return instance


def test_a_pid_file_naming_another_process_is_not_a_running_asterisk(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    instance.host_path(f"{instance.layout.run}/asterisk.pid").write_text(f"{os.getpid()}\n")
    assert instance.pid() is None
    assert not instance.status().running


def test_no_pid_file_is_not_running(tmp_path: Path) -> None:
    assert _instance(tmp_path).pid() is None


def test_starting_without_our_configuration_is_refused(tmp_path: Path) -> None:
    # Asterisk would otherwise boot on its stock configuration and ports.
    with pytest.raises(AsteriskError, match="asterisk.conf is missing|needs root"):
        _instance(tmp_path).start()
