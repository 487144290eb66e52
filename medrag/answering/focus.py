"""The focus of a long consumer message: what to search, and what to gate abstention on.

Consumer health questions (TREC LiveQA, MEDIQA) arrive as letters: a subject line, a greeting, a backstory,
the question somewhere in the middle, thanks and a signature. Searched whole, the backstory pulls the dense
query off the topic and lowers the lexical coverage the abstention gate reads, so most such messages were
refused. ``focus`` keeps the question sentence(s) and the short facts that matter (ages, drugs, conditions,
pregnancy) and drops the rest, in at most ``MAX_WORDS`` words. It is a pure function: regular expressions and
a small built-in vocabulary, no model. A plain one-sentence question passes through unchanged, and so does
text mostly in a CJK script (the Chinese path translates it first).

    >>> focus("Hi, my mother is 67 and has diabetes. She takes metformin. Is it safe with ibuprofen? "
    ...       "Thanks, John").text
    'my mother is 67 and has diabetes. She takes metformin. Is it safe with ibuprofen?'
"""
from __future__ import annotations

import html
import logging
import re
from typing import NamedTuple

from medrag.safety.language import dominant_script

log = logging.getLogger(__name__)

SHORT_WORDS = 25  # a one-sentence question of at most this many words is searched as it is
MAX_WORDS = 40  # the most words a focus keeps
FACT_SENTENCE_WORDS = 14  # a sentence of facts up to this long is kept whole; a longer one gives its facts only


class Focus(NamedTuple):
    """What to search (``text``), the facts kept from the message (``kept``: ages, pregnancy, doses, named
    conditions and drugs, in message order) and the conditions and drugs alone (``terms``; empty when the
    message was passed through as it was)."""

    text: str
    kept: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()

    @property
    def gate_text(self) -> str:
        """What the abstention gate reads: the named conditions and drugs of a focused message (a topic the
        index lacks leaves its name uncovered, while the backstory's words no longer count), else ``text``."""
        return " ".join(self.terms) or self.text


# -- vocabulary ---------------------------------------------------------------------------------------
_MEDICAL_WORDS = frozenset("""
abortion abscess ache aches acid acne addiction adhd aids alcoholism allergic allergies allergy alzheimer alzheimers
amputation anemia anaemia aneurysm angina ankle antibiotic antibiotics antibodies antibody antidepressant
antidepressants anxiety aorta aortic apnea appendix arrhythmia arteries artery arthritis asthma ataxia atrophy
autism autoimmune bacteria bacterial benign biopsy bipolar bite bitten bladder bleeding blind blindness blister
blood bloody bone bones bowel brain breast breastfeeding breath breathing bronchitis bruise bruising burn burns
bypass calcium cancer cancers cancerous cardiac cartilage cataract cataracts cavity celiac cervical cervix chemo
chemotherapy chest chlamydia cholesterol chromosome chromosomal chronic circulation cirrhosis clot clots clotting
colitis colon colonoscopy coma concussion congenital constipation contagious contraception contraceptive convulsions
copd cough coughing covid cramp cramps crohn crohns cure cyst cysts cystic deaf deafness defect deficiency
dehydration degeneration dementia dental depressed depression dermatitis diabetes diabetic diagnosed diagnosis
dialysis diarrhea diarrhoea diet dietary digestion digestive disability disease diseases disorder disorders
dizziness dizzy dna dose dosage drug drugs dysfunction ear eardrum ears eczema embryo emphysema endometriosis enzyme
epilepsy erectile eye eyes eyesight faint fainting fatigue fertility fetal fetus fever fibroids fibromyalgia fissure
fistula flu fracture fractured fungal fungus gallbladder gallstones gastric gene genes genetic genital glaucoma
gluten gonorrhea gout graft gums hair hallucinations headache headaches hearing heart heartburn hemorrhoids
hepatitis hereditary hernia herpes hiv hives hormone hormones hospital hypertension hypoglycemia hypothyroidism
immune immunity implant impotence incontinence infected infection infections infertility inflammation inflammatory
influenza inhaler injection injections injured injuries injury insomnia insulin intestinal intestine itching itchy
jaundice joint joints kidney kidneys knee labor labour lesion lesions leukemia leukaemia lice ligament liver lump
lumps lung lungs lupus lyme lymph lymphoma malaria malignant mammogram measles medication medications medicine
medicines melanoma menopause menstrual menstruation mental metabolic metastasis metastatic migraine migraines
miscarriage mole molar mouth mri mucus multiple muscle muscles mutation nausea neck nerve nerves nervous neuropathy
nose numb numbness nutrition obesity obese ovarian ovaries ovary pain painful pains palsy pancreas pancreatic
paralysis paralyzed parkinson parkinsons pelvic penis pill pills placenta pneumonia poisoning polio polyps
postpartum pregnancy pregnant premature prescribed prescription pressure prostate prosthesis psoriasis psychiatric
psychosis puberty pulmonary pus radiation radiotherapy rash rectal rectum relapse remission renal respiratory retina
rheumatoid rickets scabies scan schizophrenia sciatica scoliosis seizure seizures semen sexual shingles sickle sinus
sinusitis skin sleep smoking sore spasm spasms sperm spinal spine spleen sprain std sti stiffness stomach stool
stools stress stroke surgery surgical swallowing sweating swelling swollen symptom symptoms syndrome syphilis tablet
tablets teeth tendon testicle testicles therapy thyroid tinnitus tissue tongue tonsils tooth toxic transfusion
transplant trauma treatment treatments tremor tuberculosis tumor tumors tumour tumours ulcer ulcers ultrasound
urinary urinate urination urine uterus vaccinated vaccination vaccine vaccines vagina vaginal vein veins vertigo
viral virus vision vitamin vitamins vomit vomiting wart warts weight wheezing womb wound wrist xray
""".split())

