"""bitsandbytes 4-bit layers that compute the same function in every forward, on every CPU.

bitsandbytes (0.49 and later) has a CPU inference shortcut: on a CPU with AVX512-BF16, a `Linear4bit` forward in
eval mode on an input that does not require grad (any `generate`) rewrites the layer's weight, for good, into
`packing_format_for_cpu`, a layout with bfloat16 block scales that only the inference kernel `gemv_4bit` reads.
Every later forward takes that path too, training ones included: `matmul_4bit` returns the kernel's output, which
autograd cannot differentiate through, and adds the bias in place ("a view of a leaf Variable that requires grad is
being used in an in-place operation"). Undoing the packing before each training step is no cure: the packed layer
computes other numbers (its block scales are rounded to bfloat16), so rollouts would be sampled from a policy other
than the one scored and trained, and bitsandbytes' inverse re-quantizes those scales, so the frozen base weights
would drift at every round trip. So the packing is switched off at load, on every CPU: generation runs the same
dequantize-and-matmul as training, a little slower on the CPUs that could pack.
"""

from __future__ import annotations

import sys

from torch import nn


def _linear_4bit_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every bitsandbytes `Linear4bit` of `model`, by name."""
    if "bitsandbytes" not in sys.modules:  # no 4-bit layer without it; importing it here would cost every run
        return []
    from bitsandbytes.nn import Linear4bit

    return [(name, module) for name, module in model.named_modules() if isinstance(module, Linear4bit)]


def keep_4bit_weights_unpacked(model: nn.Module) -> int:
    """Switch off bitsandbytes' CPU inference packing on every `Linear4bit` of `model`; returns how many layers.

    `Linear4bit.forward` packs only when the layer's `support_avx512bf16_for_cpu` (set from the CPU at construction)
    is true; with it false, generation and training both run the differentiable `matmul_4bit` on the unpacked weight.
    """
    layers = _linear_4bit_layers(model)
    for _, layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def packed_4bit_layers(model: nn.Module) -> list[str]:
    """Names of the `Linear4bit` layers of `model` whose weight is in bitsandbytes' inference-only CPU layout."""
    return [
        name
        for name, layer in _linear_4bit_layers(model)
        if getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    ]
