"""vmatte for Blender: matte a Movie Clip from a Mask datablock through a local ``vmatte serve``.

Movie Clip Editor → sidebar (N) → vmatte: pick the clip and the Mask, press "Matte with vmatte". The mask is
rasterised at each of its shape keyframes into numbered PNGs at clip resolution, a job goes to the service
(started here if none answers), progress shows in the panel, Cancel (or Esc) stops it, and the result (an RGBA
PNG or EXR sequence) comes back as a new Movie Clip and Image with alpha.
"""

from __future__ import annotations

import os
import time

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import raster
from .client import FINISHED, Service, ServiceError

bl_info = {
    "name": "vmatte",
    "author": "vmatte contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Movie Clip Editor > Sidebar > vmatte",
    "description": "Alpha mattes for a clip from a few keyframe masks, through a local vmatte service",
    "category": "Video Tools",
}

_services: dict[tuple[str, str], Service] = {}  # one per (url, token): keeps a started process and its token
_active: dict[str, object] = {}  # the running MatteSession, if any ("session")


def prefs() -> bpy.types.AddonPreferences:
    return bpy.context.preferences.addons[__name__].preferences


def service_for(p) -> Service:
    key = (p.server_url, p.token)
    if key not in _services:
        _services[key] = Service(p.server_url, p.token)
    return _services[key]


class VMATTE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __name__

    command: StringProperty(
        name="vmatte command",
        description="How to run vmatte (a path to the executable, or e.g. '/venv/bin/python -m vmatte')",
        default="vmatte",
    )
    server_url: StringProperty(name="Service URL", default="http://127.0.0.1:8731")
    token: StringProperty(
        name="Token",
        description="Bearer token of a running service (empty: $VMATTE_TOKEN, or a new one when this add-on "
        "starts the service)",
        default="",
        subtype="PASSWORD",
    )
    engine: EnumProperty(
        name="Engine",
        description="Engine the add-on asks for when it starts the service",
        items=[
            ("auto", "Auto", "ViTMatte if its weights are available, else classic"),
            ("vitmatte", "ViTMatte", ""),
            ("classic", "Classic", "closed-form matting, no weights"),
        ],
        default="auto",
    )
    start_timeout_s: IntProperty(name="Start timeout (s)", default=180, min=5)

    def draw(self, context):
        col = self.layout.column()
        for name in ("command", "server_url", "token", "engine", "start_timeout_s"):
            col.prop(self, name)


class VMATTE_Settings(bpy.types.PropertyGroup):
    clip: PointerProperty(type=bpy.types.MovieClip, name="Clip")
    mask: PointerProperty(type=bpy.types.Mask, name="Mask")
    frames: StringProperty(
        name="Frames",
        description="Scene frames to use as keyframes, e.g. '1, 24, 48' (empty: the mask's shape keyframes)",
        default="",
    )
    output: EnumProperty(
        name="Result",
        items=[
            ("png", "PNG sequence", "8-bit RGBA, straight alpha"),
            (
                "exr",
                "EXR sequence",
                "half float RGBA, premultiplied (Blender reads EXR colour as premultiplied)",
            ),
        ],
        default="png",
    )
    work_dir: StringProperty(
        name="Folder",
        subtype="DIR_PATH",
        default="//vmatte/",
        description="Where masks and results are written (a new subfolder per run)",
    )
    status: StringProperty(name="Status", default="")
    progress: FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0)
    result_clip: StringProperty(default="")