_DRUG_WORDS = frozenset("""
acetaminophen advil aleve amoxicillin aspirin benadryl botox claritin codeine coumadin eliquis gabapentin ibuprofen
insulin lexapro lipitor lyrica metformin methotrexate morphine motrin naproxen nexium paracetamol penicillin plavix
prednisone prozac synthroid tamiflu tramadol tylenol valium viagra vicodin warfarin xanax zoloft zyrtec glucagon
levothyroxine lisinopril amlodipine omeprazole simvastatin atorvastatin hydrocodone oxycodone adderall ritalin
""".split())


_DRUG_WORDS = frozenset("""
acetaminophen advil aleve amoxicillin aspirin benadryl botox claritin codeine coumadin eliquis gabapentin ibuprofen
insulin lexapro lipitor lyrica metformin methotrexate morphine motrin naproxen nexium paracetamol penicillin plavix
prednisone prozac synthroid tamiflu tramadol tylenol valium viagra vicodin warfarin xanax zoloft zyrtec glucagon
levothyroxine lisinopril amlodipine omeprazole simvastatin atorvastatin hydrocodone oxycodone adderall ritalin
wellbutrin cipro topamax levodopa carbidopa salbutamol albuterol
""".split())
_CONDITION_SUFFIX = re.compile(
    r"^[a-z]{3,}(?:itis|osis|oses|emia|aemia|[^r]oma|omas|pathy|pathies|ectomy|otomy|ostomy|plasty|algia|plasia|"
    r"trophy|penia|megaly|rrhea|rrhoea|scopy|ography|ogram|iasis|plegia|paresis|uria|cytes?|ectasis|phobia|"
    r"thyroidism|glycemia|pertension|potension)$")
_DRUG_SUFFIX = re.compile(
    r"^[a-z]{2,}(?:mab|tinib|pril|sartan|statin|olol|azole|cillin|mycin|cycline|floxacin|prazole|tidine|dipine|"
    r"ciclovir|cyclovir|navir|parin|triptan|azepam|azolam|barbital|profen|oxetine|formin|gliptin|gliflozin|glitazone|"
    r"semide|thiazide|terol|olone|asone|isone|caine|codone|morphone|afil|lukast|pramine|triptyline|oxacin|vudine)$")
