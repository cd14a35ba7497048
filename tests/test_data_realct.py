"""The realct domain (real pydicom head CT slices and the real whole-head InVesalius volume, with
inserted hemorrhages) and the realism statistics: written in the PhysioNet format, read by the same
ingestion path, one cluster per real image, lesions in real parenchyma with blood HU, negatives
untouched; a one-line error when pydicom or the volume is missing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ichseg.data import PrepConfig, get_layout, load_pair, prepare_dataset
from ichseg.data import invesalius, realism, realct
from ichseg.engine.data import raw_folder
from ichseg.errors import IchsegError

from _data_helpers import hide_pydicom


def _have_pydicom() -> bool:
    try:
        realct.read_real_slice("J2K_pixelrep_mismatch.dcm")
        realct.read_real_slice("693_UNCR.dcm")
    except IchsegError:
        return False
    return True


needs_real = pytest.mark.skipif(not _have_pydicom(), reason="the realct extra (pydicom, pydicom-data) is not installed")
needs_all = pytest.mark.skipif(not (_have_pydicom() and invesalius.have_cranium()),
                               reason="the realct set needs the realct extra (pydicom, pydicom-data) and "
                                      f"{invesalius.CRANIUM_PATH} ({invesalius.INSTALL_HINT})")


def test_missing_pydicom_is_one_line_error(monkeypatch):
    hide_pydicom(monkeypatch)
    with pytest.raises(IchsegError, match=r"pip install 'ichseg\[realct\]'") as err:
        realct.write_realct("/nonexistent/realct", draws=1)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("realct")
    return realct.write_realct(root / "raw", draws=3, seed=0), root


@needs_real
def test_real_slices_decode_with_head_ct_hu():
    for rs in realct.available_slices():
        assert rs.hu.shape == (512, 512) and 0.4 < rs.pixel_mm < 0.5
        assert 20 <= np.median(rs.hu[rs.parenchyma]) <= 45  # brain
        assert rs.bone.sum() > 5000 and rs.cavity.sum() > 50_000


@needs_all
def test_written_in_physionet_format_and_prepared_by_the_same_path(written):
    raw, root = written
    meta = json.loads((raw / "realct.json").read_text())
    cases = meta["cases"]
    by_source = pd.Series([c["source"] for c in cases.values()]).value_counts()
    # J2K: 1 negative + 3 lesions; 693: 3 lesions only (its untouched slice is not a normal head);
    # the whole head: 1 negative + its lesion copies
    assert by_source["J2K_pixelrep_mismatch.dcm"] == 4 and by_source["693_UNCR.dcm"] == 3
    assert by_source["Cranium.inv3"] >= 1 + 10
    assert [c["inserted"] for c in cases.values()].count(None) == 2
    assert all(c["blood_voxels"] > 0 for c in cases.values() if c["inserted"])
    found = get_layout("realct").discover(raw)
    assert len(found.cases) == len(cases)
    assert {c.patient for c in found.cases} == {"J2K_pixelrep_mismatch.dcm", "693_UNCR.dcm", "Cranium.inv3"}
    assert get_layout("physionet").signature(raw)  # the same folder format
    prepared = prepare_dataset("realct", raw, root / "prepared", PrepConfig(size=32, test_fraction=0.1))
    t = pd.read_csv(prepared / "slices.csv", keep_default_na=False, na_values=[""])
    assert set(t.split) == {"test"} and t.patient.nunique() == 3  # every image tested, whatever test_fraction
    vol = t[t.patient == "Cranium.inv3"]
    assert (vol.positive == 0).sum() >= 36  # the clean head, all of it, plus the copies' margin slices
    assert set(t[t.positive == 1].subtype) >= {"intraparenchymal", "subdural", "epidural", "intraventricular", "subarachnoid"}
    assert set(vol.thickness_mm.round(2)) == {4.5}


@needs_all
def test_inserted_blood_is_blood_in_real_parenchyma_and_the_rest_is_untouched(written):
    raw, _ = written
    orig = {rs.name: rs for rs in realct.available_slices()}
    meta = json.loads((raw / "realct.json").read_text())["cases"]
    for vid, info in meta.items():
        if info["source"] not in orig:
            continue  # the whole-head volume: tests/test_data_realvolume.py
        image, mask = load_pair(raw / "ct_scans" / f"{vid}.nii", raw / "masks" / f"{vid}.nii")
        rs = orig[info["source"]]
        hu, m = image.data[:, :, 0], mask.data[:, :, 0] > 0
        ref = np.rint(rs.hu)
        # the canonical (RAS+) grid flips the DICOM frame: compare in the DICOM frame
        hu_dcm = np.flipud(np.fliplr(hu)).T if hu.shape == ref.shape else None
        m_dcm = np.flipud(np.fliplr(m)).T
        assert hu_dcm is not None
        if info["inserted"] is None:
            assert not m.any() and np.array_equal(hu_dcm, ref)
            continue
        assert 45 <= np.median(hu_dcm[m_dcm]) <= 90
        assert (m_dcm & rs.cavity).sum() >= 0.95 * m_dcm.sum()  # inside the skull
        far = ~np.asarray(__import__("scipy.ndimage", fromlist=["x"]).binary_dilation(m_dcm, iterations=25))
        assert np.array_equal(hu_dcm[far], ref[far])  # away from the lesion the real pixels stay
        if rs.side == "left":  # 693: only the patient's right hemisphere (image left), away from the collection
            assert not m_dcm[:, 256:].any()

        area_mm2 = m_dcm.sum() * rs.pixel_mm ** 2
        assert area_mm2 >= realct.MIN_LESION_MM2, (vid, area_mm2)  # no speck no reader would mark
        if info["inserted"] in ("subdural", "epidural"):  # over the convexity, against the calvarium
            from scipy import ndimage
            d_calvarium = ndimage.distance_transform_edt(~rs.calvarium) * rs.pixel_mm
            assert d_calvarium[m_dcm].max() <= 25.0


@needs_real
def test_the_calvarium_is_the_outer_shell_not_the_skull_base():
    """Extra-axial inserts are placed against the calvarium: on the skull-base slice it excludes the
    petrous ridges and the sellar bones in the middle of the head; on the vertex-ward slice it is the
    whole ring of the skull."""
    j2k, supra = (realct.read_real_slice(n) for n in ("J2K_pixelrep_mismatch.dcm", "693_UNCR.dcm"))
    rows, cols = j2k.hu.shape
    centre = np.zeros(j2k.hu.shape, bool)
    centre[rows // 2 - 80: rows // 2 + 80, cols // 2 - 80: cols // 2 + 80] = True
    assert (j2k.bone & centre).sum() > 500 and not (j2k.calvarium & centre).any()
    assert supra.calvarium.sum() >= 0.8 * supra.bone[:, 100:420].sum()


def test_engine_writes_realct_through_the_raw_folder_path(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(realct, "write_realct", lambda out, draws, seed, whole_head: calls.append((out, draws, seed, whole_head)) or out.mkdir(parents=True))
    out = raw_folder({"data": {"realct": {"draws": 2, "seed": 5}}}, "realct", tmp_path)
    assert calls == [(out, 2, 5, True)] and (out / ".complete").exists()
    raw_folder({"data": {"realct": {"draws": 2, "seed": 5}}}, "realct", tmp_path)
    assert len(calls) == 1  # a no-op once written
    slices_only = raw_folder({"data": {"realct": {"draws": 2, "seed": 5, "whole_head": False}}}, "realct", tmp_path)
    assert slices_only != out and calls[-1] == (slices_only, 2, 5, False)  # its own folder: another set


def test_tissue_stats_and_threshold_classes():
    hu = np.full((40, 40), -1000.0, np.float32)
    hu[5:35, 5:35] = 1200  # bone
    hu[8:32, 8:32] = 30  # parenchyma
    hu[12:16, 12:28] = 5  # CSF
    hu[20:26, 18:26] = 70  # blood
    blood = hu == 70
    inside = np.zeros_like(blood)
    inside[8:32, 8:32] = True
    c = realism.threshold_classes(hu, inside, blood, pixel_mm=0.5)
    t = realism.tissue_stats(hu, c, "toy").set_index("tissue")
    assert t.loc["bone", "median"] == 1200 and t.loc["blood", "median"] == 70
    assert t.loc["parenchyma", "median"] == 30 and t.loc["csf", "median"] <= 15
    assert not (c["parenchyma"] & c["blood"]).any()


@needs_real
def test_realism_compare_synthetic_and_real():
    table, images = realism.compare(seed=1, in_plane=128)
    assert set(table.source) == {"synthetic", "real J2K_pixelrep_mismatch.dcm", "real 693_UNCR.dcm"}
    for src, g in table.groupby("source"):
        g = g.set_index("tissue")
        assert 20 <= g.loc["parenchyma", "median"] <= 45, src
        assert g.loc["bone", "median"] > 300, src
        assert 45 <= g.loc["blood", "median"] <= 90, src
    assert len(images) == 3


@needs_real
def test_missing_whole_head_volume_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(invesalius, "CRANIUM_PATH", tmp_path / "absent" / "Cranium.inv3")
    with pytest.raises(IchsegError, match="invesalius-examples") as err:
        realct.write_realct(tmp_path / "raw", draws=1)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not invesalius.have_cranium(), reason=f"{invesalius.CRANIUM_PATH} absent: {invesalius.INSTALL_HINT}")
def test_realism_synthetic_against_the_real_whole_head():
    table, images = realism.whole_head_compare(seed=1, in_plane=128)
    assert len(images) == 2 and any(k.startswith("real Cranium") for k in images)
    for src, g in table.groupby("source"):
        g = g.set_index("tissue")
        assert 15 <= g.loc["parenchyma", "median"] <= 45, src
        assert g.loc["bone", "median"] > 300, src
    real = table[table.source.str.startswith("real")].set_index("tissue")
    assert real.loc["csf", "pixels"] > 500 and real.loc["csf", "median"] < 15  # the lateral ventricles
    assert real.loc["parenchyma", "pixels"] > 5000 and real.loc["blood", "pixels"] == 0  # a head without blood


def test_an_older_realct_folder_is_refused_with_what_to_do(tmp_path):
    for sub in ("ct_scans", "masks"):
        (tmp_path / sub).mkdir()
    (tmp_path / "realct.json").write_text(json.dumps({"seed": 0, "draws": 6, "cases": {}}))  # no "format": the old one
    with pytest.raises(IchsegError, match="older format.*delete") as err:
        get_layout("realct").discover(tmp_path)
    assert "\n" not in str(err.value)


def test_synthetic_levels_match_the_real_slices_by_cavity_area():
    """The larger real cavity gets the level of the largest ventricles; a smaller one the slice below
    whose brain area, relative to that level, matches its cavity relative to the larger one."""
    from types import SimpleNamespace

    brain_px = [10, 30, 60, 80, 95, 100, 90, 50]
    brain = np.zeros((20, 20, len(brain_px)), bool)
    for z, a in enumerate(brain_px):
        brain.ravel().reshape(400, -1)[:a, z] = True
    ventricles = np.zeros_like(brain)
    ventricles[:3, :3, 5] = True
    volume = SimpleNamespace(tissue={"brain": brain, "ventricles": ventricles})
    cavity = lambda px: np.arange(400).reshape(20, 20) < px  # noqa: E731
    real = [SimpleNamespace(cavity=cavity(240), pixel_mm=0.5), SimpleNamespace(cavity=cavity(100), pixel_mm=1.0)]
    # cavities 60 and 100 mm²: the second is the reference (level 5), the first 0.6 of it -> brain 60 (level 2)
    assert realism.matched_levels(volume, real) == [2, 5]


def test_resampling_to_the_model_size_keeps_the_hu():
    hu = np.full((64, 64), 30.0, np.float32)
    hu[:, 32:] = 70.0
    small = realism.resample_square(hu, 16)
    assert small.shape == (16, 16) and small[:, :6].mean() == pytest.approx(30, abs=0.5)
    assert small[:, -6:].mean() == pytest.approx(70, abs=0.5)


@needs_real
def test_the_real_slices_are_drawn_above_synthetic_ones_at_one_window():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ichseg.data.phantom import phantom_case
    from ichseg.report.figures import real_synthetic_figure

    volume = phantom_case("bhsd", seed=0, index=0, in_plane=64, with_tissue=True)
    real = realct.available_slices()
    levels = realism.matched_levels(volume, real)
    by_name = dict(zip((rs.name for rs in real), levels))
    assert by_name["J2K_pixelrep_mismatch.dcm"] < by_name["693_UNCR.dcm"]  # the skull base lies below the ventricles
    fig = real_synthetic_figure(real, volume, levels, size=64)
    try:
        images = [im for ax in fig.axes for im in ax.images]
        assert len(images) == 4 and {im.get_clim() for im in images} == {(0.0, 80.0)}
        assert all(im.get_array().shape == (64, 64) for im in images)
    finally:
        plt.close(fig)
