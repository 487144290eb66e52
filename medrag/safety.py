"""Safety layer: emergency red flags, not-a-doctor filtering, language notice, citation support, abstention.

Red flags are data: ``CONCEPTS`` (English regex fragments and Chinese strings per concept), ``RULES``
(which concepts together make which emergency) and ``CUES`` (ConText-style negation, history and
"asking for information" cues with a direction and a window). A concept counts when some occurrence
of it is not in the scope of a cue: a cue within ``window`` words (English) or characters (Chinese)
before it (or after it, for post-cues), with no clause terminator ("but", ".", "，", "但是") between.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medrag.generation import CITATION, _marker_numbers, clean_citations
from medrag.generation.extractive import split_sentences

if TYPE_CHECKING:
    from medrag.embedding import Embedder

log = logging.getLogger(__name__)

EMERGENCY_NUMBER = "Call your local emergency number now (911 in the US, 112 in the EU, 120 in China)."
EMERGENCY_NUMBER_ZH = "请立即拨打当地急救电话（中国 120，美国 911，欧盟 112）。"
MULTILINGUAL_EMBEDDERS = ("paraphrase-multilingual-MiniLM-L12-v2", "intfloat/multilingual-e5-small")
#: calibrated for all-MiniLM-L6-v2 (eval/reports/answering.md); other embedders need their own values
SUPPORT_THRESHOLD = 0.65  # F1-optimal on BioASQ 7B against on-topic negatives
#: >= 90% of off-index questions abstained, <= 10% of in-index ones (held out: 93.9% and 2.9%)
ABSTAIN_THRESHOLD, ABSTAIN_MARGIN_WEIGHT, ABSTAIN_COVERAGE_WEIGHT = 0.52, 0.0, 0.15

# -- red flags: data -------------------------------------------------------------------------------
_P = r"(?:my|his|her|their|the|our|your|a|an)"  # "{p}" in English fragments
_SELF = r"(?:my|him|her|them|your)sel(?:f|ves)"  # "{self}"

#: concept -> (English regex fragments, Chinese regex fragments); matched on lower-cased text
CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "chest_pain": (
        (r"chest (?:pains?|pressure|tightness|discomfort|heaviness)",
         r"(?:pain|tightness|pressure) (?:in|on) {p} chest", r"chest (?:hurts|is hurting|feels (?:tight|heavy))"),
        (r"胸(?:口|部)?(?:很|非常|特别|剧烈|剧)?(?:痛|疼|闷|发紧)", r"心口(?:痛|疼)")),
    "cardiac_sign": (
        (r"sweat(?:ing|y|s)?", r"clammy", r"short(?:ness)? of breath", r"breathless(?:ness)?",
         r"(?:trouble|difficulty|hard) breathing", r"radiat(?:es|ing) (?:to|into|down)",
         r"spread(?:s|ing)? (?:to|down) {p} (?:left )?(?:arm|jaw|neck|back)",
         r"(?:pain|numbness) in {p} (?:left )?(?:arm|jaw)", r"nause(?:a|ous)",
         r"(?:dizzy|dizziness|light-?headed|faint)"),
        (r"出汗", r"大汗", r"冷汗", r"冒汗", r"呼吸困难", r"喘不过气", r"气短", r"气促", r"放射", r"左(?:手)?臂",
         r"下巴", r"下颌", r"恶心", r"头晕")),
    "severe": (
        (r"severe", r"crushing", r"excruciating", r"unbearable", r"worst"),
        (r"剧烈", r"剧痛", r"压榨", r"撕裂")),
    "heart_attack_now": (
        (r"having a heart attack",),
        (r"心脏病(?:犯了|发作了)", r"心梗(?:了|发作)")),
    "face_droop": (
        (r"(?:face|mouth|smile) (?:is |was |started |has started )?(?:drooping|droops|drooped|droopy)",
         r"(?:face|mouth|smile) (?:is |was )?(?:sagging|crooked|lopsided)",
         r"drooping (?:face|mouth)", r"facial (?:droop|drooping|paralysis)", r"one side of {p} face"),
        (r"口角歪斜", r"嘴(?:巴)?(?:突然)?歪", r"口眼歪斜", r"脸(?:突然)?歪", r"面部下垂", r"半边脸", r"一侧脸",
         r"面瘫")),
    "speech": (
        (r"slurr(?:ed|ing)",
         r"(?:can'?t|cannot|can not|unable to|trouble|difficulty) (?:speak|speaking|talk|talking)",
         r"(?:can'?t|cannot|can not|unable to) get (?:the )?words out",
         r"garbled (?:speech|words)"),
        (r"口齿不清", r"说话不清", r"言语不清", r"吐字不清", r"说不出话", r"说话含糊", r"不能说话", r"讲话不清")),
    "one_side": (
        (r"(?:weak|weakness|numb|numbness|paraly[sz]ed|paralysis) (?:\w+ ){0,3}one side", r"one side of {p} body",
         r"(?:left|right) (?:arm|leg|side) (?:is |went |feels |has gone )?(?:weak|numb|limp|dead|paraly[sz]ed)",
         r"can'?t (?:move|lift|feel) {p} (?:left |right )?(?:arm|leg)"),
        (r"半身不遂", r"偏瘫", r"一侧(?:肢体|身体|手脚|手臂|胳膊|腿)?(?:突然)?(?:无力|麻木|没有力气|不能动|动不了)",
         r"半边(?:身体|身子)?(?:突然)?(?:无力|麻木|不能动|动不了)",
         r"(?:左|右)(?:侧|边|手|腿|胳膊|臂)(?:突然)?(?:无力|麻木|动不了|不能动)")),
    "worst_headache": (
        (r"worst headache of {p} life", r"thunderclap headache"),
        (r"(?:一生中|有生以来)?最(?:严重|剧烈)的头痛", r"雷击样头痛", r"突然剧烈头痛")),
    "stroke_now": (
        (r"having a stroke",),
        (r"(?:好像|可能|是不是)?中风了",)),
    "sudden": (
        (r"sudden(?:ly)?", r"just (?:now|started|happened)", r"right now",
         r"(?:\d+|a few|few|ten|twenty) minutes ago"),
        (r"突然", r"忽然", r"刚才", r"刚刚", r"现在", r"一下子")),
    "swelling": (
        (r"(?:throat|tongue|lips?|face|mouth|airway) (?:is |are |started |keeps )?(?:swelling|swollen|swelled)",
         r"(?:throat|airway) (?:is |started |keeps )?(?:closing|tightening)",
         r"swollen (?:throat|tongue|lips?|face)", r"swelling (?:of|in) {p} (?:throat|tongue|lips?|face)"),
        (r"喉咙(?:肿|发紧|紧|堵)", r"喉头水肿", r"嗓子(?:肿|发紧)", r"舌头(?:肿|发麻)", r"嘴唇(?:肿|发肿)",
         r"脸(?:都)?肿")),
    "cant_breathe": (
        (r"(?:can'?t|cannot|can not|unable to|not able to|struggling to) breathe",
         r"gasping(?: for (?:air|breath))?", r"(?:severe|extreme|serious) (?:difficulty|trouble) breathing",
         r"lips (?:are |turning |turned )?(?:blue|purple)"),
        (r"不能呼吸", r"无法呼吸", r"喘不上气", r"透不过气", r"窒息", r"嘴唇发(?:紫|青)")),
    "choking": (
        (r"choking", r"choked on"),
        (r"噎住", r"卡住(?:了)?(?:喉咙|气管)", r"气管(?:里)?卡")),
    "trigger": (
        (r"st(?:ung|ing)", r"bee", r"wasp", r"hornet", r"peanuts?", r"nuts?", r"shellfish", r"shrimp", r"ate",
         r"eating", r"food", r"allerg(?:y|ic|ies)", r"injection", r"shot", r"vaccine", r"penicillin",
         r"antibiotics?", r"medicine", r"medication", r"drug"),
        (r"蜂", r"蛰", r"蜇", r"叮", r"过敏", r"花生", r"海鲜", r"吃了", r"打针", r"注射", r"疫苗", r"青霉素", r"药")),
    "anaphylaxis_now": (
        (r"(?:going into|having|in|went into) anaphyla(?:xis|ctic shock)",),
        (r"(?:出现|发生)?过敏性休克了?",)),
    "suicide": (
        (r"kill(?:ing)? {self}", r"end(?:ing)? (?:my|his|her) (?:own )?life", r"take (?:my|his|her) own life",
         r"suicidal", r"(?:commit|committing|attempt|attempting) suicide",
         r"(?:thinking|thoughts?) (?:about|of) (?:suicide|dying)", r"wants? to die",
         r"(?:don'?t|do not|doesn'?t) want to (?:live|be alive|wake up)", r"better off dead", r"no reason to live",
         r"self[- ]harm(?:ing)?", r"(?:hurt|hurting|harm|harming|cut|cutting) {self}"),
        (r"(?:想|要|打算|准备)(?:去)?自杀", r"自杀的?(?:念头|想法)", r"想死", r"不想活", r"活不下去", r"活着没意思",
         r"轻生", r"结束(?:自己的)?生命", r"割腕", r"自残", r"伤害自己")),
    "too_much": (
        (r"overdos(?:e|ed|ing)", r"o\.?d'?d",
         r"(?:took|taken|swallowed|ate) (?:too many|too much|(?:a (?:whole|full|entire)|an entire) bottle|a handful)",
         r"(?:took|taken|swallowed|ate) (?:dozens|all (?:of )?(?:my|his|her|the) (?:pills|tablets|medication))"),
        (r"(?:吃|吞|服)了(?:一整瓶|一瓶|整瓶|很多|好多|大量|太多)", r"(?:服药|吃药|药物)过量", r"过量服(?:用|药)")),
    "ingested": (
        (r"swallowed", r"drank", r"drunk", r"ate", r"eaten", r"ingested", r"got into"),
        (r"喝了", r"吃了", r"吞了", r"误服", r"误食", r"误喝", r"服了")),
    "toxin": (
        (r"bleach", r"(?:rat|mouse) poison", r"poison(?:ous)?", r"antifreeze", r"pesticides?", r"insecticides?",
         r"weed ?killer", r"herbicides?", r"paraquat",
         r"(?:laundry|detergent|dishwasher) (?:pods?|capsules?|detergent)", r"(?:button )?batter(?:y|ies)",
         r"drain cleaner", r"lye", r"methanol", r"gasoline", r"kerosene", r"lamp oil"),
        (r"农药", r"老鼠药", r"鼠药", r"毒药", r"漂白(?:剂|水)", r"消毒液", r"百草枯", r"敌敌畏", r"除草剂",
         r"杀虫剂", r"电池", r"洗衣(?:液|凝珠)", r"甲醇", r"汽油")),
    "poisoned": (
        (r"(?:been|was|got|is|am) poisoned",),
        (r"中毒了", r"农药中毒", r"一氧化碳中毒", r"煤气中毒")),
    "bleeding": (
        (r"bleeding (?:heavily|a lot|badly|profusely|non-?stop)(?! (?:during|with|on) (?:my |her |the )?period)",
         r"(?:severe|massive|uncontrolled|uncontrollable|profuse) bleeding",
         r"(?:can'?t|cannot|unable to) stop (?:the )?bleeding",
         r"(?:won'?t|will not|doesn'?t|does not) stop bleeding", r"bleeding (?:won'?t|will not) stop",
         r"blood (?:is )?(?:spurting|gushing|pouring|everywhere)", r"(?:spurting|gushing) blood",
         r"(?:vomiting|throwing up|coughing up) (?:a lot of |lots of )?blood", r"lost a lot of blood"),
        (r"大出血", r"血流不止", r"止不住(?:血)?", r"(?:出|流)血不止", r"流了很多血", r"大量出血", r"吐血", r"呕血")),
    "unresponsive": (
        (r"(?:not|isn'?t|stopped|no longer|wasn'?t) breathing", r"no (?:pulse|heartbeat)", r"unresponsive",
         r"(?:won'?t|will not|can'?t|cannot|doesn'?t|does not) (?:wake (?:up)?|respond)",
         r"can'?t wake (?:\w+ ){1,2}up", r"unconscious", r"collapsed", r"not responding",
         r"turn(?:ing|ed) (?:blue|grey|gray)"),
        (r"没有?呼吸", r"停止呼吸", r"不呼吸", r"呼吸停止", r"没有?心跳", r"叫不醒", r"没有?反应",
         r"失去(?:意识|知觉)", r"不省人事", r"昏迷", r"昏过去", r"倒地不起", r"(?:全身|脸色)发(?:紫|青)")),
    "seizure": (
        (r"seizures?", r"seizing", r"convuls(?:ing|ions?)", r"fitting", r"having a fit"),
        (r"抽搐", r"癫痫发作", r"惊厥", r"抽风", r"羊癫疯")),
    "long": (
        (r"(?:[5-9]|[1-9]\d|five|six|seven|eight|nine|ten|fifteen|twenty|thirty) (?:minutes|mins?)", r"won'?t stop",
         r"(?:is |are )?not stopping", r"keeps? (?:seizing|having seizures|convulsing)", r"back[- ]to[- ]back",
         r"one after (?:another|the other)", r"still (?:seizing|shaking|convulsing)"),
        (r"(?:[5-9]|[1-9]\d|五|六|七|八|九|十|十五|二十|三十)(?:多)?分钟", r"半(?:个)?小时", r"停不下来",
         r"一直(?:在)?抽", r"不停(?:地)?抽", r"持续", r"反复", r"接连", r"一次接一次")),
}


@dataclass(frozen=True)
class Rule:
    """An emergency when every ``need`` concept is present and at least ``n`` of ``any_of``."""

    kind: str
    need: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    n: int = 1


_STROKE_SIGNS = ("face_droop", "speech", "one_side")
#: in priority order: the first rule that fires names the emergency
RULES: tuple[Rule, ...] = (
    Rule("suicide", any_of=("suicide",)),
    Rule("unresponsive", any_of=("unresponsive",)),
    Rule("anaphylaxis", any_of=("anaphylaxis_now",)),
    Rule("anaphylaxis", need=("trigger",), any_of=("swelling", "cant_breathe")),
    Rule("anaphylaxis", any_of=("swelling", "cant_breathe"), n=2),
    Rule("heart_attack", any_of=("heart_attack_now",)),
    Rule("heart_attack", need=("chest_pain",), any_of=("cardiac_sign", "severe")),
    Rule("stroke", any_of=("stroke_now", "worst_headache")),
    Rule("stroke", any_of=_STROKE_SIGNS, n=2),
    Rule("stroke", need=("sudden",), any_of=_STROKE_SIGNS),
    Rule("poisoning", any_of=("too_much", "poisoned")),
    Rule("poisoning", need=("ingested", "toxin")),
    Rule("bleeding", any_of=("bleeding",)),
    Rule("seizure", need=("seizure", "long")),
    Rule("breathing", any_of=("cant_breathe", "choking")),
)

#: kind -> (English, Chinese) advice shown before the emergency number
MESSAGES: dict[str, tuple[str, str]] = {
    "heart_attack": ("Chest pain with these symptoms can be a heart attack.", "胸痛伴这些症状可能是心脏病发作。"),
    "stroke": ("These can be signs of a stroke; note the time they started.",
               "这些可能是中风的征兆，请记下症状开始的时间。"),
    "anaphylaxis": (("This can be a severe allergic reaction (anaphylaxis); use an adrenaline (epinephrine) "
                     "auto-injector if one is at hand."),
                    "这可能是严重过敏反应（过敏性休克），如有肾上腺素笔请立即使用。"),
    "breathing": ("Severe difficulty breathing or choking is an emergency.", "严重呼吸困难或噎住是急症。"),
    "suicide": (("If you are thinking about suicide or harming yourself, you are not alone: call or text 988 "
                 "(Suicide & Crisis Lifeline, US) or your local crisis line now."),
                "如果你有自杀或伤害自己的想法，你并不孤单：请立即联系当地心理危机干预热线（美国 988）。"),
    "poisoning": (("This can be an overdose or poisoning; call poison control (1-800-222-1222 in the US) or "
                   "emergency services, and keep the container."), "这可能是药物过量或中毒，请保留药瓶或容器。"),
    "bleeding": ("Severe bleeding is an emergency; press firmly on the wound while you wait.",
                 "大出血是急症，等待时请用力按压伤口。"),
    "unresponsive": ("Someone not breathing or not responding needs help now; start CPR if you are trained.",
                     "没有呼吸或没有反应需要立即急救，如会心肺复苏请立即开始。"),
    "seizure": ("A seizure lasting more than 5 minutes, or seizures one after another, is an emergency.",
                "抽搐超过 5 分钟或反复发作是急症。"),
}


@dataclass(frozen=True)
class Cue:
    """A ConText trigger: ``negated``/``historical``/``info`` scope over concepts ``window`` units away."""

    category: str
    direction: str  # "pre": the concept follows the cue; "post": the concept precedes it
    window: int
    en: tuple[str, ...]
    zh: tuple[str, ...] = ()


CUES: tuple[Cue, ...] = (
    Cue("negated", "pre", 5,
        (r"no", r"not", r"never", r"none", r"without", r"den(?:y|ies|ied|ying)", r"negative for", r"free of",
         r"absence of", r"no (?:signs?|evidence) of", r"(?:don'?t|doesn'?t|didn'?t) have", r"(?:haven'?t|hasn'?t) had",
         r"isn'?t", r"wasn'?t", r"aren'?t"),
        (r"没有", r"没", r"无", r"不是", r"不", r"否认", r"未")),
    Cue("historical", "pre", 8, (r"history of", r"h/o", r"previous(?:ly)?", r"recovered from"),
        (r"既往", r"病史", r"以前", r"曾经", r"有过")),
    Cue("info", "pre", 8,
        (r"what (?:is|are)", r"causes?", r"symptoms? of", r"signs? of", r"warning signs?",
         r"risks? of", r"risk factors?", r"prevent(?:ion|ing)?", r"treat(?:ment|ing)? (?:of|for)", r"how (?:is|are)",
         r"incidence of", r"prevalence of", r"studies of", r"antidote for"),
        (r"什么是", r"预防", r"如何识别", r"怎么识别")),
    Cue("info", "post", 8,
        (r"(?:is|are) treated", r"treatment", r"risks?", r"rates?", r"prevention", r"statistics", r"symptoms"),
        (r"是什么原因", r"什么原因", r"的原因", r"的病因", r"的症状", r"有哪些症状", r"有什么症状", r"的治疗",
         r"如何治疗", r"怎么治疗", r"如何预防", r"的预防", r"的风险", r"的危险因素", r"的表现", r"有什么表现")),
)
#: look like cues but are not ("not sure", "without warning", "无法", "不停")
PSEUDO_CUES = ((r"not sure", r"not certain", r"no idea", r"not only", r"not just", r"no matter",
                r"(?:don'?t|do not) know", r"without warning", r"for no reason", r"no one", r"nobody"),
               (r"不知道", r"不确定", r"不清楚", r"不停", r"不断", r"不止", r"不住", r"不了", r"不舒服", r"不行",
                r"不醒", r"不省", r"不得不", r"不一会", r"不久", r"无法", r"无力", r"无缘无故", r"未成年"))
#: an acute time marker ("sudden") voids info cues; a person ("I", "my", "我") voids info post-cues
PERSONAL = ((r"i", r"i'm", r"i've", r"me", r"my", r"we", r"our", r"us", r"he", r"she", r"his", r"her", r"him", r"they"),
            (r"我", r"他", r"她", r"孩子", r"宝宝", r"爸", r"妈", r"老公", r"老婆", r"家人", r"朋友"))
TERMINATORS = ((r"but", r"however", r"although", r"though", r"except", r"yet", r"whereas"),
               (r"[.;!?。；！？，]", r"但是", r"但", r"可是", r"不过", r"然而", r"却"))


def _compile(en: Sequence[str], zh: Sequence[str] = ()) -> re.Pattern[str]:
    """One pattern: English fragments between non-letters, Chinese ones anywhere."""
    parts = []
    if en:
        body = "|".join(f"(?:{e})" for e in en).replace("{p}", _P).replace("{self}", _SELF)
        parts.append(rf"(?<![a-z'])(?:{body})(?![a-z])")
    parts += [f"(?:{z})" for z in zh]
    return re.compile("|".join(parts))


_CONCEPT_RE = {name: _compile(en, zh) for name, (en, zh) in CONCEPTS.items()}
_CUE_RE = [(cue, _compile(cue.en, cue.zh)) for cue in CUES]
_PSEUDO_RE = _compile(*PSEUDO_CUES)
_PERSONAL_RE = _compile(*PERSONAL)
_TERMINATOR_RE = _compile(*TERMINATORS)
_UNIT = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[\u3400-\u9fff]")  # an English word or a Chinese character


@dataclass(frozen=True)
class Emergency:
    """A question that describes an emergency: what kind, and what to do now."""

    kind: str
    message: str
    concepts: tuple[str, ...] = ()


def _overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def present_concepts(question: str) -> set[str]:
    """Concepts with at least one occurrence outside every applicable cue's scope."""
    text = question.lower().replace("’", "'").replace("‘", "'")
    found = {name: [m.span() for m in rx.finditer(text)] for name, rx in _CONCEPT_RE.items()}
    concept_spans = [s for spans in found.values() for s in spans]
    blocked = concept_spans + [m.span() for m in _PSEUDO_RE.finditer(text)]
    stops = [m.start() for m in _TERMINATOR_RE.finditer(text) if not _overlaps(m.span(), concept_spans)]
    acute = bool(found["sudden"])
    personal = bool(_PERSONAL_RE.search(text))
    cues = [(cue, m.span()) for cue, rx in _CUE_RE for m in rx.finditer(text)
            if not _overlaps(m.span(), blocked)
            and not (cue.category == "info" and (acute or (personal and cue.direction == "post")))]

    def in_scope(span: tuple[int, int]) -> bool:
        for cue, (cs, ce) in cues:
            gap = (ce, span[0]) if cue.direction == "pre" else (span[1], cs)
            if gap[0] <= gap[1] and len(_UNIT.findall(text, *gap)) <= cue.window \
                    and not any(gap[0] <= s < gap[1] for s in stops):
                return True
        return False

    return {name for name, spans in found.items() if any(not in_scope(s) for s in spans)}


