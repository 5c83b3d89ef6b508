"""GGUF → bf16 safetensors for vLLM's CPU build (which cannot load GGUF).

Run with the vLLM virtual environment's Python (it has transformers, gguf and accelerate):

    python convert_gguf.py GGUF_FILE OUT_DIR

Standalone on purpose: it imports nothing from Shiori, so it runs in that other environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # the weights are dequantised now: save them as plain bf16, not as a "quantised" model
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not getattr(tokenizer, "chat_template", None):
        raise SystemExit(f"{gguf.name} carries no chat template; cannot serve it for chat")
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / "shiori-conversion.json").write_text(
        json.dumps(
            {
                "source": gguf.name,
                "eos_token": tokenizer.eos_token,
                "bos_token": tokenizer.bos_token,
            },
            indent=2,
        )
    )
    tmp.rename(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
