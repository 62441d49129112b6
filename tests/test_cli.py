import json
import subprocess
import sys

from tracetutor.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "tracetutor.cli", *args], capture_output=True, text=True)


def test_help_lists_the_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("data", "train", "chat", "bench", "pipeline"):
        assert command in out.stdout
    data = run("data", "--help").stdout
    assert "synth" in data and "verify" in data


def test_synth_then_verify(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["data", "synth", "--n", "60", "--seed", "3", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 60
    capsys.readouterr()
    assert main(["data", "verify", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"total": 60, "passed": 60, "failures": [], "claims": report["claims"], "unverifiable": 0}


def test_verify_reports_a_bad_trace_and_a_malformed_line(tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    good = {"id": "a", "question": "q?", "steps": ["3 x 4 = 12"], "answer": "12"}
    bad = {"id": "b", "question": "q?", "steps": ["3 x 4 = 13"], "answer": "13"}
    f.write_text(json.dumps(good) + "\n{oops\n" + json.dumps(bad) + "\n")
    assert main(["data", "verify", str(f), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 3 and report["passed"] == 1
    assert [x["line"] for x in report["failures"]] == [2, 3]
    assert report["failures"][1]["id"] == "b"


def test_unknown_recipe_is_a_clear_error(models):
    out = run("train", "no-such-recipe")
    assert out.returncode == 2
    assert "no recipe 'no-such-recipe'" in out.stderr and "tiny-tutor" in out.stderr
    assert "Traceback" not in out.stderr


def one_error_line(capsys) -> str:
    """What a failed command printed: exactly one line on stderr, no traceback."""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_synth_into_a_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "synth", "--n", "5", "--out", str(tmp_path)]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"tracetutor: error: {tmp_path}: is a folder")
    assert list(tmp_path.iterdir()) == []


def test_verify_of_an_empty_file_fails(tmp_path, capsys):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert main(["data", "verify", str(path)]) == 2
    assert one_error_line(capsys).startswith(f"{path}: holds no traces")
