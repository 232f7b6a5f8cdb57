"""Quantized models of the study (Brevitas)."""
