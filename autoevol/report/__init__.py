"""Seeing the outcome of a run: text statistics, tags, near-duplicates, contamination, the HTML report.

Everything here reads finished data (a run directory or a file) and never changes a run's state;
the only model calls are the optional tagger's, which go through the response cache like every call.
"""
