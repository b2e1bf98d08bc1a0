"""The LES catalogue: what each service pays, when, and how practices name it."""
from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SHIPPED = Path(__file__).resolve().parents[2] / "catalogue" / "les.toml"


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: date = Field(alias="from")
    pounds: Decimal

    @field_validator("pounds")
    @classmethod
    def _pence(cls, v: Decimal) -> Decimal:
        if v < 0 or v != v.quantize(Decimal("0.01")):
            raise ValueError("a tariff is a non-negative amount in pounds and pence")
        return v


class NotPayable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    words: list[str]
    unless: list[str] = []
    reason: str


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    name: str
    unit: str
    period: Literal["monthly", "quarterly"] = "monthly"
    submission_day: int = Field(10, ge=1, le=28)
    payment_limit_months: int = Field(3, ge=1, le=24)
    max_count: int = Field(1000, ge=1)
    snomed: list[str] = []
    words: list[str]
    tariff: list[Tariff] = Field(min_length=1)
    not_payable: list[NotPayable] = []

    def rate_on(self, day: date) -> Decimal | None:
        """The tariff in force on `day` (None before the first one)."""
        rates = [t for t in sorted(self.tariff, key=lambda t: t.from_) if t.from_ <= day]
        return rates[-1].pounds if rates else None

    def mentions(self, text: str) -> bool:
        t = text.lower()
        return any(w in t for w in self.words) or any(s in t for s in self.snomed)

    def not_payable_reason(self, text: str) -> str | None:
        t = text.lower()
        for rule in self.not_payable:
            if any(w in t for w in rule.words) and not any(u in t for u in rule.unless):
                return rule.reason
        return None


class Catalogue(BaseModel):
    service: list[Service]

    def __hash__(self):     # loaded once per file (load() is cached): identity will do
        return id(self)

    def get(self, code: str) -> Service | None:
        return next((s for s in self.service if s.code == code), None)

    def identify(self, text: str) -> Service | None:
        """The service a line names: the one with the longest matching word wins."""
        pattern, owner = self._matcher()
        best = max(pattern.findall(text.lower()), key=len, default=None)
        return owner[best] if best else None

    def _matcher(self):
        # One alternation for every word of every service: a single scan per line.
        cached = self.__dict__.get("_matcher_cache")
        if cached is None:
            owner = {}
            for s in self.service:
                for w in [*s.words, *s.snomed]:
                    owner.setdefault(w.lower(), s)
            words = sorted(owner, key=len, reverse=True)
            cached = (re.compile("|".join(re.escape(w) for w in words)) if words else re.compile(r"(?!x)x"),
                      owner)
            object.__setattr__(self, "_matcher_cache", cached)
        return cached


class CatalogueError(ValueError):
    pass


def _read(path: Path) -> list[dict]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("service", [])
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogueError(f"{path}: {e}") from None


@lru_cache(maxsize=8)
def load(extra: str = "") -> Catalogue:
    entries = {e.get("code"): e for e in _read(SHIPPED)}
    if extra:
        for e in _read(Path(extra)):
            entries[e.get("code")] = e
    try:
        return Catalogue(service=list(entries.values()))
    except ValidationError as e:
        raise CatalogueError("invalid catalogue:\n" + "\n".join(
            f"  service {'.'.join(str(x) for x in err['loc'][1:])}: {err['msg']}" for err in e.errors())) from None
