"""Every benchmark, each a module with its measurement (``python -m lpgnet.benchmarks.NAME``;
``efficiency`` is what ``lpgnet bench`` runs) and ``render()``, its section of the results
page. Results go to ``benchmarks/results/`` at the repository top."""
