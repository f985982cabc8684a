import time
from pathlib import Path

import numpy as np
import pytest

from gated_bert.data import glue
from gated_bert.data.glue import load_task
from gated_bert.errors import DataError

BOM = "\ufeff"


@pytest.mark.parametrize(
    "task, n_train, train_counts, n_dev, dev_counts",
    [
        ("sst2", 67349, {0: 29780, 1: 37569}, 872, {0: 428, 1: 444}),
        ("mrpc", 3668, {0: 1194, 1: 2474}, 408, {0: 129, 1: 279}),
        ("rte", 2490, {0: 1249, 1: 1241}, 277, {0: 146, 1: 131}),
        ("wnli", 635, {0: 323, 1: 312}, 71, {0: 40, 1: 31}),
    ],
)
def test_real_glue_files(glue_dir, task, n_train, train_counts, n_dev, dev_counts):
    data = load_task(task, str(glue_dir))
    assert len(data.train) == n_train
    assert dict(zip(*np.unique(data.train.labels, return_counts=True))) == train_counts
    assert len(data.evals["dev"]) == n_dev
    assert dict(zip(*np.unique(data.evals["dev"].labels, return_counts=True))) == dev_counts


def test_real_mrpc_bom_and_pairs(glue_dir):
    data = load_task("mrpc", str(glue_dir))
    assert data.train.text_b is not None and len(data.train.text_b) == 3668
    assert not data.train.text_a[0].startswith(BOM)


def test_real_qnli_dev_reads_but_train_is_missing(glue_dir):
    split = glue.read_tsv(glue.TASKS["qnli"], glue_dir / "QNLI" / "dev.tsv")
    assert len(split) == 5463
    assert dict(zip(*np.unique(split.labels, return_counts=True))) == {0: 2702, 1: 2761}
    with pytest.raises(DataError, match="missing file .*QNLI/train.tsv"):
        load_task("qnli", str(glue_dir))


