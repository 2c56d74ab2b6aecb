"""Progress bars: ``tqdm`` when it is installed (the ``progress`` extra), silence otherwise."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    """Stands in for a tqdm bar when tqdm is missing or the bar is switched off."""

    def __init__(self, total: int | None = None, **_: Any) -> None:
        self.total, self.n = total, 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, description: str, enabled: bool = True, unit: str = "it") -> Any:
    """A bar on stderr with ``update``, ``set_postfix_str`` and ``close`` (a context manager)."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(
                total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True
            )
    return _Silent(total)
