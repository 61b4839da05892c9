"""How a number is shown to a person (summaries, sweep tables): one rule, a format per use.
(How a value is written for `--set`, exactly, is `harness.config.set_text`.)"""

from __future__ import annotations

import math
from typing import Any


def shown(value: Any, spec: str = ".2f", unit: str = "") -> str:
    """A number formatted by `spec` with `unit`; "–" for None or NaN; anything else as str."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:{spec}}{unit}"
    return str(value)