_NOT_MEDICAL = frozenset("diploma aroma stigma sigma soma dogma karma enigma panorama".split())
#: medical, but saying nothing of the topic: no fact, and a sentence with only these is backstory
_GENERIC = frozenset("""treatment treatments disease diseases disorder disorders diagnosed diagnosis medicine medicines
medical medication medications symptom symptoms hospital therapy cure syndrome drug drugs pill pills tablet tablets dose
dosage prescription prescribed infection infections chronic injury injuries surgery surgical""".split())
_GENE = re.compile(r"^[a-z]{2,5}\d{1,3}[a-z]?$")  # gene and subtype names written in lower case: spg11, brca1
#: nouns that make a name with the word before them: 'menkes syndrome', 'typhoid fever', 'bladder infection'
_HEADS = frozenset("syndrome disease disorder deficiency palsy dystrophy fever cancer infection failure tumor".split())
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")  # GIST, SCA3, TMAU; BUPROPION in a message not in capitals
_NOT_ACRONYMS = frozenset("""I OK NIH USA US UK EU ASAP NAME LOCATION CONTACT DATE AGE ID TV PC AM PM FAQ NB PS RE
FW FYI DR MR MRS MS NHS CDC FDA WHO NLM GARD NCBI IM IVE ALL AND THE YOU ME MY NO NOT ANY FOR OR SO HE SHE WE IT IS
ARE BUT CAN DO HOW WHAT WHY HELP PLEASE THANK THANKS HI DEAR SIR URGENT NEVER REALLY ALWAYS OMG LOL GOD IMPORTANT
EMAIL PHONE MESSAGE SUBJECT QUESTION HELLO""".split())
_MODIFIERS = frozenset("""type acute chronic congenital juvenile adult childhood familial hereditary genetic early late
stage severe mild high low optic macular night cluster benign malignant primary secondary gestational sickle cell
multiple cystic atrial deep vein left right upper lower stomach heart lung breast skin bone brain kidney liver
blood sleep""".split())
_NOT_MODIFIERS = frozenset("""hello hi dear doctor doctors dr sir madam thanks thank regards please i my mr mrs ms
clinicaltrials medlineplus nih""".split())
_STOP = frozenset("""a an the and or but of to in on at for with from by about as is are was were be been being am
do does did have has had i me my we our you your he him his she her it its they them their this that these those
what which who whom how why when where can could should would will shall may might must not no yes there here
so if then than too very just also any some all more most much many such only own same other into out up down
over under again further once please thanks thank since""".split())

# -- message parts ------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\[(?:NAME|LOCATION|CONTACT|DATE|AGE|ID|EMAIL|PHONE|URL|ADDRESS)\]|"
                          r"\b(?:NAME|LOCATION|CONTACT)\b")
_NAME_INTRO = re.compile(r"\b(?:my name is|my name's|this is|i am|i'm)\s+(?:\[NAME\]|NAME\b|(?<=is )[A-Z][a-z]+"
                         r"(?:\s+[A-Z][a-z]+)?)(?:\s+(?:from|in|of)\s+(?:\[LOCATION\]|LOCATION\b|[A-Za-z]+))?[,.]?",
                         re.I)
#: a web form's message field: its header fields (EMAIL:, FROM:, BROWSER: ...) come before it
_FORM_MESSAGE = re.compile(r"\b(?:MESSAGE|Message Body)\s*:\s*")
_FORM_FIELD = re.compile(r"^\s*(?:(?:E-?MAIL|SUBJECT|NAME|FROM|TO|DATE|RE|FWD?)\s*:\s*)+", re.I)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_URL = re.compile(r"\[?\b(?:https?://|www\.)\S+", re.I)
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")
_GREETING = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening|day)|respected|dear)"
    r"(?:\s+(?:there|all|everyone|sir|sirs|madam|ma'?am|mam|sir\s*/\s*madam|sir or madam|doctors?|dr\.?|team|"
    r"nurse|colleagues?|friends?|folks|medlineplus|nih|nlm|to whom it may concern))*"
    r"(?:\s+[A-Z][a-z]+)?\s*[,.!:;-]+\s*|"
    r"(?:hi|hello|hey|greetings)\b\s*(?:there\b)?\s*[,.!:;-]*\s*|"
    r"to whom it may concern\s*[,.!:;-]*\s*|"
    r"(?:dear|respected)\s+(?:sir|madam|doctor|dr\.?|team)(?:\s*/\s*madam|\s+or\s+madam)?\s*[,.!:;-]*\s*)", re.I)
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:many |a lot of |lots of )?thanks?\b|thank(?:s| you)|thx|ty\b|tia\b|regards|best regards|kind regards|"
    r"warm regards|best wishes|best\b|sincerely|yours\b|cheers|god bless|blessings|respectfully|cordially|"
    r"(?:i )?(?:look|am looking|looking) forward|(?:i )?hope (?:to hear|you (?:can|could|will|reply))|"
    r"(?:i )?(?:would|will) (?:be )?(?:very |really |so )*(?:grateful|thankful|appreciat)|"
    r"(?:i )?(?:really |greatly )?appreciate|(?:please |kindly )?(?:reply|respond|answer)(?: me)?\b|"
    r"waiting for (?:your|a) (?:reply|response|answer)|sent from my|with (?:kind |best )?regards)", re.I)
