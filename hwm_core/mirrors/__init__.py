"""Mirrors: a run's events copied to the tools a lab already uses (TensorBoard, W&B),
from a thread of their own, so the training thread never waits on them."""