def detect_emergency(question: str) -> Emergency | None:
    """The emergency a question describes (English or Chinese), or None; negated/historical mentions don't count."""
    concepts = present_concepts(question)
    kinds = [r.kind for r in RULES
             if all(c in concepts for c in r.need) and sum(c in concepts for c in r.any_of) >= (r.n if r.any_of else 0)]
    if not kinds:
        return None
    zh = dominant_script(question) == "CJK"
    advice = [MESSAGES[k][zh] for k in dict.fromkeys(kinds)]
    message = " ".join([*advice, EMERGENCY_NUMBER_ZH if zh else EMERGENCY_NUMBER])
    log.info("emergency %s detected (concepts %s)", kinds[0], sorted(concepts))
    return Emergency(kinds[0], message, tuple(sorted(concepts)))


# -- not a doctor ----------------------------------------------------------------------------------
_ROLE = (r"(?:doctor|physician|nurse|clinician|surgeon|pharmacist|medical (?:doctor|professional|practitioner)|"
         r"health ?care (?:provider|professional)|general practitioner|gp|md|m\.d\.|\w+ologist|\w+iatrist)")
_DOCTOR_CLAIM = re.compile("|".join([
    rf"(?<!such )\bas an? (?:[\w-]+ ){{0,2}}{_ROLE}\b", rf"\bas your (?:[\w-]+ ){{0,2}}{_ROLE}\s*,",
    rf"\bi(?:'m| am)(?! not\b)(?: an?| your)? (?:[\w-]+ ){{0,2}}{_ROLE}\b",
    r"\bi(?: (?:would|will|can|could|hereby|must|now|am going to))? (?:diagnose|prescribe)\b",
    r"\bmy (?:diagnosis|prescription|patients|medical opinion|clinical (?:opinion|judge?ment|experience))\b",
    r"\bin my (?:clinical |medical )?practice\b",
    r"(?:作为|我是)(?:一名|一位|一个|你的)?.{0,4}(?:医生|医师|护士|大夫|药师)",
    r"我(?:给你|为你)?(?:诊断|开(?:处方|药))",
]), re.IGNORECASE)
_STOP_THEN_MARKERS = re.compile(rf"([.!?])((?:{CITATION.pattern})+)")


