"""Multi-seed and multi-fold experiments, the results manifest, the committed record and
the results page (``lpgnet experiment``, ``lpgnet report``)."""
