"""Take the README's screenshot of the add-on's panel (needs a display; Xvfb will do):

    xvfb-run -s "-screen 0 1400x800x24" blender --factory-startup --enable-event-simulate --python \
        integrations/blender/tests/screenshot.py -- --vmatte "/venv/bin/python -m vmatte" --out /tmp/shot

Builds the same clip and mask as run_headless.py, shows the Movie Clip Editor with the mask and the vmatte
sidebar, runs "Matte with vmatte" as a click does (the modal operator: the add-on starts vmatte serve, the
panel shows progress and a Cancel button), saves ``OUT/blender-panel.png`` mid-run and prints the final status.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_headless as rh


def setup(out: str, command: str):
    scripts = os.path.join(out, "scripts")
    os.makedirs(os.path.join(scripts, "addons"), exist_ok=True)
    import subprocess

    zip_path = subprocess.run(
        [sys.executable, os.path.join(rh.ADDON_DIR, "build_zip.py"), "--out", os.path.join(out, "dist")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    bpy.context.preferences.filepaths.script_directory = scripts
    bpy.utils.refresh_script_paths()
    bpy.ops.preferences.addon_install(filepath=zip_path, target="PREFS", overwrite=True)
    bpy.ops.preferences.addon_enable(module="vmatte_blender")
    prefs = bpy.context.preferences.addons["vmatte_blender"].preferences
    prefs.command, prefs.engine, prefs.server_url = command, "classic", f"http://127.0.0.1:{rh.free_port()}"
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, rh.N
    clip = bpy.data.movieclips.load(rh.write_clip(os.path.join(out, "clip")))
    mask = rh.make_mask(clip, scene)
    s = scene.vmatte
    s.clip, s.mask, s.work_dir = clip, mask, os.path.join(out, "work")
    scene.frame_set(8)
    # the biggest area becomes the Movie Clip Editor with the sidebar open on the vmatte tab
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "CLIP_EDITOR"
    space = area.spaces.active
    space.clip, space.mode, space.mask = clip, "MASK", mask
    space.show_region_ui = True
    return window, area


def main():
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmatte", default="vmatte")
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="vmatte-shot-"))
    args = ap.parse_args(argv)
    bpy.context.preferences.view.show_splash = False
    window, area = setup(args.out, args.vmatte)
    state = {"n": 0, "shot": False}
    import vmatte_blender

    def later():
        state["n"] += 1
        ui = next(r for r in area.regions if r.type == "UI")
        s = bpy.context.scene.vmatte
        if state["n"] == 2:
            # the sidebar's tab cannot be chosen from Python in 3.4: click it (needs --enable-event-simulate);
            # the vmatte tab is the last one, just under the "Mask" tab, on the sidebar's right edge
            x, y = ui.x + ui.width - 10, ui.y + ui.height - 265
            window.event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
            window.event_simulate(type="LEFTMOUSE", value="PRESS", x=x, y=y)
            window.event_simulate(type="LEFTMOUSE", value="RELEASE", x=x, y=y)
            main_region = next(r for r in area.regions if r.type == "WINDOW")
            with bpy.context.temp_override(window=window, area=area, region=main_region):
                bpy.ops.clip.view_all(fit_view=True)
        if state["n"] == 4:  # the modal operator, as a click on the button runs it
            with bpy.context.temp_override(window=window, area=area, region=ui):
                print("invoke:", bpy.ops.vmatte.matte("INVOKE_DEFAULT"))
        area.tag_redraw()
        running = "session" in vmatte_blender._active
        print(
            f"tick {state['n']}: frame={bpy.context.scene.frame_current} running={running} progress={s.progress:.0f} status={s.status!r}"
        )
        if running and s.progress >= 40 and not state["shot"]:
            path = os.path.join(args.out, "blender-panel.png")
            with bpy.context.temp_override(window=window, area=area):
                bpy.ops.screen.screenshot_area(filepath=path)
            state["shot"] = True
            print("SCREENSHOT", path)
        if state["n"] > 4 and not running:
            print("FINAL", s.status)
            bpy.ops.wm.quit_blender()
            return None
        if state["n"] > 600:
            print("TIMEOUT")
            bpy.ops.wm.quit_blender()
            return None
        return 0.2

    bpy.app.timers.register(later, first_interval=1.0)


try:
    main()
except BaseException:
    traceback.print_exc()
    sys.stdout.flush()
    for service in getattr(sys.modules.get("vmatte_blender"), "_services", {}).values():
        service.stop()
    os._exit(1)