_SELF_INTRO = re.compile(r"^\s*(?:my name is|i am|i'm|this is)\s+(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)?"
                         r"(?:\s+from\s+\S+(?:\s+\S+)?)?\s*[.,!]?$")
_BOILERPLATE = re.compile(r"^\s*(?:clinicaltrials\.gov|medlineplus|ghr|gard|nih)\b[^.?!]*?(?:question|complaint|"
                          r"compliment|suggestion|information|inquiry|request)[^.?!]*[.?!]*$", re.I)
_LEAD = re.compile(r"^\s*(?:and|but|so|also|then|now|ok|okay|well|btw|please|kindly|pls|plz|sir|madam|doctor|"
                   r"my question is|question|q)\b[\s,:.-]*", re.I)
_QUESTION_START = re.compile(
    r"^(?:what|what's|whats|how|why|where|which|who|whom|whose|is|isn't|are|aren't|am|can|can't|"
    r"cannot|could|couldn't|should|shall|would|will|won't|do|does|doesn't|did|didn't|may|might|any|anyone|"
    r"anybody|is there|are there)\b", re.I)
_QUESTION_CUE = re.compile(
    r"\b(?:i|we)(?:'d| would| really)? (?:want|wanted|need|needed|like|wish|hope) to (?:know|ask|find out|learn|"
    r"understand)|\b(?:i|we) (?:wonder|am wondering|was wondering|were wondering|wondered)|"
    r"\b(?:don'?t|do not|didn'?t|did not) know (?:if|whether|what|how|why|which)\b|"
    r"\bnot sure (?:if|whether|what|how)\b|"
    r"\b(?:please|pls|plz|kindly|can you|could you|would you|will you)\b[^.?!]{0,20}?\b(?:tell|let|help|advise|"
    r"suggest|guide|explain|send|give|inform|recommend|provide)|"
    r"\b(?:help|advise|guide|suggest) me\b|"
    r"\bany (?:advice|suggestions?|help|ideas?|information|info|treatments?|cure)\b|"
    r"\b(?:need|want|looking for|seeking|searching for|request(?:ing)?|appreciate|get)\b[^.?!]{0,15}?"
    r"\b(?:information|info|advice|help|treatment|cure|answers?|literature|resources?)\b|"
    r"\b(?:information|info|literature|details|research|researches) (?:on|about|regarding|of|for|indicating)\b|"
    r"\bknow (?:more|about)\b|\bis there (?:any|a|an)\b|\bare there (?:any)\b|\bwhether\b|"
    r"(?:^|[,;]\s*|\b(?:is|know|ask|tell me|wondering|understand)\s+)(?:what|how|why|which|whether)\b|"
    r"\b(?:what|how)\s+(?:is|are|was|were|can|could|should|would|do|does|did|to|long|much|many|often|causes?)\b",
    re.I)
_AGE = re.compile(
    r"\b\d{1,3}(?:\.\d)?[- ]?(?:years?|yrs?|months?|mos?|weeks?|days?)[- ]old\b|"
    r"\b(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[- ](?:years?|months?|weeks?)[- ]old\b|"
    r"\b(?:aged?|age is|age of)\s*:?\s*\d{1,3}(?:\s*(?:years?|yrs?|months?|weeks?))?\b|"
    r"\b(?:i|he|she)(?:'m| am| is|'s)\s+(?:a\s+)?\d{1,3}\s*(?:yrs?|years?)?\b"
    r"(?!\s*(?:%|mg|kg|lbs?|pounds|cm|inches|times|days|weeks|hours|minutes))|"
    r"\b(?:my|our|his|her)\s+(?:[a-z]+\s+)?(?:son|daughter|child|kid|baby|boy|girl|mother|mom|mum|father|dad|wife|"
    r"husband|brother|sister|grandmother|grandfather|grandma|grandpa|uncle|aunt|friend|niece|nephew|"
    r"grandson|granddaughter|partner)\s*(?:,|is|who is|,? aged?)\s*\d{1,3}\b(?:\s*(?:years?|yrs?|months?|weeks?)"
    r"(?:\s*old)?)?|"
    r"\b\d{1,3}\s*(?:yo|y/o|y\.o\.)\b|\bin (?:my|his|her) (?:early |late |mid[- ])?(?:20|30|40|50|60|70|80|90)'?s\b",
    re.I)
