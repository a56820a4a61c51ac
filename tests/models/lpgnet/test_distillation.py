"""Self-distillation loss (SPEC (17), (19)-(22)) against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from lpgnet.config import LossConfig
from lpgnet.data.conversation import IGNORE
from lpgnet.models.lpgnet.distillation import self_distillation_loss
from lpgnet.training.loop import balanced_class_weights


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def ce(row, y):
    return -math.log(softmax(row)[y])


def kl(p_row, q_row, tau):
    p = softmax([v / tau for v in p_row])
    q = softmax([v / tau for v in q_row])
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


TEACHER = [[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [9.0, 9.0, 9.0]]]
TEXT = [[[1.0, 1.0, 0.0], [-1.0, 2.0, 0.5], [5.0, -5.0, 0.0]]]
AUDIO = [[[0.0, 3.0, 1.0], [0.3, 0.3, -0.3], [-7.0, 1.0, 2.0]]]
LABELS = [[0, 2, IGNORE]]  # third utterance: padding/unlabelled, must not count


@pytest.mark.parametrize("g1,g2,g3,tau", [(1.5, 1.0, 0.3, 1.0), (1.0, 0.0, 1.0, 2.0), (1.0, 1.0, 0.0, 0.5)])
def test_loss_matches_hand_computation(g1, g2, g3, tau):
    cfg = LossConfig(gamma1=g1, gamma2=g2, gamma3=g3, tau=tau)
    total, parts = self_distillation_loss(
        torch.tensor(TEACHER), {"text": torch.tensor(TEXT), "audio": torch.tensor(AUDIO)}, torch.tensor(LABELS), cfg
    )
    valid = [0, 1]
    y = LABELS[0]
    task = sum(ce(TEACHER[0][i], y[i]) for i in valid) / 2
    expected = g1 * task
    for student in (TEXT, AUDIO):
        expected += g2 * sum(ce(student[0][i], y[i]) for i in valid) / 2
        expected += g3 * tau**2 * sum(kl(TEACHER[0][i], student[0][i], tau) for i in valid) / 2
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert parts["task"] == pytest.approx(task, rel=1e-5)


def test_kl_without_tau_squared_and_direction():
    cfg = LossConfig(gamma1=1.0, gamma2=0.0, gamma3=1.0, tau=2.0, kl_tau_squared=False)
    total, parts = self_distillation_loss(
        torch.tensor(TEACHER), {"text": torch.tensor(TEXT)}, torch.tensor(LABELS), cfg
    )
    expected_kl = sum(kl(TEACHER[0][i], TEXT[0][i], 2.0) for i in (0, 1)) / 2  # KL(teacher || student)
    assert parts["kl_text"] == pytest.approx(expected_kl, rel=1e-5)
    reverse = sum(kl(TEXT[0][i], TEACHER[0][i], 2.0) for i in (0, 1)) / 2
    assert parts["kl_text"] != pytest.approx(reverse, rel=1e-3)


@pytest.mark.parametrize("detach", [True, False])
def test_teacher_detached_in_kl(detach):
    teacher = torch.tensor(TEACHER, requires_grad=True)
    cfg = LossConfig(gamma1=1e-9, gamma2=0.0, gamma3=1.0, detach_teacher=detach)
    total, _ = self_distillation_loss(teacher, {"text": torch.tensor(TEXT)}, torch.tensor(LABELS), cfg)
    total.backward()
    kl_grad = teacher.grad.abs().sum().item()
    assert (kl_grad < 1e-6) == detach


def test_kl_on_all_real_utterances_includes_unlabelled_ones():
    mask = torch.tensor([[True, True, True]])  # the third utterance is real but unlabelled
    cfg = LossConfig(gamma1=1.0, gamma2=0.0, gamma3=1.0, kl_on="all")
    _, parts = self_distillation_loss(
        torch.tensor(TEACHER), {"text": torch.tensor(TEXT)}, torch.tensor(LABELS), cfg, mask=mask
    )
    assert parts["kl_text"] == pytest.approx(sum(kl(TEACHER[0][i], TEXT[0][i], 1.0) for i in range(3)) / 3, rel=1e-5)
    assert parts["task"] == pytest.approx((ce(TEACHER[0][0], 0) + ce(TEACHER[0][1], 2)) / 2, rel=1e-5)


def test_padding_and_unlabelled_do_not_count():
    cfg = LossConfig()
    base, _ = self_distillation_loss(torch.tensor(TEACHER), {"text": torch.tensor(TEXT)}, torch.tensor(LABELS), cfg)
    changed = torch.tensor(TEACHER)
    changed[0, 2] = torch.tensor([-50.0, 80.0, 3.0])
    other, _ = self_distillation_loss(changed, {"text": torch.tensor(TEXT)}, torch.tensor(LABELS), cfg)
    assert base.item() == pytest.approx(other.item())


def test_no_labelled_utterance_gives_zero_not_nan():
    total, _ = self_distillation_loss(
        torch.tensor(TEACHER), {"text": torch.tensor(TEXT)}, torch.full((1, 3), IGNORE), LossConfig()
    )
    assert total.item() == 0.0


def test_balanced_class_weights():
    w = balanced_class_weights([0, 0, 0, 1, IGNORE, 2, 2], 4)
    torch.testing.assert_close(w, torch.tensor([6 / 12, 6 / 4, 6 / 8, 0.0]))
