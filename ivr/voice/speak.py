"""Brazilian Portuguese for typed values: numbers, money, dates, times, protocols and phone numbers.

`say_ids(kind, value, **options)` turns a value into the prompt ids of ``prompts/pt_BR/fragments.yaml``
that say it; Asterisk plays them in order and the simulator shows ``Catalogue.render_text`` of them.
Values may be Python objects or the strings a flow template produces ("1234.50", "2026-12-01", "14:30").

    number   1101                 mil cento e um          (gender="f": duas mil, duzentas, uma)
    money    Decimal("1.50")      um real e cinquenta centavos
    date     2026-12-01           primeiro de dezembro    (weekday=True, year=True add the rest; on=True:
                                  "na terça-feira, dia primeiro de dezembro"; day=False: "dezembro")
    time     14:30                às quatorze horas e trinta minutos   (at=False drops "às")
    period   00:00-04:00          da meia-noite às quatro horas
    digits   "0451"               zero quatro cinco um
    protocol "202600012347"       dois mil e vinte e seis, zero zero zero, um dois três quatro, sete
    phone    "3003-3336"          três zero zero três, três três três seis
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

PAUSE = "pause/short"
_AND = "word/e"
_OF = "word/de"
_MINUS = "word/menos"
_LIMIT = 10**12  # up to 999 bilhões
_SEPARATORS = re.compile(r"[\s.\-/()]")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TOLL_FREE_PREFIXES = ("0800", "0300", "0500", "0900")


class SayError(ValueError):
    """A value that cannot be said as the kind asked for; the message says what was expected."""


# --- numbers ---------------------------------------------------------------------------------------


def _unit(n: int, feminine: bool) -> str:
    return f"num/{n}_f" if feminine and n in (1, 2) else f"num/{n}"


def _below_thousand(n: int, feminine: bool) -> list[str]:
    """1..999: "cento e vinte e três", "cem", "duzentas e uma"."""
    ids: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds == 1:
        ids.append("num/100" if rest == 0 else "num/cento")
    elif hundreds:
        ids.append(f"num/{hundreds * 100}" + ("_f" if feminine else ""))
    if hundreds and rest:
        ids.append(_AND)
    if 0 < rest < 20:
        ids.append(_unit(rest, feminine))
    elif rest:
        tens, units = divmod(rest, 10)
        ids.append(f"num/{tens * 10}")
        if units:
            ids += [_AND, _unit(units, feminine)]
    return ids


def cardinal_ids(n: int, *, feminine: bool = False) -> list[str]:
    """A whole number below a trillion. Milhão and bilhão are masculine nouns, so only the
    thousands and units agree with a feminine noun ("duas milhões" is wrong, "duas mil" right)."""
    if n < 0:
        return [_MINUS, *cardinal_ids(-n, feminine=feminine)]
    if n >= _LIMIT:
        raise SayError(f"number: {n} is too large to say (the limit is 999 999 999 999)")
    if n == 0:
        return ["num/0"]
    groups: list[tuple[int, list[str]]] = []  # (value within its order, words) of each non-zero order
    rest = n
    for scale, one, many in ((10**9, "num/bilhao", "num/bilhoes"), (10**6, "num/milhao", "num/milhoes")):
        count, rest = divmod(rest, scale)
        if count:
            groups.append((count, [*_below_thousand(count, False), one if count == 1 else many]))
    thousands, units = divmod(rest, 1000)
    if thousands:  # "mil", never "um mil"
        groups.append((thousands, [*([] if thousands == 1 else _below_thousand(thousands, feminine)), "num/mil"]))
    if units:
        groups.append((units, _below_thousand(units, feminine)))
    ids: list[str] = []
    last = len(groups) - 1
    for i, (count, words) in enumerate(groups):
        # "e" joins orders only before the last one, and only when it is round or small:
        # "mil e cem", "mil e vinte", "um milhão e duzentos mil" but "mil cento e um".
        if i and i == last and (count < 100 or count % 100 == 0):
            ids.append(_AND)
        ids += words
    return ids


def _say_number(value: object, *, gender: str = "m") -> list[str]:
    if gender not in ("m", "f"):
        raise SayError(f"number: gender must be 'm' or 'f', got {gender!r}")
    return cardinal_ids(_whole_number(value), feminine=gender == "f")


def _whole_number(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise SayError(f"number: expected a whole number such as 1234, got {value!r}")


# --- money -----------------------------------------------------------------------------------------


def _say_money(value: object) -> list[str]:
    cents = _cents(value)
    ids = [_MINUS] if cents < 0 else []
    reais, centavos = divmod(abs(cents), 100)
    if reais or not centavos:  # "zero reais", but "cinquenta centavos" rather than "zero reais e ..."
        ids += cardinal_ids(reais)
        if reais and reais % 10**6 == 0:  # "um milhão de reais", "dois bilhões de reais"
            ids.append(_OF)
        ids.append("money/real" if reais == 1 else "money/reais")
    if centavos:
        if reais:
            ids.append(_AND)
        ids += [*cardinal_ids(centavos), "money/centavo" if centavos == 1 else "money/centavos"]
    return ids


def _cents(value: object) -> int:
    """Whole centavos in an amount: Decimal, int, float, "1234.50", "1.234,50" or "R$ 1.234,50"."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise SayError(f"money: expected an amount such as 1234.50, got {value!r}")
    text = str(value).strip().removeprefix("R$").strip()
    if "," in text:  # Brazilian writing: dots group thousands, the comma marks the centavos
        text = text.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise SayError(f"money: expected an amount such as 1234.50 or 1.234,50, got {value!r}") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise SayError(f"money: {value!r} is not an amount in reais with at most two decimal places")
    cents = int(amount * 100)
    if abs(cents) >= _LIMIT * 100:
        raise SayError(f"money: {value!r} is too large to say")
    return cents