class MatteSession:
    """One run: rasterise → submit → poll → load. Shared by the modal operator (UI) and the blocking one."""

    def __init__(self, context, settings: VMATTE_Settings) -> None:
        self.scene = context.scene
        self.settings = settings
        self.clip = settings.clip
        self.mask = settings.mask
        self.service = service_for(prefs())
        self.job_id = ""
        self.result_dir = ""
        self.result: dict | None = None

    def start(self) -> None:
        s, clip, mask = self.settings, self.clip, self.mask
        if clip is None or mask is None:
            raise ValueError("pick a clip and a mask first")
        if s.frames.strip():
            frames = raster.parse_frames(s.frames)
        else:
            frames = raster.shape_keyframes(mask)
            if frames is None:
                raise ValueError("cannot read the mask's shape keyframes here: list the frames in 'Frames'")
        if not frames:
            raise ValueError(
                f"mask '{mask.name}' has no shape keyframes: key it (I) or list frames in 'Frames'"
            )
        base = bpy.path.abspath(s.work_dir) if bpy.data.filepath or not s.work_dir.startswith("//") else ""
        base = base or os.path.join(bpy.app.tempdir, "vmatte")
        self.stem = bpy.path.clean_name(os.path.splitext(clip.name)[0].rstrip("0123456789._-") or clip.name)
        run_dir = os.path.join(base, f"{self.stem}-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while os.path.exists(run_dir + ("" if n == 1 else f"-{n}")):
            n += 1
        run_dir += "" if n == 1 else f"-{n}"
        masks_dir = os.path.join(run_dir, "masks")
        written = raster.rasterise(self.scene, clip, mask, frames, masks_dir)
        if not written:
            raise ValueError(f"none of the keyframes {frames} falls inside clip '{clip.name}'")
        self.result_dir = os.path.join(run_dir, "matte")
        ext = self.settings.output
        config = {
            "input": clip_input(clip),
            "masks": masks_dir,
            # file number = clip frame index + 1: Blender's clip frame numbers
            "outputs": [
                {
                    "path": os.path.join(self.result_dir, f"{self.stem}.%06d.{ext}"),
                    "format": ext,
                    "content": "rgba",
                    "start_number": 1,
                    # Blender takes EXR colour as premultiplied and PNG colour as straight
                    "premultiplied": ext == "exr",
                }
            ],
        }
        p = prefs()
        self.service.ensure_running(p.command, p.engine, float(p.start_timeout_s))
        self.job_id = self.service.submit(config)
        s.status, s.progress = f"queued ({len(written)} keyframes)", 0.0

    def poll(self) -> bool:
        """Refresh status and progress; True once the job has finished (then ``self.result`` is set)."""
        job = self.service.job(self.job_id)
        ev = job.get("progress") or {}
        s = self.settings
        if ev.get("total"):
            stage_share = 0.2 if ev.get("stage") == "propagate" else 0.8
            offset = 0.0 if ev.get("stage") == "propagate" else 20.0
            s.progress = min(100.0, offset + 100.0 * stage_share * ev["done"] / ev["total"])
            s.status = f"{ev.get('stage')} {ev['done']}/{ev['total']}"
        if job["status"] in FINISHED:
            self.result = job
            return True
        if job["status"] == "queued":
            s.status = "queued"
        return False

    def cancel(self) -> None:
        if self.job_id:
            self.result = self.service.cancel(self.job_id)

    def finish(self) -> str:
        """Load the result (status ok) as a Movie Clip and an Image; returns a one-line message."""
        job, s = self.result or {}, self.settings
        if job.get("status") != "ok":
            err = (job.get("error") or {}).get("message", job.get("status", "?"))
            s.status = f"{job.get('status')}: {err}"
            return s.status
        first = sorted(f for f in os.listdir(self.result_dir) if not f.startswith("."))[0]
        path = os.path.join(self.result_dir, first)
        name = f"{self.stem}.vmatte"
        result_clip = bpy.data.movieclips.load(path)
        result_clip.name = name
        result_clip.frame_start = self.clip.frame_start
        image = bpy.data.images.load(path)
        image.name = name
        image.source = "SEQUENCE"
        image.alpha_mode = "PREMUL" if self.settings.output == "exr" else "STRAIGHT"
        s.result_clip = result_clip.name
        s.progress = 100.0
        report = job.get("report") or {}
        s.status = f"done: {report.get('frames_written', '?')} frames → {result_clip.name}"
        return s.status


def clip_input(clip: bpy.types.MovieClip) -> str:
    """The clip as vmatte reads it: the movie file, or a printf pattern for an image sequence."""
    path = bpy.path.abspath(clip.filepath)
    if clip.source != "SEQUENCE":
        return path
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    digits = len(stem) - len(stem.rstrip("0123456789"))
    if not digits:
        return path
    return os.path.join(folder, f"{stem[:-digits]}%0{digits}d{ext}")


def settings_of(context) -> VMATTE_Settings:
    s = context.scene.vmatte
    if s.clip is None and getattr(context.space_data, "clip", None) is not None:
        s.clip = context.space_data.clip
    if s.mask is None and getattr(context.space_data, "mask", None) is not None:
        s.mask = context.space_data.mask
    return s


class VMATTE_OT_matte(bpy.types.Operator):
    """Rasterise the mask at its keyframes, matte the clip with vmatte and load the result with alpha"""

    bl_idname = "vmatte.matte"
    bl_label = "Matte with vmatte"

    wait: bpy.props.BoolProperty(
        name="Wait",
        description="Block until done (scripts and background mode)",
        default=False,
        options={"SKIP_SAVE"},
    )

    _timer = None

    @classmethod
    def poll(cls, context):
        return "session" not in _active

    def _begin(self, context) -> MatteSession | None:
        session = MatteSession(context, settings_of(context))
        try:
            session.start()
        except (ValueError, ServiceError, OSError, RuntimeError) as exc:
            session.settings.status = f"error: {exc}"
            self.report({"ERROR"}, str(exc))
            return None
        return session

    def execute(self, context):  # blocking: scripts, tests, `blender -b`
        session = self._begin(context)
        if session is None:
            return {"CANCELLED"}
        _active["session"] = session
        try:
            while not session.poll():
                if _active.get("cancel"):
                    session.cancel()
                    break
                time.sleep(0.1)
        except ServiceError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            _active.clear()
        message = session.finish()
        self.report({"INFO"} if session.result.get("status") == "ok" else {"WARNING"}, message)
        return {"FINISHED"} if session.result.get("status") == "ok" else {"CANCELLED"}

    def invoke(self, context, event):
        if self.wait or bpy.app.background:
            return self.execute(context)
        session = self._begin(context)
        if session is None:
            return {"CANCELLED"}
        _active["session"] = session
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        session = _active.get("session")
        if session is None:
            return self._end(context, {"CANCELLED"})
        if event.type == "ESC" or _active.get("cancel"):
            try:
                session.cancel()
            except ServiceError as exc:
                self.report({"ERROR"}, str(exc))
            session.finish()
            return self._end(context, {"CANCELLED"})
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = session.poll()
        except ServiceError as exc:
            session.settings.status = f"error: {exc}"
            self.report({"ERROR"}, str(exc))
            return self._end(context, {"CANCELLED"})
        for area in context.screen.areas if context.screen else ():
            if area.type == "CLIP_EDITOR":
                area.tag_redraw()
        if not done:
            return {"PASS_THROUGH"}
        message = session.finish()
        ok = session.result.get("status") == "ok"
        self.report({"INFO"} if ok else {"WARNING"}, message)
        return self._end(context, {"FINISHED"} if ok else {"CANCELLED"})

    def _end(self, context, result):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _active.clear()
        return result


class VMATTE_OT_cancel(bpy.types.Operator):
    """Cancel the running vmatte job (outputs are removed, as on Ctrl-C)"""

    bl_idname = "vmatte.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return "session" in _active

    def execute(self, context):
        _active["cancel"] = True
        return {"FINISHED"}


class VMATTE_PT_panel(bpy.types.Panel):
    bl_label = "vmatte"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "vmatte"

    def draw(self, context):
        s = context.scene.vmatte
        layout = self.layout
        layout.prop(s, "clip")
        layout.prop(s, "mask")
        layout.prop(s, "frames", text="Keys")
        layout.prop(s, "output")
        layout.prop(s, "work_dir")
        if "session" in _active:
            layout.prop(s, "progress", slider=True)
            layout.operator("vmatte.cancel", icon="CANCEL")
        else:
            layout.operator("vmatte.matte", icon="IMAGE_RGB_ALPHA")
        if s.status:
            layout.label(text=s.status)


_classes = (VMATTE_AddonPreferences, VMATTE_Settings, VMATTE_OT_matte, VMATTE_OT_cancel, VMATTE_PT_panel)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.vmatte = PointerProperty(type=VMATTE_Settings)


def unregister():
    for service in _services.values():
        service.stop()
    _services.clear()
    del bpy.types.Scene.vmatte
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
