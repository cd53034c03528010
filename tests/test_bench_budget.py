"""scripts/bench_budget.py's accounting: per-thread CPU by name (the sampler's own CPU left out) and thread-plan
variants that change only the pool asked for, for the duration of one measurement."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from script_helpers import load_script


@pytest.fixture(scope="module")
def bb():
    return load_script("bench_budget")


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread CPU needs Linux /proc")
def test_thread_cpu_names_python_threads_and_leaves_out_the_sampler(bb):
    release = threading.Event()

    def burn_then_wait() -> None:
        _burn(0.3)
        release.wait(30)  # stay alive until sampled: a thread that ends between samples loses that interval

    with bb.ThreadCPU(interval=0.01) as cpu:
        t = threading.Thread(target=burn_then_wait, name="vmatte-burn_0")
        t.start()
        deadline = time.monotonic() + 30  # a loaded CI machine may delay the sampler, never by this much
        while time.monotonic() < deadline:
            if (
                t.native_id is not None
                and cpu._last.get(t.native_id, 0.0) - cpu._base.get(t.native_id, 0.0) >= 0.25
            ):
                break
            time.sleep(0.02)
        release.set()
        t.join()
    groups = cpu.by_group()
    assert groups.get("vmatte-burn", 0.0) >= 0.2, groups  # the "_0" suffix of a pool thread is folded
    assert bb._SAMPLER not in groups and cpu.sampler_cpu() >= 0.0


def test_variants_override_one_plan_field_and_restore_it(bb):
    from vmatte.pipeline import threads

    assert bb.parse_variant("plan") == {}
    assert bb.parse_variant("opencv=16+encode_threads=1") == {"opencv": 16, "encode_threads": 1}
    base = threads.plan_threads(0, cores=16)
    with bb.thread_variant({"opencv": 16, "encode_threads": 1}):
        changed = threads.plan_threads(0, cores=16)
        with threads.cpu_thread_limit(0, cores=16) as caps:
            assert caps["opencv"] == 16 and threads.current_plan().opencv == 16
    assert changed.opencv == 16 and changed.torch_gpu == base.torch_gpu
    assert threads.plan_threads(0, cores=16) == base
