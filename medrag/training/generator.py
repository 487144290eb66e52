"""The answer writer: cited training examples built by medrag itself, and causal-LM training on them.

Examples are made the way ``medrag ask`` answers: each question's passages come from the index's own
retriever, and the prompt is the one ``HFGenerator.prompt`` packs at answer time (same ``pack_prompt``, same
context window, same new-token reserve), so training and inference prompts are identical. The target is a
gold answer with ``[n]`` after each sentence, ``n`` a packed passage that supports it:

- BioASQ golden files: the ideal answer; a sentence cites the passage holding its gold snippet (same PMID, the
  snippet's words in the passage); sentences whose snippet is in no packed passage are dropped;
- PubMedQA-format files: the long answer, cited to the question's own abstract when it is packed;
- MedQuAD XML: the answer's first sentences, cited to its own document;
- abstention: a question with the passages retrieved for another question; the target is medrag's
  abstention sentence, so the model learns to decline.

Questions are split into training and held-out ones by a hash of their id (``heldout_share``), the same in
``medrag train-generator`` and ``medrag eval generator``. Files named like a test split are refused. Examples
hold public dev-set questions and index passages only: there is no patient context in them.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medrag.documents import Chunk, Document
from medrag.errors import MedRAGError
from medrag.training.embedder import PROVENANCE, _files

if TYPE_CHECKING:
    from medrag.generation.hf import HFGenerator

log = logging.getLogger(__name__)

EXAMPLES_FORMAT = 1  # version of the examples file
SOURCES = ("bioasq", "pubmedqa", "medquad", "abstain")
OBJECTIVES = ("sft", "clm")
MAX_CITES = 2  # passages cited after one sentence at most
MEDQUAD_SENTENCES = 3  # a MedQuAD target: the answer's first sentences
SNIPPET_MATCH = 0.5  # share of an ideal-answer sentence's words in its gold snippet
PASSAGE_MATCH = 0.6  # share of a snippet's words in a passage that holds it
HELDOUT_CAP = 200  # held-out examples whose loss train-generator reports
RETRIEVE_BATCH = 256
_WORD = re.compile(r"[a-z0-9]+")
_END = re.compile(r"[.!?][\"')\]]*$")
_STOP = frozenset({"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it",
                   "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "which", "with"})


# -- examples ----------------------------------------------------------------------------------------
@dataclass
class Sentence:
    """One target sentence and the ranks (1-based, preferred first) of the retrieved passages supporting it."""

    text: str
    support: list[int] = field(default_factory=list)


@dataclass
class Example:
    """A question, its retrieved passages and its cited target. No patient context: there is no field for it."""

    id: str
    source: str  # one of SOURCES
    question: str
    passages: list[dict[str, Any]]  # doc_id, index, text, title, pmid, url: what the prompt shows
    sentences: list[Sentence]
    file: str = ""
    qtype: str = ""  # BioASQ question type ("summary" answers are scored with ROUGE)
    ideal: list[str] = field(default_factory=list)  # reference answers

    def chunks(self) -> list[Chunk]:
        """The passages as the generator receives them (the fields ``pack_prompt`` shows)."""
        return [Chunk(doc_id=p["doc_id"], index=p.get("index", 0), text=p["text"], title=p.get("title") or "",
                      metadata={k: p[k] for k in ("pmid", "url") if p.get(k)}) for p in self.passages]

    def parts(self, in_prompt: Iterable[int]) -> list[str]:
        """Target sentences, each with ``[n]`` for its supporting passages in the prompt; unsupported ones dropped.

        An abstention example's sentence has no support and is kept as it is.
        """
        if self.source == "abstain":
            return [s.text for s in self.sentences]
        shown = set(in_prompt)
        out = []
        for sentence in self.sentences:
            cites = [n for n in sentence.support if n in shown][:MAX_CITES]
            if cites:
                out.append(f"{sentence.text} {''.join(f'[{n}]' for n in cites)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        known = {"id", "source", "question", "passages", "sentences", "file", "qtype", "ideal"}
        return cls(**{**{k: v for k, v in data.items() if k in known},
                      "sentences": [Sentence(**s) for s in data["sentences"]]})


@dataclass
class ExampleSet:
    """Training and held-out examples of one build, with what the prompts depend on."""

    train: list[Example]
    heldout: list[Example]
    max_new_tokens: int  # the index's generation budget: HFGenerator reserves it (capped at a quarter window)
    k: int
    files: list[str] = field(default_factory=list)
    index: str = ""
    seed: int = 13
    heldout_share: float = 0.2
    counts: dict[str, int] = field(default_factory=dict)  # questions read, kept and dropped, by reason
    texts: list[str] = field(default_factory=list)  # the clm objective's corpus texts

    def save(self, path: str | Path) -> Path:
        """Write as JSON (gzip when the name ends in .gz), atomically."""
        path = Path(path)
        data = {"medrag_examples": EXAMPLES_FORMAT, **{k: v for k, v in asdict(self).items()
                                                       if k not in ("train", "heldout")},
                "train": [e.to_dict() for e in self.train], "heldout": [e.to_dict() for e in self.heldout]}
        raw = json.dumps(data, ensure_ascii=False).encode("utf-8")
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ExampleSet:
        path = Path(path)
        try:
            raw = path.read_bytes()
            data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (OSError, ValueError) as exc:
            raise MedRAGError(f"cannot read examples file {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("medrag_examples") != EXAMPLES_FORMAT:
            raise MedRAGError(f"{path} is not a medrag examples file (medrag train-generator --save-examples)")
        known = {"max_new_tokens", "k", "files", "index", "seed", "heldout_share", "counts", "texts"}
        return cls(train=[Example.from_dict(e) for e in data["train"]],
                   heldout=[Example.from_dict(e) for e in data["heldout"]], **{k: data[k] for k in known if k in data})

    def sources(self, split: str = "train") -> dict[str, int]:
        return dict(Counter(e.source for e in getattr(self, split)))


@dataclass
class _Item:
    """A question read from a data file, before retrieval."""

    id: str
    source: str
    question: str
    file: str
    sentences: list[str]
    qtype: str = ""
    ideal: list[str] = field(default_factory=list)
    snippets: list[dict[str, Any]] = field(default_factory=list)  # BioASQ gold snippets (pmid, text)
    own: str = ""  # PubMedQA: the PMID of its abstract; MedQuAD: its document id


def data_files(paths: Iterable[str | Path]) -> list[Path]:
    """The BioASQ / PubMedQA JSON and MedQuAD XML files named or under the folders named (test splits refused)."""
    named: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                           and p.name.lower().endswith((".json", ".xml", ".xml.gz")))
            if not found:
                raise MedRAGError(f"{path} holds no .json or .xml training file")
            named += found
        else:
            named.append(path)
    return _files(named)  # train-embedder's checks: every file exists, none looks like a test split


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _share(part: set[str], whole: set[str]) -> float:
    """Share of ``part``'s words that are in ``whole``."""
    return len(part & whole) / len(part) if part else 0.0


