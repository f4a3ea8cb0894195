"""Progressive Fisher pruning: the importance, the MAC cost model, the schedule and the hook
that masks channels during training and cuts them out at the end."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from conftest import REPO_ROOT
from kd_det.apis.student import build_student
from kd_det.deploy.complexity import params_and_flops
from kd_det.pruning import FisherPruningHook
from kd_det.pruning.channel_groups import ChannelGroup, find_channel_groups
from kd_det.pruning.conv_cost import ConvCost
from kd_det.pruning.fisher import FisherImportance
from kd_det.pruning.fisher_pruning_hook import flops_schedule
from kd_det.pruning.prune import max_output_change, plan_pruning, prune_detector
from pruning.test_prune import _randomise_norms
from models.tiny_detectors import fake_batch

STUDENT = osp.join(REPO_ROOT, 'configs/embedded/retinanet_mnv2-w05-fpn64_8e_embedded.py')
FISHER = osp.join(REPO_ROOT,
                  'configs/pruning/fisher_retinanet_mnv2-w05-fpn64_prune50_embedded.py')
IMAGE = (3, 96, 128)


def _student(seed=0):
    torch.manual_seed(seed)
    model = build_student(STUDENT)
    _randomise_norms(model, seed)
    return model


def test_fisher_importance_is_the_squared_taylor_term_summed_over_iterations():
    scale = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]]))
    group = ChannelGroup('g', 'head', 3, [scale], [], ('k', ))
    fisher = FisherImportance([group])
    fisher.attach()
    expected = torch.zeros(3, dtype=torch.float64)
    for a in (torch.tensor([[1.0, 1.0], [2.0, 0.0], [5.0, 5.0]]),
              torch.tensor([[-1.0, 0.5], [1.0, 1.0], [1.0, 1.0]])):
        (scale * a).sum().backward()  # dL/dscale = a: Taylor term of channel c = sum_j s*a
        fisher.end_iteration()
        expected += ((scale.detach() * a).sum(1).double()) ** 2
        scale.grad = None
    assert torch.allclose(fisher.importance['g'], expected)
    assert fisher.importance['g'][2] == 0  # an all-zero channel costs nothing to remove
    assert fisher.iterations == 2
    fisher.reset()
    assert fisher.importance['g'].abs().sum() == 0
    fisher.detach()
    (scale * 3).sum().backward()
    fisher.end_iteration()
    assert fisher.importance['g'].abs().sum() == 0  # hooks removed


def test_schedules_start_at_one_and_end_at_the_target():
    for kind in ('linear', 'cubic'):
        assert flops_schedule(0.0, 0.5, kind) == 1.0
        assert flops_schedule(1.0, 0.5, kind) == 0.5
        assert flops_schedule(2.0, 0.4, kind) == 0.4  # clamped after the window
    assert flops_schedule(0.5, 0.5) == pytest.approx(0.75)  # linear by default
    assert flops_schedule(0.5, 0.5, 'cubic') == pytest.approx(0.5 + 0.5 * 0.125)


def test_conv_cost_matches_the_flop_count_of_the_cut_network():
    model = _student().eval()
    groups = find_channel_groups(model)
    assert {g.family for g in groups} == {'neck', 'head', 'backbone'}
    assert [g.name for g in groups if g.family == 'neck'] == ['neck.laterals', 'neck.outputs']
    cost = ConvCost(model, groups, torch.zeros(1, *IMAGE))
    # one channel's cost is exactly what the conv MACs lose when it goes
    for name in ('backbone.layer4.1', 'bbox_head.cls_convs.1', 'neck.outputs'):
        before, per_channel = cost.conv_macs(), cost.channel_cost(name)
        cost.remove(name, 1)
        assert before - cost.conv_macs() == pytest.approx(per_channel)
        cost.remove(name, -1)
    # zero channels (the same count in groups sharing a config width), cut them out, count
    generator = torch.Generator().manual_seed(0)
    shared = {}
    with torch.no_grad():
        for group in groups:
            count = shared.setdefault(group.config_keys, 8 * int(torch.randint(
                1, group.num_channels // 8, (1, ), generator=generator)))
            dead = torch.randperm(group.num_channels, generator=generator)[:count]
            for param in group.scales:
                param.view(group.num_channels, -1)[dead] = 0
            cost.remove(group.name, count)
    full = params_and_flops(_student(), IMAGE)['flops']
    plan = plan_pruning(model, threshold=0.0, divisor=1)
    pruned, _ = prune_detector(model, Config.fromfile(STUDENT), plan)
    measured = params_and_flops(pruned, IMAGE)['flops'] / full
    base_macs = ConvCost(_student().eval(), find_channel_groups(_student()),
                         torch.zeros(1, *IMAGE)).conv_macs()
    estimated = (full - base_macs + cost.conv_macs()) / full
    # conv MACs only: the element-wise ops (BN, upsampling) of removed channels are not
    # subtracted, so the estimate is a little above the real count, never below
    assert measured <= estimated < measured + 0.015
    assert max_output_change(model, pruned, IMAGE) < 1e-5


class _FakeRunner(SimpleNamespace):
    """What the hook reads of an mmengine Runner."""


def _train(model, hook, iterations, runner=None, zero_block=None):
    """A plain training loop calling the hook as mmengine's loop does."""
    runner = runner or _FakeRunner(model=model, iter=0, max_iters=iterations,
                                   message_hub=MessageHub.get_instance('fisher_test'),
                                   train_dataloader=range(10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    hook.before_train(runner)
    inputs, samples = fake_batch(2, *IMAGE[1:])
    for i in range(iterations):
        runner.iter = i
        hook.before_train_iter(runner, i, dict(inputs=[torch.zeros(IMAGE)]))
        losses = model.loss(inputs, samples)
        sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
            for v in losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad()
        hook.after_train_iter(runner, i)
    return runner


def test_hook_prunes_to_the_target_on_schedule_and_the_cut_model_is_exact():
    model = _student()
    dead_block = 'backbone.layer4.1'  # 8 channels that carry nothing: removed first
    group = next(g for g in find_channel_groups(model) if g.name == dead_block)
    with torch.no_grad():
        for param in group.scales:
            param.view(group.num_channels, -1)[:8] = 0
    hook = FisherPruningHook(flops_target=0.5, begin=0, end=20, interval=5, write_pruned=False,
                             schedule='cubic')
    ratios = []
    runner = _FakeRunner(model=model, iter=0, max_iters=26,
                         message_hub=MessageHub.get_instance('fisher_test_schedule'),
                         train_dataloader=range(10))
    original = hook.after_train_iter

    def recording(runner, i, **kwargs):
        original(runner, i, **kwargs)
        ratios.append(hook.flops_ratio())
        if i == 4:  # first removal: the zero-importance channels go first
            assert not hook.alive[dead_block][:8].any()
    hook.after_train_iter = recording
    _train(model, hook, 26, runner)
    # on schedule: above the cubic curve's value halfway, at the target from the window's end
    halfway = flops_schedule(0.5, 0.5, 'cubic')
    assert halfway - 0.05 < ratios[9] <= halfway
    assert all(0.5 - 0.005 <= r <= 0.5 for r in ratios[19:])  # at the target, not below

    assert ratios == sorted(ratios, reverse=True)
    assert runner.message_hub.get_scalar('train/pruning/flops_ratio').current() == ratios[-1]
    # masked channels are exact zeros after every optimizer step; widths stay multiples of 8
    for group in hook.groups:
        dead = ~hook.alive[group.name]
        for param in group.scales:
            assert param.detach().view(group.num_channels, -1)[dead].abs().sum() == 0
        assert int(hook.alive[group.name].sum()) % 8 == 0
    model.eval()
    plan = plan_pruning(model, threshold=0.0, divisor=1)
    pruned, cfg = prune_detector(model, Config.fromfile(STUDENT), plan)
    assert max_output_change(model, pruned, IMAGE) < 1e-4
    measured = params_and_flops(pruned, (3, 96, 128))['flops'] / params_and_flops(
        _student(), (3, 96, 128))['flops']
    assert measured <= hook.flops_ratio() < measured + 0.015 and measured <= 0.5
    assert cfg.model.neck.out_channels == cfg.model.bbox_head.in_channels


def test_small_linear_steps_still_remove_expensive_units():
    """A head unit (8 channels of four convs) is more FLOPs than one step of a fine linear
    schedule: the end-of-window rule (stay within `overshoot` of the target) must not starve it
    and strip everything else down to min_channels instead."""
    model = _student()
    hook = FisherPruningHook(flops_target=0.5, begin=0, end=20, interval=1, write_pruned=False)
    _train(model, hook, 21)
    assert 0.5 - 0.005 <= hook.flops_ratio() <= 0.5
    at_minimum = [g.name for g in hook.groups if int(hook.alive[g.name].sum()) == 8]
    assert len(at_minimum) < len(hook.groups) // 2, at_minimum


def test_hook_state_survives_a_checkpoint_and_the_cut_model_is_written(tmp_path):
    model = _student()
    hook = FisherPruningHook(flops_target=0.6, begin=0, end=6, interval=3)
    runner = _train(model, hook, 8)
    checkpoint = dict(state_dict=model.state_dict())
    hook.before_save_checkpoint(runner, checkpoint)
    # a resumed run restores the masks and the cost model
    resumed = FisherPruningHook(flops_target=0.6, begin=0, end=6, interval=3)
    resumed.after_load_checkpoint(runner, checkpoint)
    resumed._set_up(runner, dict(inputs=[torch.zeros(IMAGE)]))
    assert all(torch.equal(resumed.alive[k], v) for k, v in hook.alive.items())
    assert resumed.flops_ratio() == pytest.approx(hook.flops_ratio())
    # after training: the cut model, a plain config without the hook, in <work_dir>/pruned
    torch.save(checkpoint, tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    runner.work_dir, runner.cfg = str(tmp_path), Config.fromfile(FISHER)
    hook.after_train(runner)
    cfg = Config.fromfile(str(tmp_path / 'pruned' / 'pruned.py'))
    assert not cfg.custom_hooks and cfg.load_from == str(tmp_path / 'pruned' / 'pruned.pth')
    pruned = build_student(cfg.filename, cfg.load_from)
    assert max_output_change(model.eval(), pruned, IMAGE) < 1e-4


@pytest.mark.parametrize('kwargs, message', [
    (dict(flops_target=50, end=10), 'flops_target must be a fraction in (0, 1)'),
    (dict(flops_target=0.5, end=0), 'the pruning window needs 0 <= begin < end'),
    (dict(flops_target=0.5, end=10, schedule='cubik'), "schedule must be one of ('cubic'"),
    (dict(flops_target=0.5, end=10, families=['necks']), "unknown families ['necks']"),
])
def test_hook_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError) as error:
        FisherPruningHook(**kwargs)
    assert message in str(error.value)


def test_a_window_past_the_end_of_training_and_a_model_without_groups_are_refused():
    runner = _FakeRunner(model=_student(), iter=0, max_iters=100, train_dataloader=range(10),
                         message_hub=MessageHub.get_instance('fisher_test_errors'))
    with pytest.raises(ValueError, match='ends at iteration 200, after training ends'):
        FisherPruningHook(flops_target=0.5, end=20, by_epoch=True).before_train(runner)
    from models.tiny_detectors import tiny_detector_cfg
    from mmdet.registry import MODELS
    runner.model = MODELS.build(tiny_detector_cfg('retinanet'))  # ResNet: no backbone groups
    hook = FisherPruningHook(flops_target=0.5, end=20, families=['backbone'])
    with pytest.raises(ValueError, match='RetinaNet has no prunable channel group in families'):
        hook.before_train_iter(runner, 0, dict(inputs=[torch.zeros(IMAGE)]))
