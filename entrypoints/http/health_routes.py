"""Liveness and readiness probes.

``/health`` answers as long as the process can serve a request at all; it
never touches the database, so an orchestrator does not restart a healthy
process because the database blipped. ``/ready`` says whether requests can
be served right now, i.e. whether the database answers ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text

from adapters.container import ContainerDep
from adapters.database import DatabaseSessionManager
from entrypoints.http.problems import database_unavailable, problem_responses

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
    summary="The database answers; traffic is welcome",
)
async def ready(container: ContainerDep) -> HealthResponse | Response:
    if await database_answers(container.session_manager):
        return HealthResponse()
    return database_unavailable()
