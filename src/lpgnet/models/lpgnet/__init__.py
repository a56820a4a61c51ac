"""LPGNet, one file per paper section: lpia.py (§3.3), fusion.py (§3.4), classifier.py
(§3.5, §3.6 students), distillation.py (§3.6 loss), model.py (assembly), frame.py (the
frame-level variant)."""