_PREGNANCY = re.compile(r"\b(?:\d{1,2}\s*(?:weeks?|months?)\s*pregnant|pregnant|pregnancy|breast-?feeding|"
                        r"nursing (?:mother|my baby)|trying to conceive|postpartum)\b", re.I)
_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:mg|mcg|µg|ug|ml|iu|units?|cc|grams?)\b", re.I)
_HAS_CONDITION = re.compile(
    r"\b(?:suffer(?:s|ed|ing)? from|diagnosed (?:with|as having)|diagnosis of|battling|living with|detected with)"
    r"\s+(?:a |an |the )?((?:(?!(?:a|an|the|this|that|it|and|or|for|since|but|in|on|at|from|with|to|of|my|his|her|"
    r"after|about|last|past|when|because|which|who)\b)[A-Za-z][\w'’-]*\s?){1,4})", re.I)
_NOT_NAMES = frozenset("""please give help ago years months weeks days now same similar since last recently many
several some a lot problems issues""".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s+|(?=[A-Z]))|(?<=[?!])|\s*\n+\s*|"
                           r"(?<=[a-z]\.)(?=(?!(?:gov|com|org|net|edu|uk|htm|html)\b)[a-z]{2,}\b)|\s+\.\s*")
_CLAUSE = re.compile(r"\s*[,;:]\s+(?![^()]*\))|\s+-+\s+|\s*;\s*|\s+(?=(?:but|so|because|since|and now|however)\s)",
                     re.I)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _shouting(text: str) -> bool:
    """Mostly capitals: then an upper-case word is no acronym and a capital no name."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) > 0.6 * len(letters)


def _medical_token(token: str, shouting: bool) -> bool:
    """Whether one word looks medical: the vocabulary, a condition or drug suffix, a gene name, an acronym."""
    low = token.lower().strip("'’-")
    if low.endswith(("'s", "’s")):
        low = low[:-2]
    if low in _MEDICAL_WORDS or low in _DRUG_WORDS:
        return True
    if low in _NOT_MEDICAL:
        return False
    if _CONDITION_SUFFIX.match(low) or _DRUG_SUFFIX.match(low) or _GENE.match(token):
        return True
    core = token.strip("'’-")
    return (not shouting and bool(_ACRONYM.match(core)) and sum(c.isalpha() for c in core) >= 2
            and core not in _NOT_ACRONYMS and core.rstrip("S") not in _NOT_ACRONYMS and low not in _STOP)


def _has_medical(text: str, specific: bool = False) -> bool:
    """Whether ``text`` names something medical (``specific``: more than a generic word like 'treatment'),
    a dose, an age or a pregnancy."""
    shouting = _shouting(text)
    return (any(_medical_token(w, shouting) and not (specific and w.lower() in _GENERIC) for w in _words(text))
            or any(p.search(text) for p in (_DOSE, _AGE, _PREGNANCY, _HAS_CONDITION)))


def _clean(message: str) -> str:
    """HTML entities decoded; self-introductions, placeholders, emails, links and phone numbers removed."""
    text = html.unescape(message)
    header = list(_FORM_MESSAGE.finditer(text))
    text = _NAME_INTRO.sub(" ", _FORM_FIELD.sub("", text[header[-1].end():] if header else text))
    for pattern in (_EMAIL, _URL, _PLACEHOLDER):
        text = pattern.sub(" ", text)
    text = _PHONE.sub(lambda m: m.group(0) if len(re.sub(r"\D", "", m.group(0))) < 9 else " ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)
    text = re.sub(r"\s+", " ", text)
    return re.sub(r" +([,.!?;:])", r"\1", text).strip()


def _units(text: str) -> list[str]:
    """Sentences; one longer than ``SHORT_WORDS`` words split further at commas, dashes and 'but', 'so' ..."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        sentence = (sentence or "").strip(" ,;:-")
        if not _words(sentence):
            continue
        if len(_words(sentence)) > SHORT_WORDS:
            out += [c.strip(" ,;:-") for c in _CLAUSE.split(sentence) if c and _words(c)]
        else:
            out.append(sentence)
    return out