# --- dates and times -------------------------------------------------------------------------------


def _say_date(
    value: object, *, weekday: bool = False, year: bool = False, on: bool = False, day: bool = True
) -> list[str]:
    when = _as_date(value)
    ids: list[str] = []
    if on:  # "na terça-feira, dia dez", "no sábado, dia dez", "no dia dez": the preposition agrees
        ids.append("date/na" if weekday and when.weekday() < 5 else "date/no")
    if weekday:
        ids += [f"weekday/{_WEEKDAYS[when.weekday()]}", PAUSE]
    if day:
        if on:
            ids.append("date/dia")
        ids += ["date/first"] if when.day == 1 else cardinal_ids(when.day)
        ids.append(_OF)
    ids.append(f"month/{when.month}")
    if year:
        ids += [_OF, *cardinal_ids(when.year)]
    return ids


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
                return date(int(m[3]), int(m[2]), int(m[1]))
            return datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise SayError(f"date: expected a date such as 2026-12-01 or 01/12/2026, got {value!r}")


def _say_time(value: object, *, at: bool = True) -> list[str]:
    """Hours and minutes (seconds are not said). Hours are feminine: "à uma hora", "às duas horas"."""
    moment = _as_time(value)
    return [*(_at_hour(moment.hour) if at else []), *_clock_words(moment)]


def _say_period(value: object) -> list[str]:
    """A span of the day, "00:00-04:00": "da meia-noite às quatro horas", "das dez à uma hora"."""
    if not isinstance(value, str) or not re.fullmatch(r"[^-]+-[^-]+", value.strip()):
        raise SayError(f"period: expected a span such as 00:00-04:00, got {value!r}")
    start, end = (_as_time(part) for part in value.split("-"))
    return [_from_hour(start.hour), *_clock_words(start), *_at_hour(end.hour), *_clock_words(end)]


def _at_hour(hour: int) -> list[str]:
    """The "at" before an hour: "à meia-noite", "à uma hora", "às duas horas"."""
    return ["time/a" if hour in (0, 1) else "time/as"]


def _from_hour(hour: int) -> str:
    """The "from" before an hour: "da meia-noite", "da uma hora", "das duas horas"."""
    return "time/da" if hour in (0, 1) else "time/das"


def _clock_words(moment: time) -> list[str]:
    hour, minute = moment.hour, moment.minute
    if hour == 0:
        ids = ["time/meia_noite"]
    else:
        ids = [*cardinal_ids(hour, feminine=True), "time/hora" if hour == 1 else "time/horas"]
    if minute:
        ids += [_AND, *cardinal_ids(minute), "time/minuto" if minute == 1 else "time/minutos"]
    return ids


def _as_time(value: object) -> time:
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d{1,2})[:h](\d{2})(?::\d{2})?\s*", value)):
        hour, minute = int(m[1]), int(m[2])
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise SayError(f"time: expected a time of day such as 14:30, got {value!r}")


