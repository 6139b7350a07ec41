"""Outside text made safe for one-line protocols and logs."""

from __future__ import annotations

import logging
import sys

from ivr.text import OneLineFormatter, replace_controls


def test_control_characters_are_replaced_and_the_rest_kept() -> None:
    cleaned = replace_controls("João\r\nda Silva\0\x1b[2J\t(Matriz)\x7f")
    assert cleaned == "João\ufffd\ufffdda Silva\ufffd\ufffd[2J\ufffd(Matriz)\ufffd"
    assert replace_controls("") == ""


def test_a_logged_value_cannot_forge_a_second_record_but_a_traceback_keeps_its_lines() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "customer %s", ("Ana\nERROR forged",), None)
    assert formatter.format(record) == "WARNING customer Ana\ufffdERROR forged"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(failed).splitlines()
    assert lines[0] == "ERROR failed" and lines[1].startswith("Traceback") and lines[-1] == "RuntimeError: boom"
