"""Seeing the outcome of a run: the HTML report and the Hub's dataset card.

Everything here reads a finished (or running) run directory through the phases' own readers and
the typed manifest, and never changes a run's state. It stands above both phases; the figures it
shows come from `autoevol.quality`.
"""