def _write(path: Path, lines: list[str], bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((BOM if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")


def make_cola(root: Path) -> None:
    rows = [
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.",
        'gj04\t0\t*\tThey drank the pub "dry.',
        "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.",
    ]
    _write(root / "CoLA" / "train.tsv", rows)
    _write(root / "CoLA" / "dev.tsv", rows[:2])


def make_stsb(root: Path) -> None:
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    rows = [
        header,
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
        '1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\tA man plays a "flute.\t3.800',
        "2\tmain-news\tMSRvid\t2012test\t0005\tnone\tnone\tA man eats.\tA dog runs.\t0.000",
    ]
    _write(root / "STS-B" / "train.tsv", rows)
    _write(root / "STS-B" / "dev.tsv", rows[:3])


def make_mnli(root: Path) -> None:
    cols = [
        "index",
        "promptID",
        "pairID",
        "genre",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
    ]
    train_header = "\t".join(cols + ["label1", "gold_label"])
    dev_header = "\t".join(cols + ["label1", "label2", "label3", "label4", "label5", "gold_label"])

    def row(i, a, b, labels):
        return "\t".join(
            [str(i), "1", f"{i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", a, b, *labels]
        )

    _write(
        root / "MNLI" / "train.tsv",
        [
            train_header,
            row(
                0,
                "Conceptually cream skimming has two dimensions.",
                "Product and geography are what make it work.",
                ["neutral", "neutral"],
            ),
            row(1, "you know during the season", "You lose the things.", ["entailment", "entailment"]),
            row(
                2,
                "One of our number will carry out",
                'A member will "execute orders.',
                ["contradiction", "contradiction"],
            ),
        ],
    )
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        _write(
            root / "MNLI" / name,
            [
                dev_header,
                row(
                    0,
                    "The new rights are nice enough",
                    "Everyone really likes the newest benefits",
                    ["neutral"] * 5 + ["neutral"],
                ),
                row(
                    1,
                    "This site includes a list",
                    "The Government Executive articles",
                    ["contradiction"] * 5 + ["contradiction"],
                ),
            ],
        )


def make_qnli_qqp(root: Path) -> None:
    q = [
        "index\tquestion\tsentence\tlabel",
        "0\tWhat came into force?\tThe law came into force.\tentailment",
        "1\tWhat is it?\tNothing here.\tnot_entailment",
    ]
    _write(root / "QNLI" / "train.tsv", q)
    _write(root / "QNLI" / "dev.tsv", q)
    qq = [
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
        "0\t1\t2\tHow do I?\tHow can I?\t1",
        "1\t3\t4\tWhy?\tWhen?\t0",
    ]
    _write(root / "QQP" / "train.tsv", qq)
    _write(root / "QQP" / "dev.tsv", qq)


def test_cola_without_header(tmp_path):
    make_cola(tmp_path)
    data = load_task("cola", str(tmp_path))
    assert len(data.train) == 3 and data.train.labels.tolist() == [1, 0, 1]
    assert data.train.text_a[1] == 'They drank the pub "dry.'
    assert data.train.text_b is None


def test_stsb_ten_columns_float_scores(tmp_path):
    make_stsb(tmp_path)
    data = load_task("stsb", str(tmp_path))
    assert data.train.labels.dtype == np.float32
    np.testing.assert_allclose(data.train.labels, [5.0, 3.8, 0.0])
    assert data.train.text_b[1] == 'A man plays a "flute.'


def test_mnli_matched_and_mismatched(tmp_path):
    make_mnli(tmp_path)
    data = load_task("mnli", str(tmp_path))
    assert data.train.labels.tolist() == [1, 0, 2]  # hub ids: entailment 0, neutral 1, contradiction 2
    assert set(data.evals) == {"matched", "mismatched"}
    assert data.evals["mismatched"].labels.tolist() == [1, 2]


def test_qnli_and_qqp_text_labels(tmp_path):
    make_qnli_qqp(tmp_path)
    assert load_task("qnli", str(tmp_path)).train.labels.tolist() == [0, 1]
    assert load_task("qqp", str(tmp_path)).train.labels.tolist() == [1, 0]


def test_max_samples_slice(glue_dir):
    data = load_task("rte", str(glue_dir), max_train_samples=10, max_eval_samples=5)
    assert len(data.train) == 10 and len(data.evals["dev"]) == 5


@pytest.mark.parametrize(
    "setup, task, message",
    [
        (lambda root: None, "sst2", "no SST-2/ folder in"),
        (
            lambda root: _write(root / "SST-2" / "train.tsv", ["sentence\tlabel", "a\t1"]),
            "sst2",
            "missing file .*dev.tsv",
        ),
        (
            lambda root: [
                _write(root / "SST-2" / n, ["text\tlabel", "a\t1"]) for n in ("train.tsv", "dev.tsv")
            ],
            "sst2",
            r"lacks column\(s\) \['sentence'\]",
        ),
        (
            lambda root: [
                _write(root / "SST-2" / n, ["sentence\tlabel", "a\t1", "b\tpos"])
                for n in ("train.tsv", "dev.tsv")
            ],
            "sst2",
            "line 3: unknown label 'pos' for sst2",
        ),
        (
            lambda root: [
                _write(root / "SST-2" / n, ["sentence\tlabel", "a\t1", "b\t0\textra"])
                for n in ("train.tsv", "dev.tsv")
            ],
            "sst2",
            "malformed TSV .*line 3",
        ),
        (
            lambda root: [_write(root / "SST-2" / n, []) for n in ("train.tsv", "dev.tsv")],
            "sst2",
            "empty file",
        ),
        (
            lambda root: [_write(root / "CoLA" / n, ["a\tb"]) for n in ("train.tsv", "dev.tsv")],
            "cola",
            "has 2 columns, expected at least 4 for cola",
        ),
        (
            lambda root: (
                make_stsb(root)
                or _write(
                    root / "STS-B" / "dev.tsv",
                    [
                        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
                        "0\tg\tf\ty\to\ts\ts\ta\tb\t7.5",
                    ],
                )
            ),
            "stsb",
            "line 2: score '7.5' is not a number in",
        ),
        (
            lambda root: make_mnli(root) or (root / "MNLI" / "dev_mismatched.tsv").unlink(),
            "mnli",
            "missing file .*dev_mismatched.tsv",
        ),
    ],
    ids=[
        "no-task-dir",
        "missing-dev",
        "wrong-columns",
        "unknown-label",
        "ragged-row",
        "empty",
        "cola-layout",
        "stsb-range",
        "mnli-mismatched",
    ],
)
def test_malformed_local_data_names_file(tmp_path, setup, task, message):
    setup(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        load_task(task, str(tmp_path))
    assert "\n" not in str(info.value)


def test_missing_directory():
    with pytest.raises(DataError, match="data directory '/no/such/glue' does not exist; pass --data-dir"):
        load_task("sst2", "/no/such/glue")


def test_unreachable_hub_fails_fast_with_advice(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(glue, "HUB_HOST", "hub.invalid")  # never resolvable, like this machine's hub
    started = time.time()
    with pytest.raises(DataError, match="--data-dir DIR .*GLUE_DIR"):
        load_task("sst2", None)
    assert time.time() - started < 10
