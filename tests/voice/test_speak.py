"""pt-BR rendering, checked through the text a caller would hear (the repository's fragment catalogue)."""

from datetime import date, datetime, time
from decimal import Decimal

import pytest

from ivr.config import REPO_ROOT
from ivr.protocol_number import make_call_protocol, make_ticket_number
from ivr.voice.catalogue import Catalogue
from ivr.voice.speak import SAY_KINDS, SayError, say_ids

CATALOGUE = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")


def said(kind: str, value: object, **options: object) -> str:
    return CATALOGUE.render_text(say_ids(kind, value, **options))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "zero"),
        (1, "um"),
        (7, "sete"),
        (10, "dez"),
        (14, "quatorze"),
        (16, "dezesseis"),
        (19, "dezenove"),
        (20, "vinte"),
        (21, "vinte e um"),
        (55, "cinquenta e cinco"),
        (99, "noventa e nove"),
        (100, "cem"),
        (101, "cento e um"),
        (110, "cento e dez"),
        (123, "cento e vinte e três"),
        (200, "duzentos"),
        (345, "trezentos e quarenta e cinco"),
        (999, "novecentos e noventa e nove"),
        (1000, "mil"),
        (1001, "mil e um"),
        (1020, "mil e vinte"),
        (1100, "mil e cem"),
        (1101, "mil cento e um"),
        (1200, "mil e duzentos"),
        (1234, "mil duzentos e trinta e quatro"),
        (2000, "dois mil"),
        (2026, "dois mil e vinte e seis"),
        (1999, "mil novecentos e noventa e nove"),
        (10_000, "dez mil"),
        (21_000, "vinte e um mil"),
        (100_000, "cem mil"),
        (101_000, "cento e um mil"),
        (100_100, "cem mil e cem"),
        (999_999, "novecentos e noventa e nove mil novecentos e noventa e nove"),
        (1_000_000, "um milhão"),
        (1_000_001, "um milhão e um"),
        (1_001_000, "um milhão e mil"),
        (1_200_000, "um milhão e duzentos mil"),
        (1_234_567, "um milhão duzentos e trinta e quatro mil quinhentos e sessenta e sete"),
        (2_000_000, "dois milhões"),
        (2_500_000, "dois milhões e quinhentos mil"),
        (1_000_000_000, "um bilhão"),
        (2_000_000_001, "dois bilhões e um"),
        (3_000_200_000, "três bilhões e duzentos mil"),
        (999_999_999_999, "novecentos e noventa e nove bilhões novecentos e noventa e nove milhões "
         "novecentos e noventa e nove mil novecentos e noventa e nove"),
        (-5, "menos cinco"),
        ("42", "quarenta e dois"),
        (Decimal("300"), "trezentos"),
    ],
)
def test_numbers(value: object, text: str) -> None:
    assert said("number", value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "uma"),
        (2, "duas"),
        (12, "doze"),
        (21, "vinte e uma"),
        (32, "trinta e duas"),
        (200, "duzentas"),
        (201, "duzentas e uma"),
        (2000, "duas mil"),
        (222_222, "duzentas e vinte e duas mil duzentas e vinte e duas"),
        (2_000_000, "dois milhões"),  # milhão is masculine whatever is counted
        (2_200_002, "dois milhões duzentas mil e duas"),
    ],
)
def test_feminine_numbers(value: int, text: str) -> None:
    assert said("number", value, gender="f") == text


@pytest.mark.parametrize("value", [10**12, "12a", 1.5, Decimal("2.5"), True, None])
def test_numbers_refused(value: object) -> None:
    with pytest.raises(SayError, match="number"):
        say_ids("number", value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "zero reais"),
        ("0.00", "zero reais"),
        (Decimal("0.01"), "um centavo"),
        (Decimal("0.50"), "cinquenta centavos"),
        (1, "um real"),
        (Decimal("1.01"), "um real e um centavo"),
        (Decimal("1.50"), "um real e cinquenta centavos"),
        (2, "dois reais"),
        ("21.00", "vinte e um reais"),
        ("99,90", "noventa e nove reais e noventa centavos"),
        ("R$ 1.234,56", "mil duzentos e trinta e quatro reais e cinquenta e seis centavos"),
        ("1234.5", "mil duzentos e trinta e quatro reais e cinquenta centavos"),
        (1000, "mil reais"),
        (1_000_000, "um milhão de reais"),
        (Decimal("2000000.50"), "dois milhões de reais e cinquenta centavos"),
        (1_500_000, "um milhão e quinhentos mil reais"),
        (3_000_000_000, "três bilhões de reais"),
        (12.5, "doze reais e cinquenta centavos"),
        (Decimal("-10.00"), "menos dez reais"),
    ],
)
def test_money(value: object, text: str) -> None:
    assert said("money", value) == text


