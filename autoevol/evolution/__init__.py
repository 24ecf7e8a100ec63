"""The evolution phase: apply a method to every seed, answer the rewrite, judge it, store the unit,
and write the training files. The notebook function `autoevol.evolve` drives it (`autoevol.notebook`)."""
