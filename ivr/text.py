"""Text from outside (a back-end's customer name, a caller's transcript) made safe for one-line protocols.

A line break or NUL in a customer name must never end an AGI command, an AMI header or a log line early,
and it must not fail the call either: such characters are replaced by `REPLACEMENT`, so the value keeps its
length and shape and the call goes on. The wire layers still refuse them (`ivr.agi.wire.quote`,
`ivr.ami.client.check_fields`): replacing is for data, refusing is for bugs.
"""

from __future__ import annotations

import logging
import re

#: C0 controls and DEL (tab included: AMI and AGI have no use for it in a value).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


def replace_controls(text: str) -> str:
    """``"Serra\\nAzul"`` -> ``"Serra\ufffdAzul"``: every control character replaced, nothing else changed."""
    return CONTROL.sub(REPLACEMENT, text)


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


class OneLineFormatter(logging.Formatter):
    """A log record's message stays on one line: a value logged from outside cannot forge a second record.

    Only the message is cleaned; a traceback, which the formatter appends after it, keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return replace_controls(super().formatMessage(record))
