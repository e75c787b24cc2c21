"""How long `conductor enqueue` and `conductor jobs` take as commands (issue 13, item 8).

Each round runs, interleaved so a slow minute of the machine hits all of them alike:
`python -c pass` (the interpreter's own start-up, the floor), `conductor --help`,
`conductor enqueue --payload ...` and `conductor jobs` on a database of 100 jobs. The
commands run through the installed console script (`<prefix>/bin/conductor`, what a
virtualenv puts on PATH), and, if different, through whatever `conductor` is on PATH (a
pyenv shim adds a bash script and `pyenv exec` in front of every command).

Reports the median, min and max wall milliseconds of each (and its CPU time), the ratio
to `python -c pass`,
the load average before and after, and whether conductor's bytecode was compiled (an
install compiles it; an editable install under PYTHONDONTWRITEBYTECODE never does, which
costs every command ~20 ms: `just bench-cli` compiles it first).

    python tests/benchmarks/cli_bench.py [--rounds 21] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary import summary

TARGET_MS = 100.0
PAYLOAD = '{"task": "send_email", "email": "test@example.com"}'


def _installed_script() -> str:
    script = Path(sysconfig.get_path("scripts")) / "conductor"
    if not script.exists():
        raise SystemExit(f"no conductor script at {script}; expected `pip install -e .` first")
    return str(script)


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run: the CPU time (user + system of the child) is what a
    busy machine does not inflate, so it is reported next to the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = (time.perf_counter() - began) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return elapsed, cpu


def _compiled() -> bool:
    import conductor

    package = Path(conductor.__file__).parent
    return any(package.glob("__pycache__/*.pyc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()

    installed = _installed_script()
    on_path = shutil.which("conductor")
    folder = Path(tempfile.mkdtemp(prefix="conductor-cli-bench-"))
    db = str(folder / "bench.db")
    env = {**os.environ, "CONDUCTOR_DB": db}
    for _ in range(100):
        _timed([installed, "enqueue", "--payload", PAYLOAD], env)

    commands: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "conductor --help": [installed, "--help"],
        "conductor enqueue": [installed, "enqueue", "--payload", PAYLOAD],
        "conductor jobs": [installed, "jobs"],
    }
    if on_path and Path(on_path).resolve() != Path(installed).resolve():
        commands["conductor enqueue (PATH)"] = [on_path, "enqueue", "--payload", PAYLOAD]
        commands["conductor jobs (PATH)"] = [on_path, "jobs"]

    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(options.rounds):
        for name, argv in commands.items():
            wall, used = _timed(argv, env)
            times[name].append(wall)
            cpu[name].append(used)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)

    floor = summary(times["python -c pass"])["median"]
    result = {
        "rounds": options.rounds,
        "bytecode_compiled": _compiled(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "installed_script": installed,
        "path_script": on_path,
        "wall_ms": {
            name: {
                **{k: round(v, 1) for k, v in summary(values).items()},
                "ratio_to_python": round(summary(values)["median"] / floor, 2),
            }
            for name, values in times.items()
        },
        "cpu_ms": {
            name: {k: round(v, 1) for k, v in summary(values).items()}
            for name, values in cpu.items()
        },
        "target_ms": TARGET_MS,
    }
    if options.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{options.rounds} interleaved rounds; bytecode compiled: {result['bytecode_compiled']}; "
        f"load {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    for name, figures in result["wall_ms"].items():
        mark = ""
        if name in ("conductor enqueue", "conductor jobs"):
            mark = (
                "  (target <= 100 ms: "
                + ("met" if figures["median"] <= TARGET_MS else "NOT met")
                + ")"
            )
        print(
            f"  {name:28} median {figures['median']:6.1f} ms  "
            f"(min {figures['min']:.1f}, max {figures['max']:.1f})  "
            f"x{figures['ratio_to_python']:.2f} of python -c pass; "
            f"CPU median {result['cpu_ms'][name]['median']:.1f} ms{mark}"
        )


if __name__ == "__main__":
    main()
