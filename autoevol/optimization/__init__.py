"""The optimization phase: Auto Evol-Instruct's loop that evolves a minibatch, has the optimizer LLM
analyse the trajectory and rewrite the method, and keeps the candidate with the lowest dev failure
rate. The notebook function `autoevol.optimize` drives it (`autoevol.notebook`)."""
