"""KPI formulas as small arithmetic expressions over named inputs: ``profit / sales``, ``active_customers -
new_customers``. One parsed form is evaluated on Python numbers, Decimals and pandas Series alike, and rendered as
SQL (for Spark) or as text for people.

Only names, number literals, parentheses and ``+ - * /`` are allowed, so a formula can be checked when it is
defined (its names must be known inputs) and cannot run anything else. Division is ``safe_ratio``: a zero
denominator gives a missing value, never an error or a misleading zero, and Decimal totals divide exactly.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from salespulse.kpis import safe_ratio


def _or_missing(apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``apply``, except that a missing operand (a ratio over zero) gives a missing result."""
    return lambda left, right: None if left is None or right is None else apply(left, right)


_OPERATORS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", _or_missing(operator.add)), ast.Sub: ("-", _or_missing(operator.sub)),
    ast.Mult: ("*", _or_missing(operator.mul)), ast.Div: ("/", safe_ratio),
}


class FormulaError(ValueError):
    """A formula that is not plain arithmetic over names and numbers."""


@functools.cache
def _parse(text: str) -> ast.expr:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise FormulaError(f"formula {text!r} does not parse: {err.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) not in _OPERATORS:
            raise FormulaError(f"formula {text!r}: only + - * / are allowed")
        if not isinstance(node, ast.BinOp | ast.Name | ast.Constant | ast.Load | ast.operator):
            raise FormulaError(f"formula {text!r}: only names, numbers and + - * / are allowed "
                               f"(found {type(node).__name__})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise FormulaError(f"formula {text!r}: {node.value!r} is not a number")
    return tree


@dataclass(frozen=True)
class Formula:
    text: str

    def __post_init__(self) -> None:
        _parse(self.text)  # a bad formula fails where it is defined

    @property
    def names(self) -> tuple[str, ...]:
        """The inputs the formula reads, in order of first use."""
        return tuple(dict.fromkeys(n.id for n in ast.walk(_parse(self.text)) if isinstance(n, ast.Name)))

    @property
    def alias_of(self) -> str | None:
        """The input a formula that is a bare name stands for (``sales`` for total sales), else None."""
        tree = _parse(self.text)
        return tree.id if isinstance(tree, ast.Name) else None

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The formula over ``values`` (numbers, or Series of a frame's columns). A missing input raises KeyError
        naming it."""
        def value(node: ast.expr) -> Any:
            if isinstance(node, ast.Name):
                return values[node.id]
            if isinstance(node, ast.Constant):
                return node.value
            assert isinstance(node, ast.BinOp)
            return _OPERATORS[type(node.op)][1](value(node.left), value(node.right))
        return value(_parse(self.text))

    def render(self, name: Callable[[str], str] = str, *, sql: bool = False) -> str:
        """The formula as text with each input written by ``name`` (e.g. ``sum(profit)``); ``sql``: division
        guarded by NULLIF, so a zero denominator gives NULL as ``evaluate`` gives a missing value."""
        def text(node: ast.expr, top: bool = False) -> str:
            if isinstance(node, ast.Name):
                return name(node.id)
            if isinstance(node, ast.Constant):
                return repr(node.value)
            assert isinstance(node, ast.BinOp)
            symbol = _OPERATORS[type(node.op)][0]
            right = f"NULLIF({text(node.right, True)}, 0)" if sql and symbol == "/" else text(node.right)
            joined = f"{text(node.left)} {symbol} {right}"
            return joined if top else f"({joined})"
        return text(_parse(self.text), True)
