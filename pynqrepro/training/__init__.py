"""CNV quantization-aware training: config, trainer, checkpoints, DDP, per-scale recipes."""
