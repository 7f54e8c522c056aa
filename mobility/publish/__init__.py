"""Published views: ``gold.published_*``, the only tables that leave the lake (report, exports, notebooks
shared outside), with small-cell and secondary suppression of every count of people.

Vocabulary
----------
Cell
    One published count of people: ``moves`` of a flows row, ``seekers_stock`` of a market row, ``inflow``
    of a region balance... A suppressed cell is published as null.
Line
    A set of cells whose total is published, or may be: a row or a column of a table, a cell of a coarser
    table (the ``flows`` rows from region 11 to region 84 in a quarter sum to one ``flows_region`` cell),
    an indicator (``region_balance.outflow`` sums the off-diagonal cells of a ``flows_region`` row). A line
    is given by a subset of a table's key columns (cells with equal values form one line), optionally
    restricted to the cells meeting a condition (off-diagonal cells only). When its total is itself a
    published cell, that cell is a member of the line (its total) and is suppressed like any other cell.

Rules, and why each is needed
-----------------------------
1. Primary: a count ``c`` with ``0 < c < min_cell`` is suppressed: a small group of people can be
   recognised (the one seeker of a village who became a baker). Zero and absent cells are not sensitive
   (nobody to recognise) and are never suppressed, so a reader knows a suppressed cell is at least 1.
2. Secondary, per line: the total and all but one cell of a line give the last cell by difference, so a
   line holding exactly one suppressed member (its total included) gets one more: its smallest visible
   cell (ties broken by the cell's keys, so the result is deterministic), preferring cells that are not
   alone in another line (such a cell, suppressed, would be that line's total, which the other lines can
   give: the rows' totals minus the other columns'). A line whose suppressed cells
   sum to their number gets one more too (the all-ones pin: each suppressed cell is at least 1, so a
   reader knowing the total learns they are all 1). A fix can break another line: rounds repeat over all
   lines until none needs a fix (a fixpoint; past ``max_rounds`` a ``SuppressionError`` names the tables
   still changing).
3. A line left with no visible cell to suppress cannot be fixed by its cells, yet its total would give
   them away (one cell: it is the total; all ones: the total is their number), whatever its size (a cell
   suppressed as a complement holds 5 or more). Its total is then withheld, which is automatic when the
   total is a published cell of the line (the only visible member left, hence the one suppressed); a total
   that no table publishes (a ``flows`` origin over a quarter) needs nothing. (Refines the first rule set,
   which only withheld such totals when under ``min_cell``.)
4. Tables sharing totals are solved together, in one fixpoint over all their cells and lines, because
   each can undo the other: a ``flows_region`` cell suppressed as a complement is the sum of its ``flows``
   rows, so one of those is suppressed too (the line "this ``flows_region`` cell = the sum of these
   ``flows`` rows" holding one suppressed member), and a ``flows`` line that cannot be fixed withholds
   the ``flows_region`` cell publishing its total (rule 3). Likewise ``flows_occupation`` with
   ``flows_grand_domaine``, ``flows`` and ``flows_occupation`` with ``occupation_mobility``,
   ``flows_region`` with ``region_balance``, ``market`` with ``market_national``.
5. Counts inside a row are cells of their own, in the same lines as the row, as the coarser tables publish
   their totals too: ``hires`` (with ``reorientations = moves - hires``, so both or neither) is suppressed
   when either is small, when the row's ``moves`` is, and by secondary suppression over the lines' hires;
   the hires via an offer (``share_via_offers * hires``, published as the share) likewise inside the
   hires. A reader knows only that a suppressed one is at least 0.
6. A value derived from a count is withheld with it (``rate = moves / seekers_at_origin`` would give it
   back; ``median_days_to_move`` belongs to its row), and a value revealing a count of another table
   follows that count: ``seekers_at_origin`` is the market stock at the end of the month before the
   period (a ``market`` cell; for the coarse flows a regional, national or grand-domaine total of the
   market, each a cell of the model), and ``dest_tension`` divides the offers by the destination's stock
   over the period's months, so it is withheld when any of those stock cells is (and when the stock it
   implies, ``dest_offers / dest_tension``, is under ``min_cell``).
7. Values that are not counts of people are kept: ``dest_offers``, ``dest_positions``,
   ``offers_published``, ``positions`` (job offers), and the median delay of a published row.

What the rules guarantee, and what they do not: with every line total known, no suppressed cell can be
computed from one line, and no line pins its cells at their least values. These are the usual per-line
rules, not a proof against a reader solving all the lines together as a linear program (each suppressed
cell at least 1): such a reader narrows cells down and, in some patterns, pins one (two suppressed 1s at
the ends of a chain of rows and columns; small lines whose totals, withheld one by one, still add up with
the others, as a table's rows sum to its columns). The tests run that attack (``scipy.optimize.linprog``)
with the totals a reader gets from the published tables: ``flows_region`` with ``region_balance`` (a row
total only when its outflow and internal are both shown: taking every row total as known, though no
table publishes it, pins cells of generated data), ``flows`` with the shown region and occupation pairs,
and ``flows_occupation`` with every row and column total of a period known unless withheld (under
``min_cell``, or by rule 3), a pessimistic reading that holds on generated data (it does not always for
``flows_grand_domaine``, whose rows and columns are published nowhere either). Closing this for good
takes an audit by linear programming per period (as tau-argus does), which is not native Spark. Mixing
tables of different populations can still reveal their difference (the national market counts seekers
without a region, the regional lines do not): these rules do not treat it.

Per table
---------
``published_flows``, ``published_flows_region``, ``published_flows_occupation``,
``published_flows_grand_domaine``
    The gold columns, suppressed as above. Lines, per period: ``flows``: the origin (occupation, region),
    the destination, the region pair (total: a ``flows_region`` cell), the occupation pair (a
    ``flows_occupation`` cell); ``flows_region``: rows, columns, and their off-diagonal parts (totals:
    ``region_balance`` outflow and inflow); ``flows_occupation``: rows, columns, grand-domaine pairs (a
    ``flows_grand_domaine`` cell); ``flows_grand_domaine``: rows and columns; in each table the period's
    total (the same for the four, published by the grand domaines when all are shown). Across periods,
    for ``flows`` and ``flows_occupation``: the occupation pair (total: the ``occupation_mobility`` pair,
    below), the origin occupation (``movers``) and its moves to another occupation (``changers``).
``published_region_balance``
    ``internal`` is the diagonal cell of ``published_flows_region``; ``inflow`` and ``outflow`` are cells
    (totals of the off-diagonal lines). When either is suppressed, both are, and ``net`` (``net`` and one
    of them give the other).
``published_occupation_mobility``
    ``movers``, ``changers`` and the stayers ``movers - changers`` (the pair of the occupation with itself)
    are cells, as is each occupation pair's total over the periods (what ``top_destinations`` shows). When
    any of the three is suppressed, ``movers``, ``changers``, ``share_changing`` and the ``share`` of every
    destination are withheld (``moves / share`` gives the movers). ``top_destinations`` is cut before its
    first entry whose pair is suppressed: an entry removed from the middle of the ranking would be
    bracketed by its neighbours.
``published_market``, ``published_market_national``
    ``seekers_stock``, ``registrations``, ``exits_to_work``, ``hires`` each suppressed on its own, over the
    lines (``rome``, ``month``), whose total is the ``market_national`` cell, and (``code_region``,
    ``month``); for the stock also (grand domaine, ``month``): the region and grand-domaine totals of the
    stock are cells, published by the coarse flows as ``seekers_at_origin``. ``tension`` is withheld with
    the stock. The rolling columns are dropped: consecutive 12-month windows differ by one month in and one
    month out, so their differences would give suppressed months back.

Flags
-----
Every published table has ``suppressed_columns`` (``array<string>``: the columns of the row withheld for
privacy, in column order, empty when none) and ``suppressed`` (``size(suppressed_columns) > 0``). A column
is listed whenever its rule applies, even when the gold value was null anyway (``share_via_offers`` of a
row without hires), so that the list reveals nothing; a null not listed is a genuine null (``rate`` without
seekers at origin). Only the columns named here are published: a new gold column stays in the lake until
a rule is written for it.

Where it runs
-------------
The published tables are aggregates (about a million rows at 1M seekers): the step reads the gold tables as
Arrow tables from their files, without Spark (``Lake.read_arrow``); their cells, lines and links become
integer arrays (``views.frames``, ``model``, ``rules``), the rounds run vectorised over the lines the last
round touched (``solver``), and each view is made on the driver from its flags with Arrow compute
(``views.published``: Arrow in, Arrow out). ``step`` writes them from Arrow too (``Lake.overwrite_arrow``,
delta-rs: Delta commits without Spark's jobs around each, a second a view), as one build: readers
(``read``, with Spark) see the versions of the last build that wrote all of them.
"""

from mobility.publish.rules import GOLD_TABLES
from mobility.publish.solver import SuppressionError
from mobility.publish.step import read, read_view, up_to_date, write
from mobility.publish.views import Line, publish, suppress

__all__ = [
    "GOLD_TABLES",
    "Line",
    "SuppressionError",
    "publish",
    "read",
    "read_view",
    "suppress",
    "up_to_date",
    "write",
]
