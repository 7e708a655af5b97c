"""The Masked-HWM model and its FLOPs."""
