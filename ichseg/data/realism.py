"""How far the synthetic head CT is from real head CT: HU statistics per tissue class.

Both kinds of slice are classified by the same rule (``threshold_classes``), so like is compared
with like: inside the skull (the generator's brain map for a synthetic slice, the segmented cranial
cavity for a real one), parenchyma is where the HU smoothed over 2 pixels lies in 18-50 and CSF
where it lies in -30-15; bone is HU above 300; blood is the lesion mask. The statistics are taken on
the unsmoothed HU, so they include the noise; soft-tissue pixels within 2 mm of bone are left out
(there the reconstruction blurs bone into them). The windows bias the parenchyma and CSF ranges of
both towards the windows; what differs between the rows is the distribution inside them (mean,
spread, noise) and how many pixels fall in each class. Blood on the real slices is inserted
(synthetic) blood; only its surroundings are real.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

CLASSES = ("parenchyma", "csf", "bone", "blood")
STAT_COLUMNS = ["source", "tissue", "pixels", "mean", "std", "p5", "median", "p95"]


def away_from_bone(classes: dict[str, np.ndarray], pixel_mm: float, margin_mm: float = 2.0) -> dict[str, np.ndarray]:
    """The soft-tissue classes without the pixels within ``margin_mm`` of bone."""
    near = ndimage.binary_dilation(classes["bone"], iterations=max(1, int(round(margin_mm / pixel_mm))))
    return {k: (v if k == "bone" else v & ~near) for k, v in classes.items()}


def tissue_stats(hu: np.ndarray, classes: dict[str, np.ndarray], source: str) -> pd.DataFrame:
    """One row per class: pixel count, mean, standard deviation and 5/50/95th percentiles of HU."""
    rows = []
    for name in CLASSES:
        mask = classes.get(name)
        vals = np.asarray(hu)[mask] if mask is not None else np.zeros(0)
        if vals.size == 0:
            rows.append([source, name, 0, *[np.nan] * 5])
            continue
        p5, p50, p95 = np.percentile(vals, [5, 50, 95])
        rows.append([source, name, int(vals.size), float(vals.mean()), float(vals.std()), float(p5), float(p50), float(p95)])
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def threshold_classes(hu: np.ndarray, inside: np.ndarray, blood: np.ndarray | None, pixel_mm: float) -> dict[str, np.ndarray]:
    """Parenchyma, CSF, bone and blood masks of one slice by the rule in the module docstring."""
    hu = np.asarray(hu, np.float32)
    blood = np.zeros(hu.shape, bool) if blood is None else np.asarray(blood, bool)
    sm = ndimage.gaussian_filter(hu, 2.0)
    classes = {"parenchyma": inside & (sm > 18) & (sm < 50) & ~blood, "csf": inside & (sm > -30) & (sm < 15) & ~blood,
               "bone": hu > 300, "blood": blood}
    return away_from_bone(classes, pixel_mm)


def synthetic_slice(seed: int = 0, domain: str = "instance2022", in_plane: int = 512, n_slices: int = 30,
                    randomise=None):
    """A synthetic volume with blood and, among its slices through the cerebrum (at least half the
    largest brain area), the one with the most blood: (hu 2D, classes, volume). ``randomise``: the
    phantom's per-patient randomisation (``phantom.randomise.Randomise``; None: off)."""
    from .phantom import DOMAINS, make_volume

    for s in range(seed, seed + 20):
        vol = make_volume(np.random.default_rng(s), DOMAINS[domain], in_plane, n_slices, positive=True, with_tissue=True,
                          randomise=randomise)
        area = vol.tissue["brain"].sum(axis=(0, 1))
        blood = (vol.labels > 0).sum(axis=(0, 1)) * (area >= 0.5 * area.max())
        if blood.any():
            break
    k = int(np.argmax(blood))
    hu = vol.hu[:, :, k]
    return hu, threshold_classes(hu, vol.tissue["brain"][:, :, k], vol.labels[:, :, k] > 0, vol.spacing[0]), vol


