"""Package-wide settings, currently the memory budget used by the memory guards.

Every function that would allocate an array whose size grows with
``n_samples * n_patterns`` (pattern matrices, masked products, explicit sparse
designs) asks :func:`check_memory` first, so that an impossible request fails
fast with an error naming the parameter to lower instead of swapping or being
killed by the operating system.
"""

import os
from contextlib import contextmanager

__all__ = ["get_config", "set_config", "config_context", "MemoryBudgetError", "choose_block_size"]

_GLOBAL_CONFIG = {"max_memory": None, "memory_fraction": 0.5}


class MemoryBudgetError(ValueError, MemoryError):
    """Raised before allocating when a request exceeds the memory budget.

    It derives from both :class:`ValueError` (the request is a bad parameter
    choice) and :class:`MemoryError` (so generic memory handlers still catch it).
    """


def get_config():
    """Return a copy of the current skconvex configuration.

    Returns
    -------
    config : dict
        Keys ``"max_memory"`` (bytes, or None for automatic) and
        ``"memory_fraction"`` (share of the available memory used when
        ``max_memory`` is None).
    """
    return dict(_GLOBAL_CONFIG)


def set_config(max_memory=None, memory_fraction=None):
    """Set the skconvex configuration.

    Parameters
    ----------
    max_memory : int, default=None
        Largest number of bytes a single skconvex allocation plan may use. None
        keeps the current value; pass ``"auto"`` to go back to the automatic
        budget (``memory_fraction`` times the memory currently available).
    memory_fraction : float, default=None
        Share of the available memory used by the automatic budget, in (0, 1].
        None keeps the current value.
    """
    if max_memory is not None:
        if max_memory == "auto":
            _GLOBAL_CONFIG["max_memory"] = None
        else:
            if not isinstance(max_memory, (int, float)) or max_memory <= 0:
                raise ValueError(
                    f"max_memory must be a positive number of bytes or 'auto', "
                    f"got {max_memory!r}."
                )
            _GLOBAL_CONFIG["max_memory"] = int(max_memory)
    if memory_fraction is not None:
        if not 0 < memory_fraction <= 1:
            raise ValueError(
                f"memory_fraction must be in (0, 1], got {memory_fraction!r}."
            )
        _GLOBAL_CONFIG["memory_fraction"] = float(memory_fraction)


@contextmanager
def config_context(*, max_memory=None, memory_fraction=None):
    """Temporarily change the skconvex configuration.

    Parameters
    ----------
    max_memory : int or "auto", default=None
        See :func:`set_config`.
    memory_fraction : float, default=None
        See :func:`set_config`.

    Yields
    ------
    None

    Examples
    --------
    >>> from skconvex import config_context
    >>> with config_context(max_memory=2**30):
    ...     pass
    """
    old = get_config()
    set_config(max_memory=max_memory, memory_fraction=memory_fraction)
    try:
        yield
    finally:
        _GLOBAL_CONFIG.update(old)


def available_memory():
    """Bytes of memory currently available to this process (best effort)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def memory_budget():
    """The number of bytes one allocation plan may use under the current config."""
    cfg = _GLOBAL_CONFIG
    if cfg["max_memory"] is not None:
        return cfg["max_memory"]
    return int(cfg["memory_fraction"] * available_memory())


def _format_bytes(n_bytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n_bytes) < 1024 or unit == "TiB":
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def check_memory(n_bytes, *, what, lower):
    """Refuse an allocation plan larger than the memory budget.

    Parameters
    ----------
    n_bytes : int
        Estimated size of the plan.
    what : str
        What would be allocated, for the message.
    lower : str
        The parameter(s) the user should lower, for the message.

    Raises
    ------
    MemoryBudgetError
        If ``n_bytes`` exceeds :func:`memory_budget`.
    """
    budget = memory_budget()
    if n_bytes > budget:
        raise MemoryBudgetError(
            f"{what} would need about {_format_bytes(n_bytes)}, more than the "
            f"memory budget of {_format_bytes(budget)}. Lower {lower}, or raise "
            "the budget with skconvex.set_config(max_memory=...)."
        )


def choose_block_size(block_size, n_samples, *, whole_bytes, bytes_per_row, what):
    """Rows per block of a row-blocked operator, or None for whole arrays.

    Parameters
    ----------
    block_size : "auto", int or None
        The user's choice. None keeps whole arrays; an int is used as given
        (capped at ``n_samples``); ``"auto"`` keeps whole arrays when
        ``whole_bytes`` fits in the memory budget and otherwise picks the
        largest block whose working memory is a quarter of the budget (the
        rest holds ``X``, the packed masks and the solver's vectors).
    n_samples : int
        Rows of the data.
    whole_bytes : int
        Memory the whole-array plan needs.
    bytes_per_row : int
        Working memory of one row of a block.
    what : str
        What is being planned, for the error message.

    Returns
    -------
    block_size : int or None
        Rows per block (a multiple of 8), or None for whole arrays.

    Raises
    ------
    MemoryBudgetError
        If ``"auto"`` cannot fit even a block of 8 rows in the budget.
    """
    if block_size is None:
        return None
    if block_size != "auto":
        return int(min(int(block_size), max(n_samples, 1)))
    budget = memory_budget()
    if whole_bytes <= budget:
        return None
    rows = (budget // 4) // max(int(bytes_per_row), 1) // 8 * 8
    if rows < 8:
        raise MemoryBudgetError(
            f"{what} needs about {_format_bytes(8 * bytes_per_row)} for the smallest row "
            f"block, more than a quarter of the memory budget of {_format_bytes(budget)}. "
            "Lower n_arrangements, or raise the budget with skconvex.set_config(max_memory=...)."
        )
    return int(min(rows, -(-n_samples // 8) * 8))
