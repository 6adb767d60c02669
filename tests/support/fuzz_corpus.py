"""Generate the fuzz corpus: mutated and truncated copies of real .tflite and .h5 models.

Deterministic for a seed. Mutations: truncation (anywhere, including inside the
header), random byte flips (anywhere, or packed into the header and its tables),
zeroed ranges, 32-bit fields overwritten with huge or negative values, and, for
Keras files, same-length rewrites inside the stored model config (layer classes,
activations, dtypes) so the file stays readable and the loader meets layers and
values it must refuse. Run: python tests/fuzz_corpus.py OUT_DIR [--seed N]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

# same-length rewrites of the Keras JSON config (class names, activations, dtypes, shapes)
CONFIG_REWRITES = [
    (b'"Conv2D"', b'"Lambda"'),
    (b'"Dense"', b'"Dunce"'),
    (b'"relu"', b'"gelu"'),
    (b'"float32"', b'"float64"'),
    (b'"same"', b'"ssss"'),
    (b'"Activation"', b'"Attention"'[:12]),
    (b'"channels_last"', b'"channels_fir"'),
    (b'"kernel_size": [', b'"kernel_size":[-'),
    (b'"strides": [', b'"strides":[0,'),
    (b'"units": ', b'"units":-'),
]


def _flip(data: bytearray, rng: random.Random, count: int, limit: int | None = None) -> None:
    span = min(len(data), limit or len(data))
    for _ in range(count):
        data[rng.randrange(span)] ^= 1 << rng.randrange(8)


def _mutants(seed: bytes, rng: random.Random, count: int, keras: bool):
    for i in range(count):
        data = bytearray(seed)
        kind = i % 6
        if kind == 0:  # truncated
            cut = rng.choice([0, 1, 4, 8, 16, 64, rng.randrange(len(data))])
            yield "truncated", bytes(data[:cut])
            continue
        if kind == 1:  # flips anywhere
            _flip(data, rng, rng.randint(1, 24))
        elif kind == 2:  # flips in the header and its tables
            _flip(data, rng, rng.randint(1, 8), limit=1024)
        elif kind == 3:  # a zeroed range
            start = rng.randrange(len(data))
            end = min(len(data), start + rng.randint(4, 4096))
            data[start:end] = bytes(end - start)
        elif kind == 4:  # 32-bit fields overwritten
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(0, max(1, len(data) - 4)) & ~3
                data[at : at + 4] = rng.choice(
                    [b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff", b"\x00\x00\x10\x00"]
                )
        elif keras:  # rewrites inside the model config
            old, new = rng.choice(CONFIG_REWRITES)
            at = bytes(data).find(old)
            if at < 0:
                _flip(data, rng, 4)
            else:
                data[at : at + len(new)] = new
        else:
            _flip(data, rng, rng.randint(1, 4), limit=256)
            start = rng.randrange(len(data))
            del data[start : start + rng.randint(1, 64)]  # bytes cut out: every later offset shifts
        yield ["", "flipped", "header", "zeroed", "fields", "config" if keras else "spliced"][kind], bytes(data)


def generate(out: Path, seeds: list[Path], per_seed: int, seed: int = 0) -> list[Path]:
    """Write `per_seed` mutants of every seed file into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for source in seeds:
        keras = source.suffix.lower() in (".h5", ".keras")
        for i, (kind, data) in enumerate(_mutants(source.read_bytes(), rng, per_seed, keras)):
            path = out / f"{source.stem}_{i:03d}_{kind}{source.suffix}"
            path.write_bytes(data)
            paths.append(path)
    return paths


def default_seeds(shared: Path) -> list[Path]:
    root = shared / "models" / "mlperf_tiny"
    return [
        root / "kws" / "kws_ref_model_int8.tflite",
        root / "ic" / "pretrainedResnet_int8.tflite",
        root / "ad" / "ad01_float32.tflite",
        root / "kws" / "kws_ref_model.h5",
    ]


if __name__ == "__main__":
    from conftest import SHARED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-seed", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(len(generate(args.out, default_seeds(SHARED), args.per_seed, args.seed)), "files in", args.out)
