"""Generation: prompt packing, citation cleaning, the HF generator (tiny GPT-2) and the extractive one (MiniLM)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.generation import GENERATORS, Generation, clean_citations, make_generator
from medrag.generation.citations import split_sentences
from medrag.generation.extractive import ExtractiveGenerator
from medrag.generation.hf import HFGenerator
from medrag.generation.prompt import HEADER, pack_prompt

TINY_GPT2 = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "tiny-gpt2"

# from PubMedQA abstracts 11340218, 15125825 and 21881325
STATINS_STROKE = ("BACKGROUND AND PURPOSE: In primary and secondary prevention trials, statins have been shown to "
                  "reduce the risk of stroke. In addition to lipid lowering, statins have a number of "
                  "antiatherothrombotic and neuroprotective properties.\nRESULTS: The unadjusted odds ratio for "
                  "early discharge to home (versus late discharge or death) was 1.41 (95% CI 0.91 to 2.17) when "
                  "patients on statin treatment were compared with referent stroke patients not on statins.")
INSULIN = ("OBJECTIVE: To evaluate the effects of insulin 30/70 twice daily or bedtime isophane (NPH) insulin plus "
           "continued sulfonylurea and metformin in patients with type 2 diabetes in primary care.\nRESULTS: "
           "Patients in the IC group had less weight gain than those in the IM group (1.3 vs 4.2 kg; P=.01), "
           "and they reported fewer hypoglycemic events (2.7 vs 4.3; P=.02).")
STATINS_AF = ("RESULTS: The overall incidence of postoperative AF was 26%. Postoperative AF was significantly lower "
              "in the Statin group compared with the Non-statin group (16% versus 33%, p = 0.005).")
METFORMIN = ("Metformin is first-line therapy for type 2 diabetes. Lactic acidosis is a rare but serious adverse "
             "effect of metformin, occurring mainly in patients with severe renal impairment. Patients should be "
             "counselled about diet and exercise.")


def chunk(i: int, text: str, title: str = "") -> Chunk:
    return Chunk(doc_id=f"pmid:{1000 + i}", index=0, text=text, title=title or f"Study {i}",
                 metadata={"pmid": str(1000 + i)})


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY_GPT2), local_files_only=True)


@pytest.fixture(scope="module")
def long_passages(tokenizer: Any) -> list[Chunk]:
    """20 passages of about 300 tokens each: far more than a 1,024-token window."""
    body = " ".join([STATINS_STROKE, INSULIN, STATINS_AF] * 3)
    passages = [chunk(i, tokenizer.decode(tokenizer(body)["input_ids"][:300])) for i in range(20)]
    assert sum(len(tokenizer(p.text)["input_ids"]) for p in passages) > 5000
    return passages


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    embedder = Embedder()
    embedder.embed_queries(["warm up"])  # loads the model, so timings below are of generation alone
    return embedder


def test_clean_citations() -> None:
    assert clean_citations("A [1]. B [7]. C [2, 9]", {1, 2}) == ("A [1]. B. C [2]", [1, 2], 2)
    assert clean_citations("x [1-3] y [1,2] z [3]", {1, 3}) == ("x [1, 3] y [1] z [3]", [1, 3], 2)
    assert clean_citations("[5] Starts. Mid [6] word [2].", {2}) == ("Starts. Mid word [2].", [2], 2)
    assert clean_citations("No markers, 2.5 mg [a].", {1}) == ("No markers, 2.5 mg [a].", [], 0)


def test_pack_prompt_cuts_the_tail(tokenizer: Any, long_passages: list[Chunk]) -> None:
    packed = pack_prompt(tokenizer, "Do statins improve stroke outcome?", long_passages, 1024, 128)
    assert len(packed.input_ids) <= 1024 - 128
    assert packed.text.startswith(HEADER) and packed.text.endswith("Answer:")
    assert tokenizer.decode(packed.input_ids) == packed.text
    n = len(packed.in_prompt)
    assert 1 <= n < 20 and packed.in_prompt == list(range(1, n + 1))
    assert f"[{n}] Study {n - 1} (PMID {999 + n} | https://pubmed.ncbi.nlm.nih.gov/{999 + n}/)" in packed.text
    assert f"[{n + 1}] " not in packed.text
    assert "Question: Do statins improve stroke outcome?\nAnswer:" in packed.text


def test_pack_prompt_overlong_question(tokenizer: Any, long_passages: list[Chunk]) -> None:
    question = "Is metformin safe in chronic kidney disease? " * 300
    packed = pack_prompt(tokenizer, question, long_passages, 1024, 128)
    assert len(packed.input_ids) <= 896 and packed.in_prompt == []
    assert packed.text.startswith(HEADER) and packed.text.endswith("Answer:")
    assert "Question: Is metformin safe in chronic kidney disease?" in packed.text
    tiny = pack_prompt(tokenizer, question, long_passages, 40, 10)  # smaller than the instructions
    assert len(tiny.input_ids) <= 30 and tiny.in_prompt == []
    assert tiny.text.endswith("Question: Is metformin safe in chronic kidney disease? Is metformin\nAnswer:")


def test_hf_generator_full_window(long_passages: list[Chunk]) -> None:
    gen = make_generator(str(TINY_GPT2), embedder=None, max_new_tokens=32)
    assert isinstance(gen, HFGenerator) and gen.name == f"hf:{TINY_GPT2}"
    ids, in_prompt, new_tokens = gen.prompt("Do statins improve stroke outcome?", long_passages)
    assert len(ids) + new_tokens <= 1024 and len(ids) > 900
    started = time.perf_counter()
    result = gen.generate("Do statins improve stroke outcome?", long_passages)
    print(f"hf generate (tiny-gpt2, {len(ids)}-token prompt): {time.perf_counter() - started:.2f} s")
    assert isinstance(result, Generation) and result.in_prompt == in_prompt
    assert set(result.cited) <= set(result.in_prompt) and result.generator == gen.name


def test_hf_generator_small_window_and_chat_template(tmp_path: Path, tokenizer: Any,
                                                     long_passages: list[Chunk]) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_positions=128, n_embd=16, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    gen = HFGenerator(str(tmp_path), max_new_tokens=16)
    result = gen.generate("Do statins reduce stroke risk?", long_passages)
    assert gen.context_window == 128 and result.in_prompt == [1] and set(result.cited) <= {1}
    capped = HFGenerator(str(tmp_path), max_new_tokens=128)  # more than the window allows: capped at 32
    ids, in_prompt, new_tokens = capped.prompt("Do statins reduce stroke risk?", long_passages)
    assert new_tokens == 32 and len(ids) <= 96 and in_prompt == []
    assert capped.generate("Do statins reduce stroke risk?", long_passages).cited == []
    gen.tokenizer.chat_template = ("{% for m in messages %}<|user|>\n{{ m['content'] }}\n{% endfor %}"
                                   "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    ids, in_prompt, new_tokens = gen.prompt("Do statins reduce stroke risk?", long_passages)
    assert len(ids) + new_tokens <= 128 and gen.tokenizer.decode(ids).startswith("<|user|>")
    assert set(gen.generate("Do statins reduce stroke risk?", long_passages).cited) <= set(in_prompt)


def test_missing_generator_path(tmp_path: Path) -> None:
    gen = make_generator(str(tmp_path / "no-such-model"), embedder=None)
    with pytest.raises(MedRAGError, match="cannot load generator .* offline: .*give a local model directory"):
        gen.generate("Does metformin cause lactic acidosis?", [chunk(0, METFORMIN)])
    with pytest.raises(MedRAGError, match="needs an embedder"):
        make_generator("extractive", embedder=None)


def test_split_sentences() -> None:
    text = ("RESULTS: Weight gain was lower (1.3 vs. 4.2 kg, e.g. in Fig. 2). J. Smith et al. agreed.\n"
            "CONCLUSIONS: Dose 2.5 mg works - Next bullet here")
    assert split_sentences(text) == ["Weight gain was lower (1.3 vs. 4.2 kg, e.g. in Fig. 2).",
                                     "J. Smith et al. agreed.", "Dose 2.5 mg works", "Next bullet here"]


def test_extractive_picks_the_answer(embedder: Embedder) -> None:
    passages = [chunk(0, STATINS_STROKE), chunk(1, METFORMIN), chunk(2, INSULIN), chunk(3, STATINS_AF)]
    passages += [chunk(4 + i, STATINS_AF if i % 2 else STATINS_STROKE) for i in range(6)]
    gen = make_generator("extractive", embedder=embedder, n_sentences=2)
    assert isinstance(gen, ExtractiveGenerator) and GENERATORS["extractive"]
    started = time.perf_counter()
    result = gen.generate("Can metformin cause lactic acidosis?", passages)
    print(f"extractive on {len(passages)} passages: {time.perf_counter() - started:.2f} s")
    lines = result.text.split("\n")  # the answering passage's sentences, in its own order, one a line
    assert "Lactic acidosis is a rare but serious adverse effect of metformin, occurring mainly in patients with " \
           "severe renal impairment. [2]" in lines and lines[0].endswith("[2]")
    assert 2 in result.cited and result.invalid_citations == 0 and result.generator == "extractive"
    assert result.in_prompt == list(range(1, 11)) and len(lines) == 2  # abstracts: the n_sentences closest units
    assert gen.generate("anything?", []) == Generation("", [], 0, [], "extractive")
