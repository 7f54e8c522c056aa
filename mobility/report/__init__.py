"""The report handed outside the team: an offline HTML file and exports of the published views."""

from mobility.report.build import build

__all__ = ["build"]
