"""The teacher-better gate on crafted teacher/student scores."""
import torch

from kd_det.models.utils.gates import (background_score, dense_class_probs, gt_class_score,
                                       teacher_better_gate)


def _logits_from_probs(probs):
    return torch.logit(torch.tensor(probs))


def test_gt_class_score_picks_label_and_best_anchor():
    # 2 anchors x 3 classes on a 1x2 map; cell 0 has label 1, cell 1 is background
    probs = torch.zeros(1, 2, 3, 1, 2)
    probs[0, 0, 1, 0, 0] = 0.3
    probs[0, 1, 1, 0, 0] = 0.6
    probs[0, 1, 2, 0, 1] = 0.9
    label = torch.tensor([[[1, -1]]])
    assert torch.allclose(gt_class_score(probs, label), torch.tensor([[[0.6, 0.0]]]))


def test_hard_gate_opens_only_where_teacher_is_better_on_foreground():
    teacher_p = torch.tensor([0.9, 0.2, 0.5])
    student_p = torch.tensor([0.4, 0.7, 0.5])
    gate = teacher_better_gate(teacher_p, student_p)
    assert torch.equal(gate, torch.tensor([1.0, 0.0, 0.0]))


def test_soft_gate_is_half_on_ties_and_monotonic():
    gate = teacher_better_gate(torch.tensor([0.5, 0.6, 0.9]), torch.tensor([0.5, 0.5, 0.5]),
                               soft=True, temperature=0.1)
    assert gate[0].item() == 0.5 and gate[0] < gate[1] < gate[2]


def test_background_gate_prefers_the_more_confident_background():
    # sigmoid head, 1 anchor, 2 classes, 2 cells. Cell 0: teacher fires 0.8 (student 0.1), so the
    # student is the better background predictor; cell 1: teacher 0.05 vs student 0.6.
    t_logits = _logits_from_probs([[0.8, 0.05], [0.01, 0.05]]).view(1, 2, 1, 2)
    s_logits = _logits_from_probs([[0.1, 0.6], [0.1, 0.2]]).view(1, 2, 1, 2)
    t_bg = background_score(dense_class_probs(t_logits, 2, True), True)
    s_bg = background_score(dense_class_probs(s_logits, 2, True), True)
    assert torch.allclose(t_bg, torch.tensor([[[0.2, 0.95]]]), atol=1e-5)
    assert torch.equal(teacher_better_gate(t_bg, s_bg), torch.tensor([[[0.0, 1.0]]]))


def test_softmax_head_background_is_last_class():
    logits = torch.zeros(1, 3, 1, 1)
    logits[0, 2] = 5.0  # background logit
    bg = background_score(dense_class_probs(logits, 3, False), False)
    assert bg.item() > 0.98
