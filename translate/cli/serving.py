"""`translate serve`: the local HTTP service (editor page, API, job API) for one or several models."""
from __future__ import annotations

import argparse
import sys

from translate.cli.models import (
    add_direction, add_engine_options, add_model_source, inference_options, source_options,
)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run a local HTTP service and web editor for trained models",
                       description="Serve SOURCE... over HTTP: POST /translate (multipart image, optional mask, "
                                   "model=NAME) answers the translated image; GET /models lists the models, "
                                   "each named after its run folder or file; POST /jobs runs one with progress "
                                   "and cancel (the Krita plug-in uses it); the editor page is at /, the API "
                                   "docs at /docs. Binds 127.0.0.1 (this machine only) unless --host says "
                                   "otherwise; there is no authentication.")
    add_model_source(p)
    # serve takes several sources (or --models-dir); the other flags are convert's.
    source = next(action for action in p._actions if action.dest == "source")
    source.nargs, source.default, source.metavar = "*", [], "SOURCE"
    p.add_argument("--models-dir", metavar="DIR",
                   help="also serve every run directory (with checkpoints/) and model file directly in DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    add_direction(p, "serve only this generator (default: every one in SOURCE)")
    add_engine_options(p)
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MiB (20)")
    p.add_argument("--max-megapixels", type=float, default=25.0,
                   help="largest image in megapixels, checked from the header before decoding (25)")
    p.add_argument("--max-concurrent", type=int, default=2, help="net passes running at once (2)")
    p.add_argument("--request-timeout-s", type=float, default=120.0,
                   help="answer 504 to a request not translated within this many seconds, waiting included (120)")
    p.add_argument("--result-ttl-s", type=float, default=600.0,
                   help="how long a finished job's result is kept for its client (600)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name, e.g. behind a proxy (repeatable; * for any). "
                        "By default only localhost, 127.0.0.1, [::1] and the --host address on --port")
    p.set_defaults(func=_cmd_serve)


def _check_numbers(args: argparse.Namespace) -> None:
    from translate.errors import TranslatorError

    if not 0 < args.port < 2**16:
        raise TranslatorError(f"--port: must be a TCP port from 1 to 65535, got {args.port}")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-megapixels", args.max_megapixels),
                        ("--max-concurrent", args.max_concurrent), ("--request-timeout-s", args.request_timeout_s),
                        ("--result-ttl-s", args.result_ttl_s)):
        if not value > 0:  # `not >` also refuses nan
            raise TranslatorError(f"{flag}: must be positive, got {value}")


def _cmd_serve(args: argparse.Namespace) -> int:
    from translate.errors import TranslatorError

    _check_numbers(args)
    try:
        from translate.serving.app import HostPolicy, create_app, is_loopback, run_server
        from translate.serving.models import load_served, sources_in

        sources = list(args.source) + (sources_in(args.models_dir) if args.models_dir else [])
        served = load_served(sources, inference_options(args), **source_options(args))
        app = create_app(served, max_upload_bytes=int(args.max_upload_mb * 2**20),
                         max_pixels=int(args.max_megapixels * 1e6), max_concurrent=args.max_concurrent,
                         request_timeout_s=args.request_timeout_s, result_ttl_s=args.result_ttl_s,
                         host_policy=HostPolicy.for_bind(args.host, args.port, args.allowed_host))
    except ModuleNotFoundError as e:
        raise TranslatorError(f"serve needs {e.name}: pip install 'translate[serve]'") from None
    for name, translators in served.items():
        for direction, translator in translators.items():
            print(f"{name} {direction}: {translator.describe()}")
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, reachable from other machines, with no authentication",
              file=sys.stderr)
    print(f"editor: http://{args.host}:{args.port}/   API docs: http://{args.host}:{args.port}/docs   (Ctrl+C stops)")
    run_server(app, host=args.host, port=args.port)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_serve(sub)
