"""Which rule release applies: OpenPeppol publishes a spring and an autumn release, each with the date from which
its use is mandatory; the newest installed release whose date has passed is in force, unless one is pinned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date


class ReleaseError(LookupError):
    """No usable release: none installed, none in force yet, or the pinned one is not installed."""


def release_key(release: str) -> tuple[int, ...]:
    """Sort key of a release name ("2025.5" < "2025.11"): numerically, part by part."""
    return tuple(int(part) if part.isdigit() else -1 for part in release.split("."))


def newest_in_force(dates: Mapping[str, date], today: date, among: Iterable[str] | None = None) -> str | None:
    """The newest release (of `among`, default all dated ones) whose mandatory date is `today` or earlier."""
    candidates = dates.keys() if among is None else [r for r in among if r in dates]
    passed = [r for r in candidates if dates[r] <= today]
    return max(passed, key=release_key) if passed else None


def select_release(installed: Iterable[str], dates: Mapping[str, date], today: date, pinned: str = "") -> str:
    """The release to validate with: `pinned` when set (it must be installed), else the newest installed release
    in force on `today`. Installed releases without a configured date are never chosen by date."""
    installed = set(installed)
    if pinned:
        if pinned not in installed:
            listed = ", ".join(_sorted(installed)) or "none"
            raise ReleaseError(f"release {pinned} is not installed (installed: {listed})")
        return pinned
    if not installed:
        raise ReleaseError("no rule release is installed")
    chosen = newest_in_force(dates, today, installed)
    if chosen is None:
        raise ReleaseError(f"no installed release is in force on {today.isoformat()} (installed: "
                           f"{', '.join(_sorted(installed))}; their mandatory dates are in [validation.release_dates])")
    return chosen


def _sorted(releases: Iterable[str]) -> list[str]:
    return sorted(releases, key=release_key)
