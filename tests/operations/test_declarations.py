"""One declaration per operation: the registry runs what `@operation` states (arguments, requirements)
before any handler, and refuses an implementation that does not answer what is declared."""

from __future__ import annotations

from abc import abstractmethod
from enum import Enum
from typing import Annotated

import pytest

from integrations.backend import Backend
from ivr.engine.operations import (
    OperationContext,
    OperationRegistry,
    OperationResult,
    Operations,
    OperationStatus,
    Requirement,
    operation,
)

PROTOCOL = "202600000018"
NOBODY = OperationContext(PROTOCOL, "3133334444", None, False)
KNOWN = OperationContext(PROTOCOL, "3133334444", 7, False)
CONFIRMED = OperationContext(PROTOCOL, "3133334444", 7, True)


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


class Paint(Operations):
    """A small interface, declared the way the back-ends' is."""

    @operation("The caller's paint, by colour.", results=("litres",), requires=Requirement.IDENTIFIED)
    @abstractmethod
    async def paint(self, ctx: OperationContext, colour: Annotated[Colour, "red or blue"]) -> OperationResult: ...

    @operation("What the caller owes for paint.", results=("amount",), requires=Requirement.CONFIRMED)
    @abstractmethod
    async def bill(self, ctx: OperationContext) -> OperationResult: ...


class PaintShop(Paint):
    def __init__(self) -> None:
        self.asked: list[tuple[int | None, Colour]] = []
        self.billed = 0

    async def paint(self, ctx: OperationContext, colour: Colour) -> OperationResult:
        self.asked.append((ctx.customer_id, colour))
        return OperationResult.found(litres=4)

    async def bill(self, ctx: OperationContext) -> OperationResult:
        self.billed += 1
        return OperationResult.found(amount=10)


def registry_of(implementation: Operations) -> OperationRegistry:
    registry = OperationRegistry()
    registry.register_all(implementation)
    return registry


async def test_a_caller_the_operation_requires_to_be_known_is_refused_before_the_handler_runs() -> None:
    shop = PaintShop()
    registry = registry_of(shop)
    refused = await registry.call("paint", {"colour": "red"}, NOBODY)
    assert (refused.status, refused.message) == (OperationStatus.NOT_FOUND, "caller not identified")
    for ctx in (NOBODY, KNOWN):
        refused = await registry.call("bill", {}, ctx)
        assert (refused.status, refused.message) == (OperationStatus.NOT_FOUND, "account not confirmed")
    assert shop.asked == [] and shop.billed == 0

    assert (await registry.call("paint", {"colour": "red"}, KNOWN)).data == {"litres": 4}
    assert (await registry.call("bill", {}, CONFIRMED)).data == {"amount": 10}
    assert shop.asked == [(7, Colour.RED)] and shop.billed == 1


async def test_a_class_decides_what_confirmed_means_for_its_own_operations() -> None:
    class Sceptical(PaintShop):
        def confirmed(self, ctx: OperationContext) -> bool:
            return False  # e.g. a back-end that never saw the second factor the engine claims

    refused = await registry_of(Sceptical()).call("bill", {}, CONFIRMED)
    assert (refused.status, refused.message) == (OperationStatus.NOT_FOUND, "account not confirmed")


async def test_an_enum_argument_arrives_as_its_member_and_an_unknown_value_is_an_error() -> None:
    shop = PaintShop()
    registry = registry_of(shop)
    wrong = await registry.call("paint", {"colour": "green"}, NOBODY)  # wrong before unknown caller
    assert wrong.status is OperationStatus.ERROR
    assert wrong.message == "paint: unknown colour 'green' (expected red, blue)"
    await registry.call("paint", {"colour": "blue"}, KNOWN)
    assert shop.asked == [(7, Colour.BLUE)] and isinstance(shop.asked[0][1], Colour)


def test_the_declaration_states_the_arguments_from_the_methods_parameters() -> None:
    [spec] = [s for s in OperationRegistry.declared(Paint) if s.name == "paint"]
    [colour] = spec.args
    assert (colour.name, colour.type, colour.required, colour.description) == ("colour", Colour, True, "red or blue")
    assert spec.requires is Requirement.IDENTIFIED and spec.results == ("litres",)


def test_a_back_end_that_lacks_a_declared_operation_cannot_be_built() -> None:
    async def answer(self: Backend, ctx: OperationContext, **args: object) -> OperationResult:
        return OperationResult.found()

    answered = {name: answer for name in Backend.__abstractmethods__ if name != "latest_ticket"}
    without_latest_ticket = type("WithoutLatestTicket", (Backend,), answered)
    with pytest.raises(TypeError, match="latest_ticket"):
        without_latest_ticket()


def test_a_method_that_does_not_take_the_declared_arguments_is_refused_at_registration() -> None:
    class Renamed(PaintShop):
        async def paint(self, ctx: OperationContext, shade: Colour) -> OperationResult:
            return OperationResult.found(litres=1)

    with pytest.raises(TypeError, match=r"Renamed.paint\(shade\) does not take the arguments declared \(colour\)"):
        registry_of(Renamed())


def test_an_operation_is_declared_in_one_place_only() -> None:
    class Redeclared(PaintShop):
        @operation("The caller's paint.", results=("litres",))
        async def paint(self, ctx: OperationContext, colour: Colour) -> OperationResult:
            return OperationResult.found(litres=1)

    with pytest.raises(TypeError, match="'paint' is declared by Paint and again by Redeclared"):
        registry_of(Redeclared())


async def test_a_flow_test_failing_an_operation_still_meets_its_requirements() -> None:
    async def down(ctx: OperationContext, **args: object) -> OperationResult:
        return OperationResult(OperationStatus.ERROR, {}, "down")

    failing = registry_of(PaintShop()).with_handlers({"bill": down})
    assert (await failing.call("bill", {}, KNOWN)).status is OperationStatus.NOT_FOUND
    assert (await failing.call("bill", {}, CONFIRMED)).status is OperationStatus.ERROR
    assert (await failing.call("paint", {"colour": "red"}, KNOWN)).status is OperationStatus.FOUND
