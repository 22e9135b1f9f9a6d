from __future__ import annotations

import re

import pytest

from twostream.errors import DatasetError
from twostream.splits import (
    load_splits,
    parse_split_file,
    read_classes,
    write_classes,
)

# Real HMDB51 clip names (as distributed), with their awkward characters.
BRUSH = [
    "Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi",
    "Aussie_Brushing_Hair!_brush_hair_u_nm_np1_ba_med_2.avi",
    "Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi",
]
CLAP = [
    "#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi",
    "Kurt_Kr¢mer_-_Klatschen_im_Bett_clap_u_cm_np1_fr_med_0.avi",
    "Hand_Clapping_Games_(Sing_with_Noah)_clap_f_nm_np2_fr_med_1.avi",
    "Return_of_the_King_[Theatrical]_clap_u_nm_np1_fr_bad_3.avi",
    "Mo'_Better_Blues_+_Eddie,_&_Co_clap_u_nm_np1_fr_goo_2.avi",
]


@pytest.fixture()
def hmdb(tmp_path):
    videos, splits = tmp_path / "videos", tmp_path / "splits"
    for cls, clips in (("brush_hair", BRUSH), ("clap", CLAP)):
        (videos / cls).mkdir(parents=True)
        for clip in clips:
            (videos / cls / clip).write_bytes(b"x")
    (videos / "clap" / "unlisted_clip_clap_u_nm_np1_fr_goo_9.avi").write_bytes(b"x")
    (videos / "clap" / "notes.txt").write_text("not a video")
    splits.mkdir()
    # brush_hair: LF with the trailing space the real files have, a blank line.
    (splits / "brush_hair_test_split1.txt").write_bytes(
        (f"{BRUSH[0]} 1 \n{BRUSH[1]} 2 \n\n{BRUSH[2]} 0 \n").encode()
    )
    # clap: CRLF, trailing space/tab, a BOM, a line naming a clip that does not exist,
    # and a malformed line.
    text = "\ufeff" + "".join(f"{c} {1 if i < 3 else 2} \r\n" for i, c in enumerate(CLAP))
    text += "ghost_clip_clap_u_nm_np1_fr_goo_7.avi 1\t\r\n"
    text += "garbage line without flag\r\n"
    (splits / "clap_test_split1.txt").write_bytes(text.encode("utf-8"))
    (splits / "clap_test_split2.txt").write_bytes(
        "".join(f"{c} 2\r\n" for c in CLAP).encode()
    )
    (splits / "README").write_text("not a split file")
    return videos, splits


def test_parse_split_file_tolerates_real_world_formatting(hmdb):
    _, splits = hmdb
    pairs, bad = parse_split_file(splits / "clap_test_split1.txt")
    assert [name for name, _ in pairs][:5] == CLAP  # BOM stripped, special characters kept
    assert [flag for _, flag in pairs] == [1, 1, 1, 2, 2, 1]
    assert bad == ["clap_test_split1.txt:7: garbage line without flag"]
    pairs, bad = parse_split_file(splits / "brush_hair_test_split1.txt")
    assert pairs == [(BRUSH[0], 1), (BRUSH[1], 2), (BRUSH[2], 0)] and bad == []


def test_load_splits_reports_missing_unlisted_and_bad_lines(hmdb):
    videos, splits_dir = hmdb
    splits = load_splits(splits_dir, videos)
    assert splits.classes == ["brush_hair", "clap"]
    assert sorted(splits.entries) == [1, 2]
    assert splits.missing == ["clap/ghost_clip_clap_u_nm_np1_fr_goo_7.avi"]
    assert splits.unlisted == ["clap/unlisted_clip_clap_u_nm_np1_fr_goo_9.avi"]
    assert len(splits.bad_lines) == 1
    train1 = splits.subset(1, 1)
    assert {e.key for e in train1} == {f"brush_hair/{BRUSH[0]}"} | {f"clap/{c}" for c in CLAP[:3]}
    assert {e.clip for e in splits.subset(1, 2)} == {BRUSH[1], CLAP[3], CLAP[4]}
    assert len(splits.subset(2, 2)) == 5 and splits.subset(2, 1) == []
    # Flag 0 everywhere: not used; every other existing clip is.
    assert ("brush_hair", BRUSH[2]) not in splits.used_clips()
    assert len(splits.used_clips()) == 2 + 5
    assert splits.label("clap") == 1


def test_classes_are_sorted_folder_names_and_round_trip(tmp_path, hmdb):
    videos, _ = hmdb
    (videos / "a_first").mkdir()
    (videos / ".hidden").mkdir()
    classes = read_classes(videos)
    assert classes == ["a_first", "brush_hair", "clap"]
    write_classes(classes, tmp_path / "classes.txt")
    assert (tmp_path / "classes.txt").read_text().splitlines() == classes