def _is_question(unit: str) -> bool:
    """A question: it ends with '?', starts with a question word, or asks ('I want to know', 'please tell me')."""
    if unit.rstrip().endswith("?"):
        return True
    lead = _LEAD.sub("", _LEAD.sub("", unit))
    return bool(_QUESTION_START.match(lead) or _QUESTION_CUE.search(unit))


def _noise(unit: str) -> bool:
    """A greeting, thanks, sign-off, signature, self-introduction or form boilerplate: nothing to search."""
    if _SELF_INTRO.match(unit) or _BOILERPLATE.match(unit):
        return True
    if _SIGN_OFF.match(unit) and not unit.rstrip().endswith("?") and not _has_medical(unit, specific=True):
        return True
    words = _words(unit)
    if len(words) <= 3 and all(w[:1].isupper() for w in words) and not _has_medical(unit):
        return not unit.rstrip().endswith("?")  # a trailing name: "Mary", "John Smith"
    return False


def _runs(text: str) -> list[tuple[int, int]]:
    """Spans of word runs that name a condition or drug: medical words with their modifiers ('optic nerve
    atrophy', "Friedreich's ataxia", 'type 2 diabetes', 'menkes syndrome'), with at least one specific word;
    runs one unknown word apart are joined ('distal renal tubular acidosis')."""
    shouting = _shouting(text)
    spans: list[tuple[int, int]] = []
    run_start = run_end = prev_end = prev_start = -1
    prev = ""
    named = False
    for m in _WORD.finditer(text):
        token, low = m.group(0), m.group(0).lower()
        joined = prev_end >= 0 and text[prev_end:m.start()].strip() in ("", "-", "/")
        medical = _medical_token(token, shouting)
        capital = (token[:1].isupper() and not token.isupper() and not shouting and low not in _STOP
                   and low not in _NOT_MODIFIERS)
        modifier = (low in _MODIFIERS or low.endswith(("'s", "’s")) or (low.isdigit() and joined) or capital
                    or (low in ("i", "ii") and prev.lower() == "type"))
        head = low in _HEADS and joined and bool(prev) and prev.lower() not in _STOP | _NOT_MODIFIERS
        if run_start >= 0 and not (joined and (medical or modifier or head)):
            if named:
                spans.append((run_start, run_end))
            run_start, named = -1, False
        if medical or modifier or head:
            if run_start < 0:
                run_start = prev_start if head else m.start()
            run_end = m.end()
            named = named or head or (medical and low not in _GENERIC)
        prev_end, prev, prev_start = m.end(), token, m.start()
    if run_start >= 0 and named:
        spans.append((run_start, run_end))
    joined_spans: list[tuple[int, int]] = []
    for a, b in spans:
        gap = text[joined_spans[-1][1]:a] if joined_spans else ""
        if joined_spans and re.fullmatch(r"\s+[a-z][\w-]*\s+", gap) and gap.strip() not in _STOP:
            joined_spans[-1] = (joined_spans[-1][0], b)
        else:
            joined_spans.append((a, b))
    return joined_spans


def _facts(text: str, names: bool = False) -> list[str]:
    """Ages, pregnancy, doses and named conditions and drugs of ``text`` (``names``: only the named conditions
    and drugs), in order."""
    found = [] if names else [(m.start(), m.end()) for p in (_AGE, _PREGNANCY, _DOSE) for m in p.finditer(text)]
    for m in _HAS_CONDITION.finditer(text):  # 'suffering from lichen planus': the words up to a stop word
        words = list(_WORD.finditer(m.group(1)))
        names = [w for w in words[:next((n for n, w in enumerate(words) if w.group(0).lower() in _STOP | _NOT_NAMES),
                                        len(words))]]
        if names and not _shouting(m.group(0)):
            found.append((m.start(1), m.start(1) + names[-1].end()))
    found += _runs(text)
    merged: list[tuple[int, int]] = []
    for a, b in sorted(found, key=lambda f: (f[0], -f[1])):
        if merged and a < merged[-1][1]:  # overlaps the previous fact: one fact
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    facts: list[str] = []
    for a, b in merged:
        fact = " ".join(text[a:b].split()).strip(" ,.;:'’-")
        if fact:
            facts.append(fact)
    return facts


