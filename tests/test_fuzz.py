"""Property-based fuzzing (hypothesis) of the two kinds of files users hand vmatte: keyframe mask folders and
config files. The property: whatever the bytes, vmatte either accepts them or raises one of its own errors
(a VmatteError subclass with a one-line message); any other exception is a bug.

Inputs are generated three ways for each: raw bytes / text, mutations of a valid file (bit flips, truncation,
splices), and structured values (images of every dtype/shape/size; config trees over the real schema keys with
values of right and wrong types).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import tempfile
import typing
from pathlib import Path

import hostile as h
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmatte.config import RunConfig, build_config, parse_frame_range
from vmatte.errors import VmatteError
from vmatte.io.masks import MASK_EXTS, load_keyframes

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    from vmatte.io.decode import open_clip

    return open_clip(h.good_mp4(tmp_path_factory.mktemp("fz") / "clip.mp4")).info


def _only_vmatte_errors(fn):
    """Call ``fn``; a VmatteError is fine (and must be one line), anything else propagates as a failure."""
    try:
        return fn()
    except VmatteError as exc:
        assert "\n" not in str(exc), f"multi-line error: {exc!r}"
        return None


def _load_all(folder: Path, info) -> None:
    kf = _only_vmatte_errors(lambda: load_keyframes(folder, info))
    if kf is not None:
        for i in kf.indices:  # decoding for the run must hold up too, and give the promised arrays
            _kind, arr = _only_vmatte_errors(lambda i=i: kf.get(i)) or (None, None)
            if arr is not None:
                assert arr.shape == (info.height, info.width), arr.shape
                assert (arr.dtype == np.float32 and np.isfinite(arr).all()) or arr.dtype == np.uint8
                p = _only_vmatte_errors(lambda i=i: kf.probability(i))
                if p is not None:
                    assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1


# ---- masks ------------------------------------------------------------------------------------------------

_exts = st.sampled_from([*MASK_EXTS, ".PNG", ".Tif"])


@SETTINGS
@given(data=st.binary(max_size=4096), ext=_exts, with_good=st.booleans())
def test_fuzz_mask_raw_bytes(info, data, ext, with_good):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / f"000003{ext}").write_bytes(data)
        if with_good:
            (folder / "000000.png").write_bytes(h.png_bytes(h.scene().mask(0)))
        _load_all(folder, info)


@st.composite
def _mutated_png(draw):
    """A valid mask PNG (8/16-bit gray, palette, RGBA) with flips, a truncation or a spliced chunk."""
    mask = h.scene().mask(0)
    base = draw(st.sampled_from(["gray8", "gray16", "palette", "rgba", "one_bit"]))
    data = {
        "gray8": lambda: h.png_bytes(mask),
        "gray16": lambda: h.png_bytes(mask.astype(np.uint16) * 257),
        "palette": lambda: h.palette_png((mask > 0).astype(np.uint8), [(0, 0, 0), (200, 10, 10)]),
        "rgba": lambda: h.png_bytes(np.dstack([mask] * 4)),
        "one_bit": lambda: h.one_bit_png(mask),
    }[base]()
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(buf) - 1))
        buf[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        buf = buf[: draw(st.integers(0, len(buf)))]
    if draw(st.booleans()):
        i = draw(st.integers(0, len(buf)))
        buf[i:i] = draw(st.binary(max_size=64))
    return bytes(buf)


@SETTINGS
@given(data=_mutated_png())
def test_fuzz_mask_mutated_png(info, data):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "000002.png").write_bytes(data)
        _load_all(Path(d), info)


@st.composite
def _image(draw):
    """An image of any dtype cv2 can write, any channel count, near or at the clip size, with any values."""
    import cv2

    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.int32, np.float64, np.int16, np.bool_]))
    size = draw(st.sampled_from([(h.W, h.H), (h.H, h.W), (1, 1), (h.W + 1, h.H), (h.W, h.H)]))
    ch = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (size[1], size[0]) if ch is None else (size[1], size[0], ch)
    kind = draw(st.sampled_from(["const", "binary", "random", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "const":
        arr = np.full(shape, draw(st.sampled_from([0, 1, 127, 128, 255, 65535])), np.float64)
    elif kind == "binary":
        arr = (rng.random(shape) > 0.5) * draw(st.sampled_from([1.0, 255.0, 65535.0]))
    elif kind == "special":
        arr = rng.choice(np.array([0.0, 0.5, 1.0, np.nan, np.inf, -np.inf, -1.0, 2.0]), size=shape)
    else:
        arr = rng.random(shape) * draw(st.sampled_from([1.0, 255.0, 65535.0, 1e9]))
    with np.errstate(invalid="ignore", over="ignore"):
        arr = arr.astype(dtype) if dtype is not np.bool_ else arr > 0.5
    ext = draw(st.sampled_from([".png", ".tif", ".exr", ".bmp", ".jpg", ".webp"]))
    if ext == ".exr":
        import os

        os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        ok, buf = cv2.imencode(ext, arr if arr.dtype != np.bool_ else arr.astype(np.uint8))
    except cv2.error:
        ok = False
    if not ok:
        ok, buf = cv2.imencode(".png", np.zeros((size[1], size[0]), np.uint8))
        ext = ".png"
    return ext, buf.tobytes()


@SETTINGS
@given(imgs=st.lists(_image(), min_size=1, max_size=3))
def test_fuzz_mask_images(info, imgs):
    with tempfile.TemporaryDirectory() as d:
        for n, (ext, data) in enumerate(imgs):
            (Path(d) / f"{n * 3:06d}{ext}").write_bytes(data)
        _load_all(Path(d), info)


_name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")


@SETTINGS
@given(names=st.lists(st.text(_name_chars, min_size=1, max_size=40), min_size=1, max_size=4, unique=True))
def test_fuzz_mask_file_names(info, names):
    good = h.png_bytes(h.scene().mask(0))
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            if n in (".", ".."):
                continue
            try:
                (Path(d) / n).write_bytes(good)
            except OSError:  # a name the file system refuses (too long in bytes): not vmatte's to handle
                continue
        _load_all(Path(d), info)


# ---- configs ------------------------------------------------------------------------------------------------


def _schema(cls) -> dict:
    """Dataclass → {key: type or nested schema dict}."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out[f.name] = _schema(tp) if dataclasses.is_dataclass(tp) else tp
    return out


