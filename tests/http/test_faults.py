"""What a caller meets when the carrier's systems misbehave: bounded waits, clear errors, retries only
where they are safe, a breaker that opens and recovers by itself, and a cache that spares the back-end."""

from __future__ import annotations

import asyncio

from integrations.carrier.backend import HttpOperations
from integrations.carrier.breaker import BreakerState
from ivr.engine.operations import OperationRegistry, OperationStatus

from .carrier_fake import KNOWN_CALLER, CarrierFake, Fault
from .conftest import Caller, Clock, adapter

SEARCH = "GET /customers"
MARGIN_S = 0.5  # scheduling slack on a loaded CI machine


async def test_a_failed_read_is_retried_and_then_answers(registry: OperationRegistry, carrier: CarrierFake) -> None:
    carrier.misbehave(SEARCH, Fault.ERROR_500, times=2)
    result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.FOUND
    assert carrier.hits[SEARCH] == 3


async def test_a_reset_connection_is_retried_then_reported(registry: OperationRegistry, carrier: CarrierFake) -> None:
    carrier.misbehave(SEARCH, Fault.RESET)
    result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR
    assert "carrier API GET /customers" in result.message
    # One try and two retries; aiohttp itself resends an idempotent request once when its connection
    # drops before an answer (RFC 9112 section 9.3.1), so each try may reach the server twice.
    assert carrier.hits[SEARCH] in (3, 6)


async def test_a_reset_during_open_ticket_is_not_retried(registry: OperationRegistry, carrier: CarrierFake) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    carrier.misbehave("POST /tickets", Fault.RESET)
    result = await caller.op("open_ticket", kind="technical_failure", circuit="1")
    assert result.status is OperationStatus.ERROR and "carrier API POST /tickets" in result.message
    assert carrier.hits["POST /tickets"] == 1


async def test_server_errors_after_every_retry_are_an_error(registry: OperationRegistry, carrier: CarrierFake) -> None:
    carrier.misbehave(SEARCH, Fault.ERROR_500)
    result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR
    assert result.message.endswith("carrier API GET /customers: HTTP 500 (internal error)")
    assert carrier.hits[SEARCH] == 3


async def test_malformed_json_is_an_error_and_not_retried(registry: OperationRegistry, carrier: CarrierFake) -> None:
    carrier.misbehave(SEARCH, Fault.MALFORMED)
    result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR
    assert "carrier API GET /customers: the answer is not JSON" in result.message
    assert carrier.hits[SEARCH] == 1


async def test_a_body_of_the_wrong_schema_is_named_without_caller_data(
    registry: OperationRegistry, carrier: CarrierFake
) -> None:
    carrier.misbehave(SEARCH, Fault.WRONG_SCHEMA)
    result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR
    assert "does not match schema CustomerList at $.customers[0]" in result.message
    assert KNOWN_CALLER not in result.message
    assert carrier.hits[SEARCH] == 1


async def test_a_404_where_a_record_must_exist_is_an_error(registry: OperationRegistry, carrier: CarrierFake) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    carrier.misbehave("GET /customers/1/invoices", Fault.NOT_FOUND)
    result = await caller.op("circuits")  # unaffected
    assert result.status is OperationStatus.FOUND
    await caller.op("customer_by_code", code="100200")
    result = await caller.op("invoice_summary")
    assert result.status is OperationStatus.ERROR
    assert "GET /customers/1/invoices: HTTP 404 (no such thing)" in result.message
    assert carrier.hits["GET /customers/1/invoices"] == 1


async def test_open_ticket_is_never_retried_and_carries_an_idempotency_key(
    registry: OperationRegistry, carrier: CarrierFake
) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    carrier.misbehave("POST /tickets", Fault.ERROR_500, times=1)
    failed = await caller.op("open_ticket", kind="technical_failure", circuit="1")
    assert failed.status is OperationStatus.ERROR and "POST /tickets: HTTP 500" in failed.message
    assert carrier.hits["POST /tickets"] == 1
    # The flow tries again: the same key, so the back-end can tell a repeat from a new ticket.
    opened = await caller.op("open_ticket", kind="technical_failure", circuit="1")
    again = await caller.op("open_ticket", kind="technical_failure", circuit="1")
    assert opened.status is OperationStatus.FOUND and again.data["number"] == opened.data["number"]
    keys = [headers["Idempotency-Key"] for _, headers, _ in carrier.posts]
    assert len(keys) == 2 and keys[0] == keys[1]  # the failed POST never reached the handler
    other = await caller.op("open_ticket", kind="service_request", circuit="1")
    assert other.data["number"] != opened.data["number"]


