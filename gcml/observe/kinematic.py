"""Kinematic maps (V, sigma, count) of tracer populations: THE one map-making code of gcml.

Used by ``gcml simulate-maps``, by ``gcml mock-observe --kind kinematics`` and by ``gcml predict`` on real
GC catalogues, so maps made from simulations and from observations are identical by construction.

Maps follow the Gaussian-kernel smoothing of Bekki et al. (2019, MNRAS; also Kaur et al. 2021,
Section 2.2): at every pixel centre p the tracers are weighted by

    W_i(p) = exp(-|x_i - p|^2 / (2 h^2))

with smoothing length h, and

    count(p) = sum_i W_i(p)                                (kernel-weighted number of tracers)
    V(p)     = sum_i W_i v_i / count(p)                     (weighted mean line-of-sight velocity)
    sigma(p) = sqrt(sum_i W_i (v_i - V(p))^2 / count(p) - e^2(p))   (weighted dispersion)

where e^2(p) = sum_i W_i e_i^2 / count(p) is the weighted mean squared velocity error, subtracted only
when ``MapGeometry.subtract_errors`` is set (clipped at zero). The Gaussian factorises,
W_i(p) = wx_i(p_x) wy_i(p_y), so all three channels of a batch come from one batched matrix product
(B, H, N) @ (B, N, 3W): no loop over tracers, pixels or maps.

Empty pixels: where count(p) < ``MapGeometry.min_count`` V and sigma are set to 0 (the count channel,
which keeps its value, tells a network that the pixel holds no information).

Array order is (B, C, H, W) with C = (v, sigma, count), H = y (rows) before W = x (columns), pixel
(0, 0) at the lower left (x_min, y_min): ``origin = "lower"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gcml.errors import InputError

CHANNELS = ["v", "sigma", "count"]
UNITS = ["km/s", "km/s", ""]


@dataclass(frozen=True)
class MapGeometry:
    """How kinematic maps are made; stored in a MapSet's /maps attributes and in model bundles.

    Attributes
    ----------
    n_pix : int
        Pixels per side (square maps).
    extent_kpc : float
        Full width of the map [kpc]; the map covers [-extent/2, extent/2] in x and y around the centre.
    smoothing_kpc : float
        Gaussian kernel sigma h [kpc].
    min_count : float
        Pixels whose kernel-weighted count is below this get V = sigma = 0.
    subtract_errors : bool
        Subtract the kernel-weighted mean squared velocity error from sigma^2.
    """

    n_pix: int = 10
    extent_kpc: float = 40.0
    smoothing_kpc: float = 4.0
    min_count: float = 0.1
    subtract_errors: bool = False

    def __post_init__(self) -> None:
        if int(self.n_pix) < 1:
            raise InputError(f"map geometry: `n_pix` (pixels per side) must be at least 1, got {self.n_pix}")
        if not (np.isfinite(self.extent_kpc) and self.extent_kpc > 0):
            raise InputError(f"map geometry: `extent_kpc` (full map width) must be a positive number of kpc, "
                             f"got {self.extent_kpc}")
        if not (np.isfinite(self.smoothing_kpc) and self.smoothing_kpc > 0):
            raise InputError(f"map geometry: `smoothing_kpc` (kernel sigma) must be a positive number of kpc, "
                             f"got {self.smoothing_kpc}")
        if not (self.min_count >= 0):
            raise InputError(f"map geometry: `min_count` must be >= 0, got {self.min_count}")

    @property
    def pixel_scale(self) -> float:
        """Pixel size [kpc]."""
        return float(self.extent_kpc) / int(self.n_pix)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) [kpc]."""
        e = float(self.extent_kpc) / 2.0
        return (-e, e, -e, e)

    def pixel_centres(self) -> np.ndarray:
        """Pixel-centre coordinates along one axis [kpc], increasing (same for x and y)."""
        n = int(self.n_pix)
        return (np.arange(n) + 0.5) * self.pixel_scale - float(self.extent_kpc) / 2.0

    def to_attrs(self) -> dict[str, Any]:
        """Plain values for HDF5 attributes / model bundles."""
        d = asdict(self)
        d["n_pix"] = int(d["n_pix"])
        d["subtract_errors"] = bool(d["subtract_errors"])
        return d

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> MapGeometry:
        """Rebuild from a dict that holds (at least) the geometry fields; other keys are ignored."""
        names = ("n_pix", "extent_kpc", "smoothing_kpc", "min_count", "subtract_errors")
        missing = [k for k in ("n_pix", "extent_kpc", "smoothing_kpc") if k not in attrs]
        if missing:
            raise InputError(f"map geometry: missing field(s) {', '.join(missing)}")
        kw = {k: attrs[k] for k in names if k in attrs}
        kw["n_pix"] = int(kw["n_pix"])
        for k in ("extent_kpc", "smoothing_kpc", "min_count"):
            if k in kw:
                kw[k] = float(kw[k])
        if "subtract_errors" in kw:
            kw["subtract_errors"] = bool(kw["subtract_errors"])
        return cls(**kw)