def _sentences(text: str) -> list[str]:
    """``split_sentences`` with ``[n]`` markers kept in the sentence they follow, and Chinese 。！？ ends."""
    text = _STOP_THEN_MARKERS.sub(lambda m: " " + m.group(0)[1:].strip() + m.group(1) + " ", text)
    return [p for s in split_sentences(text) for p in re.split(r"(?<=[。！？])", s) if p.strip()]


def remove_doctor_claims(text: str) -> tuple[str, int]:
    """Drop sentences claiming to be a clinician or to diagnose/prescribe; returns (text, sentences removed)."""
    removed = 0
    lines = []
    for line in text.split("\n"):
        sentences = _sentences(line)
        keep = [s for s in sentences if not _DOCTOR_CLAIM.search(s)]
        removed += len(sentences) - len(keep)
        lines.append(line if len(keep) == len(sentences) else " ".join(keep))
    if removed:
        log.info("removed %d sentence(s) claiming to be a clinician", removed)
    return "\n".join(lines).strip() if removed else text, removed


# -- language --------------------------------------------------------------------------------------
def dominant_script(text: str) -> str | None:
    """The script most of ``text`` is in ("LATIN", "CJK", "CYRILLIC", "ARABIC", ...), None if it has no letters.

    Letters are counted by their Unicode name's first word; a CJK character (about a word) counts as 3.
    """
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split()[0]
            cjk = script in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")
            script = "CJK" if cjk else script
            counts[script] = counts.get(script, 0) + (3 if cjk else 1)
    return max(counts, key=counts.__getitem__) if counts else None


