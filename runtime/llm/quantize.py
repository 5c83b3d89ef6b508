"""bf16 safetensors → a compressed-tensors checkpoint that vLLM's CPU build serves with int kernels.

Run with the quantisation environment's Python (llmcompressor 0.14, which pins its own
transformers and compressed-tensors; torch is the CPU build, installed first):

    python -m venv ~/.cache/shiori/quantize-venv
    ~/.cache/shiori/quantize-venv/bin/pip install torch==2.13.0
    ~/.cache/shiori/quantize-venv/bin/pip install "llmcompressor==0.14.*"
    ~/.cache/shiori/quantize-venv/bin/python quantize.py MODEL_DIR OUT_DIR --scheme w4a16

MODEL_DIR is a Hugging Face model directory in bf16 (what convert_gguf.py writes). OUT_DIR
receives config.json with a ``quantization_config`` (quant_method "compressed-tensors"),
model.safetensors, the tokenizer with its chat template, the generation config and
``shiori-quantization.json`` (the stamp: scheme, arguments, versions, seconds, peak RSS and the
weights' reconstruction error). It is written as OUT_DIR.partial and renamed when complete, so
an interrupted run leaves no half checkpoint; a finished OUT_DIR (stamp present) is a no-op.

Schemes (every nn.Linear of the decoder; the embeddings stay bf16, and so does lm_head unless
``--lm-head``: vLLM 0.32 loads a compressed-tensors lm_head with the same kernels):

- ``w4a16``: int4 weights in groups of ``--group-size`` input columns (default 32) with one bf16
  scale per group and, unless ``--symmetric``, an int4 zero point per group
  (``pack-quantized``: 8 values per int32 along the input dimension, scales
  [out, in/group], zero points [out/8, in/group]); activations stay bf16. vLLM's CPU build runs
  it with CPUWNA16LinearKernel (uint4 with zero points, or uint4b8 symmetric; any even group
  size; in/out sizes multiples of 32) — on AMX machines as int4 x dynamic int8 activations
  (VLLM_CPU_INT4_W4A8=1, its default).
- ``w8a8``: int8 weights, symmetric, one scale per output channel (``int-quantized``: int8
  weight [out, in], scale [out, 1]); activations int8, symmetric, one scale per token computed
  at run time. vLLM's CPU build runs it with CPUInt8ScaledMMLinearKernel (AMX int8 or oneDNN).

Both are data-free: the weights' scales and zero points come from their own min/max (or a
mean-squared-error search with ``--observer mse``), so no calibration text is needed.

The stamp's ``error`` is, over the quantised Linear weights, the relative RMS error
||W_q - W|| / ||W|| (W_q dequantised): ``mean`` over layers, ``max`` and the worst layer's name,
and ``by_kind`` (q_proj, down_proj, …). Errors raise: SystemExit for a bad argument or a model
directory without config.json; whatever transformers / llmcompressor raise otherwise (the
.partial directory is then left for inspection and removed by the next run).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

STAMP = "shiori-quantization.json"
SCHEMES = ("w4a16", "w8a8")
LM_HEAD = "lm_head"  # left bf16 unless asked; embeddings are not nn.Linear: never targeted


def scheme_args(scheme: str, group_size: int, symmetric: bool, observer: str) -> dict[str, Any]:
    """The QuantizationScheme fields (``weights``, ``input_activations``) of a scheme name."""
    from compressed_tensors.quantization import QuantizationArgs

    if scheme == "w4a16":
        weights = QuantizationArgs(
            num_bits=4,
            type="int",
            strategy="group",
            group_size=group_size,
            symmetric=symmetric,
            dynamic=False,
            observer=observer,
        )
        return {"weights": weights}
    if scheme == "w8a8":
        weights = QuantizationArgs(
            num_bits=8,
            type="int",
            strategy="channel",
            symmetric=True,
            dynamic=False,
            observer=observer,
        )
        activations = QuantizationArgs(
            num_bits=8, type="int", strategy="token", symmetric=True, dynamic=True
        )
        return {"weights": weights, "input_activations": activations}
    raise SystemExit(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}")


def reconstruction_error(model: Any) -> dict[str, Any]:
    """Relative RMS error of every quantised Linear weight against the bf16 original."""
    import torch
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    per_layer: dict[str, float] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            scheme = getattr(module, "quantization_scheme", None)
            if scheme is None or scheme.weights is None or not hasattr(module, "weight_scale"):
                continue
            w = module.weight.float()
            zp = getattr(module, "weight_zero_point", None)
            if zp is None:
                zp = torch.zeros_like(module.weight_scale)
            wq = fake_quantize(w, module.weight_scale.float(), zp, scheme.weights)
            per_layer[name] = float((wq - w).norm() / w.norm().clamp_min(1e-12))
    if not per_layer:
        return {"layers": 0}
    by_kind: dict[str, list[float]] = {}
    for name, err in per_layer.items():
        by_kind.setdefault(name.rsplit(".", 1)[-1], []).append(err)
    worst = max(per_layer, key=lambda n: per_layer[n])
    return {
        "layers": len(per_layer),
        "mean": round(sum(per_layer.values()) / len(per_layer), 5),
        "max": round(per_layer[worst], 5),
        "worst_layer": worst,
        "by_kind": {k: round(sum(v) / len(v), 5) for k, v in sorted(by_kind.items())},
    }


def quantize(
    model_dir: Path,
    out: Path,
    scheme: str,
    group_size: int = 32,
    symmetric: bool = False,
    observer: str = "memoryless_minmax",
    lm_head: bool = False,
) -> dict[str, Any]:
    """Write the ``scheme`` checkpoint of ``model_dir`` to ``out``; returns the stamp."""
    if (out / STAMP).is_file():
        return json.loads((out / STAMP).read_text())
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"{model_dir} has no config.json: not a model directory")
    if group_size <= 0 or group_size % 2:
        raise SystemExit(f"--group-size must be a positive even number, not {group_size}")

    import compressed_tensors
    import llmcompressor
    import torch
    import transformers
    from compressed_tensors.quantization import QuantizationScheme
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not getattr(tokenizer, "chat_template", None):
        raise SystemExit(f"{model_dir} carries no chat template; cannot serve it for chat")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16)
    args = scheme_args(scheme, group_size, symmetric, observer)
    ignore = [] if lm_head else [LM_HEAD]
    # vLLM matches a target against the layer's name, then its class name: its lm_head is a
    # ParallelLMHead, not a *Linear, so it is named explicitly or vLLM expects it unquantised
    targets = ["Linear", LM_HEAD] if lm_head else ["Linear"]
    recipe = QuantizationModifier(
        config_groups={"group_0": QuantizationScheme(targets=targets, **args)},
        ignore=ignore,
    )
    oneshot(model=model, recipe=recipe)  # no dataset: weights only (activations are dynamic)
    error = reconstruction_error(model)

    model.save_pretrained(str(tmp), save_compressed=True)
    tokenizer.save_pretrained(str(tmp))
    for extra in ("shiori-conversion.json",):  # where the bf16 weights came from
        if (model_dir / extra).is_file():
            shutil.copy2(model_dir / extra, tmp / extra)
    config = json.loads((tmp / "config.json").read_text())
    stamp = {
        "source": str(model_dir),
        "scheme": scheme,
        "format": config.get("quantization_config", {}).get("format"),
        "weights": args["weights"].model_dump(mode="json", exclude_none=True),
        "input_activations": (
            args["input_activations"].model_dump(mode="json", exclude_none=True)
            if "input_activations" in args
            else None
        ),
        "ignore": ignore,
        "calibration": "none (data-free)",
        "error": error,
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "bytes": sum(f.stat().st_size for f in tmp.iterdir() if f.is_file()),
        "versions": {
            "llmcompressor": llmcompressor.__version__,
            "compressed_tensors": compressed_tensors.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)  # an unstamped leftover
    tmp.rename(out)
    return stamp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="bf16 Hugging Face model directory")
    parser.add_argument("out_dir", type=Path, help="where the checkpoint goes")
    parser.add_argument("--scheme", choices=SCHEMES, required=True)
    parser.add_argument(
        "--group-size", type=int, default=32, help="w4a16: input columns per scale (even)"
    )
    parser.add_argument("--symmetric", action="store_true", help="w4a16: no zero points (uint4b8)")
    parser.add_argument(
        "--observer",
        default="memoryless_minmax",
        choices=("memoryless_minmax", "memoryless_mse"),
        help="how weight scales/zero points are chosen",
    )
    parser.add_argument(
        "--lm-head", action="store_true", help="quantise lm_head too (default: keep it bf16)"
    )
    ns = parser.parse_args(argv)
    stamp = quantize(
        ns.model_dir,
        ns.out_dir,
        ns.scheme,
        group_size=ns.group_size,
        symmetric=ns.symmetric,
        observer=ns.observer,
        lm_head=ns.lm_head,
    )
    json.dump(stamp, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
