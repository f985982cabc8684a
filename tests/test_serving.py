"""The served model: raw text in; label, label name and probabilities out; bad requests are 4xx."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from gated_bert.inference import MAX_TEXT_CHARS, InvalidInput, prediction_frame, validate_input
from gated_bert.tasks import TASKS
from tests.conftest import cli_env, micro_config

BAD_REQUESTS = [
    (pd.DataFrame({"text": ["fine"]}), "missing column(s) ['sentence']"),
    (pd.DataFrame({"sentence": ["fine", None]}), "row 1: column 'sentence' is null"),
    (pd.DataFrame({"sentence": [float("nan")]}), "row 0: column 'sentence' is null"),
    (pd.DataFrame({"sentence": ["fine", 7]}), "row 1: column 'sentence' is int, not text"),
    (pd.DataFrame({"sentence": []}), "the input has no rows"),
    (pd.DataFrame({"sentence": ["x" * (MAX_TEXT_CHARS + 1)]}), f"more than {MAX_TEXT_CHARS}; shorten it"),
]


@pytest.mark.parametrize("frame, message", BAD_REQUESTS, ids=[m[:30] for _, m in BAD_REQUESTS])
def test_bad_requests_say_what_is_wrong(frame, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        validate_input(TASKS["sst2"], frame)


def test_pair_tasks_need_both_columns():
    with pytest.raises(InvalidInput, match=r"missing column\(s\) \['sentence2'\]"):
        validate_input(TASKS["rte"], pd.DataFrame({"sentence1": ["a"]}))
    assert len(validate_input(TASKS["rte"], {"sentence1": ["a"], "sentence2": ["b"]})) == 1


def test_prediction_columns_per_task():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]])
    frame = prediction_frame(TASKS["mnli"], logits)
    assert list(frame.columns) == [
        "label",
        "label_name",
        "prob_entailment",
        "prob_neutral",
        "prob_contradiction",
    ]
    assert list(frame["label"]) == [0, 2] and list(frame["label_name"]) == ["entailment", "contradiction"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(frame.iloc[:, 2:].to_numpy(), expected)
    scores = prediction_frame(TASKS["stsb"], np.array([[3.5], [1.25]]))
    assert list(scores.columns) == ["score"] and list(scores["score"]) == [3.5, 1.25]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.slow
def test_served_model_answers_labels_and_probabilities_and_rejects_bad_requests(sst2_dir, tmp_path):
    import mlflow

    from gated_bert.run import train

    uri = f"sqlite:///{tmp_path}/m.db"
    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        config = micro_config(data_dir=str(sst2_dir), epochs=2, output_root=str(tmp_path / "out"))
        result = train(config.replace(experiment_name="serve", register_model="gated-bert-sst2"))
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    registered = mlflow.MlflowClient().search_model_versions("name = 'gated-bert-sst2'")
    assert registered and registered[0].run_id == result.run_id

    port = _free_port()
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "mlflow"),
            "models",
            "serve",
            "-m",
            f"runs:/{result.run_id}/model",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=tmp_path,
        env=cli_env(uri),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stderr.read()[-3000:]
                time.sleep(1)
        status, answer = _post(
            f"{url}/invocations",
            {
                "dataframe_records": [
                    {"sentence": "a good , great and lovely film"},
                    {"sentence": "a dull , awful movie"},
                ]
            },
        )
        assert status == 200, answer
        rows = answer["predictions"]
        assert len(rows) == 2 and set(rows[0]) == {"label", "label_name", "prob_negative", "prob_positive"}
        for row in rows:
            assert row["label_name"] == ("negative", "positive")[row["label"]]
            assert row["prob_negative"] + row["prob_positive"] == pytest.approx(1.0)
        bad = [
            {"dataframe_records": [{"text": "fine"}]},
            {"dataframe_records": [{"sentence": None}]},
            {"dataframe_records": [{"sentence": 7}]},
            {"dataframe_records": []},
            {"dataframe_records": [{"sentence": "x" * (MAX_TEXT_CHARS + 1)}]},
            {"nonsense": 1},
        ]
        for body in bad:
            status, answer = _post(f"{url}/invocations", body)
            assert 400 <= status < 500 and answer.get("message"), (body, status, answer)
            assert "Traceback" not in answer["message"], body
    finally:
        server.terminate()
        server.wait(timeout=30)
