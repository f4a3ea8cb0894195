"""Deployment: the dense network (:mod:`.dense_forward`), ONNX export and parity
(:mod:`.export`), params and FLOPs (:mod:`.complexity`) and side-by-side latency
(:mod:`.latency`)."""
