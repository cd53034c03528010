"""Frame validation, config composition and error reporting, thread helpers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from config_helpers import config_error

from vmatte.config import RunConfig, build_config, list_presets, parse_frame_range
from vmatte.configtools import from_dict
from vmatte.errors import ConfigError, Interrupted, UsageError
from vmatte.frame import Frame
from vmatte.pipeline.threads import Cancelled, Prefetch, Sink, Worker, cpu_thread_limit, run_in_thread


def _frame(**kw):
    return Frame(index=0, pts=0, time_base=Fraction(1, 24), rgb=np.zeros((4, 6, 3), np.uint8), **kw)


def test_frame_validates_shapes_and_dtypes():
    _frame(trimap=np.zeros((4, 6), np.uint8), alpha=np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="trimap"):
        _frame(trimap=np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        _frame(alpha=np.zeros((4, 6), np.float64))
    _frame(prior=np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match="prior"):
        _frame(prior=np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="rgb"):
        Frame(index=0, pts=0, time_base=None, rgb=np.zeros((4, 6), np.uint8))


def test_frame_16bit_conversions_round_trip():
    rgb16 = np.array([[[0, 257, 65535]]], np.uint16)
    f = Frame(index=0, pts=0, time_base=Fraction(1, 24), rgb=rgb16)
    assert f.bit_depth == 16
    assert f.rgb_u8().tolist() == [[[0, 1, 255]]]
    assert np.allclose(f.rgb_float(), [[[0, 257 / 65535, 1]]])
    assert f.replace(keyframe=True).keyframe and not f.keyframe


def test_keyframe_kind_is_one_of_the_mask_kinds_and_only_on_keyframes():
    f = Frame(index=0, pts=0, time_base=None, rgb=np.zeros((2, 2, 3), np.uint8))
    assert f.replace(keyframe=True, keyframe_kind="alpha").keyframe_kind == "alpha"
    with pytest.raises(ValueError, match="keyframe_kind"):
        f.replace(keyframe_kind="binary")  # not a keyframe
    with pytest.raises(ValueError, match="keyframe_kind"):
        f.replace(keyframe=True, keyframe_kind="soft")


def test_frame_time_s_uses_pts_and_time_base():
    f = Frame(index=3, pts=3003, time_base=Fraction(1, 30000), rgb=np.zeros((2, 2, 3), np.uint8))
    assert f.time_s == pytest.approx(0.1001)


def test_frame_range_parsing():
    assert parse_frame_range("") is None
    assert parse_frame_range("10-20") == (10, 20)
    assert parse_frame_range("7") == (7, 7)
    with pytest.raises(UsageError, match="END is before START"):
        parse_frame_range("20-10")
    with pytest.raises(UsageError, match="not START-END"):
        parse_frame_range("ten")


def test_unknown_config_key_names_file_and_suggests(tmp_path):
    cfg, err = config_error(tmp_path, "[engine]\nbatch_sise = 4\n", name="job.toml")
    msg = str(err)
    assert str(cfg) in msg and "engine.batch_sise" in msg and "batch_size" in msg


def test_config_precedence_file_preset_flags(tmp_path):
    cfg = tmp_path / "job.toml"
    cfg.write_text('[engine]\nbatch_size = 3\nname = "classic"\n[smooth]\nstrength = 0.3\n')
    presets = list_presets()
    assert presets, "pipelines/ must ship presets"
    run = build_config(
        config_file=cfg,
        overrides={"input": "x.mp4", "engine": {"batch_size": 5}, "output": {"premultiplied": True}},
    )
    assert run.engine.batch_size == 5  # flags beat the file
    assert run.engine.name == "classic"  # file beats defaults
    assert run.smooth.strength == 0.3
    assert all(o.premultiplied for o in run.outputs)  # [output] patches every output


def test_config_values_are_type_checked(tmp_path):
    with pytest.raises(ConfigError, match="must be an integer"):
        from_dict(RunConfig, {"engine": {"batch_size": "many"}}, source="cli")
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(RunConfig, {"engine": {"precision": "fp8"}}, source="cli")
    with pytest.raises(ConfigError, match="batch_size must be >= 0"):
        from_dict(RunConfig, {"engine": {"batch_size": -1}}, source="cli")


def test_broken_toml_is_one_line_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[engine\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(config_file=cfg)


def test_unknown_preset_suggests_nearest():
    name = next(iter(list_presets()))
    with pytest.raises(ConfigError, match="did you mean"):
        build_config(preset=name[:-1] + "x")


def test_interrupted_exit_codes():
    assert Interrupted().exit_code == 130
    assert Interrupted(signum=15).exit_code == 143


def test_prefetch_carries_worker_exception_and_joins():
    def source():
        yield 1
        yield 2
        raise RuntimeError("decoder broke")

    before = threading.active_count()
    got = []
    with pytest.raises(RuntimeError, match="decoder broke"), Prefetch(source(), depth=1) as it:
        for x in it:
            got.append(x)
    assert got == [1, 2]
    time.sleep(0.05)
    assert threading.active_count() == before


def test_prefetch_is_bounded_and_stops_early():
    produced = []

    def source():
        for i in range(1000):
            produced.append(i)
            yield i

    with Prefetch(source(), depth=2) as it:
        for x in it:
            if x == 3:
                break
    assert len(produced) < 10  # never ran far ahead of the consumer


def test_prefetch_cancel_raises_cancelled():
    cancel = threading.Event()

    def source():
        i = 0
        while True:
            i += 1
            yield i

    with pytest.raises(Cancelled), Prefetch(source(), depth=2, cancel=cancel) as it:
        for x in it:
            if x == 5:
                cancel.set()


def test_sink_reraises_consumer_error_on_put_or_close():
    seen = []

    def consume(x):
        if x == 2:
            raise OSError("disk gone")
        seen.append(x)

    sink = Sink(consume, depth=1)
    with pytest.raises(OSError, match="disk gone"):
        for i in range(100):
            sink.put(i)
        sink.close()
    sink.abort()
    assert seen == [0, 1]


def test_sink_close_waits_for_all_items():
    seen = []
    sink = Sink(lambda x: (time.sleep(0.001), seen.append(x)), depth=2)
    for i in range(20):
        sink.put(i)
    sink.close()
    assert seen == list(range(20))


def test_run_in_thread_join_times_out_or_returns():
    gate = threading.Event()
    join = run_in_thread(lambda: gate.wait(5) and 42, name="t-slow")
    with pytest.raises(TimeoutError):
        join(0.05)  # still running: the caller is not held
    gate.set()
    assert join() == 42
    with pytest.raises(KeyError):
        run_in_thread(lambda: {}["x"])(1.0)


def test_worker_runs_every_call_on_one_thread_and_closes():
    w = Worker("t")
    joins = [w.submit(lambda: threading.get_ident()) for _ in range(10)]
    idents = {j() for j in joins}
    assert len(idents) == 1 and threading.get_ident() not in idents
    with pytest.raises(ZeroDivisionError):
        w.submit(lambda: 1 / 0)()  # the error comes back to the caller; the thread lives on
    assert w.submit(lambda: 7)() == 7
    w.close()
    w.close()  # idempotent
    assert not [t for t in threading.enumerate() if t.name.startswith("vmatte-t")]
    assert w.submit(lambda: 8)() == 8  # a later submit starts a new thread
    w.close()


def test_cpu_thread_limit_caps_pools_and_restores_them():
    import cv2
    from threadpoolctl import threadpool_info

    cv2.setNumThreads(2)
    blas_before = [p["num_threads"] for p in threadpool_info()]
    assert blas_before, "numpy's BLAS should be visible to threadpoolctl"
    with cpu_thread_limit(0, cores=16) as caps:  # 0 = the machine's cores, but OpenCV/BLAS get a few
        assert caps["opencv"] == cv2.getNumThreads() == 4 and caps["torch"] == 16
        assert all(p["num_threads"] <= 4 for p in threadpool_info())
    assert cv2.getNumThreads() == 2
    with cpu_thread_limit(1) as caps:
        assert caps["opencv"] == 1 and cv2.getNumThreads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert cv2.getNumThreads() == 2
    assert [p["num_threads"] for p in threadpool_info()] == blas_before


def test_thread_plan_keeps_small_pools_small_and_flow_parallel():
    from vmatte.pipeline.threads import plan_threads

    one, two, sixteen = plan_threads(1), plan_threads(0, cores=2), plan_threads(0, cores=16)
    assert (one.opencv, one.torch_cpu, one.encode_workers) == (1, 1, 0)  # a 1-CPU farm task: nothing parallel
    assert two.opencv == 2 and two.encode_workers == 0  # the propagator's two DIS directions still overlap
    # a 16-core GPU host: OpenCV's spinning pool and torch's input packing stay small, the model on the CPU
    # would get every core, and the encode stage gets workers
    assert (sixteen.opencv, sixteen.torch_for("cuda:0"), sixteen.torch_for("cpu")) == (4, 4, 16)
    assert sixteen.encode_workers == 4 and plan_threads(8).encode_workers == 2


def test_torch_pool_follows_the_engine_device_and_is_restored():
    import torch

    from vmatte.pipeline.threads import cap_torch

    before = torch.get_num_threads()
    with cpu_thread_limit(0, cores=16):
        cap_torch("cuda:0")  # a GPU engine: torch's CPU pool only packs inputs
        assert torch.get_num_threads() == 4
        cap_torch("cpu")  # the model on the CPU gets every core of the plan
        assert torch.get_num_threads() == 16
    assert torch.get_num_threads() == before


def test_cpu_thread_limit_caps_torch_loaded_inside_the_block(tiny_vitmatte_dir):
    # a plain run applies the cap before the engine (and so torch) loads: the engine loader must cap torch then
    code = (
        "import sys; from vmatte.pipeline.threads import cpu_thread_limit; import vmatte\n"
        "assert 'torch' not in sys.modules\n"
        "with cpu_thread_limit(1):\n"
        f"    vmatte.load_engine(vmatte.EngineConfig(name='vitmatte', model={str(tiny_vitmatte_dir)!r}, device='cpu'))\n"
        "    import torch; inside = torch.get_num_threads()\n"
        "print(inside, torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    inside, after = map(int, out.stdout.split())
    assert inside == 1, "torch was not capped by --cpu-threads"
    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True
    )
    assert after == int(fresh.stdout), "torch's pool was not restored after the block"


def test_cpu_threads_flag_reaches_the_config_and_refuses_negatives(tmp_path):
    from vmatte.cli import build_parser
    from vmatte.cli.run import build_run_config

    args = build_parser().parse_args(["run", "clip.mp4", "--masks", "m", "--cpu-threads", "3"])
    assert build_run_config(args).pipeline.cpu_threads == 3
    args = build_parser().parse_args(["run", "clip.mp4", "--masks", "m", "--cpu-threads", "-1"])
    with pytest.raises(ConfigError, match="--cpu-threads"):
        build_run_config(args)


@pytest.mark.parametrize(
    "module", ["vmatte", "vmatte.cli", "vmatte.io.decode", "vmatte.io.encode", "vmatte.pipeline.runner"]
)
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; from vmatte.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"{module} pulled in torch"


def test_import_vmatte_is_light():
    # plugins import vmatte inside a host's UI thread: the package itself must not load OpenCV, torch or PyAV
    code = (
        "import sys, vmatte; print([m for m in ('cv2', 'torch', 'av', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"import vmatte pulled in {out.stdout.strip()}"


def test_help_lists_exit_codes_and_commands():
    out = subprocess.run(
        [sys.executable, "-m", "vmatte", "--help"], capture_output=True, text=True, check=True
    )
    assert "exit codes" in out.stdout and "run" in out.stdout and "143" in out.stdout
