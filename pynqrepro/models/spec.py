"""The CNV's shape as plain numbers (bit widths, channel counts, kernel, input) and their checks:
what a configuration is validated against before any model is built. Importing it costs no
torch or Brevitas, so the command line can show these defaults at once."""

from pynqrepro.core.errors import UserError

BIT_WIDTHS = (1, 2, 4, 8)
CONV_CHANNELS = (64, 64, 128, 128, 256, 256)
FC_FEATURES = (512, 512)
POOL_AFTER = (1, 3)  # max-pool 2x2 after conv 2 and conv 4 (0-based conv index)
KERNEL_SIZE = 3
IN_CHANNELS = 3
INPUT_SIZE = 32  # 32x32 -> 1x1 after six unpadded 3x3 convs and two pools


def check_bits(name: str, bits: int) -> int:
    if bits not in BIT_WIDTHS:
        raise UserError(f"{name} {bits!r} is not supported: choose one of {BIT_WIDTHS}")
    return bits


def check_widths(name: str, widths, length: int) -> tuple:
    widths = tuple(widths)
    if len(widths) != length or not all(isinstance(w, int) and w > 0 for w in widths):
        raise UserError(f"{name} must be {length} positive integers, got {widths!r}")
    return widths
