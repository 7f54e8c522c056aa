"""Ingestion, by stage: ``readers`` (files -> records, IDX pseudonymised as lines are split), ``conform``
(records -> typed, resolved, checked rows), ``checks`` (rules and quarantine), ``references`` (lookups and
places of offers), ``pseudonyms``, ``formats`` (the input layouts, shared with the generator) and ``batch``
(one run: read, conform, write bronze, silver and the quarantine)."""

from mobility.ingest.batch import IngestReport, RejectRateError, enforce_reject_rate, ingest, new_batch_id
from mobility.ingest.conform import TABLES

__all__ = ["TABLES", "IngestReport", "RejectRateError", "enforce_reject_rate", "ingest", "new_batch_id"]
