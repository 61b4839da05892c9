"""The engine: config, registry, data, the training loop, stage cache, results store,
evaluation, teachers and tracking.

Importing it changes nothing about the process; the entry points call
`harness.process.configure_process()` for the settings a run needs."""

import random as _random
from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, the one place it is written)."""
    try:
        return version("wsss-bench")
    except PackageNotFoundError:  # a source tree run without `pip install -e .`
        return "unknown (not installed)"


# rich.style seeds its style-id counter from Python's `random` when first imported (and every
# room shows progress or tables through rich): import it here, before any room can, and put
# the state back, so importing the library moves no random state (tests/test_process.py)
_state = _random.getstate()
import rich.style  # noqa: E402, F401

_random.setstate(_state)
del _state
