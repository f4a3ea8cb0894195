"""The public entry points the CLIs call: building train/test runners (:mod:`.runner`) with their
pre-flight checks (:mod:`.preflight`, :mod:`.checkpoint_fit`), and the student of a
distillation config (:mod:`.student`). Features live in their own packages:
:mod:`kd_det.benchmark`, :mod:`kd_det.deploy`, :mod:`kd_det.pruning`."""
