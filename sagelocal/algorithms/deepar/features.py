"""What DeepAR derives from ``time_freq``: the lag set and the calendar features.

SageMaker's guide names the derived date features per frequency (minute-of-hour, hour-of-day,
day-of-week, day-of-month, day-of-year, week-of-year, month-of-year) and says lagged values reach back
whole seasons, without listing them. Both follow GluonTS, the library SageMaker's DeepAR grew from:
the lags are those of ``gluonts.time_feature.get_lags_for_frequency`` and the features those of
``time_features_from_frequency_str`` (values scaled to [-0.5, 0.5]) plus GluonTS DeepAR's age feature
``log10(2 + t)``. Tests hold both against GluonTS itself.

Time is handled as integer ordinals, so whole panels are featurised with a few numpy operations:
months since 1970-01 for monthly data, minutes since 1970-01-01 otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: Base units of ``time_freq`` (SageMaker's list) and their length in minutes (months: None).
UNITS = {"M": None, "W": 7 * 1440, "D": 1440, "H": 60, "min": 1}
_FREQ = re.compile(r"(\d*)(M|W|D|H|min)")

#: Calendar features per base unit, in GluonTS's order.
FEATURES = {
    "M": ("month_of_year",),
    "W": ("day_of_month", "week_of_year"),
    "D": ("day_of_week", "day_of_month", "day_of_year"),
    "H": ("hour_of_day", "day_of_week", "day_of_month", "day_of_year"),
    "min": ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year"),
}


@dataclass(frozen=True)
class Frequency:
    """A parsed ``time_freq``: ``multiple`` base ``unit``\\ s per step (``5min`` -> 5, ``min``)."""

    multiple: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Frequency:
        """Parse ``"M"``, ``"W"``, ``"D"``, ``"H"``, ``"min"`` with an optional integer multiple.

        Raises ``ValueError`` otherwise (the ``time_freq`` declaration refuses such values first).
        """
        match = _FREQ.fullmatch(str(text).strip())
        if match is None or (match.group(1) and int(match.group(1)) < 1):
            raise ValueError(text)
        return cls(int(match.group(1) or 1), match.group(2))

    @property
    def step(self) -> int:
        """Ordinal units per time step (months for ``M``, minutes otherwise)."""
        return self.multiple if self.unit == "M" else self.multiple * UNITS[self.unit]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (*FEATURES[self.unit], "age")

    def ordinal(self, starts: np.ndarray) -> np.ndarray:
        """Ordinals of the first step of each series from ``datetime64`` starts.

        A start inside a period is moved to its period as pandas' ``Period`` does: the month for
        ``M``, the week ending on Sunday (W-SUN, represented by that Sunday) for ``W``, the day, hour
        or minute otherwise.
        """
        if self.unit == "M":
            return starts.astype("datetime64[M]").astype(np.int64)
        if self.unit == "W":
            days = starts.astype("datetime64[D]").astype(np.int64)
            return (days + (6 - _day_of_week(days))) * 1440
        unit = {"D": "D", "H": "h", "min": "m"}[self.unit]
        return starts.astype(f"datetime64[{unit}]").astype("datetime64[m]").astype(np.int64)

    def lags(self) -> list[int]:
        """The lag set (1-based steps back), as GluonTS's ``get_lags_for_frequency``."""
        return lags_for_frequency(self.multiple, self.unit)

    def features(self, ordinals: np.ndarray, age_index: np.ndarray) -> np.ndarray:
        """Calendar features and the age feature, shape ``ordinals.shape + (n_features,)``, float32.

        ``ordinals`` are period ordinals (see :meth:`ordinal`) of each position and ``age_index`` the
        number of steps since the series start (negative before it; the age feature clips at 0).
        """
        columns = [_CALENDAR[name](ordinals) for name in FEATURES[self.unit]]
        columns.append(np.log10(2.0 + np.maximum(age_index, 0)))
        return np.stack(columns, axis=-1).astype(np.float32)


def lags_for_frequency(multiple: int, unit: str, lag_ub: int = 1200, num_default_lags: int = 7) -> list[int]:
    """Lags 1..7 plus the same season (+/- a few steps) in previous cycles, at most ``lag_ub``.

    Mirrors GluonTS's ``get_lags_for_frequency`` including its float arithmetic (e.g. daily data get
    ``k * 52 // (1 / 7)`` for the yearly lags), so both libraries build identical inputs.
    """

    def around(middle, delta):
        return list(np.arange(middle - delta, middle + delta + 1))

    def minute(m, cycles=3):
        return [around(k * 60 // m, 2) for k in range(1, cycles + 1)]

    def hour(m, cycles=7):
        return [around(k * 24 // m, 1) for k in range(1, cycles + 1)]

    def day(m, cycles=4, days_in_week=7, days_in_month=30):
        return [around(k * days_in_week // m, 1) for k in range(1, cycles + 1)] + [around(days_in_month // m, 1)]

    def week(m, cycles=3):
        return [around(k * 52 // m, 1) for k in range(1, cycles + 1)] + [[4 // m, 8 // m, 12 // m]]

    def month(m, cycles=3):
        return [around(k * 12 // m, 1) for k in range(1, cycles + 1)]

    groups = {
        "M": lambda m: month(m),
        "W": lambda m: week(m),
        "D": lambda m: day(m) + week(m / 7.0),
        "H": lambda m: hour(m) + day(m / 24) + week(m / (24 * 7)),
        "min": lambda m: minute(m) + hour(m / 60) + day(m / (60 * 24)) + week(m / (60 * 24 * 7)),
    }[unit](multiple)
    seasonal = {int(lag) for group in groups for lag in group if num_default_lags < lag <= lag_ub}
    return list(range(1, num_default_lags + 1)) + sorted(seasonal)


# ------------------------------------------------------------------------------- calendar features
def _normalise(values: np.ndarray, count: int) -> np.ndarray:
    return values / (count - 1) - 0.5


def _day_of_week(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _days(minutes: np.ndarray) -> np.ndarray:
    return np.floor_divide(minutes, 1440)


def _dates(minutes: np.ndarray) -> np.ndarray:
    return _days(minutes).astype("datetime64[D]")


def _day_of_month(minutes):
    dates = _dates(minutes)
    return _normalise((dates - dates.astype("datetime64[M]")).astype(np.int64), 31)


def _day_of_year(minutes):
    dates = _dates(minutes)
    return _normalise((dates - dates.astype("datetime64[Y]")).astype(np.int64), 366)


def _week_of_year(minutes):
    days = _days(minutes)
    thursday = (days - _day_of_week(days) + 3).astype("datetime64[D]")  # ISO weeks belong to their Thursday's year
    week = (thursday - thursday.astype("datetime64[Y]")).astype(np.int64) // 7
    return _normalise(week, 53)


_CALENDAR = {
    "month_of_year": lambda months: _normalise(np.mod(months, 12), 12),
    "minute_of_hour": lambda minutes: _normalise(np.mod(minutes, 60), 60),
    "hour_of_day": lambda minutes: _normalise(np.mod(np.floor_divide(minutes, 60), 24), 24),
    "day_of_week": lambda minutes: _normalise(_day_of_week(_days(minutes)), 7),
    "day_of_month": _day_of_month,
    "day_of_year": _day_of_year,
    "week_of_year": _week_of_year,
}
