"""``deltaprop playground``: the local web app (:mod:`deltaprop.playground`) from the shell."""

from __future__ import annotations

import os
import sys

from deltaprop.cli.args import Formatter, port_number, seed_int
from deltaprop.cli.common import out
from deltaprop.errors import ConfigError, ModelFileError


def register(sub) -> None:
    p = sub.add_parser(
        "playground", help="train a network in the browser, step by step, and watch backprop",
        formatter_class=Formatter,
        description="Start a local web app (on 127.0.0.1 only) that trains a network with deltaprop's engine while "
                    "you watch: the network, the decision boundary, the loss curves and, stage by stage, the "
                    "backward pass of the next step with its equations and finite-difference check. The page works "
                    "offline. Settings can also be given in the page's URL: ?data=xor&layers=8,8&seed=3&batch=4.",
        epilog="examples:\n  deltaprop playground\n  deltaprop playground --port 0 --no-browser\n"
               "  deltaprop playground --data spiral --layers 8,8 --seed 3\n"
               "  deltaprop playground runs/<stamp>/model.safetensors   a trained model (2 inputs or digits)")
    p.add_argument("model", nargs="?", help="a model file written by deltaprop, offered as the 'model file' data choice")
    p.add_argument("--port", type=port_number, default=8765, help="port on 127.0.0.1; 0 picks a free one")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    p.add_argument("--data", default=None, help="circles, xor, moons, spiral, blobs or digits (default circles)")
    p.add_argument("--layers", default=None,
                   help="hidden layer sizes such as 8,8, or a preset of the notes: note000 ... note003 (default 6,4)")
    p.add_argument("--seed", type=seed_int, default=None, help="seed of the data and the initial weights (default 0)")
    p.set_defaults(handler=cmd_playground)


def cmd_playground(args) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0 to 65535, got {args.port}", "for example --port 8765, or --port 0")
    from deltaprop.playground import serve
    from deltaprop.playground.session import Config

    if args.model and not os.path.isfile(args.model):
        raise ModelFileError(f"no model file at {args.model}", "pass the path of a file written by deltaprop train")
    query = {k: v for k, v in (("data", args.data), ("network", args.layers), ("seed", args.seed)) if v is not None}
    if args.model and "data" not in query:
        query["data"] = "model"
    serve(port=args.port, open_browser=not args.no_browser, model_path=args.model, config=Config.from_query(query),
          announce=lambda line: (out(line), sys.stdout.flush()))
    return 0
