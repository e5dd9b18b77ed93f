"""Plots (matplotlib, Agg backend; nothing is shown on screen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcml.io.common import atomic_output


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_mapset_examples(ms, out: str | Path, *, n_examples: int = 4, seed: int = 0,
                         overwrite: bool = False) -> Path:
    """Draw ``n_examples`` maps (all channels, plus truth maps) of a MapSet into a PNG."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    n = min(n_examples, ms.n)
    idx = np.sort(rng.choice(ms.n, size=n, replace=False)) if ms.n else np.array([], int)
    cols = list(range(len(ms.channels))) + [f"truth:{k}" for k in ms.truth]
    fig, axes = plt.subplots(max(n, 1), len(cols), figsize=(2.6 * len(cols), 2.4 * max(n, 1)), squeeze=False)
    ext = ms.extent
    tname = next((t for t in ("log10_mass_total", "age", "distance") if t in ms.targets), None)
    for r, i in enumerate(idx):
        for c, col in enumerate(cols):
            ax = axes[r, c]
            if isinstance(col, int):
                img, label = ms.maps[i, col], f"{ms.channels[col]} [{ms.units[col]}]"
                cmap = "RdBu_r" if ms.channels[col] in ("v",) else "viridis"
                if cmap == "RdBu_r":
                    lim = float(np.nanmax(np.abs(img))) or 1.0
                    im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap, vmin=-lim, vmax=lim)
                else:
                    im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap)
            else:
                k = col.split(":", 1)[1]
                img, label = ms.truth[k][i, 0], f"truth {k} [{ms.truth_units.get(k, '')}]"
                im = ax.imshow(img, origin="lower", extent=ext, cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(label, fontsize=8)
            ax.tick_params(labelsize=6)
            if c == 0:
                lab = f"#{i}"
                if tname:
                    lab += f"  {tname}={ms.targets[tname][i]:.2f}"
                ax.set_ylabel(f"{lab}\n[{ms.pixel_unit}]", fontsize=7)
    fig.tight_layout()
    out = Path(out)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
