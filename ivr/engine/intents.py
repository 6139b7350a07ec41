"""What a caller's words mean: a menu option chosen by voice, or digits said aloud.

Transcripts of Brazilian Portuguese phone speech vary in case, accents ("cobranca" / "cobrança"),
punctuation and plurals, so words are compared in a plain form: case folded, accents removed,
punctuation dropped, whole words only ("via" never matches inside "viagem").

`choose` returns the one option the words point to. When they point to two options ("cancelar a
fatura": cancellation or billing?) it returns None, and the menu asks again rather than guess; a
synonym inside a longer synonym of another option yields to it ("nota fiscal" beats "fiscal").
A caller may also say the option's key ("dois", "opção 2").

`spoken_digits` turns numbers said aloud into the digits a keypad would give: "um dois três",
"cento e vinte e três", "doze, trezentos e quarenta e cinco, zero zero zero um" (a CNPJ said in groups).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

_UNITS = {"zero": 0, "um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5,
          "seis": 6, "meia": 6, "sete": 7, "oito": 8, "nove": 9}  # fmt: skip
_TEENS = {"dez": 10, "onze": 11, "doze": 12, "treze": 13, "catorze": 14, "quatorze": 14, "quinze": 15,
          "dezesseis": 16, "dezasseis": 16, "dezessete": 17, "dezoito": 18, "dezenove": 19}  # fmt: skip
_TENS = {"vinte": 20, "trinta": 30, "quarenta": 40, "cinquenta": 50, "sessenta": 60, "setenta": 70,
         "oitenta": 80, "noventa": 90}  # fmt: skip
_HUNDREDS = {"cem": 100, "cento": 100, "duzentos": 200, "duzentas": 200, "trezentos": 300, "trezentas": 300,
             "quatrocentos": 400, "quatrocentas": 400, "quinhentos": 500, "quinhentas": 500,
             "seiscentos": 600, "seiscentas": 600, "setecentos": 700, "setecentas": 700,
             "oitocentos": 800, "oitocentas": 800, "novecentos": 900, "novecentas": 900}  # fmt: skip
#: Words that announce a key rather than name an option: "opção dois", "número 2", "tecla 0".
_KEY_WORDS = {"opcao", "numero", "tecla", "digito"}
#: How much of a spoken answer a node-visit event keeps.
MAX_RECORDED_CHARS = 120
#: Told to a caller whose words could not be understood: from then on the question takes keys only.
USE_KEYS_PROMPT = "speech/use_keys"


@dataclass(frozen=True, slots=True)
class Said:
    """A caller's spoken answer as text."""

    text: str  # "" when nothing was said
    unclear: bool = False  # the recogniser failed, or was not sure enough to act on the words

    @property
    def nothing(self) -> bool:
        return not self.text and not self.unclear

    @property
    def for_the_record(self) -> str:
        """The words as node-visit events keep them: digits hidden (a caller may say a CNPJ or a
        phone number anywhere), and not a whole speech."""
        return re.sub(r"[0-9]", "#", self.text)[:MAX_RECORDED_CHARS]


