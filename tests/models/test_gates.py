"""The teacher-better gate on crafted teacher/student scores."""
import torch

from kd_det.models.utils.gates import (background_score, dense_class_probs, gt_class_score,
                                       object_max_score, spread_object_values,
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


def test_object_gate_judges_each_object_by_its_best_cell_on_any_level():
    # object 0 covers cells on both levels, object 1 one cell of level 0; -1 is background
    objects = [torch.tensor([[[0, 0, 1, -1]]]), torch.tensor([[[0, -1]]])]
    teacher = [torch.tensor([[[0.1, 0.2, 0.3, 0.0]]]), torch.tensor([[[0.9, 0.0]]])]
    student = [torch.tensor([[[0.5, 0.4, 0.6, 0.0]]]), torch.tensor([[[0.3, 0.0]]])]
    t_best = object_max_score(teacher, objects, 2)
    s_best = object_max_score(student, objects, 2)
    assert torch.allclose(t_best, torch.tensor([0.9, 0.3]))
    assert torch.allclose(s_best, torch.tensor([0.5, 0.6]))
    # cell by cell the teacher loses on every level-0 cell of object 0; as an object it wins
    # (its 0.9 peak on level 1 beats the student's best 0.5), so all of object 0's cells open
    gate = spread_object_values(teacher_better_gate(t_best, s_best), objects)
    assert torch.equal(gate[0], torch.tensor([[[1.0, 1.0, 0.0, 0.0]]]))
    assert torch.equal(gate[1], torch.tensor([[[1.0, 0.0]]]))
    assert torch.equal(teacher_better_gate(teacher[0], student[0]), torch.zeros(1, 1, 4))


def test_object_gate_with_no_objects_is_closed_everywhere():
    objects = [torch.full((2, 3, 3), -1)]
    best = object_max_score([torch.rand(2, 3, 3)], objects, 0)
    assert best.shape == (0, )
    assert torch.equal(spread_object_values(best, objects)[0], torch.zeros(2, 3, 3))
