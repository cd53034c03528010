"""``vmatte run CLIP --masks DIR [-o OUT]``: the whole chain for one clip."""

from __future__ import annotations

import argparse

from vmatte.errors import ConfigError, VmatteError


def add_common_input_args(p: argparse.ArgumentParser, *, masks_required: bool = False) -> None:
    """CLIP, --masks, --frames, --config, --work-size, --band: shared by run, plan and propagate."""
    p.add_argument(
        "input", metavar="CLIP", help="video file, folder of frames, or printf pattern (frames/%%06d.png)"
    )
    p.add_argument(
        "--masks",
        metavar="DIR",
        default=None,
        required=masks_required,
        help="folder of keyframe masks named by frame number (000120.png)",
    )
    p.add_argument(
        "--frames",
        metavar="START-END",
        default=None,
        help="only these clip frames (inclusive), e.g. 1001-1100",
    )
    p.add_argument(
        "--config", metavar="FILE", default=None, help="TOML config file (see configs/reference.toml)"
    )
    p.add_argument(
        "--work-size",
        type=int,
        default=None,
        metavar="PX",
        help="motion (flow) working resolution, long side, for propagation and smoothing (default 640)",
    )
    p.add_argument(
        "--band",
        type=float,
        default=None,
        metavar="FRAC",
        help="unknown band half-width, fraction of the short side (default 0.012)",
    )
    p.add_argument(
        "--propagator",
        choices=["flow", "sam2", "auto"],
        default=None,
        help="how masks travel between keyframes: flow (default, no weights), sam2 (learned tracking, needs "
        "SAM 2 weights) or auto (sam2 when its weights are found)",
    )
    p.add_argument(
        "--propagator-model",
        metavar="M",
        default=None,
        help="SAM 2 weights: hub id (default facebook/sam2.1-hiera-tiny, from the HF cache) or a local folder",
    )


def register(subs) -> None:
    p = subs.add_parser(
        "run",
        help="matte a clip from keyframe masks and write RGBA video / sequences / composites",
        description="Matte CLIP from a few keyframe masks: decode → propagate trimaps → matte → smooth → encode.",
    )
    add_common_input_args(p)
    add_run_args(p)
    add_farm_args(p)
    p.set_defaults(func=main)


