"""Engines other than the in-process `LocalExecutor`: `ray` (imported only when chosen)."""
