"""The leak verdict for tests: one instance's verdict and the reason in words, every
instance's verdict, and (from series_growth) the floor tables built from whole
series.

The analysis never needs these: it builds its tables batch by batch and asks
utils.judge.growth.survey for the flagged instances only. The tests ask why an instance was
or was not flagged, by the same rules (the same _assess), so these read growth's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from utils.core.text import format_duration, short_number
from utils.core.units import DAY_S
from utils.judge.growth import (
    MIN_FIT_FLOORS,
    MIN_FIT_R2,
    MIN_GROWTH_NOISE,
    MIN_JUDGED_SAMPLES,
    MIN_LEAK_BUCKETS,
    FloorTable,
    Growth,
    GrowthParams,
    InstanceSpans,
    Rule,
    _assess,
    _Assessment,
    _collection_s,
    _growth,
    _least_rise_mb,
    least_rise_mb,
    span_text,
    survey,
)
from utils.reduce.buckets import BUCKET_S

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Verdict:
    """One instance's verdict."""

    instance: int
    flagged: bool
    rule: Rule
    reason: str  # the deciding rule, with its numbers
    growth: Growth | None  # set when flagged
    fitted: Growth | None  # the hinge fit even when rejected by a later rule (None: no fit)


def find_growth(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> list[Growth]:
    """The instances with sustained growth, highest rate first (see survey)."""
    return survey(floors, spans, interval_s, params).growths


def judge(
    floors: FloorTable, spans: InstanceSpans, instance: int, interval_s: float, params: GrowthParams
) -> Verdict:
    """One instance's verdict and why, by the same rules as find_growth."""
    if not 0 <= instance < spans.first_s.size:
        raise ValueError(f"no instance {instance} among {spans.first_s.size}")
    lo, hi = np.searchsorted(floors.instance, [instance, instance + 1])
    rows = slice(int(lo), int(hi))
    one = slice(instance, instance + 1)
    found = _assess(
        FloorTable(
            instance=np.zeros(int(hi - lo), np.int64),
            bucket=floors.bucket[rows],
            floor_mb=floors.floor_mb[rows],
            samples=floors.samples[rows],
            level=floors.level,
        ),
        InstanceSpans(
            spans.first_s[one], spans.last_s[one], spans.samples[one], _collection_s(spans)
        ),
        interval_s,
        params,
    )
    return _verdict(found, 0, instance)


def verdicts(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> list[Verdict]:
    """Every instance's verdict, in instance order (for debugging: builds n strings)."""
    found = _assess(floors, spans, interval_s, params)
    return [_verdict(found, i, i) for i in range(spans.first_s.size)]


def _verdict(found: _Assessment, i: int, instance: int) -> Verdict:
    rule = Rule(int(found.rule[i]))
    fit = _growth(found, i, instance) if found.trend.fitted[i] else None
    flagged = rule is Rule.GROWS
    return Verdict(
        instance=instance,
        flagged=flagged,
        rule=rule,
        reason=_reason(found, i),
        growth=fit if flagged else None,
        fitted=fit,
    )


def _reason(found: _Assessment, i: int) -> str:
    """The rule that decided instance i, with its numbers."""
    rule = Rule(int(found.rule[i]))
    if rule is Rule.GROWS:
        clock = "%Y-%m-%d %H:%M" if found.scale.bucket_s[i] >= BUCKET_S else "%Y-%m-%d %H:%M:%S"
        since = datetime.fromtimestamp(int(found.trend.since_s[i]), UTC).strftime(clock)
        return (
            f"grows {found.trend.rate_mb_per_day[i]:.1f} MiB/day since {since} UTC,"
            f" {found.trend.growth_mb[i]:.0f} MiB in all (confidence {found.trend.r2[i]:.2f})"
        )
    if rule in (Rule.SHORT, Rule.FEW_FLOORS, Rule.NO_RISE):
        return _screen_reason(found, i, rule)
    return _fit_reason(found, i, rule)


def _screen_reason(found: _Assessment, i: int, rule: Rule) -> str:
    screen, scale = found.screen, found.scale
    bucket = format_duration(scale.bucket_s[i])
    if rule is Rule.SHORT:
        span_s = screen.span_days[i] * DAY_S
        if span_s >= scale.min_span_s:
            return f"observed in {screen.samples[i]} snapshots, under {MIN_JUDGED_SAMPLES}"
        return f"observed {span_text(span_s)}, under {span_text(scale.min_span_s)}"
    if rule is Rule.FEW_FLOORS and screen.floors[i] >= MIN_FIT_FLOORS:
        days = MIN_LEAK_BUCKETS * scale.bucket_s[i]
        return f"no {format_duration(days)} of floors left to grow in after the warm-up"
    if rule is Rule.FEW_FLOORS:
        return (
            f"{screen.floors[i]} usable {bucket} floors after the warm-up, under {MIN_FIT_FLOORS}"
        )
    need = short_number(float(_least_rise_mb(scale)[i]))
    return f"the last floors stand {screen.rise_mb[i]:.1f} MiB above the lowest, under {need}"


def _fit_reason(found: _Assessment, i: int, rule: Rule) -> str:
    trend = found.trend
    rate, growth = float(trend.rate_mb_per_day[i]), float(trend.growth_mb[i])
    if rule is Rule.SLOW:
        return f"rises {rate:.1f} MiB/day, under {short_number(found.scale.min_rate[i])}"
    if rule is Rule.SMALL:
        least = float(least_rise_mb(trend.start_mb[i : i + 1], found.params.min_rise_share)[0])
        return (
            f"grows {growth:.1f} MiB, under the least rise for its size"
            f" ({short_number(least)} MiB of {trend.start_mb[i]:.0f})"
        )
    if rule is Rule.NOISE:
        return (
            f"grows {growth:.1f} MiB, under {MIN_GROWTH_NOISE:g} x the floors' noise"
            f" ({trend.noise_mb[i]:.1f} MiB)"
        )
    if rule is Rule.TAIL:
        return (
            f"not rising at the end: the last {trend.tail_floors[i]} floors rise"
            f" {trend.tail_rate_mb_per_day[i]:.1f} MiB/day against {rate:.1f} fitted"
        )
    return f"not a clean trend: R2 {trend.r2[i]:.2f}, under {MIN_FIT_R2:g}"
