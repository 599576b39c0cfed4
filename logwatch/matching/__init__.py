"""Matching: every rule against every line, fast, with the naive loop's exact results.

:class:`~logwatch.matching.matcher.Matcher` scans a chunk of lines and returns the
hits. What makes it fast, each in its own module: the rules' required literals
(:mod:`~logwatch.matching.literals`), the Hyperscan line filter
(:mod:`~logwatch.matching.hyperscan_filter`) and what it is asked beyond each
pattern (:mod:`~logwatch.matching.filter_plan`), which patterns cannot see past a
line (:mod:`~logwatch.matching.line_bound`), and compiled Hyperscan databases kept
on disk (:mod:`~logwatch.matching.hyperscan_cache`).
"""

from logwatch.matching.matcher import Found, Matcher

__all__ = ["Found", "Matcher"]
