"""Build the installable add-on zip: ``python integrations/blender/build_zip.py [--out DIR]``.

Blender installs it with Edit > Preferences > Add-ons > Install... (or ``bpy.ops.preferences.addon_install``).
The zip holds the ``vmatte_blender`` package folder, without caches; prints the zip's path.
"""

from __future__ import annotations

import argparse
import ast
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "vmatte_blender"


def version() -> str:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in node.targets):
            return ".".join(str(v) for v in ast.literal_eval(node.value)["version"])
    raise SystemExit("bl_info not found in vmatte_blender/__init__.py")


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"vmatte_blender-{version()}.zip"
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(PACKAGE.rglob("*.py")):
            zf.write(f, f.relative_to(HERE).as_posix())
    tmp.replace(target)  # a half-written zip never sits at the final name
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", type=Path, default=HERE / "dist", help="folder for the zip (default: dist/ here)"
    )
    print(build(ap.parse_args().out))


if __name__ == "__main__":
    main()
