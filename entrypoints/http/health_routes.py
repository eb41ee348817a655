"""Liveness and readiness probes.

``/health`` answers as long as the process can serve a request at all; it
never touches the database, so an orchestrator does not restart a healthy
process because the database blipped. ``/ready`` says whether requests can
be served right now: the database answers ``SELECT 1`` and the broker a ping.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text

from adapters.brokers import Broker, BrokerUnavailable
from adapters.container import ContainerDep
from adapters.database import DatabaseSessionManager
from entrypoints.bootstrap import Container
from entrypoints.http.problems import broker_unavailable, database_unavailable, problem_responses

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 3.0
"""A probe that hangs is worse than one that fails: orchestrators time out anyway."""

router = APIRouter(tags=["operations"])


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


async def database_answers(manager: DatabaseSessionManager) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), manager.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return False
    return True


@router.get("/health", summary="The process is alive")
async def health() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/ready",
    response_model=HealthResponse,
    responses=problem_responses(503),
    summary="The database and the broker answer; traffic is welcome",
)
async def ready(container: ContainerDep) -> HealthResponse | Response:
    if not await database_answers(container.session_manager):
        return database_unavailable()
    if isinstance(container, Container) and not await broker_answers(container.broker):
        return broker_unavailable()
    return HealthResponse()


async def broker_answers(broker: Broker) -> bool:
    try:
        await broker.ping(within=READY_TIMEOUT_SECONDS)
    except BrokerUnavailable as exc:
        logger.warning("readiness check failed: %s", exc)
        return False
    return True
