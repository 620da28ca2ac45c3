"""A job's error budget (``--max-bad-rows``): a count of rows, or a share of the input."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from skil_sdk.errors import InvalidValueError

_SHARE = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


@dataclass(frozen=True)
class ErrorBudget:
    """At most ``count`` bad rows, or at most ``percent`` % of the input's rows."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: str | int | None) -> ErrorBudget:
        """``"25"`` (rows) or ``"0.1%"`` (of the input); None or empty: no bad rows."""
        text = "0" if value is None else str(value).strip()
        if not text:
            text = "0"
        share = _SHARE.match(text)
        if share:
            percent = float(share.group(1))
            if percent > 100:
                raise InvalidValueError(
                    f"--max-bad-rows {text} is more than the whole input; give a share up "
                    "to 100%, or a count of rows."
                )
            return cls(percent=percent) if percent else cls(count=0)
        if text.isdigit():
            return cls(count=int(text))
        raise InvalidValueError(
            f"--max-bad-rows must be a count of rows (25) or a share of the input (0.1%), "
            f"not {text!r}."
        )

    @property
    def text(self) -> str:
        """The budget as it is written (``25``, ``0.1%``)."""
        if self.percent is not None:
            return f"{self.percent:g}%"
        return str(self.count or 0)

    @property
    def needs_input_rows(self) -> bool:
        """Whether the budget is a share, which needs the input's row count."""
        return self.percent is not None

    def limit(self, rows_in: int | None) -> int:
        """The most bad rows allowed for an input of ``rows_in`` rows (None: unknown)."""
        if self.percent is None:
            return self.count or 0
        if rows_in is None:
            raise InvalidValueError(
                f"--max-bad-rows {self.text} is a share of the input, but this provider does "
                "not say how many rows it has; give a count of rows instead."
            )
        return math.floor(rows_in * self.percent / 100)