@pytest.mark.parametrize(("value", "message"), [("1.234", "two decimal places"), ("abc", "1234.50"),
                                                 (Decimal("NaN"), "two decimal"), (None, "amount"), (True, "amount")])
def test_money_refused(value: object, message: str) -> None:
    with pytest.raises(SayError, match=message):
        say_ids("money", value)


@pytest.mark.parametrize(
    ("value", "options", "text"),
    [
        (date(2026, 12, 1), {}, "primeiro de dezembro"),
        ("2026-03-02", {}, "dois de março"),
        ("2026-01-21", {}, "vinte e um de janeiro"),
        ("31/10/2026", {}, "trinta e um de outubro"),
        (datetime(2026, 12, 1, 15, 0), {"year": True}, "primeiro de dezembro de dois mil e vinte e seis"),
        ("2026-11-30", {"weekday": True}, "segunda-feira, trinta de novembro"),
        (
            "2026-12-25",
            {"weekday": True, "year": True},
            "sexta-feira, vinte e cinco de dezembro de dois mil e vinte e seis",
        ),
        ("2026-11-29", {"weekday": True}, "domingo, vinte e nove de novembro"),
    ],
)
def test_dates(value: object, options: dict[str, object], text: str) -> None:
    assert said("date", value, **options) == text


@pytest.mark.parametrize("value", ["2026-02-30", "tomorrow", "32/01/2026", 20261201])
def test_dates_refused(value: object) -> None:
    with pytest.raises(SayError, match="date: expected a date"):
        say_ids("date", value)


@pytest.mark.parametrize(
    ("value", "options", "text"),
    [
        ("14:30", {}, "às quatorze horas e trinta minutos"),
        (time(8, 0), {}, "às oito horas"),
        ("01:00", {}, "à uma hora"),
        ("1:01", {}, "à uma hora e um minuto"),
        ("02:02", {}, "às duas horas e dois minutos"),
        ("21:00", {}, "às vinte e uma horas"),
        ("22h15", {}, "às vinte e duas horas e quinze minutos"),
        ("00:00", {}, "à meia-noite"),
        ("00:45", {}, "à meia-noite e quarenta e cinco minutos"),
        (datetime(2026, 1, 1, 18, 0, 59), {"at": False}, "dezoito horas"),
        ("12:00:00", {}, "às doze horas"),
    ],
)
def test_times(value: object, options: dict[str, object], text: str) -> None:
    assert said("time", value, **options) == text


@pytest.mark.parametrize("value", ["24:00", "12:60", "noon", 1430])
def test_times_refused(value: object) -> None:
    with pytest.raises(SayError, match="time: expected"):
        say_ids("time", value)


def test_digits() -> None:
    assert said("digits", "0451") == "zero quatro cinco um"
    assert said("digits", "12.345-6") == "um dois três quatro cinco seis"
    assert say_ids("digits", 908) == ["digit/9", "digit/0", "digit/8"]


def test_digits_refused_without_echoing_the_value() -> None:
    with pytest.raises(SayError) as err:
        say_ids("digits", "12AB34")
    assert "12AB34" not in str(err.value)


def test_call_protocol_in_groups() -> None:
    protocol = make_call_protocol(2026, 1234)  # 2026 0001234 + check digit
    check = protocol[-1]
    digit_word = CATALOGUE.text(f"digit/{check}")
    assert said("protocol", protocol) == f"dois mil e vinte e seis, zero zero zero, um dois três quatro, {digit_word}"


def test_ticket_number_in_groups() -> None:
    ticket = make_ticket_number(12345)  # 8 0012345 + check digit
    assert said("protocol", ticket).startswith("oito zero zero, um dois três, quatro cinco ")
    assert say_ids("protocol", ticket).count("pause/short") == 2


def test_protocol_with_separators() -> None:
    assert said("protocol", "2026 0001234-7") == said("protocol", "202600012347")


@pytest.mark.parametrize("value", ["12345", "2026000123478", "abc"])
def test_protocol_refused(value: str) -> None:
    with pytest.raises(SayError, match="protocol"):
        say_ids("protocol", value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("3003-3336", "três zero zero três, três três três seis"),
        ("30033336", "três zero zero três, três três três seis"),
        ("98765-4321", "nove oito sete seis cinco, quatro três dois um"),
        ("(31) 3195-8012", "três um, três um nove cinco, oito zero um dois"),
        ("+55 (31) 3003-3336", "três um, três zero zero três, três três três seis"),
        ("11987654321", "um um, nove oito sete seis cinco, quatro três dois um"),
        ("+5511987654321", "um um, nove oito sete seis cinco, quatro três dois um"),
        ("0800 123 4567", "zero oitocentos, um dois três, quatro cinco seis sete"),
        ("0300 789 0000", "zero trezentos, sete oito nove, zero zero zero zero"),
    ],
)
def test_phone_numbers(value: str, text: str) -> None:
    assert said("phone", value) == text