def add_farm_args(p: argparse.ArgumentParser) -> None:
    """Render-farm flags of ``vmatte run`` (see docs/farm.md)."""
    g = p.add_argument_group("render farm")
    g.add_argument(
        "--chunk",
        type=int,
        default=None,
        metavar="N",
        help="render as resumable chunks of N frames (with --frames: only those chunks, no assembly)",
    )
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the chunks as Ray tasks: a local Ray started here, or an existing cluster's address",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --ray and no ADDRESS: worker slots (CPUs) of the local Ray (default all cores)",
    )
    g.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="cap OpenCV/torch/BLAS thread pools at N (the cores the scheduler gave this task; "
        "Ray tasks use their CPUs); default: all cores",
    )
    g.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip chunks the manifest proves finished (checksums re-verified); --no-resume redoes all",
    )


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Output, engine and reporting flags shared by ``run`` and ``plan``."""
    p.add_argument(
        "-o",
        "--output",
        action="append",
        default=None,
        metavar="OUT",
        help="output path (repeat for several outputs; format from the extension; default CLIP.matte-rgba.mov)",
    )
    p.add_argument(
        "--pipeline",
        metavar="NAME",
        default=None,
        help="output preset from pipelines/ (vmatte pipelines lists them)",
    )
    p.add_argument(
        "--engine",
        choices=["auto", "vitmatte", "classic"],
        default=None,
        help="matting engine (default auto)",
    )
    p.add_argument(
        "--model", default=None, help="hub id, local model folder, or original ViTMatte .pth checkpoint"
    )
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default=None)
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="frames per forward pass (0 = automatic)"
    )
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="PX",
        help="matte frames whose long side exceeds PX in overlapping tiles (0 = only when memory requires)",
    )
    p.add_argument(
        "--memory-budget-gb", type=float, default=None, metavar="GB", help="cap GPU memory used by the engine"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model (CUDA; compile time reported separately)",
    )
    p.add_argument("--alpha-only", action="store_true", help="write a gray alpha matte instead of RGBA")
    p.add_argument(
        "--composite",
        metavar="BG",
        default=None,
        help="composite over a colour (#00ff00, green), an image or a clip",
    )
    p.add_argument(
        "--premultiplied", action="store_true", help="write premultiplied colour (default straight alpha)"
    )
    p.add_argument(
        "--no-decontaminate",
        action="store_true",
        help="keep original edge colours (no foreground estimation)",
    )
    p.add_argument("--no-smooth", action="store_true", help="disable temporal smoothing")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--report", metavar="FILE", default=None, help="write a JSON run report here")
    p.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "json", "none"],
        default=None,
        help="progress display on stderr (auto: bar on a terminal, lines otherwise)",
    )


def overrides_from_args(args: argparse.Namespace) -> dict:
    """CLI flags → a partial config dict (the top layer of defaults < file < preset < flags)."""
    o: dict = {"input": args.input}
    if args.masks is not None:
        o["masks"] = args.masks
    if args.frames is not None:
        o["frames"] = args.frames
    prop = {}
    if getattr(args, "work_size", None) is not None:
        o["flow"] = {"work_size": args.work_size}
    if getattr(args, "band", None) is not None:
        prop["band"] = args.band
    if getattr(args, "propagator", None) is not None:
        prop["propagator"] = args.propagator
    if getattr(args, "propagator_model", None) is not None:
        prop["propagator_model"] = args.propagator_model
    if prop:
        o["propagate"] = prop
    eng = {
        k: v
        for k, v in {
            "name": getattr(args, "engine", None),
            "model": getattr(args, "model", None),
            "device": getattr(args, "device", None),
            "precision": getattr(args, "precision", None),
            "batch_size": getattr(args, "batch_size", None),
            "tile": getattr(args, "tile", None),
            "memory_budget_gb": getattr(args, "memory_budget_gb", None),
            "compile": getattr(args, "compile", None),
        }.items()
        if v is not None
    }
    if eng:
        o["engine"] = eng
    patch: dict = {}
    if getattr(args, "alpha_only", False):
        patch["content"] = "alpha"
    if getattr(args, "composite", None):
        patch["content"] = "composite"
        patch["background"] = args.composite
    if getattr(args, "premultiplied", False):
        patch["premultiplied"] = True
    if getattr(args, "no_decontaminate", False):
        patch["decontaminate"] = False
    if patch:
        o["output"] = patch
    if getattr(args, "cpu_threads", None) is not None:
        if args.cpu_threads < 0:
            raise ConfigError(
                f"--cpu-threads must be 0 (all cores) or more, got {args.cpu_threads}",
                hint="give the number of cores this task may use",
            )
        o["pipeline"] = {"cpu_threads": args.cpu_threads}
    if getattr(args, "no_smooth", False):
        o["smooth"] = {"enabled": False}
    for key in ("overwrite",):
        if getattr(args, key, False):
            o[key] = True
    if getattr(args, "report", None):
        o["report"] = args.report
    if getattr(args, "progress", None):
        o["progress"] = args.progress
    return o


def build_run_config(args: argparse.Namespace):
    """Compose the RunConfig from --config, --pipeline and flags; -o paths fill the outputs in order."""
    from vmatte.config import build_config, load_preset
    from vmatte.configtools import load_toml

    overrides = overrides_from_args(args)
    content_flags = [
        f for f, on in (("--composite", args.composite), ("--alpha-only", args.alpha_only)) if on
    ]
    if len(content_flags) == 2:
        raise ConfigError(
            "--composite and --alpha-only both say what the output holds: pick one",
            hint="for a matte and a composite from one run, give each output its content in a --config file "
            "(see README, Outputs)",
        )
    if args.output:
        base_outputs: list = [{}]
        source = "command line"
        if args.pipeline:
            source = f"pipelines/{args.pipeline}.toml"
            base_outputs = load_preset(args.pipeline).get("outputs") or [{}]
        elif args.config:
            source = str(args.config)
            base_outputs = load_toml(args.config).get("outputs") or [{}]
        if not isinstance(base_outputs, list) or not all(isinstance(o, dict) for o in base_outputs):
            # checked here because -o merges into these tables before the schema sees them
            raise ConfigError(
                f"{source}: 'outputs' must be an array of tables, got {type(base_outputs).__name__}",
                hint="write one [[outputs]] table per output",
            )
        outputs = [dict(o) for o in base_outputs]
        for i, path in enumerate(args.output):
            if i < len(outputs):
                outputs[i]["path"] = path
            else:
                outputs.append({"path": path})
        overrides["outputs"] = outputs
    config = build_config(config_file=args.config, preset=args.pipeline, overrides=overrides)
    if content_flags and len(config.outputs) > 1:
        # the flag would turn every output into a composite (or a matte), RGBA ones included: say so instead
        paths = ", ".join(o.path or "(default)" for o in config.outputs)
        raise ConfigError(
            f"{content_flags[0]} would apply to all {len(config.outputs)} outputs ({paths})",
            hint='give each output its own content in a --config file ([[outputs]] content = "rgba", then '
            '[[outputs]] content = "composite" background = "green"; -o paths fill them in order; see README, '
            "Outputs), or run once per output",
        )
    return config


def main(args: argparse.Namespace) -> int:
    from vmatte.cli._session import final_event, interruptible, print_suggestions
    from vmatte.pipeline.progress import Progress
    from vmatte.pipeline.runner import run

    progress = Progress(getattr(args, "progress", None) or "auto")
    with final_event(progress):
        try:
            config = build_run_config(args)
        except VmatteError as exc:
            # a farm monitor reads the report even when the command line or config was wrong
            if getattr(args, "report", None):
                from vmatte.cli._usage import write_error_report

                write_error_report(
                    args.report,
                    input=getattr(args, "input", "") or "",
                    masks=getattr(args, "masks", "") or "",
                    outputs=list(getattr(args, "output", None) or []),
                    message=str(exc),
                    exit_code=exc.exit_code,
                    retryable=exc.retryable,
                )
            raise
        if config.progress != progress.mode:
            progress = Progress(config.progress)  # set in a --config file
    with final_event(progress):
        if getattr(args, "chunk", None) is not None or getattr(args, "ray", None) is not None:
            from vmatte.cli._farm import main_farm

            return main_farm(args, config, progress)
        with interruptible(config, progress) as cancel:
            report = run(config, on_progress=progress, cancel=cancel)
        outs = ", ".join(report.outputs)
        progress.info(
            f"wrote {report.frames_written} frames ({report.width}x{report.height}) in {report.times.total:.1f} s "
            f"({report.fps:.2f} frames/s, engine {report.engine.get('engine', '?')}) → {outs}"
        )
        print_suggestions(report.suggested_keyframes, progress)
        progress.end("ok", 0, outputs=report.outputs, warnings=report.warnings, frames=report.frames_written)
        return 0
