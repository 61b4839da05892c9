"""The one exception type the CLI turns into a single line and a non-zero exit."""


class BenchError(Exception):
    """A user-facing error: bad input, missing data, a diverged loss. Message is one line."""

    exit_code = 2


class NonFiniteLoss(BenchError):
    """A training loss became NaN or infinite; the run is recorded as failed."""

    exit_code = 3
