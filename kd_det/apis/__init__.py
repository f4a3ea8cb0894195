"""The public entry points the CLIs call: building train/test runners (:mod:`.runner`), which
run the pre-flight checks of :mod:`kd_det.preflight`, and the student of a distillation config
(:mod:`.student`). Features live in their own packages: :mod:`kd_det.preflight`,
:mod:`kd_det.benchmark`, :mod:`kd_det.deploy`, :mod:`kd_det.pruning`."""
