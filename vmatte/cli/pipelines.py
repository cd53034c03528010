"""``vmatte pipelines``: list the output presets shipped in pipelines/ (use with ``vmatte run --pipeline NAME``)."""

from __future__ import annotations

import argparse


def register(subs) -> None:
    p = subs.add_parser("pipelines", help="list output presets for --pipeline")
    p.add_argument("name", nargs="?", help="show one preset's TOML")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from importlib import resources

    from vmatte.config import list_presets, load_preset

    presets = list_presets()
    if args.name:
        load_preset(args.name)  # validates the name with a suggestion
        print((resources.files("pipelines") / f"{args.name}.toml").read_text(encoding="utf-8"), end="")
        return 0
    width = max((len(n) for n in presets), default=0)
    for name, desc in presets.items():
        print(f"{name:{width}s}  {desc}")
    return 0
