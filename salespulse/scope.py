"""Scope: whose data a query may return.

Every query of the lake's figures takes a Scope as an argument: the countries the caller may see, or every country
for an administrator or an operator's command. There is no default and nothing is looked up from the request or the
thread, so a caller that does not say whose data it reads fails (``require``) instead of reading every country.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from salespulse.schema import COUNTRIES


@dataclass(frozen=True)
class Scope:
    countries: tuple[str, ...] | None  # None: every country; () sees nothing

    @classmethod
    def everything(cls) -> Scope:
        """An administrator's scope, or an operator's command on the machine (``salespulse kpis``, jobs)."""
        return cls(None)

    @classmethod
    def only(cls, countries: Iterable[str]) -> Scope:
        """The listed countries (canonical names); an unknown name is an error, not a silently empty view."""
        listed = tuple(dict.fromkeys(countries))
        unknown = [c for c in listed if c not in COUNTRIES]
        if unknown:
            raise ValueError(f"scope: unknown countries {unknown}; known: {', '.join(COUNTRIES)}")
        return cls(tuple(c for c in COUNTRIES if c in listed))

    @property
    def restricted(self) -> bool:
        """Whether some countries are hidden (then figures over every country are withheld too)."""
        return self.countries is not None

    def allows(self, country: str) -> bool:
        return self.countries is None or country in self.countries

    def visible(self, countries: Iterable[str]) -> tuple[str, ...]:
        """``countries`` this scope may see, in their order."""
        return tuple(c for c in countries if self.allows(c))


def require(scope: object) -> Scope:
    """``scope`` if it is a Scope; otherwise TypeError: a query must say whose data it may return."""
    if not isinstance(scope, Scope):
        raise TypeError(f"a query needs a Scope (whose data it may return), got {scope!r}")
    return scope
