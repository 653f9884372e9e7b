"""The bounds a rule-set document must stay within (docs/rules-format.md, "What validation checks")."""

from __future__ import annotations

import re2

MAX_DOCUMENT_BYTES = 2_000_000
MAX_CONDITION_DEPTH = 12
MAX_RULES = 2_000
MAX_STAGES = 200
MAX_REGEX_LENGTH = 500
#: Integers with more digits are refused (Python itself cannot read one beyond 4,300 digits).
MAX_INT_DIGITS = 100
#: A task due further out than this is a typo, and far-off due times overflow the calendar.
MAX_DUE_IN_HOURS = 87_600  # ten years
#: Thresholds on "hours since" variables: the engine turns them into due times (anchor ± hours), and
#: far beyond a thousand years that date arithmetic overflows and would break every change to a deal.
MAX_TIME_HOURS = 10_000_000
#: The same for working hours (and ``due_in_working_hours``): adding them walks the calendar year by
#: year, and 100,000 working hours is some fifty years of full-time work.
MAX_WORKING_HOURS = 100_000
#: A lowercase identifier: funnel, stage and rule ids, field names.
IDENT = re2.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Lengths of the storage columns these values are copied into (storage/models.py). SQLite ignores
#: lengths, PostgreSQL refuses longer text, and then every change that fires the rule would fail.
MAX_ID_LENGTH = 63  # funnels.id and deals.stage are String(64); firings.rule_id String(100)
MAX_FUNNEL_NAME = 200  # funnels.name
MAX_RULE_NAME = 300  # firings.rule_name
#: Not stored in a column of their own, but shown in tables, menus and messages: kept readable.
MAX_STAGE_NAME = 200
MAX_LABEL = 200  # field labels and select options