def _dedupe(facts: list[str]) -> list[str]:
    """Each fact once; one contained in a longer one dropped."""
    low = [f.lower() for f in facts]

    def inside(i: int) -> bool:
        return any(low[i] != other and re.search(rf"\b{re.escape(low[i])}\b", other) for other in low)

    return [f for i, f in enumerate(facts) if low[i] not in low[:i] and not inside(i)]


def _trim(text: str, words: int) -> str:
    """The first ``words`` words of ``text`` (with their punctuation)."""
    spans = list(_WORD.finditer(text))
    return text if len(spans) <= words else text[:spans[words - 1].end()]


def _content(text: str) -> set[str]:
    return {w.lower().rstrip("s") for w in _words(text) if w.lower() not in _STOP and len(w) > 2}


def _punctuated(unit: str) -> str:
    unit = unit.strip()
    return unit if not unit or unit[-1] in ".?!;" else unit + "."


def _priority(unit: str, question: bool, specific: bool, main: bool) -> int:
    """Lower is kept first: 0 the main question, 1 questions naming something medical, 2 short fact sentences,
    3 longer fact sentences (by their facts only), 4 other questions."""
    if question:
        return 0 if main else 1 if specific else 4
    return 2 if len(_words(unit)) <= FACT_SENTENCE_WORDS else 3


def focus(message: str, max_words: int = MAX_WORDS) -> Focus:
    """The part of ``message`` to search and gate abstention on, with the facts kept from it.

    A plain question (one sentence, at most ``SHORT_WORDS`` words) and CJK text come back as they are.
    Otherwise greetings, thanks, signatures, self-introductions, placeholders, contact details and a subject
    line that the message repeats are dropped; in a long message so is every sentence with neither a question
    nor a medical fact. Within ``MAX_WORDS`` words come, by priority, the main question (the first one naming
    something medical, else the first one), other questions naming something medical, short fact sentences,
    the facts of longer ones, and other questions; kept sentences stay in message order, facts follow them.
    """
    raw = " ".join(message.split())
    if not raw or dominant_script(raw) == "CJK":
        return Focus(raw)
    if len(_words(raw)) <= SHORT_WORDS and len(_units(raw)) <= 1:
        return Focus(raw, tuple(_dedupe(_facts(raw))))
    text = _clean(message)
    long = len(_words(text)) > SHORT_WORDS
    units: list[str] = []
    for unit in _units(text):
        unit = _GREETING.sub("", unit, count=1).strip(" ,;:-")
        if _words(unit) and not _noise(unit):
            units.append(unit)
    asks = [_is_question(u) for u in units]
    specific = [_has_medical(u, specific=True) for u in units]
    main = next((i for i in range(len(units)) if asks[i] and specific[i]),
                next((i for i in range(len(units)) if asks[i]), None))
    ranked = sorted((_priority(u, asks[i], specific[i], i == main), i) for i, u in enumerate(units)
                    if asks[i] or specific[i] or not long)
    chosen: dict[int, str] = {}
    tail: list[str] = []
    budget = max_words
    for rank, i in ranked:
        unit = units[i]
        others = [u for j, u in enumerate(units) if j != i and (j in chosen or asks[j])]
        if not asks[i] and _content(unit) <= set().union(*map(_content, others)):
            continue  # a subject line, or a fact a question already says
        size = len(_words(unit))
        if rank == 0 and size > budget:
            unit, size = _trim(unit, budget), budget
        if rank != 3 and size <= budget:
            chosen[i] = unit
            budget -= size
            continue
        for fact in _facts(unit):  # too long: only its facts, while words are left
            words = len(_words(fact))
            if words <= budget and not any(fact.lower() in t.lower() for t in (*chosen.values(), *tail)):
                tail.append(fact)
                budget -= words
    body = " ".join(_punctuated(chosen[i]) for i in sorted(chosen))
    focused = " ".join(filter(None, (body, ", ".join(tail) + "." if tail else "")))
    if not focused:  # nothing recognised: the cleaned message, capped
        focused = _trim(" ".join(units) or text, max_words)
    kept = _dedupe([f for u in units for f in _facts(u)])
    terms = _dedupe([f for u in units for f in _facts(u, names=True)])
    log.debug("focus: %d -> %d words, kept %s", len(_words(raw)), len(_words(focused)), kept)
    return Focus(focused, tuple(kept), tuple(terms))


__all__ = ["FACT_SENTENCE_WORDS", "MAX_WORDS", "SHORT_WORDS", "Focus", "focus"]
