"""Distil static word-piece vectors from all-MiniLM-L6-v2 (the model2vec technique).

Each vocabulary token is passed through the transformer alone (``[CLS] token [SEP]``),
its output mean-pooled as the sentence model pools; the vectors are reduced by PCA
to ``--dims`` dimensions and scaled by a SIF weight, a / (a + p), p being the
token's frequency in English (``wordfreq``; word pieces ``##x`` and unknown tokens
count as rare), so that common words weigh little in a mean. Not run by the tests
or at run time: torch is needed here only.

    python3 -m venv /tmp/distil-venv
    /tmp/distil-venv/bin/pip install torch==2.13.0 safetensors numpy wordfreq
    /tmp/distil-venv/bin/python benchmarks/cluster/distil.py MODEL_DIR OUT.npz [--dims 128]

MODEL_DIR holds ``model.safetensors``, ``vocab.txt`` and ``config.json`` of
sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0). The forward pass is written out
here (BERT: embeddings, 6 layers of attention and feed-forward) so that nothing
but torch is needed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from wordfreq import word_frequency

SIF = 1e-3
RARE = 1e-6  # the frequency taken for word pieces and words wordfreq does not know


def forward(weights: dict[str, torch.Tensor], config: dict[str, int | float],
            ids: torch.Tensor) -> torch.Tensor:
    """BERT's last hidden state for a batch of equal-length sequences, no padding."""
    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])

    def w(name: str) -> torch.Tensor:
        return weights[name]

    def norm(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return torch.nn.functional.layer_norm(
            x, x.shape[-1:], w(prefix + ".weight"), w(prefix + ".bias"), eps)

    def linear(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return x @ w(prefix + ".weight").T + w(prefix + ".bias")

    batch, length = ids.shape
    positions = torch.arange(length)
    x = (w("embeddings.word_embeddings.weight")[ids]
         + w("embeddings.position_embeddings.weight")[positions]
         + w("embeddings.token_type_embeddings.weight")[0])
    x = norm(x, "embeddings.LayerNorm")
    size = x.shape[-1] // heads
    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}."

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, heads, size).transpose(1, 2)

        q = split(linear(x, p + "attention.self.query"))
        k = split(linear(x, p + "attention.self.key"))
        v = split(linear(x, p + "attention.self.value"))
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(size), dim=-1) @ v
        attention = attention.transpose(1, 2).reshape(batch, length, -1)
        x = norm(x + linear(attention, p + "attention.output.dense"),
                 p + "attention.output.LayerNorm")
        hidden = torch.nn.functional.gelu(linear(x, p + "intermediate.dense"))
        x = norm(x + linear(hidden, p + "output.dense"), p + "output.LayerNorm")
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dims", type=int, default=128)
    args = parser.parse_args()
    config = json.loads((args.model / "config.json").read_text())
    weights = {k.removeprefix("bert."): v.float()
               for k, v in load_file(str(args.model / "model.safetensors")).items()}
    vocab = (args.model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    keep = [i for i, token in enumerate(vocab)
            if not (token.startswith("[") and token.endswith("]"))]
    pooled = []
    with torch.no_grad():
        for start in range(0, len(keep), 2048):
            chunk = torch.tensor(keep[start:start + 2048])
            ids = torch.stack([torch.full_like(chunk, cls), chunk, torch.full_like(chunk, sep)], 1)
            pooled.append(forward(weights, config, ids).mean(dim=1))
    vectors = torch.cat(pooled).numpy().astype(np.float64)
    vectors -= vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    vectors = vectors @ components[:args.dims].T
    tokens = [vocab[i] for i in keep]
    frequency = np.array([RARE if t.startswith("##") else max(word_frequency(t, "en"), RARE)
                          for t in tokens])
    vectors *= (SIF / (SIF + frequency))[:, None]
    np.savez_compressed(args.out, tokens=np.array(tokens), vectors=vectors.astype(np.float16))
    print(f"{len(tokens)} tokens x {args.dims} dims -> {args.out} "
          f"({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
