"""A FastAPI app built for the tests, whose session comes from the dependency under test.

Its ``children`` reference ``parents`` through a foreign key checked only at
COMMIT (``DEFERRABLE INITIALLY DEFERRED``): inserting an orphan succeeds
inside the endpoint and fails at commit, which is exactly what tells a commit
run before the response from one run after it.

No ``from __future__ import annotations`` here: the endpoints' annotations
refer to the dependency passed to :func:`build_app` and must be evaluated
when the endpoints are defined.
"""

import typing
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

http_metadata = MetaData()
parents = Table("kernel_http_parents", http_metadata, Column("id", Integer, primary_key=True))
children = Table(
    "kernel_http_children",
    http_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "parent_id",
        ForeignKey("kernel_http_parents.id", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
)


def build_app(session_dependency: Any) -> FastAPI:
    """An app whose endpoints take their session from ``session_dependency``.

    ``session_dependency`` is an ``Annotated[AsyncSession, Depends(...)]``
    alias such as ``AsyncSessionDep``; its own ``Depends`` marker is reused
    so the test exercises the declaration as shipped (including its scope).
    """
    _, marker = typing.get_args(session_dependency)
    Session = Annotated[AsyncSession, marker]  # noqa: N806 - a type alias

    app = FastAPI()

    @app.post("/parents/{parent_id}", status_code=201)
    async def add_parent(parent_id: int, db: Session) -> dict[str, int]:
        await db.execute(insert(parents).values(id=parent_id))
        return {"id": parent_id}

    @app.post("/parents/{parent_id}/children", status_code=201)
    async def add_child(parent_id: int, db: Session) -> dict[str, int]:
        await db.execute(insert(children).values(parent_id=parent_id))
        return {"parent_id": parent_id}

    @app.get("/parents/count")
    async def count_parents(db: Session) -> dict[str, int]:
        return {"count": (await db.execute(select(func.count()).select_from(parents))).scalar_one()}

    async def first(db: Session) -> AsyncSession:
        return db

    async def second(db: Session) -> AsyncSession:
        return db

    @app.get("/sessions")
    async def sessions(
        db: Session,
        a: Annotated[AsyncSession, Depends(first)],
        b: Annotated[AsyncSession, Depends(second)],
    ) -> dict[str, int]:
        return {"distinct": len({id(db), id(a), id(b)})}

    return app
