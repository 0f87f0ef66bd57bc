"""The playground's web server (Flask), bound to 127.0.0.1: the page's files and a small JSON API.

    GET  /                  the page (static/index.html; plain HTML, CSS and JS, nothing fetched from elsewhere)
    GET  /api/state         step, losses, accuracy, loss curves, the network as SVG
    POST /api/reset         a new session from settings (JSON: data, network, activation, optimizer, lr, batch, l2, seed)
    POST /api/step          n training steps (JSON {"n": 10}), then the state
    GET  /api/boundary      the decision boundary on a grid, and the points (2-D data)
    GET  /api/backprop      the next Step's batch traced stage by stage, with equations and finite differences
                            (?notation=columns: as notes 001 and 003 write it, examples in columns and dZ)
    POST /api/model         upload a model file (the request body); it becomes the "model" data choice

Errors come back as JSON ``{"error": message, "hint": hint}`` with status 400 (a setting or request the
playground refuses), 404, 405 or 413 (an unknown address, a wrong method, a model file too large), or 500
(a failure of the playground itself, named, its traceback left in the server's log), and the page shows them.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from deltaprop.errors import ConfigError, DeltapropError

__all__ = ["create_app", "make_server", "serve"]

STATIC = Path(__file__).with_name("static")


def _flask():
    try:
        import flask
    except ImportError:
        raise ConfigError("the playground needs Flask, which is not installed",
                          "pip install 'deltaprop[playground]'") from None
    return flask


MAX_UPLOAD = 256 * 1024 * 1024  # bytes of a model file sent from the page; the networks it plays with are far smaller

def create_app(model_path: str | None = None, config=None):
    """The Flask application with one session (a local app has one user)."""
    flask = _flask()
    from deltaprop.playground.session import Config, Session

    app = flask.Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD  # a larger request is refused (413) before it is read
    lock = threading.Lock()
    holder = {"session": Session(config or Config(), model_path=model_path), "model": model_path}

    def answer(fn):
        # The playground's products are small: on one BLAS thread a digits step takes 7 ms instead of
        # 45-70 ms, measured on 2 busy cores (threads handing over work cost more than they gain).
        from deltaprop import fast

        try:
            with lock, fast.blas_threads_for(0):
                return flask.jsonify(fn())
        except DeltapropError as err:
            return flask.jsonify({"error": err.message, "hint": err.hint}), 400

    def body_object() -> dict:
        """The request's JSON object ({} when there is none); a list, string or number is refused by name."""
        body = flask.request.get_json(silent=True)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ConfigError(f"the request must be a JSON object of settings, got {type(body).__name__}",
                              'for example {"data": "xor", "network": "8,8"}')
        return body

    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def http_error(err):
        hint = {404: "the playground's page is at /", 405: "see the routes in deltaprop.playground.server",
                413: f"the playground takes model files up to {MAX_UPLOAD // 2**20} MiB"}[err.code]
        return flask.jsonify({"error": f"{err.code} {err.name}: {err.description}", "hint": hint}), err.code

    @app.errorhandler(500)
    def failure(err):
        # A bug, not the user's doing: the page says what failed instead of going blank; the log keeps the
        # traceback.
        cause = getattr(err, "original_exception", None) or err
        return flask.jsonify({"error": f"the playground failed: {type(cause).__name__}: {cause}",
                              "hint": "a bug in deltaprop: please report it with the page's address"}), 500

    @app.get("/")
    def index():
        return flask.send_from_directory(STATIC, "index.html")

    @app.get("/favicon.ico")
    def favicon():
        return flask.send_from_directory(STATIC, "favicon.svg", mimetype="image/svg+xml")

    @app.get("/api/state")
    def state():
        return answer(lambda: holder["session"].state())

    @app.post("/api/reset")
    def reset():
        def run():
            body = body_object()
            session = holder["session"]
            cfg = Config.from_query({k: v for k, v in body.items() if v is not None})
            session.model_path = holder["model"]
            session.reset(cfg)
            return session.state()
        return answer(run)

    @app.post("/api/step")
    def step():
        def run():
            body = body_object()
            try:
                n = int(body.get("n", 1))
            except (TypeError, ValueError):
                raise ConfigError(f"n must be a whole number, got {body.get('n')!r}", "for example {\"n\": 1}") from None
            holder["session"].step(n)
            return holder["session"].state()
        return answer(run)

    @app.get("/api/boundary")
    def boundary():
        return answer(lambda: holder["session"].boundary())

    @app.get("/api/backprop")
    def backprop():
        notation = flask.request.args.get("notation", "bracket")
        return answer(lambda: holder["session"].backprop(notation))

    @app.post("/api/model")
    def upload_model():
        data = flask.request.get_data()

        def run():
            if not data:
                raise ConfigError("no model file in the request", "choose a file written by deltaprop train")
            fd, path = tempfile.mkstemp(prefix="deltaprop-playground-", suffix=".safetensors")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            import deltaprop

            deltaprop.load(path)  # refuses anything but a deltaprop model file, with the reason
            holder["model"] = path
            session = holder["session"]
            session.model_path = path
            session.reset(Config.from_query({"data": "model"}, session.config))
            return session.state()
        return answer(run)

    return app


def make_server(port: int = 8765, model_path: str | None = None, config=None):
    """A werkzeug server for the playground on 127.0.0.1:port (``port=0``: a free port), not yet
    serving; ``server.server_port`` is the port it got. Tests run ``server.serve_forever`` in a thread."""
    _flask()
    from werkzeug.serving import make_server as _make_server

    app = create_app(model_path=model_path, config=config)
    try:
        return _make_server("127.0.0.1", int(port), app, threaded=True)
    except OSError as err:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}",
                          "choose another port with --port, or --port 0 for a free one") from None


def serve(port: int = 8765, open_browser: bool = True, model_path: str | None = None, config=None,
          announce=print) -> None:
    """Run the playground on 127.0.0.1:port until interrupted (``port=0``: a free port). The URL is
    announced before the server starts answering, then the browser is opened on it (unless told not to)."""
    server = make_server(port, model_path=model_path, config=config)
    url = f"http://127.0.0.1:{server.server_port}/"
    announce(f"deltaprop playground: {url}  (Ctrl-C stops it)")
    if open_browser:
        import webbrowser

        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