SCHEMA = _schema(RunConfig)
_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["auto", "cpu", "cuda:99", "fp8", "prores4444", "png", "-1", "1e309", "", "%d", "../../etc"]
    ),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
)
_values = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
)


def _tree(schema: dict):
    """A config dict over real keys (sometimes misspelt or invented) with values of right and wrong types."""
    keys = list(schema)

    @st.composite
    def build(draw):
        out = {}
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from(keys) | st.text(min_size=1, max_size=10))
            sub = schema.get(key)
            if isinstance(sub, dict) and draw(st.booleans()):
                out[key] = draw(_tree(sub))
            elif key == "outputs" and draw(st.booleans()):
                out[key] = draw(
                    st.lists(
                        _tree(_schema(__import__("vmatte.io.config", fromlist=["x"]).OutputConfig)),
                        max_size=2,
                    )
                )
            else:
                out[key] = draw(_values)
        return out

    return build()


def _toml_key(k: str) -> str:
    return json.dumps(k, ensure_ascii=False)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(d: dict) -> str:
    """Inline-table TOML for any tree our strategies make (tomllib parses it back to ``d``)."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d.items()) + "\n"


def _build(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "vmatte.toml"
        p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        cfg = _only_vmatte_errors(lambda: build_config(config_file=p))
        if cfg is not None:
            assert isinstance(cfg, RunConfig)
            cfg.to_dict()  # the report serialises it


@SETTINGS
@given(tree=_tree(SCHEMA))
def test_fuzz_config_structured(tree):
    import tomllib

    text = to_toml(tree)
    with contextlib.suppress(tomllib.TOMLDecodeError, ValueError):
        tomllib.loads(text)  # our emitter may make something TOML refuses: still a fine input for vmatte
    _build(text)
    _only_vmatte_errors(lambda: build_config(overrides=tree))  # the API/CLI-flags path takes dicts directly


@SETTINGS
@given(
    tree=_tree(SCHEMA),
    outputs=st.none() | _values,
    outs=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
)
def test_fuzz_config_through_cli_flags(tree, outputs, outs):
    """The CLI composes --config with -o before the schema sees it: that path must hold up too."""
    from vmatte.cli import build_parser
    from vmatte.cli.run import build_run_config

    if outputs is not None:
        tree = {**tree, "outputs": outputs}
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "vmatte.toml"
        p.write_text(to_toml(tree), encoding="utf-8")
        argv = ["run", "clip.mp4", "--config", str(p)]
        for o in outs:
            argv.append(f"--output={o}")  # "=" form: a value like "-0" is not an option
        args = build_parser().parse_args(argv)
        _only_vmatte_errors(lambda: build_run_config(args))


@SETTINGS
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_fuzz_config_raw(text):
    _build(text)


@SETTINGS
@given(text=st.text(max_size=30))
def test_fuzz_frame_range(text):
    rng = _only_vmatte_errors(lambda: parse_frame_range(text))
    if rng is not None:
        assert 0 <= rng[0] <= rng[1]


@pytest.mark.parametrize("name,text,word", h.CONFIGS, ids=[c[0] for c in h.CONFIGS])
def test_bad_config_file_cli(name, text, word, tmp_path):
    """The hand-written bad configs through the CLI: exit 2, one line naming the file and the key/problem."""
    cfg = tmp_path / "vmatte.toml"
    cfg.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    clip = h.good_mp4(tmp_path / "clip.mp4", 2)
    res = h.run_cli(
        "run", clip, "--masks", tmp_path, "--config", cfg, "-o", tmp_path / "o.mov", "--progress", "none"
    )
    h.assert_one_error_line(res, 2, "vmatte.toml", word)
