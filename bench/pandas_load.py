"""pandas baseline for `heldout bench load`: read_csv + the same cleaning heldout does
(strip names and labels, drop repeated header lines, map families, drop identifier columns,
text -> NaN, +-inf -> NaN, drop rows with NaN, one-hot categorical text, drop constant
columns, count duplicate rows, convert to float32). Prints one line: seconds, rows, cols,
peak RSS above the baseline in MB.

usage: python3 bench/pandas_load.py FILE LABEL [FAMILY_MAP]
"""
import resource
import sys
import time

import numpy as np
import pandas as pd

ID_NAMES = {"id", "flowid", "srcip", "dstip", "srcport", "dstport", "timestamp"}


def norm(c):
    return "".join(ch for ch in c.lower() if ch.isalnum())


def main():
    path, label = sys.argv[1], sys.argv[2]
    fmap = sys.argv[3] if len(sys.argv) > 3 else None
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    df = pd.read_csv(path, low_memory=False, na_values=["?"], skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    df = df[df[label].astype(str) != label]  # repeated header lines
    y = df[label].astype(str).str.strip()
    if fmap:
        m = pd.read_csv(fmap)
        y = y.map(dict(zip(m.iloc[:, 0].str.strip(), m.iloc[:, 1].str.strip())))
    feats = df.drop(columns=[label])
    feats = feats[[c for c in feats.columns if norm(c) not in ID_NAMES]]
    numeric, categorical = {}, []
    for c in feats.columns:
        col = feats[c]
        if col.dtype == object or str(col.dtype).startswith("str"):
            conv = pd.to_numeric(col, errors="coerce")
            if conv.notna().mean() > 0.99:
                numeric[c] = conv
            else:
                categorical.append(c)
        else:
            numeric[c] = col
    x = pd.DataFrame(numeric)
    if categorical:
        x = pd.concat([x, pd.get_dummies(feats[categorical], dtype=np.float64)], axis=1)
    x = x.replace([np.inf, -np.inf], np.nan)
    keep = x.notna().all(axis=1)
    x, y = x[keep], y[keep]
    x = x.loc[:, x.nunique() > 1]
    dups = int(pd.concat([x, y.rename("__y")], axis=1).duplicated().sum())
    arr = x.to_numpy(dtype=np.float32)
    secs = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"pandas {path.split('/')[-1]} rows {arr.shape[0]} cols {arr.shape[1]} "
          f"dups {dups} seconds {secs:.3f} peak_mb {peak:.1f}")


if __name__ == "__main__":
    main()
