"""Data-quality figures of a set of rows: text statistics, near-duplicates, benchmark contamination,
tags and the clean-filter. Both the evolution phase (for `summary.json`) and the report use them, so
they stand below both; nothing here reads or writes a run directory.
"""