def view_basis(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Projection matrices for viewing directions (theta, phi) [rad], shape (..., 3, 3).

    Rows are the sky x axis e1 = (-sin phi, cos phi, 0), the sky y axis
    e2 = (-cos theta cos phi, -cos theta sin phi, sin theta) and the line of sight
    n = (sin theta cos phi, sin theta sin phi, cos theta) pointing away from the observer, so that
    ``P @ r`` gives (x, y, z_los) and ``P[2] @ v`` the line-of-sight velocity (positive = receding).
    theta = 0 looks down the galaxy's +z (spin) axis: face-on.
    """
    theta = np.asarray(theta, float)
    phi = np.asarray(phi, float)
    ct, st, cp, sp = np.cos(theta), np.sin(theta), np.cos(phi), np.sin(phi)
    zero = np.zeros_like(theta)
    e1 = np.stack([-sp, cp, zero], -1)
    e2 = np.stack([-ct * cp, -ct * sp, st], -1)
    n = np.stack([st * cp, st * sp, ct], -1)
    return np.stack([e1, e2, n], -2)


def random_views(u_cos: np.ndarray, u_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Viewing directions uniform on the sphere from uniform numbers: theta = arccos(2u - 1), phi = 2 pi u'."""
    return np.arccos(np.clip(2.0 * np.asarray(u_cos) - 1.0, -1.0, 1.0)), 2.0 * np.pi * np.asarray(u_phi)


def project(pos: np.ndarray, vel: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project particles of G systems onto V views each with one batched product.

    Parameters
    ----------
    pos, vel : (G, N, 3) [kpc], [km/s]
    theta, phi : (G, V) [rad]

    Returns
    -------
    x, y, v_los : (G, V, N)
    """
    p = view_basis(theta, phi)[..., None]           # (G, V, 3, 3, 1)
    # Explicit sums over the 3 components (not BLAS): every value depends only on its own galaxy, so
    # results are bit-identical whatever the batch composition.
    r = [pos[:, None, :, k] for k in range(3)]       # (G, 1, N)
    u = [vel[:, None, :, k] for k in range(3)]
    x = p[:, :, 0, 0] * r[0] + p[:, :, 0, 1] * r[1] + p[:, :, 0, 2] * r[2]
    y = p[:, :, 1, 0] * r[0] + p[:, :, 1, 1] * r[1] + p[:, :, 1, 2] * r[2]
    vlos = p[:, :, 2, 0] * u[0] + p[:, :, 2, 1] * u[1] + p[:, :, 2, 2] * u[2]
    return x, y, vlos


def kinematic_maps(
    x: np.ndarray, y: np.ndarray, v: np.ndarray, geometry: MapGeometry, *,
    v_err: np.ndarray | None = None, mask: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian-kernel V, sigma and count maps of a batch of tracer sets.

    Parameters
    ----------
    x, y : (B, N) projected positions [kpc] relative to the map centre (x to the right, y up).
    v : (B, N) line-of-sight velocities [km/s] (any systemic velocity already removed).
    geometry : MapGeometry
    v_err : (B, N), optional
        Per-tracer velocity errors [km/s]; used only when ``geometry.subtract_errors``.
    mask : (B, N) bool, optional
        False for padding / excluded tracers.

    Returns
    -------
    float32 ndarray (B, 3, H, W): channels v [km/s], sigma [km/s], count.
    """
    x = np.atleast_2d(np.asarray(x, np.float32))
    y = np.atleast_2d(np.asarray(y, np.float32))
    v = np.atleast_2d(np.asarray(v, np.float32))
    if not (x.shape == y.shape == v.shape):
        raise InputError(f"kinematic maps: x, y and v must have the same shape, got {x.shape}, {y.shape}, {v.shape}")
    b, n = x.shape
    m = np.ones((b, n), np.float32) if mask is None else np.atleast_2d(np.asarray(mask)).astype(np.float32)
    if m.shape != x.shape:
        raise InputError(f"kinematic maps: mask has shape {m.shape}, expected {x.shape}")
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    if not finite.all():
        m = m * finite
        x, y, v = (np.where(finite, a, np.float32(0)) for a in (x, y, v))
    g = geometry
    npix = int(g.n_pix)
    use_err = g.subtract_errors and v_err is not None
    e = None
    if use_err:
        e = np.atleast_2d(np.asarray(v_err, np.float32))
        if e.shape != x.shape:
            raise InputError(f"kinematic maps: v_err has shape {e.shape}, expected {x.shape}")
        e = np.where(np.isfinite(e), e, 0.0).astype(np.float32)
    out = np.empty((b, 3, npix, npix), np.float32)
    # Work in chunks of maps small enough for the temporaries to stay in the CPU cache.
    step = max(1, _CHUNK_ELEMENTS // max(1, n * npix))
    for i in range(0, b, step):
        sl = slice(i, min(i + step, b))
        out[sl] = _maps_chunk(x[sl], y[sl], v[sl], m[sl], None if e is None else e[sl], g)
    return out


_CHUNK_ELEMENTS = 1 << 17


def _kernel(p: np.ndarray, centres: np.ndarray, inv: np.float32) -> np.ndarray:
    """exp(inv (p - c)^2) for positions p (B, N) and pixel centres c (P,): (B, P, N) float32, 0 below 6e-16.

    Pixels are the middle axis so the inner loops run over the N tracers (fast in numpy).
    """
    w = np.subtract(p[:, None, :], centres[:, None])
    np.square(w, out=w)
    w *= inv
    # Arguments below -35 (weights < 6e-16) become exactly 0: negligible, and it keeps subnormal floats
    # (which are very slow on x86) out of the products; counts that small are empty pixels anyway.
    w[w < -35.0] = -np.inf
    np.exp(w, out=w)
    return w


def _maps_chunk(x, y, v, m, e, g: MapGeometry) -> np.ndarray:
    b, n = x.shape
    npix = int(g.n_pix)
    c = g.pixel_centres().astype(np.float32)
    inv = np.float32(-0.5 / float(g.smoothing_kpc) ** 2)
    # Remove each set's mean velocity first so the second moment does not lose float32 precision.
    nm = np.maximum(m.sum(1, keepdims=True), 1.0)
    v0 = (v * m).sum(1, keepdims=True) / nm
    dv = (v - v0) * m
    k = 4 if e is not None else 3
    rhs = np.empty((b, k * npix, n), np.float32)                   # rows: wx, wx dv, wx dv^2 [, wx e^2]
    wx = _kernel(x, c, inv)                                        # (B, W, N)
    rhs[:, :npix] = wx
    np.multiply(wx, dv[:, None, :], out=rhs[:, npix:2 * npix])
    np.multiply(rhs[:, npix:2 * npix], dv[:, None, :], out=rhs[:, 2 * npix:3 * npix])
    if e is not None:
        np.multiply(wx, (e * e * m)[:, None, :], out=rhs[:, 3 * npix:])
    wy = _kernel(y, c, inv)                                        # (B, H, N)
    wy *= m[:, None, :]
    s = np.matmul(wy, rhs.transpose(0, 2, 1))                      # (B, H, k W)
    s0, s1, s2 = s[..., :npix], s[..., npix:2 * npix], s[..., 2 * npix:3 * npix]
    full = s0 >= max(float(g.min_count), 1e-30)
    safe = np.where(full, s0, 1.0)
    mean = s1 / safe
    var = s2 / safe - mean * mean
    if e is not None:
        var = var - s[..., 3 * npix:] / safe
    out = np.empty((b, 3, npix, npix), np.float32)
    out[:, 0] = np.where(full, mean + v0[..., None], 0.0)
    out[:, 1] = np.where(full, np.sqrt(np.maximum(var, 0.0)), 0.0)
    out[:, 2] = s0
    return out


def kinematic_map_reference(x: np.ndarray, y: np.ndarray, v: np.ndarray, geometry: MapGeometry,
                            v_err: np.ndarray | None = None) -> np.ndarray:
    """The definition of one map, pixel by pixel (float64): slow, the reference for tests and benchmarks.

    For each pixel centre ``(xc, yc)``: weights ``w = exp(-((x-xc)^2 + (y-yc)^2) / (2 h^2))``; count
    ``sum w``; where the count reaches ``min_count``, ``V = sum(w v) / sum w`` and
    ``sigma^2 = sum(w (v - V)^2) / sum w`` (minus ``sum(w e^2) / sum w`` with ``subtract_errors``), else 0.
    Returns (3, n_pix, n_pix): v, sigma, count. :func:`kinematic_maps` computes the same for many maps at once.
    """
    g = geometry
    c = g.pixel_centres()
    out = np.zeros((3, g.n_pix, g.n_pix))
    for i, yc in enumerate(c):
        for j, xc in enumerate(c):
            w = np.exp(-((x - xc) ** 2 + (y - yc) ** 2) / (2 * g.smoothing_kpc**2))
            s = w.sum()
            out[2, i, j] = s
            if s >= g.min_count:
                m = np.sum(w * v) / s
                var = np.sum(w * (v - m) ** 2) / s
                if v_err is not None and g.subtract_errors:
                    var -= np.sum(w * v_err * v_err) / s
                out[0, i, j] = m
                out[1, i, j] = np.sqrt(max(var, 0.0))
    return out