def test_missing_or_empty_folders_raise_naming_the_path(tmp_path, hmdb):
    videos, splits = hmdb
    with pytest.raises(DatasetError, match=f"videos folder not found: {tmp_path / 'nope'}"):
        load_splits(splits, tmp_path / "nope")
    with pytest.raises(DatasetError, match="splits folder not found"):
        load_splits(tmp_path / "nope", videos)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        read_classes(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no split files in"):
        load_splits(tmp_path / "empty", videos)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig",
                                      "utf-8", "latin-1"])
def test_split_files_in_any_usual_encoding_parse_alike(tmp_path, encoding):
    # "utf-16" writes a BOM; "utf-16-le"/"-be" do not (as some Windows tools save).
    clips = CLAP if encoding != "latin-1" else [c for c in CLAP if "¢" not in c]
    text = "".join(f"{c} {1 + i % 2} \r\n" for i, c in enumerate(clips))
    path = tmp_path / "clap_test_split1.txt"
    path.write_bytes(text.encode(encoding))
    pairs, bad = parse_split_file(path)
    assert pairs == [(c, 1 + i % 2) for i, c in enumerate(clips)] and bad == []


def test_class_folders_without_split_files_stay_out_of_the_class_list(hmdb, caplog):
    videos, splits_dir = hmdb
    (videos / "wave").mkdir()
    (videos / "wave" / "wave_clip_0.avi").write_bytes(b"x")
    with caplog.at_level("WARNING", logger="twostream"):
        splits = load_splits(splits_dir, videos)
    assert splits.classes == ["brush_hair", "clap"] and splits.without_splits == ["wave"]
    assert "1 class folder(s) have no split file and are left out of the class list: wave" \
        in caplog.text
    # Split 2 names no brush_hair clip and no training clip at all: both are warned about.
    assert splits.empty_classes(2, 1) == ["brush_hair", "clap"]
    assert "split 2 has no train clip of 2 class(es): brush_hair, clap" in caplog.text
    assert "split 2 has no test clip of 1 class(es): brush_hair" in caplog.text


def test_a_clip_flagged_train_and_test_is_refused_naming_both_lines(hmdb):
    # Once put in both lists: a leak, unreported (issue 23 item 4).
    videos, splits = hmdb
    (splits / "brush_hair_test_split2.txt").write_text(
        f"{BRUSH[0]} 1 \n{BRUSH[1]} 2 \n{BRUSH[0]} 2 \n")
    with pytest.raises(DatasetError, match=rf"brush_hair_test_split2.txt:3: {re.escape(BRUSH[0])} "
                       r"is flagged 2 \(test\) here and 1 \(train\) on line 1"):
        load_splits(splits, videos)
    # The same flag twice is one entry.
    (splits / "brush_hair_test_split2.txt").write_text(
        f"{BRUSH[0]} 1 \n{BRUSH[1]} 2 \n{BRUSH[0]} 1 \n")
    entries = load_splits(splits, videos).entries[2]
    assert [e.clip for e in entries if e.class_name == "brush_hair"] == sorted(BRUSH[:2])


def test_two_videos_with_one_stem_are_refused_naming_both(hmdb):
    videos, splits = hmdb
    twin = CLAP[0].replace(".avi", ".mp4")
    (videos / "clap" / twin).write_bytes(b"x")
    with open(splits / "clap_test_split2.txt", "a") as f:
        f.write(f"{twin} 1\n")
    with pytest.raises(DatasetError, match=rf"clap/{re.escape(CLAP[0])} and clap/"
                       rf"{re.escape(twin)} would share one clip folder"):
        load_splits(splits, videos)
    # Unused (flag 0), it writes no folder: no clash.
    (splits / "clap_test_split2.txt").write_text(
        "".join(f"{c} 2\n" for c in CLAP) + f"{twin} 0\n")
    load_splits(splits, videos)


def test_names_mmaction2_lists_cannot_carry_are_warned_about_with_the_fix(hmdb, caplog):
    videos, splits = hmdb
    (videos / "brush hair").mkdir()
    (videos / "brush hair" / "a.avi").write_bytes(b"x")
    (videos / "brush hair" / "b c.avi").write_bytes(b"x")
    (splits / "brush hair_test_split1.txt").write_text("a.avi 1\nb c.avi 2\n")
    with caplog.at_level("WARNING", logger="twostream"):
        load_splits(splits, videos)
    assert "2 class or clip name(s) hold whitespace, e.g. 'brush hair'" in caplog.text
    assert "MMAction2 cannot" in caplog.text and "rename" in caplog.text
