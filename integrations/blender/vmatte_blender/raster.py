"""Blender Mask datablock → vmatte keyframe masks (numbered PNGs at clip resolution).

Rasterising uses Blender's own mask rasteriser (feather, holes, layer blending as the artist sees them): a
throwaway scene whose compositor is one Mask node → Composite, rendered once per keyframe. The node evaluates
the mask's *current* point positions at the rendered frame (it keys them into a private copy, "so unkeyed edits
display"), so the user's scene is moved to each frame first; its frame is put back afterwards.

Where the mask's shape keyframes are: Blender keeps them in ``MaskLayer.splines_shapes``, which its Python API
does not expose; :func:`shape_keyframes` reads that list through ctypes (layout stable since 2.67) and checks
what it reads against the API (vertex counts). If the check fails it returns None and the user lists frames.
"""

from __future__ import annotations

import ctypes
import os

import bpy


class _ListBase(ctypes.Structure):
    _fields_ = [("first", ctypes.c_void_p), ("last", ctypes.c_void_p)]


class _MaskLayerShape(ctypes.Structure):  # DNA_mask_types.h
    _fields_ = [
        ("next", ctypes.c_void_p),
        ("prev", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("tot_vert", ctypes.c_int),
        ("frame", ctypes.c_int),
        ("flag", ctypes.c_char),
    ]


# MaskLayer: next, prev (2 pointers), char name[64], ListBase splines, ListBase splines_shapes
_SHAPES_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p) + 64 + ctypes.sizeof(_ListBase)


def shape_keyframes(mask: bpy.types.Mask) -> list[int] | None:
    """Sorted scene frames that hold a shape keyframe in any visible layer of ``mask``; None if they cannot be
    read reliably (then ask the user for frames)."""
    frames: set[int] = set()
    for layer in mask.layers:
        if layer.name != ctypes.string_at(layer.as_pointer() + 2 * ctypes.sizeof(ctypes.c_void_p)).decode(
            "utf-8", "replace"
        ):
            return None  # the struct is not laid out as expected
        n_points = sum(len(s.points) for s in layer.splines)
        head = _ListBase.from_address(layer.as_pointer() + _SHAPES_OFFSET)
        ptr, seen = head.first, 0
        while ptr:
            shape = _MaskLayerShape.from_address(ptr)
            seen += 1
            if seen > 1_000_000 or shape.tot_vert != n_points:
                return None
            if not layer.hide_render:
                frames.add(int(shape.frame))
            ptr = shape.next
    return sorted(frames)


def parse_frames(text: str) -> list[int]:
    """ "1, 10, 20-22" → [1, 10, 20, 21, 22] (scene frames). ValueError with a readable message."""
    out: set[int] = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"'{part}' is not a frame or START-END range") from None
        if b < a:
            raise ValueError(f"'{part}': END is before START")
        out.update(range(a, b + 1))
    return sorted(out)


def clip_index(clip: bpy.types.MovieClip, scene_frame: int) -> int:
    """Scene frame → vmatte's 0-based clip frame index (clip frame 1 is shown at ``clip.frame_start``)."""
    return scene_frame - clip.frame_start + clip.frame_offset


def rasterise(
    scene: bpy.types.Scene, clip: bpy.types.MovieClip, mask: bpy.types.Mask, frames: list[int], folder: str
) -> list[str]:
    """Write ``folder/NNNNNN.png`` (8-bit gray, clip size, NNNNNN = clip frame index) for each scene frame in
    ``frames`` inside the clip. Returns the paths written."""
    width, height = clip.size
    if width <= 0 or height <= 0:
        raise ValueError(f"clip '{clip.name}' has no frames Blender can read ({clip.filepath})")
    os.makedirs(folder, exist_ok=True)
    tmp = bpy.data.scenes.new("vmatte-rasterise")
    keep_frame = scene.frame_current
    written = []
    try:
        r = tmp.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.use_compositing = True
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "BW"
        r.image_settings.color_depth = "8"
        # mask values straight to the file: no view transform or look on the way
        names = {i.identifier for i in tmp.view_settings.bl_rna.properties["view_transform"].enum_items}
        tmp.view_settings.view_transform = "Raw" if "Raw" in names else "Standard"
        tmp.view_settings.look = "None"
        tmp.use_nodes = True
        tree = tmp.node_tree
        for node in list(tree.nodes):
            tree.nodes.remove(node)
        node = tree.nodes.new("CompositorNodeMask")
        node.mask = mask
        node.use_feather = True
        node.size_source = "FIXED"
        node.size_x, node.size_y = width, height
        out = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(node.outputs[0], out.inputs[0])
        for frame in frames:
            index = clip_index(clip, frame)
            if not 0 <= index < clip.frame_duration:
                continue
            scene.frame_set(frame)  # evaluates the mask's shape keys into its points
            tmp.frame_set(frame)
            r.filepath = os.path.join(folder, f"{index:06d}.png")
            bpy.ops.render.render(write_still=True, scene=tmp.name)
            written.append(r.filepath)
    finally:
        bpy.data.scenes.remove(tmp)
        scene.frame_set(keep_frame)
        # frame_set() alone leaves editors showing the last frame rendered; setting the property notifies them
        scene.frame_current = keep_frame
    return written
