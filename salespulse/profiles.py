"""Source profiles: how one export format maps onto a canonical event, declared in YAML, never in code.

A profile names the event it carries (sales or inventory), how to read the file, which source column plays
each canonical role, constants and value maps for roles the source expresses differently, derived columns
(Spark SQL expressions over the cleaned canonical columns), date formats and money rules. See
docs/profiles.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from salespulse.schema import EVENT_SCHEMAS, MONEY_COLUMNS, EventSchema
from salespulse.settings import PROJECT_ROOT, PrivacySettings

PROFILES_DIR = PROJECT_ROOT / "conf" / "profiles"
ROW_HASH = "row_hash"


class ProfileError(ValueError):
    """A profile that cannot be used, with a message naming the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReadOptions(_Strict):
    engine: Literal["spark", "local"] = Field(
        default="local",
        description="spark: distributed CSV read, header on line 1 with the exact column names; "
        "local: read on the driver, tolerant of BOM, preamble lines, padded headers, delimiters and .xlsx",
    )
    delimiter: Literal["auto", ",", "\t", ";", "|"] = "auto"
    header: Literal["auto"] | int = Field(
        default="auto", description="auto: the first line that holds every mapped source column; or a 1-based line"
    )
    sheet: str | int = 0
    encoding: str = "utf-8-sig"


class SourceProfile(_Strict):
    name: str
    event: Literal["sales", "inventory"]
    description: str = ""
    read: ReadOptions = Field(default_factory=ReadOptions)
    columns: dict[str, str] = Field(description="canonical column -> source column header")
    event_time_parts: list[str] = Field(
        default_factory=list,
        description="source columns joined with a space to form event_time (e.g. [Date, Time])",
    )
    order_id: str = Field(
        default=ROW_HASH,
        description="canonical order_id comes from `columns`; row_hash derives it from the cleaned values, so "
        "exact duplicate rows collapse",
    )
    date_formats: list[str] = Field(
        default_factory=lambda: ["yyyy-MM-dd'T'HH:mm:ss.SSSX", "yyyy-MM-dd'T'HH:mm:ssX", "yyyy-MM-dd HH:mm:ss",
                                 "yyyy-MM-dd"],
        min_length=1,
    )
    blank_is_zero: list[str] = Field(default_factory=lambda: ["discounts"])
    constants: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    derive: dict[str, str] = Field(default_factory=dict, description="canonical column -> Spark SQL expression")
    category_policy: Literal["reject", "flag"] | None = None
    hash_customer_id: bool = Field(
        default=False,
        description="the source's customer ids are real identifiers: Spark replaces them with sha2(salt + id) "
        "while cleaning (salt: privacy.customer_id_salt), in silver, gold and quarantine alike",
    )

    @property
    def schema(self) -> EventSchema:
        return EVENT_SCHEMAS[self.event]

    @field_validator("blank_is_zero")
    @classmethod
    def _money_only(cls, value: list[str]) -> list[str]:
        wrong = [c for c in value if c not in MONEY_COLUMNS]
        if wrong:
            raise ValueError(f"only money columns can be blank-is-zero ({', '.join(MONEY_COLUMNS)}); got {wrong}")
        return value

    @model_validator(mode="after")
    def _roles_are_canonical(self) -> SourceProfile:
        names = set(EVENT_SCHEMAS[self.event].names)
        for key in ("columns", "constants", "value_maps", "derive"):
            unknown = sorted(set(getattr(self, key)) - names)
            if unknown:
                raise ValueError(
                    f"{key}: {', '.join(unknown)} not a {self.event} column (columns: {', '.join(sorted(names))})"
                )
        if self.event_time_parts and "event_time" in self.columns:
            raise ValueError("give event_time either in columns or as event_time_parts, not both")
        if self.hash_customer_id and "customer_id" not in self.columns:
            raise ValueError("hash_customer_id needs columns.customer_id (a sales source with customer ids)")
        if self.event == "sales" and self.order_id != ROW_HASH and "order_id" not in self.columns:
            raise ValueError("order_id must be row_hash or come from columns.order_id")
        provided = set(self.columns) | set(self.constants) | set(self.derive)
        if self.event_time_parts:
            provided.add("event_time")
        if self.event == "sales":
            provided.add("order_id")
        missing = sorted(c.name for c in EVENT_SCHEMAS[self.event].columns
                         if c.required and c.name not in provided and c.name not in MONEY_COLUMNS
                         and c.name != "manufacturing_price")
        if missing:
            raise ValueError(f"no source, constant or derivation for required column(s): {', '.join(missing)}")
        return self

    @property
    def source_columns(self) -> list[str]:
        """Every source header the file must hold, once each (one may feed several canonical columns)."""
        return list(dict.fromkeys([*self.columns.values(), *self.event_time_parts]))


def load_profile(name_or_file: str) -> SourceProfile:
    """A shipped profile by name (conf/profiles/NAME.yaml) or any YAML file path."""
    path = Path(name_or_file)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_file}.yaml"
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ProfileError(f"profile {name_or_file!r} not found (shipped profiles: {shipped}; or give a YAML path)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ProfileError(f"profile {path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile {path}: must be a mapping of keys")
    data.setdefault("name", path.stem)
    try:
        return SourceProfile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        # checks across keys name their key in the message itself ("columns: units not a sales column")
        raise ProfileError(f"profile {path}: {key}: {message}" if key else f"profile {path}: {message}") from None


def customer_id_salt(profile: SourceProfile, privacy: PrivacySettings) -> str | None:
    """The salt to hash the profile's customer ids with; None when it does not ask for hashing. A profile that
    asks for it without a configured salt is an error, never silently unhashed."""
    if not profile.hash_customer_id:
        return None
    if privacy.customer_id_salt is None or not privacy.customer_id_salt.get_secret_value():
        raise ProfileError(
            f"profile {profile.name!r} hashes customer ids (hash_customer_id: true) but no salt is configured: set "
            "SALESPULSE_PRIVACY__CUSTOMER_ID_SALT to a long random secret (and keep it: a new salt gives new ids)"
        )
    return privacy.customer_id_salt.get_secret_value()
