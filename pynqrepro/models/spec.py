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


MAX_WIDTH = 4096  # 8x the study's widest layer; beyond it a layer's weights alone outgrow any memory


def check_widths(name: str, widths, length: int) -> tuple:
    widths = tuple(widths)
    if len(widths) != length or not all(isinstance(w, int) and 0 < w <= MAX_WIDTH for w in widths):
        shown = ", ".join(map(str, widths[:8])) + (f", … ({len(widths):,} in all)" if len(widths) > 8 else "")
        raise UserError(f"{name} must be {length} positive integers up to {MAX_WIDTH}, got ({shown[:400]})")
    return widths


# Per-layer bit widths: one entry per quantised layer in network order, six convs then three FCs.
# Each of the first eight is "W/A" (weights, and the activation quantiser after the layer); the
# classifier has no activation quantiser (TensorNorm follows it), so its entry is just "W".
LAYER_COUNT = len(CONV_CHANNELS) + len(FC_FEATURES) + 1
LAYER_BITS_EXAMPLE = "4/4,2/2,2/2,2/2,2/2,2/2,2/2,2/2,4"
# Named per-layer presets (--layer-bits NAME): the field's usual first mixed-precision move, the
# first and last layers wider than the rest (HAQ's and HAWQ-V3's allocations on CNNs start there).
LAYER_BIT_PRESETS = {
    "ends4-mid2": "4/4,2/2,2/2,2/2,2/2,2/2,2/2,2/2,4",
    "ends2-mid1": "2/2,1/1,1/1,1/1,1/1,1/1,1/1,1/1,2",
    "convs2-fc1": "2/2,2/2,2/2,2/2,2/2,2/2,1/1,1/1,1",
    "ends8-mid4": "8/8,4/4,4/4,4/4,4/4,4/4,4/4,4/4,8",
}


def parse_layer_bits(text: str) -> tuple[tuple[int, int | None], ...]:
    """``--layer-bits``'s value (a preset name or the per-layer list) as ((W, A), ..., (W, None))."""
    text = LAYER_BIT_PRESETS.get(text, text)
    items = [item.strip() for item in str(text).split(",")]
    fix = (f"give {LAYER_COUNT} comma-separated entries, W/A per conv and hidden FC layer and W for the "
           f"classifier, each from {BIT_WIDTHS}, e.g. {LAYER_BITS_EXAMPLE}, or a preset: "
           f"{', '.join(LAYER_BIT_PRESETS)}")
    if len(items) != LAYER_COUNT:
        raise UserError(f"--layer-bits {text!r} has {len(items)} entries: {fix}")
    out = []
    for i, item in enumerate(items):
        parts = item.split("/")
        last = i == LAYER_COUNT - 1
        try:
            bits = tuple(int(p) for p in parts)
        except ValueError:
            bits = ()
        if len(bits) != (1 if last else 2) or any(b not in BIT_WIDTHS for b in bits):
            what = "W (the classifier has no activation quantiser)" if last else "W/A"
            raise UserError(f"--layer-bits entry {i + 1} {item!r} is not {what}: {fix}")
        out.append((bits[0], None if last else bits[1]))
    return tuple(out)


def format_layer_bits(layers) -> str:
    """The canonical ``--layer-bits`` text of per-layer ((W, A), ..., (W, None))."""
    return ",".join(str(w) if a is None else f"{w}/{a}" for w, a in layers)


def uniform_layer_bits(weight_bits: int, act_bits: int) -> tuple[tuple[int, int | None], ...]:
    """The per-layer form of a uniform network."""
    return ((weight_bits, act_bits),) * (LAYER_COUNT - 1) + ((weight_bits, None),)


def widest_bits(layers) -> tuple[int, int]:
    """(widest weight, widest activation) of per-layer bits: a mixed network's nominal W/A (its
    recipe's epochs, its messages)."""
    return max(w for w, _ in layers), max(a for _, a in layers if a is not None)
