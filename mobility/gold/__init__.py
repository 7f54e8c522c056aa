"""The gold tables of the ``flows`` step, by stage of their build.

``transitions``, ``market`` and ``flows`` define the tables (pure DataFrame functions); ``build`` reads silver
and builds them all; ``tables`` names them with their partitions and the state of the last build; ``step``
writes a full build, or ``refresh`` only what new batches touched (the same tables as a full build).
"""

from mobility.gold.step import write, write_full
from mobility.gold.tables import MONTHLY, PER_PERIOD, TABLES

__all__ = ["MONTHLY", "PER_PERIOD", "TABLES", "write", "write_full"]
