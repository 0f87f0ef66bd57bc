"""The documentation as a new user meets it: every Python block of README.md and docs/*.md runs in a fresh
interpreter, every ``deltaprop ...`` command they name is one the parser accepts, and the transcripts they
show (``$ deltaprop ...`` and the lines it printed) are what the command prints now.

A block that cannot run here says why in ``NOT_RUN`` (or runs under ``@pytest.mark.slow``); a new block
is run by default, so a doc cannot drift out of reach of these tests by being added."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli_child import child_env
from deltaprop.cli.main import build_parser
from deltaprop.cli.main import main as deltaprop_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path):
    """(line number, language, text) of every fenced block of a Markdown file."""
    found, lang, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, lines = line[3:].strip(), number, []
            else:
                found.append((start, lang, "\n".join(lines) + "\n"))
                lang = None
        elif lang is not None:
            lines.append(line)
    assert lang is None, f"{path.name}: the block opened at line {start} is never closed"
    return found


def python_blocks():
    return [pytest.param(path, number, text, id=f"{path.name}:{number}", marks=_marks(text))
            for path in DOCS for number, lang, text in blocks(path) if lang == "python"]


def _marks(text):
    # PyTorch's and Dask's imports alone take seconds, and the cluster block starts a scheduler: .ci/run's
    # slow run holds those blocks
    return [pytest.mark.slow] if re.search(r"^(from|import) (torch|dask|distributed)\b", text, re.M) else []


def _cli(*argv, cwd=None):
    """(exit code, stdout + stderr) of the deltaprop command run in this process, in ``cwd``."""
    out, here = io.StringIO(), os.getcwd()
    os.chdir(cwd or here)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = deltaprop_main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    finally:
        os.chdir(here)
    return code, out.getvalue()


# -- Python blocks -------------------------------------------------------------------------------------
def _block_files(text: str, where: Path) -> None:
    """The files a block reads as a user would have them from the step before (named in its text)."""
    if "model.safetensors" in text:  # file-format.md: a model written by deltaprop
        import numpy as np

        import deltaprop as dp

        net = dp.Network.from_sizes([64, 32, 10], seed=0)
        net.meta["classes"] = [str(k) for k in range(10)]
        dp.save(net, where / "model.safetensors")
        assert np.array_equal(dp.load(where / "model.safetensors").layers[0].W, net.layers[0].W)
    if 'np.load("X.npy"' in text:  # scale.md: rows saved with numpy.save
        import numpy as np
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        np.save(where / "X.npy", X / 16)
        np.save(where / "y.npy", y)


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A real scheduler and two single-threaded workers on 127.0.0.1 (the cluster scale.md starts)."""
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    started = []
    for argv, log in (
            (["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port)], "scheduler.log"),
            (["distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1"], "workers.log")):
        with open(logs / log, "w") as out:
            started.append(subprocess.Popen([sys.executable, "-m", *argv, "--no-dashboard"], stdout=out,
                                            stderr=subprocess.STDOUT, env=child_env()))
    scheduler, workers = started
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in (workers, scheduler):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.parametrize(("path", "line", "text"), python_blocks())
def test_every_python_block_runs_in_a_fresh_interpreter(path, line, text, tmp_path, request):
    _block_files(text, tmp_path)
    if "tcp://HOST:8786" in text:  # the reader's scheduler: here a real one on this machine
        text = text.replace("tcp://HOST:8786", request.getfixturevalue("dask_scheduler"))
    script = tmp_path / "block.py"
    script.write_text(text, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=child_env(), capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, (
        f"{path.name}:{line} fails as written\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    assert "Traceback" not in proc.stderr


def test_the_python_blocks_are_found():
    # the extractor itself: a doc whose fences it misread would leave its blocks untested
    found = [(p.values[0].name, p.values[2].split("\n")[0], bool(p.marks)) for p in python_blocks()]
    assert ("README.md", "import numpy as np", False) in found
    assert ("README.md", "import deltaprop as dp", True) in found  # the round trip, with PyTorch
    assert ("estimators.md", "from sklearn.datasets import load_breast_cancer", False) in found
    assert [name for name, _, slow in found if slow] == ["README.md", "scale.md", "scale.md"]
    assert len(found) >= 9


# -- commands ----------------------------------------------------------------------------------------------
def _segments(line: str):
    """The commands of one line of a code block: ``$ deltaprop ...``, or ``deltaprop ...`` followed by its
    description after two or more spaces (text blocks list several that way), or ``# a comment``. Spaces
    that align the arguments of a short command name (``deltaprop info     runs/latest``) are not a cut."""
    line = re.sub(r"^\s*\$ ", "", line)
    line = re.sub(r"\bdeltaprop (\w+) {2,}(?=[-\w.~]*[/.-])", r"deltaprop \1 ", line)
    for segment in re.split(r"\s{2,}|\s#\s", line):
        if segment.startswith("deltaprop "):
            yield segment


def _spans(text: str):
    """Inline code spans that are whole commands: ``deltaprop SUB ...`` with at least one argument."""
    for span in re.findall(r"`(deltaprop [^`\n]+)`", text):
        words = span.split()
        if len(words) >= 3 and "..." not in span and "…" not in span:
            yield span


def documented_commands():
    commands = []
    for path in DOCS:
        for number, lang, text in blocks(path):
            if lang in ("", "text", "bash"):
                lines = text.splitlines()
                if any(line.startswith("$ ") for line in lines):  # a transcript: the rest is what it printed
                    lines = [line for line in lines if line.startswith("$ ")]
                commands += [(path.name, number, c) for line in lines for c in _segments(line)]
        prose = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        commands += [(path.name, 0, c) for c in _spans(prose)]
    return commands


def _placeholders(argv):
    """Placeholders as a reader fills them in: ``A|B`` choices the first, ``[STEP]`` left out."""
    out = []
    for word in argv:
        if re.fullmatch(r"\[[^\]]*\]", word) or word in ("...", "…"):
            continue
        if re.fullmatch(r"[a-z0-9]+(\|[a-z0-9]+)+", word):
            word = word.split("|")[0]
        out.append(word)
    return out


def _options(parser) -> set[str]:
    """Every option string of a parser and of the subcommands below it, spelt out."""
    names = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _options(sub)
    return names


def refusals(commands) -> list[str]:
    """What the parser says of each (doc, line, command); a prefix of an option, which argparse would take,
    counts as a misspelling: the doc should name the option a reader finds in --help."""
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    refused = []
    for name, line, command in commands:
        argv = _placeholders(shlex.split(command)[1:])
        if not argv or argv[0] not in subcommands:
            refused.append(f"{name}:{line}: {command!r}: no command {argv[:1]}")
            continue
        known = _options(subcommands[argv[0]])
        unknown = [w for w in argv if w.startswith("-") and w.split("=")[0] not in known
                   and not w[1:2].isdigit()]
        if unknown:
            refused.append(f"{name}:{line}: {command!r}: {argv[0]} has no option {unknown}")
            continue
        if "-h" in argv or "--help" in argv:
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
        except SystemExit as exit_:
            if exit_.code:
                refused.append(f"{name}:{line}: {command!r}: {err.getvalue().strip().splitlines()[-1]}")
    return refused


def test_every_documented_command_is_accepted_by_the_parser():
    commands = documented_commands()
    assert refusals(commands) == []
    # the extractor found the commands the README's table lists, not only a few
    named = {shlex.split(c)[1] for _, _, c in commands}
    assert {"train", "search", "evaluate", "predict", "info", "gradcheck", "explain", "trace", "diagnose",
            "exercises", "check", "export", "import", "playground"} <= named


def test_a_misspelt_option_in_a_doc_would_be_caught():
    # the parser test above cannot pass on a doc that names an option the command does not have
    for wrong in ("deltaprop train --epoch 20", "deltaprop train --epocs 20", "deltaprop trian",
                  "deltaprop check FILE.py --format htm",
                  "deltaprop exercises start one_hidden work --solution"):
        assert len(refusals([("doc", 1, wrong)])) == 1, wrong
    assert refusals([("doc", 1, "deltaprop exercises hint NAME [STEP]")]) == []
    assert list(_segments("deltaprop check FILE.py --format html|json  the report as HTML or JSON")) == [
        "deltaprop check FILE.py --format html|json"]
    assert list(_segments("deltaprop info     runs/latest                    architecture, parameters")) == [
        "deltaprop info runs/latest"]


# -- transcripts -------------------------------------------------------------------------------------------
_TIME = re.compile(r"\b\d+(?:\.\d+)? (?:s|ms)\b")
_NOISE = re.compile(r"\b\d\.\de-(?:1[2-9]|[2-9]\d)\b")  # rounding noise, which a BLAS of another CPU changes


def _masked(line: str) -> str:
    return _NOISE.sub("<rounding>", _TIME.sub("<time>", line.rstrip()))


def assert_transcript(shown: list[str], printed: str, where: str) -> None:
    """The lines a doc shows are the lines printed, in order, where a line ``...`` stands for any number of
    lines and a line ending in `` ...`` for the rest of that line; times and rounding noise (1e-12 and below)
    are masked."""
    got = [_masked(line) for line in printed.rstrip("\n").splitlines()]
    at, skipping = 0, False
    for want in shown:
        if want.strip() in ("...", "…"):
            skipping = True
            continue
        want = _masked(want)
        cut = want.endswith(" ...")

        def same(line, want=want, cut=cut):
            return line.startswith(want[:-3]) if cut else line == want

        if skipping:
            while at < len(got) and not same(got[at]):
                at += 1
        assert at < len(got) and same(got[at]), (
            f"{where}: the doc shows\n  {want!r}\nthe command printed, from there:\n  "
            + "\n  ".join(map(repr, got[at:at + 8])))
        at += 1
        skipping = False
    assert skipping or at == len(got), f"{where}: the command printed more than the doc shows: {got[at:][:4]}"


def transcripts(path: Path, contains: str):
    """[command, shown lines, line number, exit code or None] of the ``$ deltaprop`` lines of the text blocks
    holding ``contains``; the code is what a ``$ echo $?`` after the command shows."""
    runs = []
    for number, lang, text in blocks(path):
        if lang != "text" or contains not in text:
            continue
        lines = text.splitlines()
        for offset, line in enumerate(lines):
            if line == "$ echo $?":
                runs[-1][3] = int(lines[offset + 1])
            elif line.startswith("$ "):
                runs.append([line[2:].split("  #")[0].strip(), [], number + offset + 1, None])
            elif runs and lines[offset - 1] != "$ echo $?":
                runs[-1][1].append(line)
    return runs


def test_the_readme_data_transcripts_are_what_the_commands_print(tmp_path):
    # README "Data as people have it": its Python block writes the CSVs; each `$ deltaprop train` shown there
    # prints these lines (breast cancer's figures, diabetes' question, its RMSE and R²)
    readme = ROOT / "README.md"
    setup = next(text for _, lang, text in blocks(readme) if lang == "python" and "diabetes.csv" in text)
    subprocess.run([sys.executable, "-c", setup], cwd=tmp_path, env=child_env(), check=True, timeout=300)
    runs = transcripts(readme, "breast_cancer.csv") + transcripts(readme, "diabetes.csv")
    assert [run[0] for run in runs][:2] == ["deltaprop train --data breast_cancer.csv --target target",
                                           "deltaprop train --data diabetes.csv --target progression"]
    for command, shown, line, _ in runs:
        code, printed = _cli(*shlex.split(command)[1:], "--no-plots", cwd=tmp_path)
        assert code == (2 if "error:" in "\n".join(shown) else 0), printed
        printed = re.sub(r"^epoch .*\n", "", printed, flags=re.M)  # the progress lines the doc leaves out
        assert_transcript(shown, printed, f"README.md:{line}")


def _starter_with(answer: str, directory: Path) -> Path:
    """work/one_hidden.py as `deltaprop exercises start` writes it, its backprop replaced by ``answer``."""
    code, printed = _cli("exercises", "start", "one_hidden", "work", cwd=directory)
    assert code == 0, printed
    path = directory / "work" / "one_hidden.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:text.index("def backprop(")] + answer, encoding="utf-8")
    return path


def test_the_worked_example_of_the_exercises_prints_what_the_docs_show(tmp_path):
    doc = ROOT / "docs" / "exercises.md"
    answer = next(text for _, lang, text in blocks(doc)
                  if lang == "python" and text.startswith("def backprop("))
    start, first, second = transcripts(doc, "deltaprop check work/one_hidden.py")
    assert start[0] == "deltaprop exercises start one_hidden work"
    _, printed = _cli("exercises", "start", "one_hidden", "work", cwd=tmp_path)
    assert_transcript(start[1], printed, f"exercises.md:{start[2]}")
    (tmp_path / "work" / "one_hidden.py").unlink()

    # as the doc has it: note 003's dW = (1/m) dZ A1ᵀ after dZ2 = (A2 − Y)/m; the README shows the same run
    _starter_with(answer, tmp_path)
    readme = [(c, shown, f"README.md:{line}", code) for c, shown, line, code in
              transcripts(ROOT / "README.md", "deltaprop check") if c.startswith("deltaprop check")]
    assert len(readme) == 1
    for command, shown, where, expected in [(first[0], first[1], f"exercises.md:{first[2]}", first[3]),
                                            *readme]:
        code, printed = _cli(*shlex.split(command)[1:], cwd=tmp_path)
        assert code == 1 and expected in (None, 1)
        assert_transcript(shown, printed, where)

    # "Remove the second / m from the four gradient lines and check again"
    fixed = re.sub(r"^(    d[Wb][12] = .*?) / m\b", r"\1", answer, flags=re.M)
    assert fixed.count("/ m") == 2  # what is left: dZ2 and the cost
    (tmp_path / "work" / "one_hidden.py").unlink()
    _starter_with(fixed, tmp_path)
    command, shown, line, expected = second
    code, printed = _cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert code == expected == 0
    assert_transcript(shown, printed, f"exercises.md:{line}")


def test_note_000s_formula_is_named_as_the_doc_shows(tmp_path):
    doc = ROOT / "docs" / "exercises.md"
    ((command, shown, line, expected),) = transcripts(doc, "deltaprop check n000/per_example.py")
    code, printed = _cli("exercises", "start", "per_example", "n000", "--solutions", cwd=tmp_path)
    assert code == 0, printed
    path = tmp_path / "n000" / "per_example.py"
    text = path.read_text(encoding="utf-8")
    assert text.count("Ds.append((Delta + lam * T_tilde) / m)") == 1  # the last step the doc replaces
    path.write_text(text.replace("Ds.append((Delta + lam * T_tilde) / m)", "Ds.append(Delta / m + lam * T)"))
    code, printed = _cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert code == expected == 1
    assert_transcript(shown, printed, f"exercises.md:{line}")


def test_the_transcript_check_cannot_pass_on_a_stale_figure():
    printed = "a\ncost    right    9.2e-17\ntest accuracy 0.9883   (171 test rows, 0.124 s of training)\nz\n"
    assert_transcript(["...", "test accuracy 0.9883   (171 test rows, 0.5 s of training)", "..."],
                      printed, "t")
    assert_transcript(["a", "cost    right    9.7e-17", "...", "z"], printed, "t")  # noise digits masked
    assert_transcript(["a", "cost    right ...", "...", "z"], printed, "t")
    for stale in (["...", "test accuracy 0.9884   (171 test rows, 0.5 s of training)", "..."], ["a"],
                  ["a", "cost    wrong    9.2e-17", "..."], ["a", "cost    wrong ...", "..."], ["...", "y"]):
        with pytest.raises(AssertionError):
            assert_transcript(stale, printed, "t")


def test_example_note001_is_what_its_commands_write_now(tmp_path):
    # docs/example-note001.md is generated: Part 1 by `explain`, Part 2 by `trace`, with the commands its
    # first lines name; a change to either rendering must regenerate it
    doc = (ROOT / "docs" / "example-note001.md").read_text(encoding="utf-8")
    commands = re.findall(r"^  (deltaprop .*--format markdown)$", doc, flags=re.M)
    assert len(commands) == 2
    part1, part2 = (_cli(*shlex.split(c)[1:], cwd=tmp_path) for c in commands)
    assert part1[0] == part2[0] == 0
    body = doc.split("# Part 1 — the derivation for the 3-4-3-2 network\n", 1)[1]
    derivation, rest = body.split("# Part 2 — ", 1)
    trace = rest.split("\n# Exercises\n", 1)[0]
    assert derivation.strip() == part1[1].split("\n", 1)[1].strip()  # below its title, which the doc replaces
    assert part2[1].startswith("# One step") and trace.startswith("one step")
    assert trace[len("one "):].strip() == part2[1][len("# One "):].strip()


# -- names the docs point to ------------------------------------------------------------------------------
SRC = ROOT / "src" / "deltaprop"


def _defines(path: Path, name: str) -> bool:
    text = path.read_text(encoding="utf-8")
    pattern = rf"^\s*(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, text, re.M) is not None


def test_the_map_names_files_and_functions_that_exist():
    # docs/architecture.md is the map a newcomer reads first: a file it names that moved, or a function
    # `room/file.py:name` that was renamed, sends them to nothing
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    wrong = []
    for token in sorted(set(re.findall(r"`([\w/.*]+\.(?:py|md))(?::(\w+))?[^`]*`", doc))):
        file, name = token
        if "*" in file or "NAME" in file or file == "test_mlp.py":  # starters/*.py; scikit-learn's own test
            continue
        if file.startswith("deltaprop/"):
            found = [SRC.parent / file] if (SRC.parent / file).exists() else []
        elif file.startswith("tests/"):
            found = [ROOT / file] if (ROOT / file).exists() else []
        elif file.endswith(".md"):
            found = [p for p in (ROOT / "docs" / file, ROOT / file) if p.exists()]
        elif "/" in file:
            found = [SRC / file] if (SRC / file).exists() else []
        else:
            found = sorted(SRC.rglob(file))
        if not found:
            wrong.append(f"no file {file}")
        elif name and not any(_defines(p, name) for p in found):
            wrong.append(f"{file} defines no {name}")
    assert wrong == []


def test_every_module_is_on_the_map():
    # HELPERS' rule, held: a module added without its line in docs/architecture.md is a room nobody finds
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if path.name == "__init__.py" and rel != "teach/exercises/__init__.py" or "/starters/" in rel \
                or "/solutions/" in rel:
            continue
        if f"`{rel}`" not in doc and not re.search(rf"`(?:[\w/]+/)?{re.escape(path.name)}[`:]", doc):
            missing.append(rel)
    assert missing == []


def test_the_docs_module_references_resolve():
    # `deltaprop.losses:CrossEntropy.value`, `deltaprop.io.modelfile.read_header`: each names something
    # importable (the two names that exist for annotations only are said to be so in the map)
    import importlib

    annotations_only = {"deltaprop.validation.Rows", "deltaprop.train.RowSource"}
    wrong = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for module, attr in sorted(set(re.findall(r"\b(deltaprop(?:\.\w+)+|deltaprop)(?::([\w.]+))?", text))):
            if module in annotations_only:
                continue
            parts = module.split(".")
            for i in range(len(parts), 0, -1):
                try:
                    obj, rest = importlib.import_module(".".join(parts[:i])), parts[i:]
                    break
                except ImportError:
                    continue
            try:
                for name in rest + (attr.split(".") if attr else []):
                    obj = getattr(obj, name)
            except AttributeError:
                wrong.append(f"{path.name}: {module}{':' + attr if attr else ''}")
    assert wrong == []


def test_the_tests_the_docs_cite_exist():
    # reliability.md and the others point to the test that holds a promise: `test_x.py::test_name`
    wrong = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for file, name in re.findall(r"\b(test_\w+\.py)(?:::(test_\w+))?", text):
            if file == "test_mlp.py":  # scikit-learn's own
                continue
            if not (ROOT / "tests" / file).exists():
                wrong.append(f"{path.name}: no tests/{file}")
            elif name and not _defines(ROOT / "tests" / file, name):
                wrong.append(f"{path.name}: tests/{file} has no {name}")
        for name in re.findall(r"`(test_\w+)`", text):
            if not any(_defines(p, name) for p in (ROOT / "tests").glob("test_*.py")):
                wrong.append(f"{path.name}: no test {name}")
    assert wrong == []


def test_diagnose_md_lists_the_checks_diagnose_runs_in_their_order():
    from deltaprop.teach.diagnose import CHECKS

    doc = (ROOT / "docs" / "diagnose.md").read_text(encoding="utf-8")
    assert re.findall(r"^\| `(\w+)` \|", doc, flags=re.M) == [name for name, *_ in CHECKS]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"deltaprop diagnose runs/latest                    {len(CHECKS)} checks, each listed" in readme


def test_the_readme_names_every_command():
    # the README's table of commands is where a user learns what exists
    parser = build_parser()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = next(text for _, lang, text in blocks(ROOT / "README.md") if lang == "text"
                 and text.startswith("deltaprop train "))
    named = {line.split()[1] for line in table.splitlines() if line.startswith("deltaprop ")}
    assert set(parser._subparsers._group_actions[0].choices) <= named | {"hint"}, readme[:0]
