"""Darknet cfg text: parsing, formatting round trip, built-in cfgs, and errors that name file and line."""

from __future__ import annotations

import pytest

from yolo_compress.models.cfg import CfgError, builtin_cfg_names, format_cfg, parse_cfg, resolve_cfg
from yolo_compress.models.darknet import Darknet

from conftest import YOLO_FASTEST, yolo_fastest_files

TINY = """[net]
width=64
height=64

# a comment
[convolutional]
filters=18
size=1
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58,
classes=1
num=3
"""


def test_builtin_names():
    assert builtin_cfg_names() == ["demo", "yolov2-tiny-voc", "yolov3", "yolov3-tiny", "yolov4-tiny"]


def test_parse_keeps_types_options_and_lines():
    sections = parse_cfg(TINY, "tiny.cfg")
    assert [s.type for s in sections] == ["net", "convolutional", "yolo"]
    assert [s.line for s in sections] == [1, 6, 11]
    assert sections[2].options["anchors"] == "10,14,  23,27,  37,58,"
    assert sections[2].get_floats("anchors") == [10, 14, 23, 27, 37, 58]
    assert sections[1].where("size") == "tiny.cfg:8"


@pytest.mark.parametrize("name", builtin_cfg_names())
def test_builtin_round_trip(name):
    text, source = resolve_cfg(name)
    assert source == f"{name}.cfg"
    sections = parse_cfg(text, source)
    assert parse_cfg(format_cfg(sections)) == sections


@pytest.mark.parametrize("name", sorted(YOLO_FASTEST))
def test_real_cfg_round_trip(name):
    cfg, _, _ = yolo_fastest_files(name)
    sections = parse_cfg(cfg.read_text(), str(cfg))
    assert parse_cfg(format_cfg(sections)) == sections


def test_resolve_file_path_and_suffix(tmp_path):
    path = tmp_path / "mine.cfg"
    path.write_text(TINY)
    assert resolve_cfg(path) == (TINY, str(path))
    assert resolve_cfg("yolov3-tiny.cfg") == resolve_cfg("yolov3-tiny")


def test_missing_cfg_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cfg"):
        resolve_cfg(tmp_path / "nope.cfg")


def _error(text: str) -> str:
    with pytest.raises(CfgError) as info:
        Darknet(parse_cfg(text, "bad.cfg"))
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[yolo]", "[foo]"), "bad.cfg:11: unknown layer type [foo]"),
        (("size=1", "size 1"), "bad.cfg:8: expected key=value"),
        (("size=1", "size="), "bad.cfg:8: expected key=value"),
        (("size=1", "size=one"), "bad.cfg:8: [convolutional] option size=one is not an integer"),
        (("size=1", "size=1\nsize=3"), "bad.cfg:9: duplicate option 'size' (first at line 8)"),
        (("activation=linear", "activation=gelu"), "bad.cfg:9: [convolutional] unknown activation=gelu"),
        (("size=1", "size=1\ndilation=2"), "bad.cfg:9: [convolutional] option dilation=2 is not supported"),
        (("filters=18", "filters=17"), "bad.cfg:11: [yolo] the layer before has 17 filters"),
        (("mask = 0,1,2", "mask = 0,1,5"), "bad.cfg:12: [yolo] mask=[0, 1, 5] must pick anchors among 0..2"),
        (("num=3", "num=4"), "bad.cfg:13: [yolo] anchors= holds 6 numbers, num=4 needs 8"),
        (("[net]", "[convolutional]"), "bad.cfg:1: a cfg must start with a [net] section"),
        (("width=64", "width=0"), "bad.cfg:2: [net] option width=0 must be positive"),
        (("height=64\n", ""), "bad.cfg:1: [net] missing option 'height'"),
    ],
)
def test_errors_name_file_and_line(edit, expected):
    assert expected in _error(TINY.replace(*edit, 1))


def test_option_before_any_section():
    with pytest.raises(CfgError, match=r"x.cfg:1: option before the first \[section\]"):
        parse_cfg("width=3\n[net]\n", "x.cfg")


def test_route_and_shortcut_errors():
    route = TINY.replace("[yolo]", "[route]\nlayers=-2\n\n[yolo]")
    assert "bad.cfg:12: [route] layers: -2 names layer -1, not one of 0..0" in _error(route)
    shortcut = TINY.replace("[yolo]", "[maxpool]\nsize=2\nstride=2\n\n[shortcut]\nfrom=-2\n\n[yolo]")
    assert "bad.cfg:15: [shortcut] adds layer 0 of shape (C,H,W) (18, 64, 64)" in _error(shortcut)


def test_source_given_to_darknet_names_errors():
    sections = parse_cfg(TINY.replace("size=1", "size=x"))
    with pytest.raises(CfgError, match="^elsewhere.cfg:8: "):
        Darknet(sections, source="elsewhere.cfg")