def noise_power(hu: np.ndarray, mask: np.ndarray, pixel_mm: float, freqs=(0.1, 0.2, 0.4, 0.8), roi: int = 32) -> dict:
    """Noise power spectrum (HU^2 mm^2) of ``hu`` at ``freqs`` (cycles/mm, radial bins +-0.05; keys
    as text), with the number of squares it averages,
    from every ``roi`` x ``roi`` square (half overlapping) that lies wholly in ``mask``, each less
    its least-squares plane (``boedeker2007nps``). Inside the brain this includes the fine texture
    of the tissue, the same way for a real and a synthetic slice. Empty when no square fits."""
    hu = np.asarray(hu, np.float64)
    yy, xx = np.mgrid[0:roi, 0:roi]
    basis = np.stack([np.ones(roi * roi), yy.ravel(), xx.ravel()], axis=1)
    spectra = []
    for i in range(0, hu.shape[0] - roi + 1, roi // 2):
        for j in range(0, hu.shape[1] - roi + 1, roi // 2):
            if not mask[i:i + roi, j:j + roi].all():
                continue
            patch = hu[i:i + roi, j:j + roi].ravel()
            resid = patch - basis @ np.linalg.lstsq(basis, patch, rcond=None)[0]
            spectra.append(np.abs(np.fft.fft2(resid.reshape(roi, roi))) ** 2 * pixel_mm**2 / roi**2)
    if not spectra:
        return {}
    nps = np.mean(spectra, axis=0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(roi, pixel_mm), np.fft.fftfreq(roi, pixel_mm), indexing="ij"))
    return {"rois": len(spectra), "nps_hu2mm2": {f"{q:g}": float(nps[np.abs(f - q) <= 0.05].mean()) for q in freqs}}


def real_slice_classes(rs, hu: np.ndarray | None = None, blood: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Classes of a ``realct.RealSlice`` (``hu``: the slice with an inserted lesion, ``blood`` its mask)."""
    return threshold_classes(rs.hu if hu is None else hu, rs.cavity, blood, rs.pixel_mm)


def intracranial_histogram(hu: np.ndarray, inside: np.ndarray, bins=np.arange(-20, 101, 2)) -> tuple[np.ndarray, np.ndarray]:
    """Normalised HU histogram (density) of the pixels ``inside`` the skull, over ``bins``."""
    counts, edges = np.histogram(np.asarray(hu)[inside], bins=bins)
    return counts / max(counts.sum(), 1), edges


def compare(seed: int = 0, in_plane: int = 512) -> tuple[pd.DataFrame, dict]:
    """HU statistics per tissue class of one synthetic slice and of every real slice (with one
    inserted intraparenchymal lesion each, for the blood row). Returns (table, images) where
    ``images`` maps a title to (hu, inside-the-skull mask) for figures."""
    from . import realct

    hu, classes, _ = synthetic_slice(seed, in_plane=in_plane)
    tables = [tissue_stats(hu, classes, "synthetic")]
    images = {"synthetic": (hu, classes["parenchyma"] | classes["csf"] | classes["blood"])}
    rng = np.random.default_rng([seed, 99])
    for rs in realct.available_slices():
        got = None
        for _ in range(10):
            got = realct._insert(rs, "intraparenchymal", rng)
            if got is not None and got[1].any():
                break
        blood = got[1] if got is not None else None
        r_hu = got[0] if got is not None else rs.hu
        tables.append(tissue_stats(r_hu, real_slice_classes(rs, r_hu, blood), f"real {rs.name}"))
        c = real_slice_classes(rs)
        images[f"real {rs.name}"] = (rs.hu, c["parenchyma"] | c["csf"])
    return pd.concat(tables, ignore_index=True), images


def whole_head_compare(seed: int = 0, in_plane: int = 256) -> tuple[pd.DataFrame, dict]:
    """HU statistics per tissue class of a synthetic slice and of the real whole-head CT
    (``invesalius``) at the level of the lateral ventricles (its slice with the largest cranial
    cavity in the upper half), classified by the same rule. Blood on the real head is left out (none
    is inserted here). Returns (table, images) like ``compare``; both images are RAS+ (X, Y)."""
    from .invesalius import read_cranium
    from .realvolume import cavity

    hu, classes, _ = synthetic_slice(seed, in_plane=in_plane)
    tables = [tissue_stats(hu, classes, "synthetic")]
    images = {"synthetic": (hu, classes["parenchyma"] | classes["csf"] | classes["blood"])}
    head = read_cranium()
    cav = cavity(head)
    area = cav.sum(axis=(0, 1))
    k = int(np.argmax(area * (np.arange(len(area)) >= len(area) // 2)))
    r_hu = head.hu[:, :, k]
    c = threshold_classes(r_hu, cav[:, :, k], None, head.spacing[0])
    tables.append(tissue_stats(r_hu, c, f"real {head.name} slice {k}"))
    images[f"real {head.name} slice {k}"] = (r_hu, c["parenchyma"] | c["csf"])
    return pd.concat(tables, ignore_index=True), images


def figure(images: dict, bins=np.arange(-20, 101, 2)):
    """Each image of ``compare`` at the brain window (L40/W80) and a bone window (L600/W2800), and the
    HU histograms inside the skull. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.2 * (n + 1), 6.4), squeeze=False)
    for j, (title, (hu, inside)) in enumerate(images.items()):
        ras = title == "synthetic" or title.startswith("real Cranium")  # RAS+ (X, Y) arrays, not DICOM frames
        img = np.rot90(np.asarray(hu)) if ras else np.asarray(hu)  # anterior up in all
        axes[0, j].imshow(img, cmap="gray", vmin=0, vmax=80)
        axes[1, j].imshow(img, cmap="gray", vmin=-800, vmax=2000)
        axes[0, j].set_title(title, fontsize=8)
        for ax in axes[:, j]:
            ax.axis("off")
        dens, edges = intracranial_histogram(hu, inside, bins)
        axes[0, n].step(edges[:-1], dens, where="post", label=title)
    axes[0, n].set_xlabel("HU inside the skull (parenchyma, CSF, blood)")
    axes[0, n].legend(fontsize=7)
    axes[1, n].axis("off")
    axes[0, 0].set_ylabel("brain window 40/80")
    axes[1, 0].set_ylabel("bone window 600/2800")
    fig.tight_layout()
    return fig


