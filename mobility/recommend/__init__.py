"""Recommending mobility destinations and paths: examples from gold tables (``examples``), models
(``models``), their evaluation on a later time window (``evaluate``)."""
