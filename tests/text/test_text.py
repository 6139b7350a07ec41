"""Outside text made safe for one-line protocols and logs."""

from __future__ import annotations

import logging
import sys

from ivr import logs
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


def test_the_commands_text_log_keeps_a_record_on_one_line() -> None:
    out = logs.handler("text")
    record = logging.LogRecord("ivr.x", logging.WARNING, __file__, 1, "customer %s", ("Ana\r\nERROR forged",), None)
    out.filter(record)  # stamps the call's protocol, as the handler does before formatting
    assert out.format(record).endswith("WARNING ivr.x: customer Ana\ufffd\ufffdERROR forged")
