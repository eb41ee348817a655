"""What the app's own lifespan does for the process (``create_app`` without a container)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from adapters.settings import Settings
from entrypoints.http.app import create_app

pytestmark = pytest.mark.integration


async def test_what_start_up_made_is_kept_out_of_the_collectors_walks_while_serving(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}",
        keel_contexts="tests.catalog",
        serve_relay=False,
        serve_consumer=False,
        metrics_enabled=False,
    )

    async with LifespanManager(create_app(settings)):
        frozen_while_serving = gc.get_freeze_count()

    assert frozen_while_serving > 0
    assert gc.get_freeze_count() == 0