# --- digit strings ---------------------------------------------------------------------------------


def _digit_string(kind: str, value: object) -> str:
    """The digits of a value written with the usual separators (spaces, dots, dashes, slashes)."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise SayError(f"{kind}: expected a string of digits, got {type(value).__name__}")
    text = _SEPARATORS.sub("", str(value))
    if not re.fullmatch(r"[0-9]+", text):  # the value itself is not echoed: it may be caller data
        raise SayError(f"{kind}: expected digits (spaces, dots and dashes allowed), got other characters")
    return text


#: Spelled digits (`digit/7`); what a call stores of them is MASKED_DIGIT: a number read back digit by
#: digit may be a CNPJ or a phone.
DIGIT_PREFIX = "digit/"
MASKED_DIGIT = "digit/*"


def _spell(digits: str) -> list[str]:
    return [f"{DIGIT_PREFIX}{d}" for d in digits]


def _grouped(groups: list[list[str]]) -> list[str]:
    ids: list[str] = []
    for group in groups:
        ids += [PAUSE, *group] if ids else group
    return ids


def _say_digits(value: object) -> list[str]:
    return _spell(_digit_string("digits", value))


def _say_protocol(value: object) -> list[str]:
    """A call protocol (12 digits: year, 7-digit sequence, check digit) or a ticket number (9 digits),
    in groups a caller can write down."""
    digits = _digit_string("protocol", value)
    if len(digits) == 12:
        year, sequence, check = digits[:4], digits[4:11], digits[11]
        return _grouped([cardinal_ids(int(year)), _spell(sequence[:3]), _spell(sequence[3:]), _spell(check)])
    if len(digits) == 9:
        return _grouped([_spell(digits[i : i + 3]) for i in (0, 3, 6)])
    raise SayError(
        f"protocol: expected a call protocol of 12 digits or a ticket number of 9 digits, got {len(digits)} digits"
    )


def _say_phone(value: object) -> list[str]:
    """A Brazilian number grouped as people say it: 3003-3336, 98765-4321, 11 3195-8012, 0800 123 4567.
    The value is never echoed in errors: it is caller data."""
    digits = _digit_string("phone", value.strip().removeprefix("+") if isinstance(value, str) else value)
    if len(digits) in (12, 13) and digits.startswith("55"):  # country code
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith(_TOLL_FREE_PREFIXES):
        return _grouped([["digit/0", f"num/{digits[1]}00"], _spell(digits[4:7]), _spell(digits[7:])])
    sizes = {8: (4, 4), 9: (5, 4), 10: (2, 4, 4), 11: (2, 5, 4)}.get(len(digits))
    if sizes is None:
        raise SayError(f"phone: expected a Brazilian number of 8 to 11 digits (optionally +55), got {len(digits)}")
    groups, start = [], 0
    for size in sizes:
        groups.append(_spell(digits[start : start + size]))
        start += size
    return _grouped(groups)


# --- the entry point -------------------------------------------------------------------------------

_SAYERS: dict[str, Callable[..., list[str]]] = {
    "number": _say_number,
    "money": _say_money,
    "date": _say_date,
    "time": _say_time,
    "period": _say_period,
    "digits": _say_digits,
    "protocol": _say_protocol,
    "phone": _say_phone,
}

#: Each kind with the options it accepts (for flow checks and error messages).
SAY_KINDS: dict[str, tuple[str, ...]] = {
    kind: tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
    for kind, fn in _SAYERS.items()
}


def say_ids(kind: str, value: object, **options: object) -> list[str]:
    """The fragment prompt ids that say `value` as `kind`; `SayError` explains a bad kind, value or option."""
    sayer = _SAYERS.get(kind)
    if sayer is None:
        raise SayError(f"unknown say kind {kind!r}: expected one of {', '.join(_SAYERS)}")
    unknown = sorted(set(options) - set(SAY_KINDS[kind]))
    if unknown:
        allowed = ", ".join(SAY_KINDS[kind]) or "no options"
        raise SayError(f"{kind}: unknown option {', '.join(unknown)} (it takes {allowed})")
    for name in ("weekday", "year", "at", "on", "day"):
        if name in options and not isinstance(options[name], bool):
            raise SayError(f"{kind}: option {name} must be true or false, got {options[name]!r}")
    return sayer(value, **options)
