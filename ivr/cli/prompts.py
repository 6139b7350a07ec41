"""`ivr prompts build|list|say`: the prompt catalogue and its audio."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("prompts", help="build prompt audio, list prompts, try out pt-BR rendering")
    actions = parser.add_subparsers(dest="prompts_action", required=True, metavar="ACTION")

    build = actions.add_parser("build", help="synthesise/convert changed prompts to .alaw/.ulaw audio")
    build.add_argument("--force", action="store_true", help="rebuild every prompt, changed or not")
    build.set_defaults(handler=_build)

    listing = actions.add_parser("list", help="every prompt id with its duration, source and text")
    listing.set_defaults(handler=_list)

    say = actions.add_parser("say", help="show the fragments and words for a value, e.g. say money 1234.50")
    say.add_argument("kind", help="number, money, date, time, digits, protocol or phone")
    say.add_argument("value")
    say.add_argument(
        "-o", "--option", action="append", default=[], metavar="NAME=VALUE",
        help="a rendering option, e.g. -o gender=f, -o weekday=true",
    )  # fmt: skip
    say.set_defaults(handler=_say)


def _build(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.voice.build import BuildError, build_prompts
    from ivr.voice.catalogue import Catalogue, CatalogueError

    conf = settings()
    try:
        result = build_prompts(
            Catalogue.load(conf.prompts_dir),
            conf.prompts_dir,
            force=args.force,
            voice=conf.voice.espeak_voice,
            words_per_minute=conf.voice.words_per_minute,
            workers=conf.voice.build_workers,
        )
    except (CatalogueError, BuildError) as exc:
        print(f"ivr prompts build: {exc}", file=sys.stderr)
        return 1
    for path in result.stray_recordings:
        print(f"warning: {path} is named after no prompt id; it is not used", file=sys.stderr)
    print(result.summary())
    return 0


def _list(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.voice.build import AUDIO_SUBDIR, BuildError, ManifestEntry, read_manifest
    from ivr.voice.catalogue import Catalogue, CatalogueError

    prompts_dir = settings().prompts_dir
    try:
        catalogue = Catalogue.load(prompts_dir)
        manifest: dict[str, ManifestEntry] = read_manifest(prompts_dir / AUDIO_SUBDIR)
    except (CatalogueError, BuildError) as exc:
        print(f"ivr prompts list: {exc}", file=sys.stderr)
        return 1
    for prompt_id in catalogue.ids():
        entry = manifest.get(prompt_id)
        built = f"{entry.duration_s:6.2f}s {entry.source:9}" if entry else "   -    not built"
        source = catalogue.source(prompt_id)
        print(f"{prompt_id:28} {built} {source.path.name}:{source.line:<4} {catalogue.text(prompt_id)}")
    return 0


def _say(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.voice.catalogue import Catalogue, CatalogueError
    from ivr.voice.speak import SayError, say_ids

    try:
        options = dict(_option(text) for text in args.option)
        ids = say_ids(args.kind, args.value, **options)
        text = Catalogue.load(settings().prompts_dir).render_text(ids)
    except (SayError, CatalogueError) as exc:
        print(f"ivr prompts say: {exc}", file=sys.stderr)
        return 1
    print(" ".join(ids))
    print(text)
    return 0


def _option(text: str) -> tuple[str, object]:
    from ivr.voice.speak import SayError

    name, sep, value = text.partition("=")
    if not sep:
        raise SayError(f"option {text!r}: expected NAME=VALUE, e.g. gender=f")
    booleans = {"true": True, "false": False}
    return name, booleans.get(value.lower(), value)
