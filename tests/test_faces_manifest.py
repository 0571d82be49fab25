"""Manifest loader and the Multi-PIE / CFP builders, on the tiny trees in tests/fixtures/faces/."""
from pathlib import Path

import pytest
import torch

from bench.errors import DataError
from bench.faces.manifest import (MANIFEST, build_cfp_manifest, build_cfp_pairs, build_multipie_manifest,
                                  load_manifest)

FIXTURES = Path(__file__).parent / "fixtures" / "faces"


def test_multipie_builder_maps_cameras_splits_and_gallery():
    frame = build_multipie_manifest(FIXTURES / "multipie", n_train_subjects=1)
    assert len(frame) == 7                                      # the elevated camera 08_1 is skipped
    row = frame.set_index("path").loc["session01/multiview/001/01/19_0/001_01_01_190_07.png"]
    assert (row["yaw_deg"], row["camera"], row["pose_bin"], row["illum"]) == (45, "19_0", 9, 7)
    yaws = dict(zip(frame["camera"], frame["yaw_deg"]))
    assert yaws["11_0"] == -90 and yaws["24_0"] == 90 and yaws["05_1"] == 0
    assert set(frame.loc[frame["subject_id"] == 1, "split"]) == {"train"}
    assert set(frame.loc[frame["subject_id"] != 1, "split"]) == {"test"}
    gallery = frame[frame["role"] == "gallery"]
    assert sorted(gallery["subject_id"]) == [1, 201]            # 346 has no 05_1 / illum 07 image
    assert gallery.loc[gallery["subject_id"] == 1, "session"].item() == 1


def test_load_multipie_manifest_roundtrip(tmp_path):
    csv = tmp_path / "mpie.csv"
    build_multipie_manifest(FIXTURES / "multipie", n_train_subjects=1).to_csv(csv, index=False)
    faces = load_manifest(csv, "test", size=4, root=FIXTURES / "multipie", neutral_illum=7)
    assert faces.x.shape == (3, 3, 4, 4) and faces.x.dtype == torch.float32
    assert 0 <= faces.x.min() and faces.x.max() <= 1
    assert sorted(faces.subject.tolist()) == [0, 0, 1]       # 201, 346 -> 0, 1
    assert sorted(faces.yaw.tolist()) == [-90, 0, 90]
    assert sorted(faces.illum.tolist()) == [0, 3, 12]           # native 07 swapped with 0
    assert faces.name == "multipie" and faces.split == "test" and len(faces.sha256) == 64
    again = load_manifest(csv, "test", size=4, root=FIXTURES / "multipie", neutral_illum=7)
    assert again.sha256 == faces.sha256


def test_cfp_builder_and_pairs():
    frame = build_cfp_manifest(FIXTURES / "cfp")
    assert len(frame) == 5
    row = frame[(frame["view_type"] == "profile") & (frame["cfp_index"] == 5)].iloc[0]
    assert row["path"] == "Data/Images/002/profile/01.jpg" and row["subject_id"] == 2 and row["yaw_deg"] == 90
    assert set(frame.loc[frame["subject_id"] == 1, "fold"]) == {1}
    assert set(frame.loc[frame["subject_id"] == 2, "fold"]) == {2}
    pairs = build_cfp_pairs(FIXTURES / "cfp")
    assert len(pairs) == 3 and pairs["same"].all()
    assert set(zip(pairs["protocol"], pairs["fold"])) == {("FP", 1), ("FP", 2), ("FF", 1)}


def test_load_cfp_through_registry_object(tmp_path):
    csv = tmp_path / "cfp.csv"
    build_cfp_manifest(FIXTURES / "cfp").to_csv(csv, index=False)
    faces = MANIFEST.load("test", manifest=csv, root=FIXTURES / "cfp", size=8, crop=(1, 1, 6, 6))
    assert faces.x.shape == (5, 3, 8, 8) and faces.illum.tolist() == [-1] * 5
    with pytest.raises(DataError, match="manifest"):
        MANIFEST.load("test")


def _csv(tmp_path, line, header="path,subject_id,yaw_deg,illum,split"):
    path = tmp_path / "m.csv"
    path.write_text(f"{header}\n{line}\n")
    return path


@pytest.mark.parametrize("line, match", [
    ("missing.png,1,0,0,test", r"line 2: path: file not found"),
    ("{img},x1,0,0,test", r"line 2: subject_id: expected an integer, got 'x1'"),
    ("{img},1,37,0,test", r"line 2: yaw_deg: 37 is not one of"),
    ("{img},1,0,,test", r"line 2: illum: expected an integer"),
])
def test_bad_rows_name_line_and_field(tmp_path, line, match):
    img = FIXTURES / "cfp" / "Data" / "Images" / "001" / "frontal" / "01.jpg"
    with pytest.raises(DataError, match=match):
        load_manifest(_csv(tmp_path, line.format(img=img)), "test")


def test_missing_column_and_unknown_split(tmp_path):
    with pytest.raises(DataError, match="missing column.*illum"):
        load_manifest(_csv(tmp_path, "a.png,1,0,test", header="path,subject_id,yaw_deg,split"), "test")
    with pytest.raises(DataError, match="no rows with split 'train'.*Valid choices: test"):
        load_manifest(_csv(tmp_path, "a.png,1,0,0,test"), "train")


def test_builders_on_empty_tree(tmp_path):
    with pytest.raises(DataError, match="no Multi-PIE images"):
        build_multipie_manifest(tmp_path)
    with pytest.raises(DataError, match="Pair_list_F.txt"):
        build_cfp_manifest(tmp_path)


def test_package_import_is_light_and_registry_targets_resolve():
    import subprocess
    import sys

    code = ("import sys, bench.faces as f; assert 'torch' not in sys.modules, 'torch imported';"
            "print(sorted(f.BUILTIN_DATASETS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "['face-manifest', 'synth-faces']"
    from bench.faces import BUILTIN_DATASETS
    from bench.registry import import_target

    for name, target in BUILTIN_DATASETS.items():
        assert import_target(target).name == name
