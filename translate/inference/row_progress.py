"""Progress within one big image: a tiled image can take minutes, so its finished rows are logged
(every tenth of the image, once it has run a few seconds) instead of a silent wait."""
from __future__ import annotations

import logging
import time

log = logging.getLogger("translate.inference")
QUIET_S = 3.0  # images done sooner say nothing


class RowProgress:
    """Logs 'image: N% (rows done of total)' as output rows of a `total_rows`-row image finish."""

    def __init__(self, total_rows: int, *, quiet_s: float | None = None) -> None:
        self.total_rows = max(1, total_rows)
        self.quiet_s = QUIET_S if quiet_s is None else quiet_s
        self.start = time.monotonic()
        self.logged_tenths = 0

    def advance(self, rows_done: int) -> None:
        tenths = 10 * rows_done // self.total_rows
        if tenths > self.logged_tenths and time.monotonic() - self.start >= self.quiet_s:
            self.logged_tenths = tenths
            log.info("image: %d%% (%d of %d rows, %.0f s)", 10 * tenths, rows_done, self.total_rows,
                     time.monotonic() - self.start)
