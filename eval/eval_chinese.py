"""Chinese questions over the English index: retrieval and abstention, against the same questions in English.

Each in-scope question of the dev set (``eval/data/chinese_dev.jsonl``: ``question`` in Chinese, ``english``:
the question it translates, ``gold``: the ids of the documents that answer it, ``script``, ``split``) is
searched three ways per retriever (dense, bm25, hybrid): in English, as translated by ``medrag.i18n``
(``zh``), and untranslated (``zh_raw``, what medrag did before query translation). Figures are per
question, at document level: hit@5 (a gold document among the first 5 distinct documents) and
recall@10 (the share of gold documents among the first 10). Three variants show what the parts add:
``zh_specific`` (the most specific sense by IDF instead of the usual one), ``zh_no_glossary`` (CC-CEDICT
only) and ``zh_no_idf`` (no index statistics: senses in dictionary order, medical first).

Abstention: every question (in scope and out of scope) is asked with the default retriever and the
extractive answerer; a Chinese question is asked as is when ``Answer`` carries the ``query`` it searched
(query translation wired into ``MedRAG.ask``), else as its translated query. A question none of whose
terms translate counts as abstained.

    python eval/eval_chinese.py --index indexes/quickstart --data eval/data/chinese_dev.jsonl \\
        --out eval/reports/chinese/ --report eval/reports/chinese.md

Writes ``metrics.json`` (flat keys), ``questions.jsonl`` (per question: queries, ranks, abstentions) and the
Markdown report (tables and the per-question misses).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG
from medrag.errors import MedRAGError
from medrag.evaluation.datasets import jsonl_rows
from medrag.i18n import Translator, index_idf

log = logging.getLogger("eval_chinese")
RETRIEVERS = ("dense", "bm25", "hybrid")
DEPTH = 40  # passages retrieved per question: enough for 10 distinct documents
VARIANTS = ("en", "zh", "zh_raw", "zh_specific", "zh_no_glossary", "zh_no_idf")


def load_dev(path: Path) -> list[dict[str, Any]]:
    """The dev set; each line needs id, question, english, script, scope, split and gold."""
    rows = []
    for n, row in jsonl_rows(path, ("id", "question", "english", "script", "scope", "split", "gold")):
        if row["scope"] == "in" and not row["gold"]:
            raise MedRAGError(f"{path}:{n}: an in-scope question needs gold documents")
        rows.append(row)
    return rows


def documents(hits: Sequence[Any]) -> list[str]:
    """Distinct document ids in rank order."""
    return list(dict.fromkeys(h.chunk.doc_id for h in hits))


def first_gold_rank(ranked: list[str], gold: set[str]) -> int | None:
    return next((i for i, d in enumerate(ranked, 1) if d in gold), None)


def mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def check_gold(rag: MedRAG, rows: list[dict[str, Any]]) -> None:
    """Every gold id must be a document the index holds (else the dev set and index disagree)."""
    gold = {g for r in rows for g in r["gold"]}
    held = set()
    for r in rows:  # the index has no id listing in its public API: its own searches find the gold documents
        for hits in rag.retrieve_batch([r["english"]], DEPTH * 5, retriever="bm25"):
            held.update(documents(hits))
    absent = sorted(gold - held)
    if absent:
        log.warning("%d gold documents never retrieved in English (not in the index?): %s", len(absent), absent[:10])


def retrieval(rag: MedRAG, rows: list[dict[str, Any]], queries: dict[str, list[str]]) -> dict[str, Any]:
    """Per retriever and variant: per-question first gold rank and recall@10."""
    out: dict[str, Any] = {}
    for retriever in RETRIEVERS:
        for variant, qs in queries.items():
            hits = rag.retrieve_batch(qs, DEPTH, retriever=retriever)
            for row, found in zip(rows, hits, strict=True):
                ranked, gold = documents(found), set(row["gold"])
                out[(retriever, variant, row["id"])] = {
                    "rank": first_gold_rank(ranked, gold),
                    "recall@10": len(gold & set(ranked[:10])) / len(gold),
                    "top": ranked[:5],
                }
    return out


def summarise(rows: list[dict[str, Any]], results: dict[Any, Any]) -> dict[str, float | None]:
    """Flat metrics: ``{retriever}.{variant}[.{subset}].{hit@5|recall@10}`` and Chinese/English ratios."""
    metrics: dict[str, float | None] = {}
    subsets: dict[str, Callable[[dict[str, Any]], bool]] = {
        "": lambda r: True, "simplified": lambda r: r["script"] == "simplified",
        "traditional": lambda r: r["script"] == "traditional", "tune": lambda r: r["split"] == "tune",
        "test": lambda r: r["split"] == "test"}
    for retriever in RETRIEVERS:
        for variant in VARIANTS:
            for subset, keep in subsets.items():
                picked = [results[(retriever, variant, r["id"])] for r in rows if keep(r)]
                key = f"{retriever}.{variant}{'.' + subset if subset else ''}"
                metrics[f"{key}.hit@5"] = mean([float(p["rank"] is not None and p["rank"] <= 5) for p in picked])
                metrics[f"{key}.recall@10"] = mean([p["recall@10"] for p in picked])
        for subset in ("", "tune", "test", "simplified", "traditional"):
            tail = f".{subset}" if subset else ""
            en, zh = metrics[f"{retriever}.en{tail}.hit@5"], metrics[f"{retriever}.zh{tail}.hit@5"]
            metrics[f"{retriever}.zh_over_en{tail}.hit@5"] = round(zh / en, 4) if en else None
    return metrics


def abstentions(rag: MedRAG, rows: list[dict[str, Any]], translations: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per question and language: abstained or not (and the emergency flag), asking through ``MedRAG.ask``."""
    probe = rag.ask("高血压有哪些症状？")
    wired = bool(getattr(probe, "query", ""))  # set when ask searched something else than the question
    log.info("MedRAG.ask %s query translation", "has" if wired else "lacks: asking translated queries, without")
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        tr = translations[row["id"]]
        en = rag.ask(row["english"])
        if wired:
            zh = rag.ask(row["question"])
            zh_abstained, zh_query = zh.abstained, zh.query
        elif not tr.terms and tr.untranslated:
            zh_abstained, zh_query = True, ""
        else:
            zh = rag.ask(tr.query)
            zh_abstained, zh_query = zh.abstained, tr.query
        out[row["id"]] = {"en": en.abstained, "zh": bool(zh_abstained), "zh_query": zh_query, "wired": wired}
    return out