def plain(text: str) -> str:
    """Lower case, no accents, words separated by single spaces ("Cobrança, já!" -> "cobranca ja")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", letters))


def _forms(word: str) -> set[str]:
    """A word and its plurals ("boleto" -> "boletos", "reclamacao" -> "reclamacoes")."""
    forms = {word, word + "s"}
    if word.endswith("ao"):
        forms |= {word[:-2] + "oes", word[:-2] + "aes"}
    elif word.endswith(("r", "z", "s")):
        forms.add(word + "es")
    elif word.endswith("l"):
        forms.add(word[:-1] + "is")
    return forms


@dataclass(frozen=True, slots=True)
class _Hit:
    option: str
    start: int  # word positions in the utterance
    end: int

    def inside(self, other: _Hit) -> bool:
        return other.start <= self.start and self.end <= other.end and other.end - other.start > self.end - self.start


def _hits(words: list[str], option: str, synonym: str) -> Iterator[_Hit]:
    wanted = plain(synonym).split()
    if not wanted:
        return
    *head, last = wanted
    last_forms = _forms(last)
    for start in range(len(words) - len(wanted) + 1):
        if words[start : start + len(head)] == head and words[start + len(head)] in last_forms:
            yield _Hit(option, start, start + len(wanted))


def choose(said: str, synonyms: Mapping[str, Sequence[str]]) -> str | None:
    """The option (a key) whose synonyms the caller said; None when none or several options match."""
    words = plain(said).split()
    spoken_key = _spoken_key(words)
    if spoken_key in synonyms:
        return spoken_key
    hits = [hit for key, phrases in synonyms.items() for phrase in phrases for hit in _hits(words, key, phrase)]
    # A synonym said as part of another option's longer synonym is not a choice of its own.
    kept = {hit.option for hit in hits if not any(hit.inside(o) for o in hits if o.option != hit.option)}
    return kept.pop() if len(kept) == 1 else None


def _spoken_key(words: list[str]) -> str | None:
    """The key when the caller names it: the whole answer is one digit, or a key word comes first."""
    if words and words[0] in _KEY_WORDS:
        words = words[1:]
    if len(words) == 1:
        digits = spoken_digits(words[0])
        return digits if len(digits) == 1 else None
    return None


def spoken_digits(said: str) -> str:
    """The digits in numbers said aloud; words that are not numbers are left out.

    Numbers join into one value only as Portuguese joins them: "cento e vinte e três" is 123, but
    "um dois três" (no "e") is three digits, 1 2 3. "mil" multiplies ("dois mil e vinte e cinco").
    Digits already in the transcript ("12.345.678/0001-95") are kept as they are, with the letters
    written among them (an alphanumeric CNPJ, "12ABC345000188").
    """
    out: list[str] = []
    group = _Group()
    for word in plain(said).split():
        if any(ch.isdigit() for ch in word):  # "123", or "12abc345" of an alphanumeric CNPJ
            out.append(group.flush())
            out.append(word.upper())
        elif word == "e":
            group.joining = group.open
        elif word == "mil":
            group.thousand()
        elif (value := _value(word)) is not None:
            if not group.add(*value):
                out.append(group.flush())
                group.add(*value)
        else:
            out.append(group.flush())
    out.append(group.flush())
    return "".join(out)


def _value(word: str) -> tuple[int, int] | None:
    """(value, place): place 3 = hundreds, 2 = tens, 1 = units; a teen (11-19) fills tens and units."""
    if word in _HUNDREDS:
        return _HUNDREDS[word], 3
    if word in _TENS:
        return _TENS[word], 2
    if word in _TEENS:
        return _TEENS[word], 2
    if word in _UNITS:
        return _UNITS[word], 1
    return None


class _Group:
    """One number being said: "cento e vinte e três", "dois mil e cinco"."""

    def __init__(self) -> None:
        self.open = False
        self.joining = False  # an "e" (or "mil") was just said: a smaller part may follow
        self.thousands: int | None = None
        self.value = 0
        self.free = 4  # places below this one are still free (4: all of them)

    def add(self, value: int, place: int) -> bool:
        """Add a part; False when it cannot belong to this number (it starts a new one)."""
        if self.open and not (self.joining and value and place < self.free):
            return False
        self.open, self.joining, self.value = True, False, self.value + value
        # Ten to nineteen fill the units too; a zero is a digit of its own that nothing joins.
        self.free = 0 if value == 0 else 1 if 10 <= value < 20 else place
        return True

    def thousand(self) -> None:
        if self.thousands is None:
            self.thousands = self.value or 1
            self.open, self.joining, self.value, self.free = True, True, 0, 4

    def flush(self) -> str:
        """The number said so far (or ""), and a fresh group for the next one."""
        number = (self.thousands or 0) * 1000 + self.value if self.open else None
        self.open, self.joining, self.thousands, self.value, self.free = False, False, None, 0, 4
        return "" if number is None else str(number)