def is_multilingual(embedder_name: str) -> bool:
    """Whether an embedder's name says it was trained on many languages."""
    name = embedder_name.lower()
    return any(m in name for m in ("multilingual", "labse", "bge-m3", "xlm"))


def language_notice(question: str, embedder_name: str) -> str | None:
    """A notice when a question is mostly in a non-Latin script and the embedder knows English only."""
    script = dominant_script(question)
    if script in (None, "LATIN") or is_multilingual(embedder_name):
        return None
    name = script if script == "CJK" else script.title()
    return (f"This question is mostly in {name} script, but the index's embedder ({embedder_name}) was "
            f"trained on English only, so the passages found may be unrelated. Ask in English, or build "
            f"the index with a multilingual embedder such as {' or '.join(MULTILINGUAL_EMBEDDERS)}.")


# -- citation support ------------------------------------------------------------------------------
def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """An answer's sentences without their ``[n]`` markers, each with the numbers it cites (in order)."""
    out = []
    for sentence in _sentences(text):
        numbers = [n for m in CITATION.finditer(sentence) for n in _marker_numbers(m.group(2))]
        clean = clean_citations(sentence, set())[0]
        if clean:
            out.append((clean, list(dict.fromkeys(numbers))))
    return out


def passage_sentences(passage: str) -> list[str]:
    """A passage's sentences without its own reference markers (the whole passage if it has none)."""
    return [clean_citations(s, set())[0] for s in split_sentences(passage)] or [passage]


