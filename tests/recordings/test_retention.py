"""Recordings are personal data: `ivr serve` deletes those kept for the teams once past the retention
period, and `ivr doctor` says what they take on disk and whether any outlived it."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path

from ivr.agi.recording import delete_older, recordings_kept
from ivr.app import recordings_retention
from ivr.clock import ManualClock, system_clock
from ivr.config import load_settings
from ivr.doctor import Status, check_recordings

DAY = timedelta(days=1)


def recording(directory: Path, name: str, written: datetime, size: int = 1000) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"\0" * size)
    os.utime(path, (written.timestamp(), written.timestamp()))
    return path


def test_what_is_kept_and_what_is_past_a_moment(tmp_path: Path) -> None:
    now = system_clock()
    old = recording(tmp_path, "old.wav", now - 40 * DAY, size=3000)
    new = recording(tmp_path, "new.wav", now - 2 * DAY)
    kept = recordings_kept(tmp_path)
    assert (kept.files, kept.size) == (2, 4000) and abs(kept.oldest - (now - 40 * DAY)) < timedelta(seconds=1)
    assert delete_older(tmp_path, now - 30 * DAY) == 1
    assert not old.exists() and new.exists()
    assert recordings_kept(tmp_path / "missing").files == 0 and delete_older(tmp_path / "missing", now) == 0


async def test_ivr_serve_deletes_what_outlived_the_retention_as_it_starts(tmp_path: Path) -> None:
    now = system_clock()
    settings = load_settings(asterisk={"recordings_dir": tmp_path, "recordings_retention_days": 7})
    old = recording(tmp_path, "old.wav", now - 8 * DAY)
    young = recording(tmp_path, "young.wav", now - 6 * DAY)
    async with recordings_retention(settings, clock=ManualClock(now)):
        async with asyncio.timeout(10):
            while old.exists():
                await asyncio.sleep(0.01)
    assert young.exists()


async def test_the_doctor_says_what_recordings_take_and_warns_when_none_is_deleted(tmp_path: Path) -> None:
    settings = load_settings(asterisk={"recordings_dir": tmp_path / "rec", "recordings_retention_days": 30})
    missing = await check_recordings(settings, 5)
    assert missing.status is Status.WARN and "ivr asterisk provision" in missing.detail
    now = system_clock()
    recording(tmp_path / "rec", "a.wav", now - 3 * DAY, size=2 * 2**20)
    fine = await check_recordings(settings, 5)
    assert fine.status is Status.OK and "1 recording(s), 2.0 MiB" in fine.detail and "kept up to 30 days" in fine.detail
    recording(tmp_path / "rec", "b.wav", now - 45 * DAY)
    outlived = await check_recordings(settings, 5)
    assert outlived.status is Status.WARN and "45 days old, past the 30-day retention" in outlived.detail
