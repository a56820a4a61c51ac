"""Folds for choosing a run's epoch count without the test split.

``train.selection: crossval`` uses every training dialogue for selection: leave one group
out (IEMOCAP: one of the training sessions, from ``data.group_field``), train on the
others, score the left-out group. Dialogues without groups fall back to ``train.cv_folds``
folds of whole dialogues, seeded.

Fine-tuned text features need care. Cross-fitting by dialogue
(``finetune.crossfit_folds``) embeds every training dialogue with an encoder that never
saw *that dialogue*, but that encoder did see other dialogues of the same session, with
the same two speakers and their labels: a left-out session is then easier than the test
session, whose speakers the encoder never met. Cross-fitting by group
(``finetune.crossfit_by: group``) embeds each session with an encoder fine-tuned on the
other sessions only, so each left-out session is as unseen as the test one; the
cross-validated configs use it.
"""

from __future__ import annotations

import numpy as np

from ..data.conversation import Dialogue
from ..errors import DataError


def crossval_folds(
    dialogues: list[Dialogue], k: int, seed: int = 0
) -> list[tuple[str, list[Dialogue], list[Dialogue]]]:
    """(name, training part, left-out part) for each fold, by group when every dialogue
    has one and there are at least two, else ``k`` seeded folds of whole dialogues."""
    groups = [d.group for d in dialogues]
    if all(g is not None for g in groups) and len(set(groups)) >= 2:
        names = sorted(set(groups), key=str)
        which = [names.index(g) for g in groups]
        names = [f"group {g}" for g in names]
    else:
        if len(dialogues) < k:
            raise DataError(f"cross-validated selection: {len(dialogues)} training dialogues for {k} folds")
        order = np.random.default_rng(seed).permutation(len(dialogues))
        which = [0] * len(dialogues)
        for rank, i in enumerate(order):
            which[i] = rank % k
        names = [f"fold {f + 1}" for f in range(k)]
    return [
        (name, [d for d, w in zip(dialogues, which) if w != f], [d for d, w in zip(dialogues, which) if w == f])
        for f, name in enumerate(names)
    ]