def _bucket(source: str, qid: str) -> float:
    """A stable number in [0, 1) per question: below ``heldout_share`` it is held out."""
    digest = hashlib.sha1(f"{source}:{qid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def _sentences(text: str, complete: bool = False) -> list[str]:
    """Sentences of at least three words (``complete``: only those ending in . ! or ?, so no headings)."""
    from medrag.generation.citations import split_sentences

    return [s for s in split_sentences(text) if len(s.split()) >= 3 and (not complete or _END.search(s))]


def read_items(files: Sequence[Path]) -> list[_Item]:
    """Questions with gold answers from BioASQ golden files, PubMedQA-format files and MedQuAD XML files."""
    from medrag import readers
    from medrag.evaluation.datasets import load_bioasq, load_pubmedqa

    items: list[_Item] = []
    for file in files:
        kind = _file_kind(file, readers.sniff(file, explicit=True))
        found = len(items)
        if kind == "bioasq":
            for q in load_bioasq(file):
                if q.ideal and q.snippets:
                    items.append(_Item(q.id, "bioasq", q.question, file.name, _sentences(q.ideal[0]), q.type,
                                       q.ideal, [{"pmid": s["pmid"], "text": s["text"]} for s in q.snippets]))
        elif kind == "pubmedqa":
            for q in load_pubmedqa(file):
                if q.ideal:
                    items.append(_Item(q.id, "pubmedqa", q.question, file.name, _sentences(q.ideal[0]), "yesno",
                                       q.ideal, own=q.id))
        else:
            for doc in readers.read(file, "medquad"):
                question = str(doc.metadata.get("question") or doc.title) if isinstance(doc, Document) else ""
                if question and doc.text:
                    first = _sentences(doc.text, complete=True)[:MEDQUAD_SENTENCES]
                    items.append(_Item(doc.id, "medquad", question, file.name, first, "consumer", [doc.text],
                                       own=doc.id))
        log.info("%s: %d %s questions", file, len(items) - found, kind)
    unique = list({(i.source, i.id): i for i in reversed(items)}.values())[::-1]  # the first of repeated ids
    if len(unique) < len(items):
        log.warning("%d repeated questions (same id in several files) read once", len(items) - len(unique))
    if not unique:
        raise MedRAGError("the training data holds no question with a gold answer")
    return unique


def _file_kind(file: Path, sniffed: str | None) -> str:
    if sniffed == "medquad":
        return "medquad"
    if file.name.lower().endswith(".json"):
        try:
            data = json.loads(file.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise MedRAGError(f"cannot read training data {file}: {exc}") from exc
        if isinstance(data, dict) and isinstance(data.get("questions"), list):
            return "bioasq"
        if isinstance(data, dict) and data and all(isinstance(v, dict) and "QUESTION" in v for v in data.values()):
            return "pubmedqa"
    raise MedRAGError(f"{file}: neither a BioASQ golden file, a PubMedQA-format file nor MedQuAD XML")


def _passage(chunk: Chunk) -> dict[str, Any]:
    return {"doc_id": chunk.doc_id, "index": chunk.index, "text": chunk.text, "title": chunk.title,
            "pmid": chunk.pmid, "url": chunk.url}


def _supported(item: _Item, chunks: Sequence[Chunk]) -> list[Sentence]:
    """The item's target sentences with the ranks of the retrieved passages that support each."""
    words = [_words(c.text) for c in chunks]
    out = []
    for text in item.sentences:
        sw = _words(text)
        if item.source == "bioasq":  # the passages holding the sentence's gold snippet(s)
            scored = [(_share(sw, _words(s["text"])), s) for s in item.snippets]
            best = max((score for score, _ in scored), default=0.0)
            snippets = [s for score, s in scored if score >= max(SNIPPET_MATCH, best - 0.1)]
            support = [n for n, c in enumerate(chunks, 1)
                       if any(c.pmid == s["pmid"] and _share(_words(s["text"]), words[n - 1]) >= PASSAGE_MATCH
                              for s in snippets)]
        else:  # the question's own abstract / document, the passage most like the sentence first
            own = [n for n, c in enumerate(chunks, 1)
                   if (c.pmid if item.source == "pubmedqa" else c.doc_id) == item.own]
            overlap = {n: _share(sw, words[n - 1]) for n in own}
            best = max(overlap.values(), default=0.0)
            support = sorted((n for n in own if overlap[n] >= best / 2), key=lambda n: (-overlap[n], n))
        out.append(Sentence(text, support))
    return out


def build_examples(rag: Any, paths: Iterable[str | Path], *, k: int | None = None, abstain_share: float = 0.15,
                   heldout_share: float = 0.2, max_train: int = 0, max_heldout: int = HELDOUT_CAP, seed: int = 13,
                   index: str | Path = "", splits: Sequence[str] = ("train", "heldout"),
                   progress: bool = False) -> ExampleSet:
    """Training and held-out examples from the data files, with passages from ``rag``'s retriever.

    ``max_train`` / ``max_heldout`` (0: all) cap the examples of each split, abstention ones included
    (``abstain_share`` of them). Questions none of whose retrieved passages support the gold answer are
    dropped and counted. Only the ``splits`` named are built (the others are left empty).
    """
    from medrag.answer import ABSTAIN  # what medrag ask says when it abstains (English)

    if not 0.0 <= abstain_share < 1.0 or not 0.0 <= heldout_share <= 1.0:
        raise MedRAGError("abstain_share must be in [0, 1) and heldout_share in [0, 1]")
    files = data_files(paths)
    items = read_items(files)
    k = k or index_setting(rag.settings, "k", 5)
    counts: Counter[str] = Counter(questions=len(items))
    built: dict[str, list[Example]] = {"train": [], "heldout": []}
    for split, cap in (("train", max_train), ("heldout", max_heldout)):
        if split not in splits:
            continue
        chosen = [i for i in items if (_bucket(i.source, i.id) < heldout_share) == (split == "heldout")]
        random.Random(seed).shuffle(chosen)
        n_answer = math.ceil(cap * (1 - abstain_share)) if cap else 0
        if cap:
            chosen = chosen[:2 * n_answer]  # room for the questions whose support is not retrieved
        hits = _retrieve(rag, [i.question for i in chosen], k, progress)
        answers: list[Example] = []
        for item, found in zip(chosen, hits, strict=True):
            chunks = [h.chunk for h in found]
            sentences = [s for s in _supported(item, chunks) if s.support]
            if not sentences:
                counts[f"{split}_unsupported"] += 1
                continue
            answers.append(Example(f"{item.source}:{item.id}", item.source, item.question,
                                   [_passage(c) for c in chunks], sentences, item.file, item.qtype, item.ideal))
        answers = answers[:n_answer] if cap else answers
        n_abstain = round(len(answers) * abstain_share / (1 - abstain_share))
        abstains = _abstentions(answers, hits, n_abstain, ABSTAIN, random.Random(seed + 1))
        built[split] = answers + abstains
        random.Random(seed + 2).shuffle(built[split])
        counts[f"{split}_examples"] = len(built[split])
    log.info("examples: %s", dict(counts))
    return ExampleSet(built["train"], built["heldout"], k=k,
                      max_new_tokens=index_setting(rag.settings, "max_new_tokens", 128),
                      files=[str(f) for f in files], index=str(index), seed=seed, heldout_share=heldout_share,
                      counts=dict(counts))


def _abstentions(answers: Sequence[Example], hits: Sequence[Sequence[Any]], n: int, sentence: str,
                 rng: random.Random) -> list[Example]:
    """``n`` questions of ``answers`` paired with the passages retrieved for another question that share no
    document or PMID with their own passages; the target is the abstention ``sentence``."""
    pool = [[h.chunk for h in found] for found in hits if found]
    out: list[Example] = []
    for example in rng.sample(list(answers), min(n, len(answers))):
        mine = {p["doc_id"] for p in example.passages} | {p["pmid"] for p in example.passages if p.get("pmid")}
        for _ in range(20):
            other = rng.choice(pool) if pool else []
            if other and not mine & ({c.doc_id for c in other} | {c.pmid for c in other if c.pmid}):
                out.append(Example(f"abstain:{example.id}", "abstain", example.question,
                                   [_passage(c) for c in other], [Sentence(sentence)], example.file))
                break
    return out


def _retrieve(rag: Any, questions: Sequence[str], k: int, progress: bool) -> list[list[Any]]:
    out: list[list[Any]] = []
    for start in range(0, len(questions), RETRIEVE_BATCH):
        out += rag.retrieve_batch(list(questions[start:start + RETRIEVE_BATCH]), k)
        if progress:
            log.info("retrieved passages for %d of %d questions", len(out), len(questions))
    return out


def index_setting(settings: Any, name: str, default: Any) -> Any:
    """A field of the index's settings, wherever their (flat or nested) dictionary keeps it."""
    def find(data: Any) -> Any:
        if isinstance(data, dict):
            if name in data:
                return data[name]
            for value in data.values():
                found = find(value)
                if found is not None:
                    return found
        return None

    value = find(settings.to_dict())
    return default if value is None else value


def corpus_texts(rag: Any, limit: int = 0, seed: int = 13) -> list[str]:
    """The index's own chunk texts (title first, as embedded), for continued pretraining; ``limit`` samples them."""
    ids = list(rag.chunks.ids())
    if limit and limit < len(ids):
        ids = sorted(random.Random(seed).sample(ids, limit))
    chunks = rag.chunks.get(ids)
    return [chunks[i].embed_text for i in ids if i in chunks]


# -- features ----------------------------------------------------------------------------------------
@dataclass
class Features:
    """One training sequence: prompt ids then target ids; labels are -100 on the prompt."""

    input_ids: list[int]
    labels: list[int]
    target: str = ""


def featurize(gen: HFGenerator, example: Example) -> Features | None:
    """The prompt ``gen`` packs for the example at answer time, followed by the cited target and EOS.

    Citations point only at packed passages; trailing sentences that do not fit the generator's new-token
    budget are dropped. None when no sentence is left.
    """
    ids, in_prompt, new_tokens = gen.prompt(example.question, example.chunks())
    tokenizer = gen.tokenizer
    lead = "" if getattr(tokenizer, "chat_template", None) else " "
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    kept: list[str] = []
    target_ids: list[int] = []
    for part in example.parts(in_prompt):
        tokens = tokenizer(lead + " ".join([*kept, part]), add_special_tokens=False, verbose=False)["input_ids"]
        if len(tokens) + len(eos) > new_tokens:
            break
        kept.append(part)
        target_ids = list(tokens)
    if not kept:
        return None
    target_ids += eos
    return Features(list(ids) + target_ids, [-100] * len(ids) + target_ids, " ".join(kept))


def clm_blocks(texts: Sequence[str], tokenizer: Any, size: int) -> list[Features]:
    """The texts tokenized, joined by EOS and cut into blocks of ``size`` tokens (the last, shorter, dropped)."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for text in texts:
        stream += list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) + eos
    return [Features(stream[i:i + size], stream[i:i + size]) for i in range(0, len(stream) - size + 1, size)]


# -- training ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorConfig:
    """One train-generator run."""

    base: str = ""  # model name or directory (with from_scratch: where the tokenizer comes from)
    from_scratch: str = ""  # "n_layer=6,n_embd=384,n_head=6": a random GPT-2 of these GPT2Config fields
    objective: str = "sft"  # sft: cited answers; clm: continued pretraining on the index's text
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = ""  # comma-separated module names ("" = peft's default for the model type)
    epochs: float = 1.0
    max_steps: int = 0  # > 0: stop after this many optimizer steps
    max_seconds: float = 0.0  # > 0: stop (after saving a checkpoint) once training took this long
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    block_size: int = 0  # clm: tokens per block (0: the model's context window)
    eval_examples: int = HELDOUT_CAP  # held-out sequences whose loss is measured before and after training
    save_steps: int = 200
    logging_steps: int = 25
    device: str = ""  # "" = a GPU when torch sees one, else the CPU
    seed: int = 13
    threads: int = 0
    resume: bool = False
    progress: bool = True


def _scratch_fields(spec: str) -> dict[str, Any]:
    fields_: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise MedRAGError(f"bad --from-scratch field {part!r}: use NAME=VALUE, e.g. n_layer=6,n_embd=384")
        try:
            fields_[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise MedRAGError(f"bad --from-scratch value {part!r}: numbers only") from None
    return fields_


def init_from_scratch(tokenizer_source: str, spec: str, directory: Path, seed: int = 13) -> Path:
    """A GPT-2 of the GPT2Config fields in ``spec`` with random weights and ``tokenizer_source``'s tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, local_files_only=True)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id or tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id, **_scratch_fields(spec))
    except (OSError, TypeError, ValueError) as exc:
        raise MedRAGError(f"cannot make a GPT-2 from scratch ({spec!r}, tokenizer {tokenizer_source}): {exc}") from exc
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    log.info("GPT-2 from scratch: %s, %.1fM parameters", spec, sum(p.numel() for p in model.parameters()) / 1e6)
    return directory


def load_generator(spec: str, max_new_tokens: int, threads: int = 0) -> HFGenerator:
    """The Hugging Face generator ``medrag ask --generator SPEC`` builds, loaded (prompts come from it)."""
    from medrag.generation import make_generator
    from medrag.generation.hf import HFGenerator

    gen = make_generator(spec, max_new_tokens=max_new_tokens, threads=threads)
    if not isinstance(gen, HFGenerator):
        raise MedRAGError(f"{spec!r} is not a Hugging Face causal language model")
    # the budget HFGenerator.prompt reserves anyway (a quarter window at most), set once instead of warned per prompt
    gen.max_new_tokens = min(gen.max_new_tokens, gen.context_window // 4)
    return gen


def _run_fingerprint(config: GeneratorConfig, examples: ExampleSet | None, texts: Sequence[str]) -> str:
    """What a resumed run must share with the interrupted one."""
    keep = {k: v for k, v in asdict(config).items() if k not in ("resume", "progress", "threads", "device",
                                                                 "max_seconds", "max_steps", "epochs")}
    data = [e.id for e in examples.train] if examples else [hashlib.sha1(t.encode()).hexdigest()[:8] for t in texts]
    return hashlib.sha1(json.dumps([keep, data], sort_keys=True).encode()).hexdigest()


class _Budget:
    """Stops training once it has run ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()

    def callback(self) -> Any:
        from transformers import TrainerCallback

        budget = self

        class Stop(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                budget.started = time.perf_counter()  # the clock counts training steps, not the evaluations before
                return control

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if budget.seconds and time.perf_counter() - budget.started > budget.seconds:
                    log.info("time budget of %.0f s spent at step %d: stopping", budget.seconds, state.global_step)
                    control.should_training_stop = True
                return control

        return Stop()


def train_generator(out: str | Path, config: GeneratorConfig, examples: ExampleSet | None = None,
                    texts: Sequence[str] = (), callbacks: Sequence[Any] = ()) -> Path:
    """Fine-tune ``config.base`` on ``examples`` (sft) or continue its pretraining on ``texts`` (clm).

    The result is saved to ``out`` with its tokenizer (a LoRA adapter merged into the base first), usable
    as ``medrag ask --generator OUT``, with ``medrag-training.json`` (data, counts, settings, base, seeds,
    losses). Checkpoints go to ``.OUT.checkpoints`` beside it; ``config.resume`` continues from the last.
    """
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from medrag.embedding import torch_device

    if config.objective not in OBJECTIVES:
        raise MedRAGError(f"unknown objective {config.objective!r}; choose from {', '.join(OBJECTIVES)}")
    if config.objective == "sft" and (examples is None or not examples.train):
        raise MedRAGError("no training examples: give --data files whose questions the index can answer")
    if config.objective == "clm" and not texts:
        raise MedRAGError("no text to pretrain on: the index holds no chunk")
    if not config.base:
        raise MedRAGError("give --base: a model name or directory (with --from-scratch, its tokenizer)")
    out = Path(out)
    checkpoints = out.with_name(f".{out.name}.checkpoints")
    fingerprint = _run_fingerprint(config, examples, texts)
    resume_from = _prepare_checkpoints(checkpoints, fingerprint, config.resume)
    device = torch_device(config.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MedRAGError("--device cuda, but torch sees no GPU")
    set_seed(config.seed)
    source = config.base
    if config.from_scratch:
        init = checkpoints / "init"
        source = str(init if (init / "config.json").exists() else init_from_scratch(config.base, config.from_scratch,
                                                                                    init, config.seed))
    budget = examples.max_new_tokens if examples else 128
    gen = load_generator(source, budget, config.threads)
    tokenizer, model = gen.tokenizer, gen.model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    started = time.perf_counter()
    if config.objective == "sft":
        train, dropped = _features(gen, examples.train)
        heldout, _ = _features(gen, examples.heldout[:config.eval_examples])
    else:
        size = config.block_size or min(gen.context_window, 1024)
        blocks = clm_blocks(texts, tokenizer, size)
        cut = max(1, min(config.eval_examples, len(blocks) // 20)) if len(blocks) > 1 and config.eval_examples else 0
        train, heldout, dropped = blocks[cut:], blocks[:cut], 0
    if not train:
        raise MedRAGError("no training sequence fits the generator's prompt: check the index and data")
    log.info("%d training and %d held-out sequences%s", len(train), len(heldout),
             f" ({dropped} examples dropped: no supporting passage packed)" if config.objective == "sft" else "")
    if config.lora:
        model = _with_lora(model, config)
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, learning_rate=config.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps, save_total_limit=2,
        eval_strategy="no", seed=config.seed, data_seed=config.seed, report_to="none", dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=not config.progress, use_cpu=device == "cpu",
        bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported())
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100,
                                      pad_to_multiple_of=8 if device.startswith("cuda") else None)
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=_rows(train),
                      eval_dataset=_rows(heldout) if heldout else None,
                      callbacks=[_Budget(config.max_seconds).callback(), *callbacks])
    initial_eval = trainer.evaluate()["eval_loss"] if heldout and not resume_from else None
    result = trainer.train(resume_from_checkpoint=resume_from)
    final_eval = trainer.evaluate()["eval_loss"] if heldout else None
    seconds = time.perf_counter() - started
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()
    record = {
        "kind": "generator", "objective": config.objective, "base": config.base, "from_scratch": config.from_scratch,
        "lora": config.lora, "config": asdict(config), "device": device,
        "parameters": sum(p.numel() for p in model.parameters()),
        "context_window": gen.context_window, "max_new_tokens": gen.max_new_tokens,
        "data": {"files": examples.files if examples else [], "index": examples.index if examples else "",
                 "k": examples.k if examples else None, "heldout_share": examples.heldout_share if examples else None,
                 "counts": examples.counts if examples else {}},
        "examples": {"train": len(train), "heldout": len(heldout), "dropped_not_packed": dropped,
                     "sources": examples.sources("train") if examples and config.objective == "sft" else {},
                     "texts": len(texts)},
        "seeds": {"seed": config.seed, "data_seed": config.seed, "examples_seed": examples.seed if examples else None},
        "global_step": trainer.state.global_step, "resumed_from": Path(resume_from).name if resume_from else None,
        "train_loss": _last_loss(trainer.state.log_history, result.training_loss),
        "train_loss_mean": round(result.training_loss, 4),
        "eval_loss_before": _round(initial_eval), "eval_loss": _round(final_eval),
        "eval_perplexity": _round(math.exp(final_eval)) if final_eval is not None and final_eval < 50 else None,
        "seconds": round(seconds, 1), "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
        "sequences_per_second": round(result.metrics.get("train_samples_per_second", 0.0), 2),
    }
    _save(model, tokenizer, out, checkpoints, record)
    return out


def _prepare_checkpoints(checkpoints: Path, fingerprint: str, resume: bool) -> str | None:
    """The checkpoint to resume from (``resume``), after checking it belongs to this run; else a clean folder."""
    stamp = checkpoints / "run.json"
    last = None
    if checkpoints.is_dir():
        saved = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
        last = str(saved[-1]) if saved else None
    if resume:
        if last is None:
            raise MedRAGError(f"--resume: no checkpoint in {checkpoints} to continue from")
        if json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
            raise MedRAGError(f"--resume: {checkpoints} belongs to a run with other data or settings")
        log.info("resuming from %s", last)
        return last
    if checkpoints.exists():
        log.warning("starting over: removing the checkpoints of an earlier run in %s (use --resume to continue)",
                    checkpoints)
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    return None


def _rows(features: Sequence[Features]) -> list[dict[str, list[int]]]:
    return [{"input_ids": f.input_ids, "labels": f.labels} for f in features]


def _features(gen: HFGenerator, examples: Sequence[Example]) -> tuple[list[Features], int]:
    features = [featurize(gen, e) for e in examples]
    return [f for f in features if f is not None], sum(f is None for f in features)


def _with_lora(model: Any, config: GeneratorConfig) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    try:
        targets = [t.strip() for t in config.lora_targets.split(",") if t.strip()] or None
        wrapped = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=config.lora_r,
                                                   lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                                   target_modules=targets))
    except ValueError as exc:
        raise MedRAGError(f"cannot add LoRA adapters to this model ({exc}); name them with --lora-targets") from exc
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    log.info("LoRA: %d trainable parameters", trainable)
    return wrapped


def _last_loss(history: Sequence[dict[str, Any]], fallback: float) -> float:
    losses = [h["loss"] for h in history if "loss" in h]
    return round(losses[-1] if losses else fallback, 4)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _save(model: Any, tokenizer: Any, out: Path, checkpoints: Path, record: dict[str, Any]) -> None:
    """Model, tokenizer and provenance to ``out`` atomically (beside, then rename); checkpoints removed."""
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.eval()
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log.info("generator saved to %s", out)


__all__ = ["OBJECTIVES", "SOURCES", "Example", "ExampleSet", "Features", "GeneratorConfig", "Sentence",
           "build_examples", "clm_blocks", "corpus_texts", "data_files", "featurize", "index_setting",
           "init_from_scratch", "load_generator", "read_items", "train_generator"]