def matched_levels(volume, real_slices) -> list[int]:
    """For each real slice (``realct.RealSlice``), the axial slice of a synthetic volume (with tissue
    maps, RAS+ X × Y × Z) at a similar level. The real slice with the largest cranial cavity is taken
    to lie at the level of the lateral ventricles and gets the synthetic slice where the ventricles
    are largest; every other real slice gets the slice at or below that one whose brain area,
    relative to it, is closest to the real slice's cavity relative to the largest real cavity."""
    areas = np.array([rs.cavity.sum() * rs.pixel_mm ** 2 for rs in real_slices], dtype=float)
    brain = np.asarray(volume.tissue["brain"]).sum(axis=(0, 1)).astype(float)
    ref = int(np.argmax(np.asarray(volume.tissue["ventricles"]).sum(axis=(0, 1))))
    levels = []
    for a in areas:
        if a == areas.max():
            levels.append(ref)
        else:
            levels.append(int(np.argmin(np.abs(brain[: ref + 1] / max(brain[ref], 1.0) - a / areas.max()))))
    return levels


def resample_square(hu: np.ndarray, size: int) -> np.ndarray:
    """A square slice resampled to ``size`` × ``size`` pixels, smoothed first when shrunk (antialiased
    like the preparation's resize), so a 512² real slice reads at the models' input size."""
    hu = np.asarray(hu, dtype=np.float32)
    factor = hu.shape[0] / size
    if factor > 1:
        hu = ndimage.gaussian_filter(hu, sigma=(factor - 1) / 2)
    return ndimage.zoom(hu, (size / hu.shape[0], size / hu.shape[1]), order=1)
