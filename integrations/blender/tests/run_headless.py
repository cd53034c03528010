"""End-to-end test of the vmatte add-on in Blender without a display:

    blender -b --factory-startup --python-exit-code 1 --python integrations/blender/tests/run_headless.py \
        -- [--vmatte "/venv/bin/python -m vmatte"] [--out DIR]

Builds and installs the add-on zip, makes a short clip (a disc moving over stripes, written as PNGs) and an
animated Mask with two shape keyframes in script, runs "Matte with vmatte" end to end against a real
``vmatte serve`` that the add-on starts itself (classic engine), then checks the alpha of the loaded result
clip through Blender's own compositor, and that cancelling a running job leaves no files. Prints
``VMATTE_HEADLESS_OK`` and exits 0 on success; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import bpy

HERE = os.path.dirname(os.path.abspath(__file__))
ADDON_DIR = os.path.dirname(HERE)
W, H, N = 160, 96, 24
R = 20.0  # disc radius, px
KEYS = (1, 12, N)  # shape keyframes of the mask


def disc_center(frame: int) -> tuple[float, float]:
    """Disc centre in px (x right, y down) at scene frame 1..N: moves linearly left to right."""
    t = (frame - 1) / (N - 1)
    return 40.0 + 80.0 * t, 50.0


def write_clip(folder: str) -> str:
    """N PNG frames: warm disc over cool stripes (pure Python: Blender's own Python may lack numpy). Returns
    the first file, which is how Blender loads a sequence."""
    os.makedirs(folder, exist_ok=True)
    bg = []
    for y in range(H - 1, -1, -1):  # Blender's pixel rows go bottom up
        for x in range(W):
            bg.append(
                (
                    0.2 + 0.1 * math.sin(x / 5.0),
                    0.35 + 0.15 * math.sin(y / 7.0 + x / 11.0),
                    0.6 + 0.1 * math.sin(x / 3.0),
                )
            )
    first = ""
    for f in range(1, N + 1):
        cx, cy = disc_center(f)
        px: list[float] = []
        i = 0
        for y in range(H - 1, -1, -1):
            for x in range(W):
                if math.hypot(x - cx, y - cy) <= R:
                    # texture fixed to the disc (x - cx), so it moves with it as real objects do
                    px += (0.9, 0.6 + 0.15 * math.sin((x - cx) / 2.0), 0.2, 1.0)
                else:
                    px += (*bg[i], 1.0)
                i += 1
        img = bpy.data.images.new(f"frame{f}", W, H, alpha=True)
        img.pixels.foreach_set(px)
        path = os.path.join(folder, f"shot.{f:04d}.png")
        img.filepath_raw = path
        img.file_format = "PNG"
        img.save()
        bpy.data.images.remove(img)
        first = first or path
    return first


def make_mask(clip, scene) -> bpy.types.Mask:
    """A 4-point circle following the disc, keyed (shape keys) at ``KEYS``, as an artist would."""
    mask = bpy.data.masks.new(name="Roto")
    layer = mask.layers.new(name="disc")
    spline = layer.splines.new()
    spline.use_cyclic = True
    spline.points.add(3)

    def place(frame: int) -> None:
        cx, cy = disc_center(frame)
        for i, p in enumerate(spline.points):
            a = 2 * math.pi * i / 4
            x, y = cx + R * math.cos(a), cy + R * math.sin(a)
            # mask space: x / width; y from the bottom, scaled by height/width about the centre (width > height)
            p.co = (x / W, 0.5 + ((H - y) / H - 0.5) * H / W)
            p.handle_type = "AUTO"
            p.select = True  # shape_key_insert keys layers with a selection

    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "CLIP_EDITOR"
    space = area.spaces.active
    space.clip, space.mode, space.mask = clip, "MASK", mask
    region = next(r for r in area.regions if r.type == "WINDOW")
    for frame in KEYS:
        scene.frame_set(frame)
        place(frame)
        with bpy.context.temp_override(window=window, area=area, region=region, space_data=space):
            assert bpy.ops.mask.shape_key_insert() == {"FINISHED"}
    return mask


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alpha_at(clip, frame: int, points: list[tuple[int, int]], folder: str) -> list[float]:
    """Alpha of the loaded ``clip`` at scene ``frame`` and pixels (x, y-down), as Blender's compositor sees it:
    a Movie Clip node → Composite (RGBA) rendered to a PNG, which is read back."""
    scene = bpy.data.scenes.new("vmatte-check")
    path = os.path.join(folder, f"check.{frame:04d}.png")
    try:
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = *clip.size, 100
        r.image_settings.file_format, r.image_settings.color_mode = "PNG", "RGBA"
        r.film_transparent = True
        scene.view_settings.view_transform = "Standard"
        scene.use_nodes = True
        tree = scene.node_tree
        for n in list(tree.nodes):
            tree.nodes.remove(n)
        src = tree.nodes.new("CompositorNodeMovieClip")
        src.clip = clip
        comp = tree.nodes.new("CompositorNodeComposite")
        comp.use_alpha = True
        tree.links.new(src.outputs["Image"], comp.inputs["Image"])
        scene.frame_set(frame)
        bpy.context.scene.frame_set(frame)  # the clip node reads the frame of the window's scene
        r.filepath = path
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        bpy.data.scenes.remove(scene)
    img = bpy.data.images.load(path)
    try:
        w, h = img.size
        px = img.pixels[:]
        return [px[((h - 1 - y) * w + x) * 4 + 3] for x, y in points]
    finally:
        bpy.data.images.remove(img)


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmatte", default=os.environ.get("VMATTE_COMMAND", "vmatte"), help="the vmatte command")
    ap.add_argument("--out", default="", help="work folder (default: a new temp folder)")
    args = ap.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="vmatte-blender-")
    os.makedirs(out, exist_ok=True)

    # install the zip the way a user does, into a scripts folder of our own (never the user's config)
    zip_path = subprocess.run(
        [sys.executable, os.path.join(ADDON_DIR, "build_zip.py"), "--out", os.path.join(out, "dist")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    scripts = os.path.join(out, "scripts")
    os.makedirs(os.path.join(scripts, "addons"), exist_ok=True)
    bpy.context.preferences.filepaths.script_directory = scripts
    bpy.utils.refresh_script_paths()
    assert bpy.ops.preferences.addon_install(filepath=zip_path, target="PREFS", overwrite=True) == {
        "FINISHED"
    }
    assert bpy.ops.preferences.addon_enable(module="vmatte_blender") == {"FINISHED"}
    import vmatte_blender

    assert os.path.dirname(vmatte_blender.__file__).startswith(scripts), vmatte_blender.__file__
    prefs = bpy.context.preferences.addons["vmatte_blender"].preferences
    prefs.command = args.vmatte
    prefs.server_url = f"http://127.0.0.1:{free_port()}"
    prefs.engine = "classic"
    print(f"vmatte command: {args.vmatte}; service {prefs.server_url}; work folder {out}")

    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, N
    clip = bpy.data.movieclips.load(write_clip(os.path.join(out, "clip")))
    assert tuple(clip.size) == (W, H) and clip.frame_duration == N, (tuple(clip.size), clip.frame_duration)
    mask = make_mask(clip, scene)
    from vmatte_blender import raster

    assert raster.shape_keyframes(mask) == list(KEYS), raster.shape_keyframes(mask)
    s = scene.vmatte
    s.clip, s.mask, s.work_dir = clip, mask, os.path.join(out, "work")

    # 1. the operator end to end (starts vmatte serve: none answers on this port)
    scene.frame_set(7)
    t0 = time.perf_counter()
    result = bpy.ops.vmatte.matte(wait=True)
    assert scene.frame_current == 7, "rasterising the mask must give the user's frame back"
    print(f"matte operator: {result} in {time.perf_counter() - t0:.1f} s; status: {s.status}")
    assert result == {"FINISHED"}, s.status
    loaded = bpy.data.movieclips[s.result_clip]
    assert tuple(loaded.size) == (W, H) and loaded.frame_duration == N, (
        tuple(loaded.size),
        loaded.frame_duration,
    )
    assert bpy.data.images[s.result_clip].alpha_mode == "STRAIGHT"
    masks = sorted(
        os.listdir(os.path.join(os.path.dirname(os.path.dirname(bpy.path.abspath(loaded.filepath))), "masks"))
    )
    assert masks == [f"{k - 1:06d}.png" for k in KEYS], masks
    for frame in (1, 6, 18, N):
        cx, cy = disc_center(frame)
        x0, _ = disc_center(1)
        # centre, just inside the left and right edges, then background: corners and just outside the edges
        probes = [
            (int(cx), int(cy)),
            (int(cx - R + 5), int(cy)),
            (int(cx + R - 5), int(cy)),
            (5, 5),
            (W - 5, H - 5),
            (int(cx - R - 5), int(cy)),
            (int(cx + R + 5), int(cy)),
        ]
        if frame > 8:
            probes.append((int(x0 - R + 4), int(cy)))  # where the disc was at frame 1: background now
        alphas = alpha_at(loaded, frame, probes, out)
        print(f"frame {frame}: alpha at {probes} = {[round(a, 3) for a in alphas]}")
        assert alphas[0] > 0.95 and min(alphas[1:3]) > 0.9, alphas
        assert max(alphas[3:]) < 0.05, alphas

    # the EXR result too (half float, premultiplied as Blender expects of EXR)
    s.output = "exr"
    assert bpy.ops.vmatte.matte(wait=True) == {"FINISHED"}, s.status
    exr = bpy.data.movieclips[s.result_clip]
    assert exr.filepath.endswith(".exr") and exr.frame_duration == N, exr.filepath
    assert bpy.data.images[s.result_clip].alpha_mode == "PREMUL"
    cx, cy = disc_center(18)
    alphas = alpha_at(exr, 18, [(int(cx), int(cy)), (5, 5), (int(cx - R - 5), int(cy))], out)
    print(f"exr frame 18: alpha = {[round(a, 3) for a in alphas]}")
    assert alphas[0] > 0.95 and max(alphas[1:]) < 0.05, alphas
    s.output = "png"

    # 2. cancel a running job: it stops, and nothing is left where the result would have been
    session = vmatte_blender.MatteSession(bpy.context, s)
    session.start()
    deadline = time.monotonic() + 120
    while not session.poll() and "matte" not in s.status:
        assert time.monotonic() < deadline, "the job never started matting"
        time.sleep(0.05)
    assert session.result is None, f"the job finished before it could be cancelled: {session.result}"
    t0 = time.perf_counter()
    session.cancel()
    print(f"cancel answered in {time.perf_counter() - t0:.2f} s: {session.result['status']}")
    assert session.result["status"] == "cancelled", session.result
    assert session.finish().startswith("cancelled")
    left = os.listdir(session.result_dir) if os.path.isdir(session.result_dir) else []
    assert left == [], left

    # the add-on stops the service it started when it is disabled
    service = next(iter(vmatte_blender._services.values()))
    proc = service.process
    assert proc is not None and proc.poll() is None
    bpy.ops.preferences.addon_disable(module="vmatte_blender")
    assert proc.poll() is not None
    print("VMATTE_HEADLESS_OK")


if __name__ == "__main__":  # (screenshot.py imports the helpers above)
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        addon = sys.modules.get("vmatte_blender")
        for service in getattr(addon, "_services", {}).values():
            service.stop()  # os._exit skips atexit: never leave a started vmatte serve behind
        os._exit(1)  # Blender would otherwise exit 0 after a failing script
