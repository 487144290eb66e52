"""What kind of question was asked: treatment, symptoms, causes, ... (rules, no model).

``question_kind`` reads a question (English or Chinese) with regular expressions kept as data tables
below; ``passage_kind`` does the same for a passage whose title is itself a question (MedQuAD answers,
whose chunk title is the question they answer, e.g. "What are the symptoms of Pneumonia ?");
``QTYPE_KIND`` maps MedQuAD's ``qtype`` labels onto the same kinds.

English is read in tiers, on the question's sentences that end in "?" first (so "I was diagnosed with
gout. What should I eat?" is read from its question) and on the whole text only when they say nothing:

0. MedQuAD's own "What is (are) X ?" title template is a definition (``EN_TEMPLATES``);
1. *cues* (``EN_CUES``): every cue of every kind is searched and the one that starts **earliest** wins
   ("What tests are done before treatment?" is diagnosis, "What is the treatment after a positive test?"
   is treatment); a tie goes to the longer match, then to the cue listed first. A few cues are frames
   anchored at a clause start ("Can asthma be cured?" is outlook, "Can stress cause ulcers?" causes, "Is X
   inherited?" risk), so they win over keywords later in the clause. Cues of kind ``other`` (side effects,
   doses, how common, research, stages, support, which doctor) are answers too: they stop the search;
2. weak cues (``EN_WEAK``: a bare "why" is causes);
3. definition frames (``EN_DEFINITION``: "what is X", "what does X mean", "tell me about X");
4. ``yesno``: a clause that opens with an auxiliary verb ("Is it safe to ...", "Hi, can I ...");
5. ``other``.

Chinese is read on its own text with ``ZH_RULES``, in precedence order (the first rule that matches
wins; Traditional characters are folded into each pattern). When no Chinese rule but yes/no matches, the
English translation (``english``, if given) is read with English tiers 0-3, and only then is the question
yes/no: a "吗" at the end says the question wants a yes or no, not what about.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Literal, get_args

log = logging.getLogger(__name__)

Kind = Literal["treatment", "symptoms", "causes", "prevention", "diagnosis", "outlook", "risk",
               "definition", "yesno", "other"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: kinds whose answer is naturally a list (of treatments, symptoms, causes, measures, tests, risk factors)
LIST_KINDS: frozenset[Kind] = frozenset({"treatment", "symptoms", "causes", "prevention", "diagnosis", "risk"})
#: kinds whose answer is naturally short (a definition, a yes or no with its reason)
SHORT_KINDS: frozenset[Kind] = frozenset({"definition", "yesno"})

#: MedQuAD ``qtype`` (lower case) -> kind; a qtype not here is "other" (see ``qtype_kind``)
QTYPE_KIND: dict[str, Kind] = {
    "information": "definition",
    "symptoms": "symptoms",
    "treatment": "treatment",
    "causes": "causes",
    "genetic changes": "causes",  # GHR: "What are the genetic changes related to X?" -- what causes it
    "prevention": "prevention",
    "why get vaccinated": "prevention",
    "exams and tests": "diagnosis",
    "outlook": "outlook",
    "complications": "outlook",
    "susceptibility": "risk",
    "inheritance": "risk",
    "frequency": "other",
    "research": "other",
    "stages": "other",
    "considerations": "other",  # "What to do for X?": diet, caregiving, costs (mixed)
    "support groups": "other",
    "when to contact a medical professional": "other",
    "how can i learn more": "other",
    "side effects": "other",
    "dose": "other",
}


def qtype_kind(qtype: str | None) -> Kind:
    """The kind of a MedQuAD ``qtype`` label ("exams and tests" -> "diagnosis"); "other" when unknown."""
    return QTYPE_KIND.get(" ".join((qtype or "").lower().split()), "other")


# -- English ----------------------------------------------------------------------------------------------
#: a clause start: the text's start or just after . ? ! ; , : (frames anchored here start "earliest")
_START = r"(?:^|[.?!;,:]\s*)"
#: an auxiliary verb opening a yes/no question
_AUX = (r"(?:is|are|am|was|were|can|could|does|do|did|should|shall|will|would|may|might|must|has|have|had|"
        r"isn't|aren't|can't|cannot|doesn't|don't|didn't|won't|wouldn't|shouldn't|couldn't|haven't|hasn't)")
#: a person the question is about: "I", "you", "my son", "people", "a child"
_WHO = (r"(?:i|you|we|he|she|they|one|someone|somebody|people|humans|kids|children|babies|adults|"
        r"a person|a child|a baby|my \w+|your \w+|our \w+)")
#: words that make a "how can I lower ..." / "what can I do ..." question about prevention, not treatment
_NOT_PREVENTION = (r"(?![^?.!]*\b(?:prevent\w*|avoid\w*|protect\w*|risks?|chances?|odds|vaccin\w*|spread\w*|"
                   r"not get|never get)\b)")

#: (kind, regex) cues, searched case-insensitively; the earliest match wins, ties go to the first listed
EN_CUES: tuple[tuple[Kind, str], ...] = (
    # -- other: questions none of the kinds answer
    ("other", r"\bside[- ]?effects?\b|\badverse (?:effects?|reactions?|events?)\b"),
    ("other", r"\b(?:doses?|dosage|dosing)\b|\bhow (?:much|many) (?:\w+ ){1,3}(?:should|can|do|may|must) "
              rf"{_WHO} (?:take|give|use|have)\b"),
    ("other", r"\bhow (?:common|rare|prevalent|widespread|frequent)\b|\bhow many (?:people|americans|children|"
              r"adults|women|men|kids|cases|persons|individuals)\b|\bprevalence\b|\bincidence\b|\bfrequency of\b"),
    ("other", r"\bresearch\b|\bclinical trials?\b"),
    ("other", r"\bstages? of\b|\bstaging\b|\bwhat stage\b"),
    ("other", r"\bsupport groups?\b|\bwhere (?:can|do|should|could) (?:i|we|you) (?:find|get) (?:help|support|"
              r"information|more)\b|\blearn more\b|\bmore information\b"),
    ("other", r"\bwhen (?:should|do|must|to|would) (?:i|you|we|one|they)?\s*(?:see|call|contact|visit|go to|"
              r"talk to) (?:a|the|my|your|an)?\s*(?:doctor|gp|physician|health ?care|medical|er|emergency|"
              r"hospital|nurse|specialist)\b|\bwhat (?:kind|type|sort) of (?:doctor|specialist|physician)\b|"
              r"\bwhich (?:doctor|specialist)\b"),
    ("other", r"\bhow much (?:does|do|will|would|is|are)\b[^?.!]*\bcost\b|\binsurance cover"),
    # -- outlook: prognosis, course, cure as a possibility, complications
    ("outlook", rf"{_START}(?:can|could|will|would|is|are|does|do|did|has|have|may|might)\b(?!\s+there\b)"
                r"[^?.!]*\b(?:be cured|cured|curable|go away|goes away|disappear|heal on (?:its|their) own|"
                r"heal by itself|heal without|get better|gets better|get worse|gets worse|go into remission|come back|"
                r"comes back|return|recur|reversible|be reversed|fatal|deadly|terminal|life[- ]threatening|"
                r"permanent|kill|progress)\b"),
    ("outlook", r"\boutlook\b|\bprognos[ie]s\b|\blife expectancy\b|\bsurvival\b|\bsurvive\b|\bsurvivors?\b|"
                r"\blong[- ]term (?:effects?|outlook|consequences?|damage|prospects?)\b|\bcomplications?\b|"
                r"\brecurrence\b|\brelapses?\b|\bprogression\b|\bmortality\b|\bdeath rate\b"),
    ("outlook", rf"\bhow long (?:can|do|does|will|would|could) {_WHO}(?: \w+)? live\b|\b(?:will|could|can|might|"
                rf"would) {_WHO} die\b|\bdie (?:from|of)\b|\brecovery (?:time|period)\b|\bhow long (?:does|do|"
                r"will|would|can|is|are|did)\b[^?.!]*\b(?:last|lasts|take to (?:heal|recover|go away|get better)|"
                r"go away|recover|recovery)\b"),
    # "What (health) problems can X cause?": what X leads to, not what causes X
    ("outlook", r"\bwhat (?:other )?(?:health )?(?:problems|conditions|diseases|complications|effects|harm|damage)"
                r" (?:can|could|does|do|will|may|might)\b[^?.!]*\b(?:cause|lead to|bring)\b"),
    # "Does X cause symptoms?": a question about its symptoms
    ("symptoms", rf"{_START}(?:does|do|can|will|would|could|might|may)\b[^?.!]*\b(?:cause|have|give|show)"
                 r" (?:any )?(?:symptoms|signs)\b"),
    ("outlook", r"\bwhat (?:happens|will happen|would happen|could happen) (?:if|when)\b[^?.!]*\b(?:untreated|"
                r"not treated|(?:don't|do not|doesn't|does not|didn't|never) (?:get )?treat\w*|isn't treated|"
                r"ignored?)\b|\bwhat (?:can|could|does|will|would|might) [^?.!]*\blead to\b|"
                r"\b(?:is|are) (?:it|this|that|they|\w+(?: \w+){0,3}) (?:a |very )?(?:serious|dangerous|"
                r"life[- ]threatening)\b|\bhow (?:serious|dangerous|bad|severe) (?:is|are|can)\b"),
    # -- prevention
    ("prevention", r"\bprevent\w*|\bprophyla\w*|\bprecautions?\b|\bward off\b|\bsafe from\b"),
    ("prevention", rf"\bavoid(?:ing)? (?:getting|catching|spreading|developing|contracting|passing|infection|"
                   rf"infecting|exposure|being)\b|\bhow (?:can|do|to|should|could|would) {_WHO}?\s*avoid\b|"
                   rf"\bhow (?:can|do|to|could|should) {_WHO}?\s*(?:not|never) (?:get|catch|develop)\b"),
    ("prevention", r"\bvaccin\w*|\bimmuni[sz](?:e|ed|ation|ations)\b|\b(?:flu|booster|hpv|mmr|covid|tetanus|"
                   r"shingles|pneumonia) shots?\b|\bshots? (?:for|against)\b|\binoculat\w*"),
    ("prevention", r"\b(?:reduce|reducing|lower|lowering|decrease|decreasing|cut|minimi[sz]e|lessen)s? "
                   r"(?:the |my |your |his |her |their |our |one's |a person's )?(?:risk|chances?|odds|"
                   r"likelihood)\b"),
    ("prevention", r"\bprotect (?:myself|yourself|ourselves|themselves|himself|herself|me|us|them|my \w+|"
                   r"your \w+|children|kids|others|people|against)\b|\bkeep (?:\w+ ){0,2}from (?:getting|"
                   r"catching|spreading|developing|coming back|recurring|happening again)\b|"
                   r"\bstop (?:\w+ )?(?:from )?spreading\b|\b(?:stop|prevent|reduce|limit|slow|control) the spread\b"),
    # -- causes that name genes (before risk's "genetic")
    ("causes", r"\bgenetic (?:changes?|mutations?|variants?|defects?|basis)\b|\bmutations?\b|\bwhat genes?\b|"
               r"\bgenes? (?:related|associated|linked|responsible|involved)\b"),
    # -- risk: who gets it, risk factors, heredity
    ("risk", r"\bat (?:high |higher |increased |greater |more |any |a |an increased )?risks?\b|"
             r"\brisk factors?\b|\brisks? (?:of|for) (?:getting|developing|having|catching|contracting)\b|"
             r"\b(?:increase|increases|increased|raise|raises|raising|increasing|higher|high|my|your) "
             r"(?:the |my |your |one's |a person's )?(?:risk|chances?|odds|likelihood)\b"),
    ("risk", r"\bwho (?:is|are|gets?|can get|could get|develops?|might get|tends? to get|usually gets|"
             r"is likely|are likely|is more likely|are more likely|is affected|are affected|is susceptible|"
             r"are susceptible)\b|\bsusceptib\w*|\bprone to\b|\bpredispos\w*|"
             rf"\b(?:more |less |most )?likely to (?:get|develop|have|catch|contract)\b|\bchances? (?:of|that) "
             rf"(?:{_WHO} |getting|developing|having|catching)|\bodds of\b|\b(?:at )?what age\b"),
    ("risk", rf"{_START}(?:is|are|can|could|does|do|will|would|might|may)\b[^?.!]*\b(?:inherited|hereditary|"
             r"genetic|passed down|passed on|run in (?:the )?famil(?:y|ies)|runs in (?:the )?famil(?:y|ies))\b"),
    ("risk", r"\binherit\w*|\bhereditary\b|\bgenetic(?:s|ally)?\b|\bruns? in (?:the |my |our |your )?"
             r"famil(?:y|ies)\b|\bpassed down\b|\bfamily history\b|\bpass (?:it|this|that|\w+(?: \w+)?) "
             r"(?:on |down )?to (?:my|our|your|the|her|his) (?:child|children|kids|baby|babies|son|sons|"
             r"daughter|daughters|offspring|grandchildren)\b"),
    # -- diagnosis
    ("diagnosis", r"\bdiagnos(?!ed (?:with|as)\b)\w*|\btests?\b|\btested\b|\btesting\b|\bscreen(?:s|ed|ing|"
                  r"ings)?\b|\bdetect(?:ed|ion)?\b|\bconfirm(?:ed)?\b|\brule out\b"),
    ("diagnosis", r"\bcheck(?:ed)? (?:me |him |her |them |you )?(?:for|if|whether)\b|\bget (?:it |myself |him |"
                  r"her |them )?checked\b|\bcheck[- ]?ups?\b|\bbiops(?:y|ies)\b|\bx-?rays?\b|\bmri\b|"
                  r"\b(?:ct|cat|pet) scans?\b|\bscans?\b|\bultrasound\b|\bblood ?work\b|\blab (?:work|results?)\b|"
                  r"\bresults? mean\b|\bmammogra\w*|\bcolonoscop\w*|\bpap smears?\b|\bexams?\b|"
                  r"\bexaminations?\b"),
    ("diagnosis", r"\bhow (?:do|does|can|will|would|could|did) (?:the |a |my |your )?(?:doctors?|physicians?|"
                  r"dentists?|providers?|clinicians?|they)\b[^?.!]*\b(?:know|tell|find out|confirm|check|"
                  r"determine|identify|figure out|detect)\b"),
    # -- symptoms
    ("symptoms", r"\bsymptom\w*|\bsigns?\b(?! (?:up|in|on|off|language)\b)"),
    ("symptoms", rf"\bhow (?:do|can|would|will|could|should|to|does) {_WHO}?\s*(?:know|tell|recogni[sz]e|spot|"
                 r"identify|notice|be sure|find out) (?:if|whether|when|that)\b|"
                 r"\bwhat (?:does|do|did|would|will|can|might) [^?.!]*\b(?:feel|look|sound) like\b|"
                 r"\bhow (?:does|do|will) [^?.!]*\bfeel\b|\bmanifest\w*|\bpresent(?:s|ation)? (?:with|as)\b|"
                 r"\bwhat happens to (?:my|your|the|his|her|their) body\b"),
    # -- causes
    ("causes", rf"{_START}(?:can|could|does|do|did|will|would|might|may|is|are|was|were)\b[^?.!]*"
               r"\b(?:cause[sd]?|causing|trigger(?:s|ed)?|lead to|responsible for|bring on)\b"),
    ("causes", r"\bcaus(?:e|es|ed|ing|ative)\b|\bwhere (?:does|do|did) [^?.!]*\bcome from\b|"
               r"\breasons? (?:for|why|behind)\b|\btrigger(?:s|ed)?\b|\betiology\b|\borigins? of\b|"
               r"\bwhat (?:makes|made|leads? to|led to|brings? on|brought on)\b"),
    ("causes", r"\bhow (?:do|does|did|can|could|would|might|is|are|do you) "
               rf"{_WHO}?\s*(?:get(?!\s+(?:rid|better|over|well|relief|help|tested|treated|checked|diagnosed|"
               r"screened|vaccinated|pregnant|enough|the)\b)|gets|got|catch|catches|caught|contract|develop|"
               r"acquire|pick up|end up with|come down with|become infected)\b"),
    ("causes", rf"{_START}(?:can|could|do|does|did|will|would|might|may)\s+{_WHO}\s+(?:get|catch|contract|pick up)"
               r"\b[^?.!]*\bfrom\b"),
    ("causes", r"\bcontagious\b|\binfectious\b|\btransmi(?:t|ts|tted|tting|ssion|ssible)\b|\bcatch(?:ing|able)?\b|"
               r"\bcaught\b|\bcontract(?:ed)?\b|\bpassed (?:on|from|to|between)\b|\bspread (?:from|by|through|"
               r"between|via)\b|\bspread to (?:other )?(?:people|person|others|humans|family|children|kids|"
               r"my \w+)\b|\bhow (?:is|does|do|can|are) [^?.!]*(?<!the )\bspread\b"),
    # -- treatment
    ("treatment", r"\btreat(?:s|ed|ing|ment|ments|able)?\b|\bcur(?:e|es|ed|ing|able)\b|\btherap(?:y|ies|eutic|"
                  r"ist|ists)\b|\bchemo\w*|\bsurger(?:y|ies)\b|\bsurgical\b|\boperation\b|\btransplant\w*|"
                  r"\brehab\w*"),
    ("treatment", r"\bmedic(?:ine|ines|ation|ations)\b|\bdrugs?\b|\bpills?\b|\btablets?\b|\bantibiotics?\b|"
                  r"\bcreams?\b|\bointments?\b|\blotions?\b|\b(?:eye|ear|nose) drops\b|\bsupplements?\b|"
                  r"\bpain ?(?:killers?|relievers?|relief)\b|\bprescri(?:be|bed|ption|ptions)\b|\binhalers?\b|"
                  r"\bremed(?:y|ies)\b|\brelie(?:f|ve|ves|ved|ving)\b|\bget rid of\b|\bmanag(?:e|es|ed|ing|"
                  r"ement)\b|\bheal(?:s|ed|ing)?\b|\bsoothe\b|\balleviate\b|\bcop(?:e|ing) with\b|\bdeal with\b|"
                  r"\bself[- ]care\b|\bhome care\b|\bcar(?:e|ing) for\b|\bused (?:for|to treat)\b|"
                  r"\bbe (?:taken|used) (?:[\w-]+ ){0,3}for\b|\b(?:recommend|suggest)(?:ed)? (?:for|to (?:treat|"
                  r"help|relieve))\b|\bwhat (?:do|would|can|could) you (?:recommend|suggest)\b"),
    ("treatment", r"\bwhat (?:helps|help|can help|could help|will help|would help|works|is good|are good|"
                  r"is best|are the best|'s good|(?:is|'s|works) better for)\b|\bwhich (?:is|one is|works) "
                  r"better for\b|\bhelps? (?:with|for|relieve|ease|reduce|lower|stop|get rid)\b|"
                  r"\bbest (?:way|ways|thing|things) to (?:treat|get rid|stop|relieve|ease|deal|handle|manage|"
                  r"cure|fix|fight|beat|lower|reduce|control|help)\b|\bdiet (?:for|with|to)\b|"
                  r"\b(?:foods?|drinks?|diet|exercises?|activities) (?:should|to|can) (?:i|you|we|people)?\s*"
                  r"(?:eat|avoid|do|drink|try|follow)\b"),
    ("treatment", rf"\bwhat (?:can|should|could|do|must|to) (?:{_WHO} )?(?:take|use|do|eat|drink|try|apply|"
                  rf"put)\b{_NOT_PREVENTION}|\b(?:can|should|could|may) {_WHO} (?:take|use|try|give)\b"
                  r"[^?.!]*\bfor\b"),
    ("treatment", rf"\bhow (?:do|does|can|could|should|to|would|will|is|are|did) {_WHO}?\s*(?:stop|fix|ease|"
                  r"soothe|relieve|lower|reduce|control|manage|get rid of|treat|cure|deal with|cope with|handle|"
                  r"beat|fight|overcome|recover from|get over|heal|improve|calm|bring down|clear up|"
                  rf"get better|feel better)\b{_NOT_PREVENTION}|\bhow (?:do|can|to|should) {_WHO}?\s*"
                  r"(?:make|get) [^?.!]*\b(?:better|go away|stop|disappear|heal)\b"),
)

#: MedQuAD's own title templates, read before the cues: "What is (are) Leber hereditary optic neuropathy ?"
#: is the definition of a condition whose name holds a cue word
EN_TEMPLATES: tuple[tuple[Kind, str], ...] = (
    ("definition", r"^what is \(are\) "),
)

#: cues read only when no ``EN_CUES`` cue matched
EN_WEAK: tuple[tuple[Kind, str], ...] = (
    ("causes", r"\bwhy\b|\bhow come\b"),
)

#: definition frames, read after the cues: "What is X?" is a definition, "What is the treatment ..." is not
EN_DEFINITION: tuple[str, ...] = (
    rf"{_START}(?:what|who)(?: exactly| actually| really)?(?:'s| is| are| was| were)\b"
    r"(?!\s+(?:the |a |an )?(?:best|right|safest|good|quickest|fastest|easiest|most effective|normal|usual)\b)",
    r"\bwhat (?:does|do) [^?.!]*\bmean\b|\bmeaning of\b|\bdefin(?:e|ition)\b|\bwhat is meant by\b|"
    r"\btell me (?:more )?about\b|\b(?:any |some )?information (?:about|on)\b|\bwhat do you know about\b|"
    r"\bexplain\b|\bwhat (?:kind|type|sort) of (?:a |an )?(?:disease|condition|illness|disorder|infection|"
    r"thing|drug|medicine|cancer|virus|bacteria|syndrome) is\b|\bwhat does [^?.!]* do\b",
)

#: a yes/no question: a clause opening with an auxiliary verb, or "is there", "are there"
EN_YESNO = rf"{_START}{_AUX}\b"


# -- Chinese ----------------------------------------------------------------------------------------------
#: Simplified -> Traditional characters folded into every Chinese pattern ("疗" matches "療" too)
_TRADITIONAL = {
    "疗": "療", "状": "狀", "预": "預", "诊": "診", "断": "斷", "检": "檢", "验": "驗", "后": "後", "风": "風", "险": "險",
    "遗": "遺", "传": "傳", "吗": "嗎", "么": "麼", "药": "藥", "样": "樣", "现": "現", "征": "徵", "为": "為爲", "导": "導",
    "发": "發", "并": "併並", "复": "復", "办": "辦", "缓": "緩", "术": "術", "种": "種", "筛": "篩", "确": "確", "测": "測",
    "们": "們", "义": "義", "会": "會", "没": "沒", "调": "調", "寿": "壽", "处": "處", "应": "應", "该": "該", "这": "這",
    "个": "個", "进": "進", "诱": "誘", "体": "體", "觉": "覺", "护": "護", "饮": "飲", "减": "減", "轻": "輕", "谁": "誰",
    "几": "幾", "医": "醫", "报": "報", "标": "標", "变": "變", "严": "嚴", "恶": "惡", "费": "費", "钱": "錢", "剂": "劑",
    "见": "見", "临": "臨", "试": "試", "挂": "掛", "径": "徑", "从": "從", "里": "裡裏", "来": "來", "绍": "紹", "释": "釋",
    "愈": "癒", "还": "還", "对": "對", "营": "營", "养": "養", "识": "識", "适": "適", "带": "帶", "压": "壓", "实": "實",
    "问": "問", "题": "題", "类": "類", "针": "針", "响": "響", "岁": "歲", "龄": "齡", "经": "經", "过": "過",
}

#: (kind, pattern) for Chinese, in precedence order: the first that matches wins
ZH_RULES: tuple[tuple[Kind, str], ...] = (
    ("other", r"副作用|不良反应|剂量|用量|吃多少|一次吃几|发病率|患病率|多常见|常见吗|有多少人|多少人得|临床试验|"
              r"研究进展|看什么科|挂什么科|挂哪个科|看哪个科|多少钱|费用|医保|分期"),
    ("outlook", r"预后|治得好|能治好|可以治好|能不能治好|能否治好|治不好|(?:能|可以|能否|能不能|会|会不会|可能)"
                r"(?:彻底)?(?:治愈|根治|痊愈|康复|好转|自愈|消失|恢复|好吗)|治愈率|根治吗|会好吗|能好吗|会自己好|"
                r"自愈|并发症|后遗症|寿命|能活多久|活多久|还能活|存活|生存率|生存期|死亡率|会死|致命|致死|严重吗|"
                r"危险吗|危害|会复发|复发|恶化|会引起什么|会导致什么|会造成什么|有什么后果|后果"),
    ("prevention", r"预防|避免|防止|防范|疫苗|接种|怎么防|如何防|怎样防|防护|降低.{0,8}(?:风险|几率|概率|机会)|"
                   r"减少.{0,8}(?:风险|几率|概率|机会)"),
    ("causes", r"基因突变|基因变化|基因改变|致病基因|什么基因"),
    ("risk", r"风险|遗传|容易得|容易患|容易感染|容易发生|容易生|易患|易感|高危|哪些人|什么人|什么样的人|谁容易|"
             r"危险因素|几率|概率|家族史|多大年纪|什么年龄|多少岁"),
    ("symptoms", r"(?:怎么|怎样|如何)(?:知道|判断|看出|发现|确定)(?:自己)?(?:是不是|有没有|得了|是否|患|有)|"
                 r"怎么判断|如何判断|怎么看出|症状|表现|征兆|征象|迹象|体征|先兆|前兆|什么感觉|有什么感觉|"
                 r"是什么感觉|会有什么反应|有什么反应|信号"),
    ("diagnosis", r"诊断(?![为出了过])|确诊(?![了为是过])|检查(?![出过了])|化验|检测|筛查|验血|抽血|查什么|"
                  r"怎么查|如何查|体检|B超|CT|核磁|活检|胃镜|肠镜|内镜|X光|拍片|彩超|心电图|查出|能查|指标|报告"),
    ("causes", r"原因|为什么|为何|为啥|怎么会|什么引起|什么导致|什么造成|引起(?!的)|导致(?!的)|造成(?!的)|"
               r"病因|诱因|怎么得的|怎么得上|怎么来的|怎么回事|传染|传播|感染途径|从哪里来|怎么形成|如何形成|"
               r"形成的|怎么产生|由什么"),
    ("treatment", r"治疗|怎么治|如何治|怎样治|怎么医|咋治|治什么|能治|吃什么药|用什么药|吃啥药|什么药|用药|药物|"
                  r"吃药|服药|疗法|手术|怎么办|咋办|如何处理|怎么处理|缓解|减轻|调理|偏方|根治|治好|消除|"
                  r"去除|改善|怎么降|如何降|降低|控制|护理|饮食|吃什么|注意什么|注意事项|疗程|康复|"
                  r"膏药|药膏|贴什么|擦什么|抹什么|涂什么|喝什么|什么办法|什么方法|怎么解决|如何解决"),
    ("definition", r"是什么|什么是|是啥|啥是|指什么|什么意思|啥意思|介绍|了解一下|科普|定义|含义|的意思"),
    ("yesno", r"吗[\s？?。.!！~～]*$|吗[？?]|是否|能不能|可不可以|会不会|是不是|有没有|要不要|可以吗|行不行|"
              r"好不好|对不对|能否"),
)


def _fold(pattern: str) -> str:
    """A Simplified-Chinese pattern that also matches Traditional characters ("疗" -> "[疗療]")."""
    out, in_class = [], False
    for prev, c in zip(" " + pattern, pattern):
        trad = _TRADITIONAL.get(c, "")
        out.append(c + trad if in_class or not trad else f"[{c}{trad}]")
        if prev != "\\" and c in "[]":
            in_class = c == "["
    return "".join(out)


def _compile(rules: Iterable[tuple[Kind, str]], *, fold: bool = False) -> tuple[tuple[Kind, re.Pattern[str]], ...]:
    return tuple((kind, re.compile(_fold(p) if fold else p, re.I)) for kind, p in rules)


_EN_TEMPLATES = _compile(EN_TEMPLATES)
_EN_CUES = _compile(EN_CUES)
_EN_WEAK = _compile(EN_WEAK)
_EN_DEFINITION = tuple(re.compile(p, re.I) for p in EN_DEFINITION)
_EN_YESNO = re.compile(EN_YESNO, re.I)
_ZH_RULES = _compile(ZH_RULES, fold=True)
_ZH_NO_YESNO = tuple((k, p) for k, p in _ZH_RULES if k != "yesno")
_ZH_YESNO = tuple((k, p) for k, p in _ZH_RULES if k == "yesno")

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\uff1f": "?", "\uff0c": ",",
                         "\u3002": ".", "\uff01": "!", "\uff1b": ";", "\uff1a": ":"})
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|(?<=[.?!])(?=\S)(?=[^\x00-\x7f])")
#: a title that reads as a question: ends in "?" or opens with a question word or an auxiliary verb
_QUESTION_LIKE = re.compile(rf"\?\s*$|^(?:what|who|whom|whose|which|when|where|why|how|{_AUX}|tell me)\b|"
                            r"[吗嗎呢][\s？?]*$|什[么麼]|怎[么麼样樣]|如何|为什[么麼]|為什[么麼]|哪|是否", re.I)


def _clean(text: str) -> str:
    """Lower case, straight quotes, ASCII punctuation, one space between words."""
    return " ".join(text.translate(_QUOTES).lower().split())


def _question_part(text: str) -> str:
    """The sentences of ``text`` that end in "?" (all of ``text`` when none does)."""
    asked = [s for s in _SENTENCE_END.split(text) if s.endswith("?")]
    return " ".join(asked) or text


def _earliest(text: str, rules: tuple[tuple[Kind, re.Pattern[str]], ...]) -> Kind | None:
    """The kind of the rule matching earliest in ``text``; a tie goes to the longer match, then to the rule
    listed first (a frame's verb comes last: "Is fatal familial insomnia inherited?" is about heredity)."""
    best: tuple[int, int, int] | None = None
    for n, (_, pattern) in enumerate(rules):
        m = pattern.search(text)
        if m and (best is None or (m.start(), -m.end(), n) < best):
            best = (m.start(), -m.end(), n)
    if best is None:
        return None
    kind, pattern = rules[best[2]]
    log.debug("kind %s: cue %r at %d in %r", kind, pattern.pattern[:60], best[0], text)
    return kind


def _first(text: str, rules: Iterable[tuple[Kind, re.Pattern[str]]]) -> Kind | None:
    """The kind of the first rule matching ``text``."""
    return next((kind for kind, pattern in rules if pattern.search(text)), None)


def _english(part: str, *, yesno: bool = True) -> Kind | None:
    """The English tiers on one text: MedQuAD templates, cues, weak cues, definition frames, yes/no."""
    kind = _first(part, _EN_TEMPLATES) or _earliest(part, _EN_CUES) or _earliest(part, _EN_WEAK)
    if kind is None and any(p.search(part) for p in _EN_DEFINITION):
        kind = "definition"
    if kind is None and yesno and _EN_YESNO.search(part):
        kind = "yesno"
    return kind


def _parts(text: str) -> tuple[str, ...]:
    """The question's sentences that end in "?" (when some do), then the whole text."""
    return tuple(dict.fromkeys((_question_part(text), text)))


def question_kind(question: str, english: str | None = None) -> Kind:
    """The kind of ``question`` ("How is asthma treated?" -> "treatment"); "other" when no rule says.

    The question's sentences ending in "?" are read first, the whole text only when they say nothing.
    A question with Chinese characters is read with the Chinese rules; when they find no kind other than
    yes/no, ``english`` (its translation, if given; else the question itself, for its English words) is
    read with the English ones, and only then is the question a yes/no one.
    """
    text = _clean(question)
    if not text:
        return "other"
    if not _HAN.search(text):
        kind = next(filter(None, (_english(part) for part in _parts(text))), None)
        return kind or "other"
    en = _parts(_clean(english) if english else text)
    kind = (next(filter(None, (_first(part, _ZH_NO_YESNO) for part in _parts(text))), None)
            or next(filter(None, (_english(part, yesno=False) for part in en)), None))
    if kind is None and (_first(text, _ZH_YESNO) or any(_EN_YESNO.search(part) for part in en)):
        kind = "yesno"
    return kind or "other"


def passage_kind(title: str) -> Kind | None:
    """The kind of a passage whose title is a question (a MedQuAD answer's "What causes Gout ?"); else None.

    A title "Focus: question?" is read from its question part. Titles that do not read as a question
    (section headings, article titles without "?") give None.
    """
    text = " ".join((title or "").split())
    if not text:
        return None
    candidates = [text] + [text[m.end():] for m in re.finditer(r":\s+", text)]
    for candidate in candidates:
        if _QUESTION_LIKE.search(candidate.strip()):
            return question_kind(candidate)
    return None


#: words that ask what kind of answer is wanted, not what about ("the mechanism of action of X", "the
#: symptoms of X"): a source on X need not use them, so abstention's coverage leaves them out (``topic_words``)
FRAME_WORDS = frozenset("""
what which how why when where who whom whose is are was were be does do did can could should would will may
might there the a an of in on for to about with by and or any some my i me we you your his her their its it
mechanism mechanisms action actions role roles function functions purpose used use uses usage describe
description explain define definition meaning mean means main major common most best known kind kinds type types
treatment treatments treat treated treating therapy therapies cure cured symptom symptoms sign signs cause causes
caused prevent prevention prevented diagnosis diagnose diagnosed test tests risk risks factor factors outlook
prognosis complication complications effect effects happen happens list name names workup work-up management
manage managed evaluation evaluate option options protect protection avoid stop keep get getting help helps need
know tell please way ways myself yourself himself herself ourselves themselves someone somebody person people
""".split())
_WORD = re.compile(r"[^\W_][\w'-]*")


def topic_words(question: str) -> str:
    """The question without its frame words: what the abstention gate asks the passages to cover."""
    kept = [w for w in _WORD.findall(question) if w.lower() not in FRAME_WORDS]
    return " ".join(kept) or question


__all__ = ["FRAME_WORDS", "KINDS", "LIST_KINDS", "QTYPE_KIND", "SHORT_KINDS", "Kind", "passage_kind", "qtype_kind",
           "question_kind", "topic_words",
           "EN_TEMPLATES", "EN_CUES", "EN_WEAK", "EN_DEFINITION", "EN_YESNO", "ZH_RULES"]
