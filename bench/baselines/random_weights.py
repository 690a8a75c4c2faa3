"""Random weights for the BERT config in a model directory.

Writes MODEL_DIR/model.safetensors (a `BertModel` without pooler, drawn with
seed 0) beside MODEL_DIR/config.json. For the GPU check
(scripts/gpu-check.sh with GPU_PACK), which carries the base model's config
and tokenizer but not its 90 MB of weights: the speed measured does not
depend on the weights' values, and the CUDA tests draw their own.

Usage: python random_weights.py MODEL_DIR
"""

import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    args = ap.parse_args()
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(args.model_dir)
    model = BertModel(config, add_pooling_layer=False)
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    path = os.path.join(args.model_dir, "model.safetensors")
    save_file(weights, path + ".partial", metadata={"format": "pt"})
    os.replace(path + ".partial", path)
    print(f"wrote {len(weights)} random tensors to {path}")


if __name__ == "__main__":
    main()
