"""The units every module counts in, defined once. Standard library only."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

MINUTE_S = 60
HOUR_S = 3_600
DAY_S = 86_400