async def test_a_slow_back_end_never_holds_the_caller_past_the_deadline(
    carrier: CarrierFake, clock: Clock
) -> None:
    deadline = 0.6
    async with adapter(carrier, clock, read_deadline_s=deadline, attempt_timeout_s=0.25) as operations:
        carrier.misbehave(SEARCH, Fault.SLOW)
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await Caller(operations.registry(), KNOWN_CALLER).op("customer_by_caller_id")
        elapsed = loop.time() - started
    assert result.status is OperationStatus.TIMEOUT
    assert deadline - 0.05 <= elapsed < deadline + MARGIN_S
    assert carrier.hits[SEARCH] >= 2  # the slow attempt was given up and another one tried


async def test_opening_something_is_bounded_by_the_write_deadline(carrier: CarrierFake, clock: Clock) -> None:
    deadline = 0.5
    async with adapter(carrier, clock, read_deadline_s=5.0, write_deadline_s=deadline, attempt_timeout_s=5.0) as ops:
        caller = Caller(ops.registry(), KNOWN_CALLER)
        await caller.op("customer_by_caller_id")
        carrier.misbehave("POST /tickets", Fault.SLOW)
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await caller.op("open_ticket", kind="technical_failure", circuit="1")
        elapsed = loop.time() - started
    assert result.status is OperationStatus.TIMEOUT
    assert deadline - 0.05 <= elapsed < deadline + MARGIN_S


async def test_the_breaker_opens_then_recovers_by_itself(carrier: CarrierFake, clock: Clock) -> None:
    async with adapter(carrier, clock, breaker_reset_s=30.0) as operations:
        registry = operations.registry()
        carrier.misbehave(SEARCH, Fault.ERROR_500)
        await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")  # 3 failed requests
        assert operations.client.breaker.state is BreakerState.OPEN
        carrier.heal()
        refused = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
        assert refused.status is OperationStatus.ERROR and "not called" in refused.message
        assert carrier.hits[SEARCH] == 3  # failed fast, without a request
        clock.now += 30.0  # the cool-down passes: one probe goes through, and succeeds
        back = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
        assert back.status is OperationStatus.FOUND
        assert operations.client.breaker.state is BreakerState.CLOSED
        assert carrier.hits[SEARCH] == 4


async def test_a_failed_probe_opens_the_breaker_again(carrier: CarrierFake, clock: Clock) -> None:
    async with adapter(carrier, clock) as operations:
        registry = operations.registry()
        carrier.misbehave(SEARCH, Fault.ERROR_500)
        await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
        clock.now += 30.0
        probe = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
        assert probe.status is OperationStatus.ERROR and carrier.hits[SEARCH] == 4  # one probe, no retries
        assert operations.client.breaker.state is BreakerState.OPEN


async def test_customer_and_circuit_reads_are_cached_for_a_while(
    http_ops: HttpOperations, registry: OperationRegistry, carrier: CarrierFake, clock: Clock
) -> None:
    for _ in range(2):
        caller = Caller(registry, KNOWN_CALLER)
        await caller.op("customer_by_caller_id")
        await caller.op("circuits")
    assert carrier.hits[SEARCH] == 1 and carrier.hits["GET /customers/1/circuits"] == 1
    assert carrier.hits["GET /customers/1"] == 0  # the search's record served the summary
    assert http_ops.client.cache.hits >= 3
    clock.now += 61.0
    await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
    assert carrier.hits[SEARCH] == 2


async def test_invoices_are_never_cached(registry: OperationRegistry, carrier: CarrierFake) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    await caller.op("customer_by_code", code="100200")
    for _ in range(2):
        assert (await caller.op("invoice_summary")).status is OperationStatus.FOUND
    assert carrier.hits["GET /customers/1/invoices"] == 2


async def test_a_wrong_token_is_refused_clearly(carrier: CarrierFake, clock: Clock) -> None:
    async with adapter(carrier, clock, token="wrong") as operations:
        result = await Caller(operations.registry(), KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR
    assert "HTTP 401 (no or wrong token)" in result.message
    assert carrier.hits[SEARCH] == 1


async def test_an_unreachable_back_end_is_an_error(clock: Clock, unused_port: int) -> None:
    fake = CarrierFake(base_url=f"http://127.0.0.1:{unused_port}/v1")
    async with adapter(fake, clock) as operations:
        result = await Caller(operations.registry(), KNOWN_CALLER).op("customer_by_caller_id")
    assert result.status is OperationStatus.ERROR and "ClientConnectorError" in result.message