@pytest.mark.parametrize("value", ["1234567", "123456789012345", "3003-333x"])
def test_phone_refused_without_echoing_the_value(value: str) -> None:
    with pytest.raises(SayError, match="phone") as err:
        say_ids("phone", value)
    assert value not in str(err.value)


def test_unknown_kind_and_options() -> None:
    with pytest.raises(SayError, match="unknown say kind 'colour'"):
        say_ids("colour", 1)
    with pytest.raises(SayError, match=r"money: unknown option gender \(it takes no options\)"):
        say_ids("money", 1, gender="f")
    with pytest.raises(SayError, match=r"date: unknown option colour \(it takes weekday, year, on, day\)"):
        say_ids("date", "2026-12-01", colour=True)
    with pytest.raises(SayError, match="gender must be"):
        say_ids("number", 1, gender="x")
    with pytest.raises(SayError, match="weekday must be true or false"):
        say_ids("date", "2026-12-01", weekday="yes")


def test_every_id_said_is_in_the_catalogue() -> None:
    values = {
        "number": [*range(0, 1200), *range(1000, 10**12, 7_777_777_777), 10**12 - 1],
        "money": [Decimal(n) / 100 for n in range(0, 100_000, 37)],
        "date": [date(2026, m, d) for m in range(1, 13) for d in (1, 2, 15, 28)],
        "time": [time(h, m) for h in range(24) for m in (0, 1, 2, 21, 59)],
        "period": [f"{h:02d}:{m:02d}-{(h + 4) % 24:02d}:00" for h in range(24) for m in (0, 30)],
        "digits": ["0123456789"],
        "protocol": [make_call_protocol(2026, 9_999_999), make_ticket_number(1)],
        "phone": ["0800 123 4567", "0500 123 4567", "0900 123 4567", "11987654321"],
    }
    assert set(values) == set(SAY_KINDS)
    missing = {
        prompt_id
        for kind, items in values.items()
        for item in items
        for prompt_id in say_ids(kind, item, **({"weekday": True, "year": True} if kind == "date" else {}))
        if not CATALOGUE.has(prompt_id)
    }
    missing |= {p for n in range(0, 1000) for p in say_ids("number", n, gender="f") if not CATALOGUE.has(p)}
    assert not missing


def _hours(hour: int) -> str:
    """The words of an hour of the day, as both phrases below end them."""
    return "meia-noite" if hour == 0 else "uma hora" if hour == 1 else f"{said('number', hour, gender='f')} horas"


@pytest.mark.parametrize("hour", range(24))
def test_a_period_agrees_with_every_hour_it_starts_and_ends_at(hour: int) -> None:
    # "da meia-noite", "da uma hora", "das duas horas"; "à meia-noite", "à uma hora", "às duas horas"
    end = (hour + 1) % 24
    start_words = ("da " if hour in (0, 1) else "das ") + _hours(hour)
    end_words = ("à " if end in (0, 1) else "às ") + _hours(end)
    assert said("period", f"{hour:02d}:00-{end:02d}:00") == f"{start_words} {end_words}"
    assert said("time", f"{hour:02d}:00") == ("à " if hour in (0, 1) else "às ") + _hours(hour)


def test_a_period_with_minutes() -> None:
    assert said("period", "22:30-01:15") == (
        "das vinte e duas horas e trinta minutos à uma hora e quinze minutos"
    )


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(2026, 11, 30), "na segunda-feira, dia trinta de novembro"),
        (date(2026, 12, 1), "na terça-feira, dia primeiro de dezembro"),
        (date(2026, 12, 2), "na quarta-feira, dia dois de dezembro"),
        (date(2026, 12, 3), "na quinta-feira, dia três de dezembro"),
        (date(2026, 12, 4), "na sexta-feira, dia quatro de dezembro"),
        (date(2026, 12, 5), "no sábado, dia cinco de dezembro"),
        (date(2026, 12, 6), "no domingo, dia seis de dezembro"),
    ],
)
def test_on_a_weekday_the_preposition_agrees(day: date, text: str) -> None:
    assert said("date", day, weekday=True, on=True) == text


def test_on_a_date_and_a_month_alone() -> None:
    assert said("date", "2026-12-08", on=True) == "no dia oito de dezembro"
    assert said("date", "2026-10-01", day=False, year=True) == "outubro de dois mil e vinte e seis"


@pytest.mark.parametrize("value", ["04:00", "00:00-", "25:00-04:00", "a-b"])
def test_a_period_refused(value: str) -> None:
    with pytest.raises(SayError):
        say_ids("period", value)
