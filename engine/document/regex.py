"""RE2 as Conveyor runs ``matches_regex``: one set of options for the validator and for evaluation.

The validator compiles each pattern with the options evaluation uses, so a pattern it accepts has a
program whose DFA fits the memory bound: it runs in linear time without falling back to the slow
NFA, and RE2 never logs ("DFA out of memory", parse errors) to the process's stderr.
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["MAX_MEM", "MAX_PROGRAM", "OPTIONS", "compile_pattern", "program_size"]

#: Memory RE2 may use for one pattern (its programs and DFA caches, allocated as needed). RE2's
#: default of 8 MB is too small for counted Unicode classes such as ``\p{L}{2,30}``: the DFA could
#: not even start, so every evaluation ran the NFA and wrote "DFA out of memory" to stderr.
MAX_MEM = 32 << 20
#: Largest program (RE2 instructions, forward or reverse) accepted: its DFA starts within ``MAX_MEM``
#: with room to spare (measured: up to about 63,000 instructions start in 32 MB).
MAX_PROGRAM = 40_000

OPTIONS = re2.Options()
OPTIONS.max_mem = MAX_MEM
OPTIONS.log_errors = False  # refusals are reported to the user with their JSON path instead


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled with Conveyor's options; raises ``re2.error`` if RE2 refuses it."""
    return re2.compile(pattern, OPTIONS)


def program_size(compiled: Any) -> int:
    """The larger of the forward and reverse programs (a search that reports a match runs both)."""
    size: int = max(compiled.programsize, compiled.reverseprogramsize)
    return size
