"""The words medrag itself writes to a user, per language: ``message(key, language, **fields)``.

English is the fallback for a language without its own text. Chinese text is written in Simplified script;
``traditional=True`` converts it with OpenCC (``s2tw``) for a question asked in Traditional script. Quoted
source sentences are not here: they stay verbatim English, introduced by ``sources_english``.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: key -> language -> text (``str.format`` fields in braces)
MESSAGES: dict[str, dict[str, str]] = {
    "disclaimer": {
        "en": "This answer summarises published sources for information only; it is not medical advice. "
              "Ask a doctor or other qualified clinician about your own situation.",
        "zh": "本回答仅汇总已发表的资料，供参考，不构成医疗建议。您自己的情况请咨询医生或其他有资质的医务人员。",
    },
    "abstain": {
        "en": "The indexed sources do not answer this question well enough for medrag to answer it: the closest "
              "passages are only loosely related. Try rephrasing, or index sources that cover the topic.",
        "zh": "已收录的资料不足以回答这个问题：找到的最接近的段落与问题关系不大。"
              "请换一种问法，或收录涵盖这一主题的资料。",
    },
    "no_evidence": {
        "en": "The indexed sources returned no passage for this question, so medrag cannot answer it.",
        "zh": "已收录的资料中没有找到与这个问题有关的段落，因此 medrag 无法回答。",
    },
    "no_sentence": {
        "en": "The retrieved passages contain no sentence that answers this question; see the sources below.",
        "zh": "检索到的段落中没有能回答这个问题的句子，请查看下方列出的资料来源。",
    },
    "sources_english": {  # introduces an answer made of quoted English sentences; no line for English questions
        "en": "",
        "zh": "以下回答摘自英文资料，按原文引用；方括号中的编号对应下方列出的资料来源。",
    },
    "untranslated": {
        "en": "These terms could not be translated into English, so they were left out of the search: {terms}. "
              "Try a more common word for them, or ask in English.",
        "zh": "以下词语无法译成英文，检索时未能使用：{terms}。请换用更常见的说法，或直接用英文提问。",
    },
    "nothing_translated": {
        "en": "None of this question's terms could be translated into English ({terms}), so medrag cannot search "
              "its English sources for it. Try more common words, or ask in English.",
        "zh": "这个问题中的词语都无法译成英文（{terms}），medrag 无法在英文资料中检索。"
              "请换用更常见的说法，或直接用英文提问。",
    },
    "query": {
        "en": "Searched in English: {query}",
        "zh": "检索所用的英文问题：{query}",
    },
    "emergency_number": {  # the same text as medrag.safety.EMERGENCY_NUMBER(_ZH)
        "en": "Call your local emergency number now (911 in the US, 112 in the EU, 120 in China).",
        "zh": "请立即拨打当地急救电话（中国 120，美国 911，欧盟 112）。",
    },
    "answer_language": {  # for a language model's prompt: written in English, which models follow best
        "en": "",
        "zh": "Write the answer in Chinese (in the script the question uses), and keep each [n] citation marker "
              "after the sentence it supports.",
    },
    # terminal and page labels
    "label_support": {
        "en": "Support (closest cited passage sentence, cosine):",
        "zh": "依据（所引段落中最接近的句子，余弦相似度）：",
    },
    "label_supported": {"en": "ok ", "zh": "充分"},
    "label_unsupported": {"en": "LOW", "zh": "不足"},
    "label_sources": {"en": "Sources:", "zh": "资料来源："},
    "label_closest": {
        "en": "Closest sources (they do not answer the question):",
        "zh": "最接近的资料（它们并未回答这个问题）：",
    },
    "label_answered_by": {"en": "(answered by: {generator})", "zh": "（回答方式：{generator}）"},
    "label_notice": {"en": "Notice:", "zh": "提示："},
}
LANGUAGES = ("en", "zh")


def message(key: str, language: str | None = "en", *, traditional: bool = False, **fields: object) -> str:
    """The text for ``key`` in ``language`` (English when it has none), with ``fields`` filled in.

    ``traditional`` gives Chinese text in Traditional script. An unknown key is a programming error (KeyError).
    """
    texts = MESSAGES[key]
    lang = language if language in texts else "en"
    text = texts[lang].format(**fields) if fields else texts[lang]
    if traditional and lang == "zh":
        from medrag.i18n.translation import _converter

        text = _converter("s2tw").convert(text)
    return text


def labels(language: str | None = "en", *, traditional: bool = False) -> dict[str, str]:
    """The words ``Answer.render(labels=...)`` adds around an answer, in ``language``
    (keys ``support``, ``sources``, ``closest``, ``answered_by`` with its ``{generator}`` field, ``supported``,
    ``unsupported``, ``query`` with its ``{query}`` field)."""
    keys = {"support": "label_support", "sources": "label_sources", "closest": "label_closest",
            "answered_by": "label_answered_by", "supported": "label_supported", "unsupported": "label_unsupported",
            "query": "query"}
    return {name: message(key, language, traditional=traditional) for name, key in keys.items()}
