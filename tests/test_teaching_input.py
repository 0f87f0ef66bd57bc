"""The teaching commands as a student types them: a network spec that makes no sense, a flag that the
network in question cannot take, a learner file that never gets called. Each is refused with what is
wrong and what to do, exit code 2, no traceback; nothing is silently ignored."""

from __future__ import annotations

import contextlib
import io

import pytest

import deltaprop as dp
from deltaprop.cli import main as deltaprop_main
from deltaprop.io.modelfile import save as dp_save


def _cli(*argv):
    """(exit code, stdout, stderr) of the deltaprop command run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = deltaprop_main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def _refused(*argv, words=()):
    code, out, err = _cli(*argv)
    assert code == 2, (code, out[:300], err)
    assert "Traceback" not in err and "hint" in err or "usage" in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("spec", ["3,,2", "3,4,", ",3,4", "3,4,,"])
@pytest.mark.parametrize("command", ["explain", "trace", "gradcheck"])
def test_a_missing_layer_size_is_refused_not_dropped(command, spec):
    # '3,,2' was read as 3-2: a network without the hidden layer the student meant
    words = ("not a comma-separated list",) if command == "gradcheck" else ("layer size is missing", "3,4,3,2")
    _refused(command, "--layers", spec, words=words)


def test_layer_sizes_with_other_separators_still_read():
    for spec in ("3,4,2", "3-4-2", "3x4x2", " 3, 4 ,2 "):
        code, out, _ = _cli("explain", "--layers", spec)
        assert code == 0 and "3-4-2 network" in out


def test_a_softmax_over_one_unit_is_refused():
    # softmax of one unit is 1 whatever Z: the cost and every gradient are 0, so nothing can be learned
    with pytest.raises(dp.ConfigError, match="always 1") as info:
        dp.Network.from_sizes([3, 4, 1], output="softmax")
    assert "sigmoid" in info.value.hint
    for command in ("explain", "trace", "gradcheck"):
        _refused(command, "--layers", "3,4,1", words=("always 1", "sigmoid"))
    code, out, _ = _cli("trace", "--layers", "3,4,1", "--output", "sigmoid", "-m", "3")
    assert code == 0 and "Passed" in out
    code, _, _ = _cli("explain", "--layers", "3,4,2")
    assert code == 0


@pytest.mark.parametrize("argv, flags", [
    (["trace", "--preset", "note000", "--loss", "squared_error"], "--loss squared_error"),
    (["trace", "--activation", "tanh"], "--activation tanh"),                      # trace's default preset
    (["explain", "--preset", "note001", "--activation", "tanh", "--output", "softmax"],
     "--activation tanh and --output softmax"),
    (["trace", "--preset", "note002", "--output", "sigmoid"], "--output sigmoid"),
])
def test_flags_a_preset_would_ignore_are_refused(argv, flags):
    # trace --preset note000 --loss squared_error printed binary cross-entropy's numbers under the asked-for loss
    err = _refused(*argv, words=(f"{flags} would be ignored", "deltaprop"))
    assert "--layers" in err  # the way to build the network they mean


def test_flags_a_model_file_would_ignore_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    dp_save(dp.Network.from_sizes([3, 4, 2], seed=0), path)
    for command in ("explain", "trace"):
        _refused(command, path, "--activation", "sigmoid", words=("--activation sigmoid would be ignored",
                                                                  "model file"))
        code, out, _ = _cli(command, path)
        assert code == 0 and "3-4-2" in out


def test_presets_and_layers_with_their_flags_still_run():
    for argv in (["trace", "--preset", "note000"], ["trace"], ["explain", "--preset", "note003"],
                 ["trace", "--layers", "2,2,2,1", "--activation", "sigmoid", "--loss", "squared_error"],
                 ["explain", "--layers", "3,4,2", "--activation", "tanh"]):
        code, out, err = _cli(*argv)
        assert code == 0, (argv, err)
    code, out, _ = _cli("trace", "--layers", "2,2,2,1", "--activation", "sigmoid", "--loss", "squared_error")
    assert "squared error" in out and "identity" in out


def test_trace_digits_stop_at_what_float64_holds():
    # --digits 100 printed 100 "significant" digits, 83 of them rounding noise
    _refused("trace", "--digits", "18", words=("[1, 17]",))
    code, out, _ = _cli("trace", "--digits", "17")
    assert code == 0
    for digits in (0, 18, 2.5):
        with pytest.raises(dp.ConfigError, match="digits"):
            dp.trace("note001", digits=digits)


def test_a_check_that_never_called_the_function_says_so(tmp_path):
    # the header read '0 cases: ; seeds ; m = ' when the file could not be loaded
    for source in ("import numpy as np\nEXERCISE = 'one_hidden'\ndef backprop(W1, b1, W2, b2, X, Y):\n    m = = 1\n",
                   "EXERCISE = 'one_hidden'\ndef backprp(W1, b1, W2, b2, X, Y):\n    return 0\n"):
        path = tmp_path / "one_hidden.py"
        path.write_text(source, encoding="utf-8")
        code, out, err = _cli("check", path)
        assert code == 2 and "Traceback" not in out + err
        assert "no case ran" in out and "seeds ;" not in out and "0 cases" not in out, out
