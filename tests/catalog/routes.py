"""The catalog's HTTP routes: writes as commands through its bus, a read through a unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import Field

from entrypoints.http.dependencies import bus_of, read_unit_of_work_of
from entrypoints.http.types import RequestModel, ResponseModel, SafeStr
from service_layer.messagebus import MessageBus
from tests.catalog.domain import AddProduct, ProductNotFound, ReserveStock
from tests.catalog.unit_of_work import CatalogUnitOfWork

NAME = "catalog"

BusDep = Annotated[MessageBus[CatalogUnitOfWork], Depends(bus_of(NAME, CatalogUnitOfWork))]
ReadDep = Annotated[CatalogUnitOfWork, Depends(read_unit_of_work_of(NAME, CatalogUnitOfWork))]

router = APIRouter(prefix="/catalog", tags=["catalog"])


class NewProduct(RequestModel):
    sku: Annotated[SafeStr, Field(min_length=1, max_length=32)]
    name: Annotated[SafeStr, Field(min_length=1, max_length=200)]
    on_hand: Annotated[int, Field(ge=0)]


class NewReservation(RequestModel):
    quantity: Annotated[int, Field(ge=1)]
    order_ref: Annotated[SafeStr, Field(min_length=1, max_length=100)]


class ProductBody(ResponseModel):
    sku: str
    name: str
    on_hand: int
    reserved: int


class ReservationBody(ResponseModel):
    available: int


@router.post("/products", status_code=status.HTTP_201_CREATED)
async def add_product(body: NewProduct, bus: BusDep) -> dict[str, str]:
    sku: str = await bus.handle(AddProduct(sku=body.sku, name=body.name, on_hand=body.on_hand))
    return {"sku": sku}


@router.post("/products/{sku}/reservations", status_code=status.HTTP_201_CREATED)
async def reserve(sku: str, body: NewReservation, bus: BusDep) -> ReservationBody:
    command = ReserveStock(sku=sku, quantity=body.quantity, order_ref=body.order_ref)
    return ReservationBody(available=await bus.handle(command))


@router.get("/products/{sku}")
async def product(sku: str, uow: ReadDep) -> ProductBody:
    async with uow:
        found = await uow.products.get(sku)
        if found is None:
            raise ProductNotFound(f"no product with SKU {sku!r}")
        return ProductBody(
            sku=found.sku, name=found.name, on_hand=found.on_hand, reserved=found.reserved
        )