def abstention_metrics(rows: list[dict[str, Any]], asked: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    metrics: dict[str, float | None] = {}
    for lang in ("en", "zh"):
        for scope, name in (("in", "in_scope"), ("out", "out_of_scope")):
            for subset in ("", "simplified", "traditional", "tune", "test"):
                picked = [asked[r["id"]][lang] for r in rows if r["scope"] == scope
                          and (not subset or subset in (r["script"], r["split"]))]
                tail = f".{subset}" if subset else ""
                metrics[f"abstained.{lang}.{name}{tail}"] = mean([float(a) for a in picked])
    return metrics


NOTES = "<!-- hand-written notes below: kept when eval_chinese.py rewrites this report -->"


def targets(metrics: dict[str, Any]) -> list[str]:
    """Table rows: the issue's targets against the measured figures."""
    rows = []
    for r in RETRIEVERS:
        ratio = metrics[f"{r}.zh_over_en.hit@5"]
        rows.append(f"| {r}: Chinese hit@5 >= 0.9 x English hit@5 | "
                    f"{pct(metrics[f'{r}.zh.hit@5'])} vs {pct(metrics[f'{r}.en.hit@5'])} "
                    f"(x{'–' if ratio is None else f'{ratio:.2f}'}) | {_met(ratio is not None and ratio >= 0.9)} |")
    inside, outside = metrics.get("abstained.zh.in_scope"), metrics.get("abstained.zh.out_of_scope")
    if inside is not None:
        rows.append(f"| in-scope Chinese questions abstained <= 15 % | {pct(inside)} | {_met(inside <= 0.15)} |")
    if outside is not None:
        rows.append(f"| out-of-scope Chinese questions abstained >= 80 % | {pct(outside)} | {_met(outside >= 0.8)} |")
    trad, simp = metrics["hybrid.zh.traditional.hit@5"], metrics["hybrid.zh.simplified.hit@5"]
    n_trad = metrics.get("n.traditional")
    one = 1 / n_trad if n_trad else 0.0
    rows.append(f"| Traditional script as good as Simplified (hybrid hit@5, within one question) | "
                f"{pct(trad)} vs {pct(simp)} | {_met(trad is not None and simp is not None and trad + one >= simp)} |")
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def report(rows: list[dict[str, Any]], metrics: dict[str, Any], results: dict[Any, Any], asked: dict[str, Any],
           translations: dict[str, Any], config: dict[str, Any]) -> str:
    """The Markdown report: setup, retrieval and abstention tables, the per-question misses."""
    inside = [r for r in rows if r["scope"] == "in"]
    outside = [r for r in rows if r["scope"] == "out"]
    n_trad = sum(r["script"] == "traditional" for r in inside)
    lines = [
        "# Chinese questions over the English quick-start index", "",
        f"Dev set `{config['data']}`: {len(inside)} in-scope Chinese consumer-health questions ({n_trad} in "
        f"Traditional script, {len(inside) - n_trad} in Simplified), each with the English question it "
        f"translates and the MedQuAD documents that answer it, plus {len(outside)} out-of-scope questions "
        "(not medicine). Written by hand for this evaluation; the `tune` half (odd numbers) was looked at "
        "while building the translator, the `test` half (even numbers) was not, until the figures below.", "",
        f"Index `{config['index']}` ({config['documents']} documents, {config['chunks']} chunks, embedder "
        f"{config['embedder']}); {config['cpu']}; {config['seconds']:.0f} s for the whole run. "
        f"Translation: {config['translate_ms']:.1f} ms per question after a {config['load_s']:.1f} s first load "
        "(jieba, OpenCC, CC-CEDICT).", "",
        "Queries: **en** the English question; **zh** the Chinese question translated by `medrag.i18n` as "
        "shipped (glossary on; of the senses whose words the index's BM25 vocabulary knows, the usual one); "
        "**zh_raw** the Chinese question searched untranslated (medrag before query translation); "
        "**zh_specific** the most specific known sense (highest mean IDF) instead; **zh_no_glossary** "
        "CC-CEDICT only; **zh_no_idf** no index statistics (dictionary order, medical senses first). "
        "hit@5: a gold document among the first 5 distinct documents; recall@10: the share of gold documents "
        "among the first 10. Figures in %.", "",
        "## Targets", "",
        "| target | measured | met |", "|---|---|---|",
        *targets(metrics), "",
        "## Retrieval (all in-scope questions)", "",
        "| retriever | en hit@5 | zh hit@5 | zh / en | en recall@10 | zh recall@10 | zh_raw hit@5 | "
        "zh_specific hit@5 | zh_no_glossary hit@5 | zh_no_idf hit@5 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in RETRIEVERS:
        m = {k.removeprefix(f"{r}."): v for k, v in metrics.items() if k.startswith(f"{r}.")}
        ratio = m["zh_over_en.hit@5"]
        lines.append(f"| {r} | {pct(m['en.hit@5'])} | {pct(m['zh.hit@5'])} | "
                     f"{'–' if ratio is None else f'{ratio:.2f}'} | {pct(m['en.recall@10'])} | "
                     f"{pct(m['zh.recall@10'])} | {pct(m['zh_raw.hit@5'])} | {pct(m['zh_specific.hit@5'])} | "
                     f"{pct(m['zh_no_glossary.hit@5'])} | {pct(m['zh_no_idf.hit@5'])} |")
    lines += ["", "## By script and by half (hit@5 / recall@10)", "",
              "| retriever | subset | n | en hit@5 | zh hit@5 | zh / en | en recall@10 | zh recall@10 |",
              "|---|---|---|---|---|---|---|---|"]
    for r in RETRIEVERS:
        for subset in ("simplified", "traditional", "tune", "test"):
            n = sum(subset in (q["script"], q["split"]) for q in inside)
            ratio = metrics[f"{r}.zh_over_en.{subset}.hit@5"]
            lines.append(f"| {r} | {subset} | {n} | {pct(metrics[f'{r}.en.{subset}.hit@5'])} | "
                         f"{pct(metrics[f'{r}.zh.{subset}.hit@5'])} | {'–' if ratio is None else f'{ratio:.2f}'} | "
                         f"{pct(metrics[f'{r}.en.{subset}.recall@10'])} | "
                         f"{pct(metrics[f'{r}.zh.{subset}.recall@10'])} |")
    wired = next(iter(asked.values()))["wired"] if asked else False
    lines += ["", "## Abstention (default retriever, extractive answerer)", "",
              ("Chinese questions asked as they are: `MedRAG.ask` translates them." if wired else
               "`MedRAG.ask` did not translate yet: each Chinese question was asked as its translated query."), "",
              "| questions | n | en abstained | zh abstained |", "|---|---|---|---|"]
    for scope, name in (("in", "in_scope"), ("out", "out_of_scope")):
        for subset in ("", "simplified", "traditional", "tune", "test"):
            n = sum(q["scope"] == scope and (not subset or subset in (q["script"], q["split"])) for q in rows)
            if not n:
                continue
            tail = f".{subset}" if subset else ""
            if f"abstained.en.{name}{tail}" not in metrics:
                continue
            lines.append(f"| {name.replace('_', ' ')}{' ' + subset if subset else ''} | {n} | "
                         f"{pct(metrics[f'abstained.en.{name}{tail}'])} | "
                         f"{pct(metrics[f'abstained.zh.{name}{tail}'])} |")
    lines += ["", "## Per-question misses (hybrid)", "",
              "A Chinese question whose translation found no gold document in the first 5 (hybrid) or that was "
              "abstained in scope / answered out of scope; the English question's rank for comparison.", "",
              "| id | half | question | translated query | zh rank | en rank | zh abstained |",
              "|---|---|---|---|---|---|---|"]
    for q in rows:
        tr = translations[q["id"]]
        if q["scope"] == "in":
            zh, en = results[("hybrid", "zh", q["id"])], results[("hybrid", "en", q["id"])]
            miss = zh["rank"] is None or zh["rank"] > 5 or asked[q["id"]]["zh"]
        else:
            zh = en = {"rank": None}
            miss = not asked[q["id"]]["zh"]
        if miss:
            query = tr.query + (f" (untranslated: {', '.join(tr.untranslated)})" if tr.untranslated else "")
            lines.append(f"| {q['id']} | {q['split']} | {q['question']} | {query} | {zh['rank'] or '–'} | "
                         f"{en['rank'] or '–'} | {'yes' if asked[q['id']]['zh'] else 'no'} |")
    lines += ["", "## Every translation", "", "| id | script | question | English query searched | reference English |",
              "|---|---|---|---|---|"]
    lines += [f"| {q['id']} | {q['script'][:4]} | {q['question']} | {translations[q['id']].query} | {q['english']} |"
              for q in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--data", default="eval/data/chinese_dev.jsonl")
    parser.add_argument("--out", default="eval/reports/chinese/")
    parser.add_argument("--report", default=None, help="the Markdown report (default: OUT/report.md)")
    parser.add_argument("--no-abstention", action="store_true", help="retrieval figures only")
    parser.add_argument("--split", choices=("tune", "test"), help="only this half of the dev set")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    rows = [r for r in load_dev(Path(args.data)) if args.split in (None, r["split"])]
    rag = MedRAG.load(args.index, threads=args.threads)
    inside = [r for r in rows if r["scope"] == "in"]
    check_gold(rag, inside)
    idf = index_idf(rag)
    full, bare, specific = Translator(), Translator(glossary=False), Translator(prefer="specific")
    t0 = time.perf_counter()
    full.translate("高血压", idf)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    translations = {r["id"]: full.translate(r["question"], idf) for r in rows}
    translate_ms = 1000 * (time.perf_counter() - t0) / len(rows)
    queries = {
        "en": [r["english"] for r in inside],
        "zh": [translations[r["id"]].query for r in inside],
        "zh_raw": [r["question"] for r in inside],
        "zh_specific": [specific.translate(r["question"], idf).query for r in inside],
        "zh_no_glossary": [bare.translate(r["question"], idf).query for r in inside],
        "zh_no_idf": [full.translate(r["question"], None).query for r in inside],
    }
    results = retrieval(rag, inside, queries)
    metrics: dict[str, Any] = summarise(inside, results)
    asked = {} if args.no_abstention else abstentions(rag, rows, translations)
    if asked:
        metrics.update(abstention_metrics(rows, asked))
    info = rag.info()
    config = {"index": args.index, "data": args.data, "documents": info["documents"], "chunks": info["chunks"],
              "embedder": info["embedder"], "cpu": _cpu(), "threads": args.threads, "depth": DEPTH,
              "seconds": time.perf_counter() - start, "load_s": load_s, "translate_ms": translate_ms}
    metrics.update({"n.in_scope": len(inside), "n.out_of_scope": len(rows) - len(inside),
                    "n.traditional": sum(r["script"] == "traditional" for r in inside),
                    "translate.ms_per_question": round(translate_ms, 2), "translate.load_s": round(load_s, 2)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "seconds"}, indent=2) + "\n")
    with (out / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            tr = translations[r["id"]]
            record = {"id": r["id"], "scope": r["scope"], "script": r["script"], "split": r["split"],
                      "query": tr.query, "terms": tr.terms, "untranslated": tr.untranslated, **asked.get(r["id"], {})}
            if r["scope"] == "in":
                record["ranks"] = {f"{ret}.{v}": results[(ret, v, r["id"])]["rank"]
                                   for ret in RETRIEVERS for v in VARIANTS}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    text = report(rows, metrics, results, asked or {r["id"]: {"zh": False, "en": False, "wired": False} for r in rows},
                  translations, config)
    path = Path(args.report or out / "report.md")
    notes = path.read_text(encoding="utf-8").partition(NOTES)[2] if path.exists() else ""
    path.write_text(f"{text}\n{NOTES}{notes or chr(10)}", encoding="utf-8")
    for r in RETRIEVERS:
        log.info("%s: hit@5 en %.3f zh %.3f (ratio %s), recall@10 en %.3f zh %.3f", r, metrics[f"{r}.en.hit@5"],
                 metrics[f"{r}.zh.hit@5"], metrics[f"{r}.zh_over_en.hit@5"], metrics[f"{r}.en.recall@10"],
                 metrics[f"{r}.zh.recall@10"])
    if asked:
        log.info("abstained zh: in scope %.3f, out of scope %.3f", metrics["abstained.zh.in_scope"],
                 metrics["abstained.zh.out_of_scope"])


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