@dataclass
class SentenceSupport:
    """How well an answer sentence is supported by its cited passages (``citations`` includes ``added``)."""

    text: str
    citations: list[int]
    support: float  # max cosine between the sentence and a sentence of a cited passage (any passage if none cited)
    supported: bool
    added: list[int] = field(default_factory=list)


class SupportChecker:
    """Scores each answer sentence against the sentences of the passages it cites, in one embedding call."""

    def __init__(self, embedder: Embedder, threshold: float = SUPPORT_THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def check(self, sentences: Sequence[tuple[str, Sequence[int]]], passages: Sequence[str]) -> list[SentenceSupport]:
        """One ``SentenceSupport`` per sentence (passages numbered from 1); uncited supported ones get a citation."""
        if not sentences:
            return []
        parts = [passage_sentences(p) for p in passages]
        owner = np.array([n for n, ps in enumerate(parts, 1) for _ in ps], dtype=np.int64)
        vectors = self.embedder.embed_documents([s for s, _ in sentences] + [s for ps in parts for s in ps])
        sims = vectors[:len(sentences)] @ vectors[len(sentences):].T
        best = np.full((len(sentences), len(passages) + 1), -1.0, dtype=np.float32)  # per passage number
        for n in range(1, len(passages) + 1):
            if (owner == n).any():
                best[:, n] = sims[:, owner == n].max(axis=1)
        results = []
        for i, (text, cited) in enumerate(sentences):
            valid = [n for n in cited if 1 <= n <= len(passages)]
            if valid:
                score = float(best[i, valid].max())
                results.append(SentenceSupport(text, valid, score, score >= self.threshold))
                continue
            n = int(best[i].argmax()) if passages else 0
            score = float(best[i, n]) if passages else 0.0
            added = [n] if passages and score >= self.threshold else []
            results.append(SentenceSupport(text, added, score, bool(added), added))
        return results


# -- abstention ------------------------------------------------------------------------------------
MARGIN_DEPTH = 5  # the margin is the best score minus the 5th best (or the last, with fewer hits)


def confidence(scores: Sequence[float], margin_weight: float = 0.0, coverage: float | None = None,
               coverage_weight: float = 0.0) -> float:
    """``top1 + margin_weight * (top1 - top5) - coverage_weight * (1 - coverage)`` of dense cosine scores;
    -1 when there are none.

    A question the index covers has one clearly best passage, and its rare words are in the best passages
    (``coverage``: ``BM25Store.coverage``, IDF-weighted); an off-topic one has a flat top-5 and words the
    passages lack. Without a coverage (no lexical index, or a question of stop words) nothing is taken off.
    """
    if not scores:
        return -1.0
    ranked = sorted(scores, reverse=True)
    margin = ranked[0] - ranked[min(MARGIN_DEPTH, len(ranked)) - 1]
    return ranked[0] + margin_weight * margin - coverage_weight * (1.0 - (1.0 if coverage is None else coverage))


def abstain(scores: Sequence[float], threshold: float, margin_weight: float = 0.0, coverage: float | None = None,
            coverage_weight: float = 0.0) -> bool:
    """Whether to answer nothing: no passage, or ``confidence`` (the top cosine by default) is below ``threshold``.

    Calibrated (``eval/calibrate_abstention.py``): ``abstain(cosines, ABSTAIN_THRESHOLD, ABSTAIN_MARGIN_WEIGHT,
    coverage, ABSTAIN_COVERAGE_WEIGHT)`` (``scores`` must be dense cosines, not fused hybrid scores).
    """
    return confidence(scores, margin_weight, coverage, coverage_weight) < threshold


__all__ = ["ABSTAIN_COVERAGE_WEIGHT", "ABSTAIN_MARGIN_WEIGHT", "ABSTAIN_THRESHOLD", "CONCEPTS", "CUES", "RULES",
           "SUPPORT_THRESHOLD", "Emergency", "SentenceSupport", "SupportChecker", "abstain", "confidence", "detect_emergency",
           "dominant_script", "language_notice", "passage_sentences", "remove_doctor_claims", "split_answer"]
