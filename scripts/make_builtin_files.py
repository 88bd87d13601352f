"""Write nnctl/data/files/<name>.npz from the data files scikit-learn ships (run once; the files are committed).

    python scripts/make_builtin_files.py

nnctl reads these at run time instead of importing scikit-learn (about 0.8 CPU-s per process). Each file holds
`x` (float32, exactly `loader().data.astype(float32)`) and `y` (the loader's `target`, dtype kept).
`tests/test_builtin_files.py` checks that they are bit-identical to scikit-learn's loaders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn.datasets as ds

LOADERS = {
    "iris": ds.load_iris,
    "wine": ds.load_wine,
    "breast_cancer": ds.load_breast_cancer,
    "digits": ds.load_digits,
    "diabetes": ds.load_diabetes,
}
OUT = Path(__file__).resolve().parent.parent / "nnctl" / "data" / "files"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, loader in LOADERS.items():
        b = loader()
        path = OUT / f"{name}.npz"
        np.savez_compressed(path, x=b.data.astype(np.float32), y=b.target)
        print(f"{path}: x {b.data.shape}, y {b.target.shape} {b.target.dtype}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
