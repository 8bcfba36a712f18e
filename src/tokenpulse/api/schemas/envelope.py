"""The base response of the non-LTP endpoints:
``{"status":"success","timestamp","data","meta"}``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Meta(BaseModel):
    """How the answer was made."""

    source: str | None = Field(None, description="The source(s) the data came from")
    processing_time_ms: float | None = None
    cache: str | None = Field(None, description="hit or miss")
    count: int | None = Field(None, description="Items in data, where it is a list")


class Success(BaseModel):
    """What every successful non-LTP answer starts with; ``data`` is in each subclass."""

    status: Literal["success"] = "success"
    timestamp: str
    meta: Meta = Field(default_factory=Meta)
