"""Datasets as in-memory uint8 image tensors: CIFAR-10 (python archive) and sklearn digits."""
