"""The main job of skil-sdk, end to end on the embedded default (local Spark).

1. train a digit classifier on scikit-learn's bundled digits and convert it to ONNX;
2. write the held-out digits as keyed rows (JSON lines);
3. scaffold a provider plugin with `skil-sdk new provider`, publish it;
4. add the model, build the bundle, run `skil-sdk infer` on local[2];
5. show the results and the accuracy against the true labels.

Everything happens under ``.skil-demo/`` (its own SKIL_HOME); nothing is downloaded
but Python packages. Run it with ``./dev demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "digits-jsonl"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def skil(*args: str, env: dict[str, str]) -> Any:
    """Run a skil-sdk command with --json, echo it, return its JSON document."""
    command = [str(Path(sys.executable).with_name("skil-sdk")), *args, "--json"]
    print("$ skil-sdk " + " ".join(args), flush=True)
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        print(completed.stdout, file=sys.stderr)
        raise SystemExit(f"`skil-sdk {args[0]}` failed with exit code {completed.returncode}")
    return json.loads(completed.stdout)


def make_model_and_data(workspace: Path) -> tuple[Path, Path, dict[str, int]]:
    """Train on 75 % of the digits; return the model, the held-out rows and their labels."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        features, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    classifier = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    onnx_model = to_onnx(
        classifier, x_train[:1], options={id(classifier): {"zipmap": False}}, target_opset=17
    )
    model_path = workspace / "digits.onnx"
    model_path.write_bytes(onnx_model.SerializeToString())
    rows_path = workspace / "digits.jsonl"
    labels: dict[str, int] = {}
    with rows_path.open("w") as handle:
        for index, (row, label) in enumerate(zip(x_test, y_test, strict=True)):
            key = f"digit-{index:04d}"
            labels[key] = int(label)
            handle.write(json.dumps({"id": key, "features": row.tolist()}) + "\n")
    print(f"trained LogisticRegression on {len(x_train)} digits; {len(x_test)} held out")
    return model_path, rows_path, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=str(ROOT / ".skil-demo"))
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    started = time.time()
    workspace = Path(args.workspace).resolve()
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    env = dict(os.environ, SKIL_HOME=str(workspace / "home"), SPARK_LOCAL_IP="127.0.0.1")
    # third-party wheels are downloaded once and reused by later demo and test runs
    env.setdefault("SKIL_WHEELHOUSE", str(ROOT / ".cache" / "wheelhouse"))

    step("1. A model and data made on the spot (scikit-learn digits -> ONNX)")
    model_path, rows_path, labels = make_model_and_data(workspace)

    step("2. Scaffold a provider plugin and publish it")
    skil("new", "provider", PROVIDER, "--output-dir", str(workspace), "--no-input", env=env)
    published = skil("publish", str(workspace / PROVIDER), env=env)
    print(f"published {published.get('name')} {published.get('version')}")

    step("3. Add the model")
    model = skil("models", "add", str(model_path), "--experiment", "digits", env=env)
    print(f"model id: {model['id']}")

    step("4. Build the bundle (cached; a second build is a no-op)")
    build = skil("build", env=env)
    how = "cache hit" if build["cached"] else "built"
    print(f"bundle {build['bundle']} ({how} in {build['seconds']:.1f} s)")
    again = skil("build", env=env)
    print(f"again: cache hit={again['cached']} in {again['seconds']:.2f} s")

    step(f"5. Batch inference on {args.master}")
    output = workspace / "predictions"
    job = skil(
        "infer",
        "--model",
        model["id"],
        "--provider",
        PROVIDER,
        "--provider-option",
        f"path={rows_path}",
        "--output",
        str(output),
        "--master",
        args.master,
        "--batch-size",
        "128",
        env=env,
    )
    print(f"job {job['job_id']} {job['state']}: {job['rows']} rows in {job['seconds']:.1f} s")

    step("6. Results")
    shown = skil("results", "show", str(output), "--limit", "5", env=env)
    for row in shown["head"]:
        print(f"  {row['id']}: predicted {row['label']}  (true {labels[row['id']]})")
    from skil_sdk import load_results

    table = load_results(output)
    predicted = dict(
        zip(table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True)
    )
    correct = sum(int(predicted[key] == label) for key, label in labels.items())
    assert len(predicted) == len(labels), "every input id appears exactly once"
    print(
        f"\naccuracy: {correct / len(labels):.4f} on {len(labels)} held-out digits "
        f"({time.time() - started:.0f} s in all; workspace {workspace})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
