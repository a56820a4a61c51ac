"""Training and evaluation: setup (data and sizes from a config), the loop, scoring,
metrics, plots, and re-scoring a saved run."""
