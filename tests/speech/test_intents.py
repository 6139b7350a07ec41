"""Brazilian Portuguese words into menu choices and digits."""

from __future__ import annotations

import pytest

from ivr.engine.intents import choose, plain, spoken_digits

MAIN_MENU = {
    "1": ["suporte", "técnico", "internet", "sem conexão", "lentidão", "falha"],
    "2": ["financeiro", "fatura", "boleto", "cobrança", "segunda via", "nota fiscal"],
    "3": ["andamento", "chamado"],
    "4": ["reclamação", "reclamar"],
    "5": ["cancelar", "cancelamento"],
    "6": ["não sou cliente", "comercial", "contratar"],
    "0": ["atendente", "pessoa", "humano"],
}


@pytest.mark.parametrize(
    ("said", "option"),
    [
        ("Quero a SEGUNDA VIA do boleto!", "2"),  # case, punctuation, two synonyms of one option
        ("estou sem conexao desde ontem", "1"),  # accents missing from the transcript
        ("Cobrança indevida", "2"),  # accents present
        ("minhas faturas", "2"),  # plural
        ("tenho duas reclamações", "4"),  # -ção plural
        ("a internet está com lentidão", "1"),
        ("não sou cliente, quero contratar", "6"),  # multi-word synonym
        ("quero falar com um atendente", "0"),
        ("dois", "2"),  # the key itself, said
        ("opção cinco", "5"),
        ("tecla 0", "0"),
        ("3", "3"),
    ],
)
def test_words_choose_their_option(said: str, option: str) -> None:
    assert choose(said, MAIN_MENU) == option


@pytest.mark.parametrize(
    "said",
    [
        "quero cancelar a fatura",  # cancellation or billing: ask again rather than guess
        "um atendente do suporte",  # a person or technical support
        "vou fazer uma viagem",  # "via" is not a word of "viagem"
        "tecnicamente",  # nor "técnico" of "tecnicamente"
        "sete",  # a key the menu does not have
        "",
        "hum",
    ],
)
def test_unclear_or_ambiguous_words_choose_nothing(said: str) -> None:
    assert choose(said, MAIN_MENU) is None


def test_a_synonym_inside_a_longer_synonym_of_another_option_yields_to_it() -> None:
    menu = {"1": ["fiscal"], "2": ["nota fiscal"]}
    assert choose("preciso da nota fiscal", menu) == "2"
    assert choose("falar com o fiscal", menu) == "1"


def test_the_same_option_matched_twice_is_still_one_choice() -> None:
    assert choose("boleto, fatura, financeiro", MAIN_MENU) == "2"


def test_plain_form() -> None:
    assert plain("  Cobrança, JÁ! Não-sei ") == "cobranca ja nao sei"


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("um dois três", "123"),
        ("cento e vinte e três", "123"),
        ("zero zero zero um", "0001"),
        ("meia meia", "66"),  # "meia" is six when saying numbers
        ("dezenove", "19"),
        ("dois mil e vinte e cinco", "2025"),
        ("dois mil vinte e cinco", "2025"),
        ("mil duzentos e trinta", "1230"),
        ("o número é 8000 0102 8", "800001028"),  # digits the recogniser already wrote
        ("12.345.678/0001-95", "12345678000195"),
        ("doze, trezentos e quarenta e cinco, seiscentos e setenta e oito, zero zero zero um, noventa e cinco",
         "12345678000195"),  # a CNPJ in the groups it is printed in
        ("12abc345000188", "12ABC345000188"),  # an alphanumeric CNPJ as the recogniser writes it
        ("não sei", ""),
    ],
)
def test_numbers_said_aloud_become_digits(said: str, digits: str) -> None:
    assert spoken_digits(said) == digits


def test_an_option_without_words_is_still_chosen_by_saying_its_key() -> None:
    assert choose("zero", {"1": ["boleto"], "0": []}) == "0"
