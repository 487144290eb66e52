"""De-identification of clinical notes: protected health information (PHI) replaced by typed tags.

``Deidentifier().deidentify(text, patient_key=...)`` finds the PHI spans of a note and replaces each with
a tag that says what was there (``[NAME]``, ``[DATE]``, ``[PHONE]``, ``[ID]`` ...). It runs in memory,
writes nothing and logs only counts.

Two detectors, unioned by the default engine ``"combined"`` (measured best on our synthetic notes:
eval/reports/deid.md):

- ``rules``: our own HIPAA Safe Harbor rules: MIMIC's ``[**...**]`` placeholders; dates in numeric and
  written forms; ages over 89; phone, fax and pager numbers; emails, URLs, IP addresses; SSNs; street
  addresses, city/state/ZIP and facility names; record, account, plan, licence, device and vehicle
  numbers (after a cue word, or by shape: long digit runs, mixed letter/digit codes); names after titles
  (Dr., Mrs. ...), before credentials (MD, RN ...), after field labels (Name:, Attending:, cc: ...) and
  after relations (daughter, husband ...). Every name or place found once is then removed wherever else
  it occurs in the same note.
- ``philter``: philter-lite (UCSF Philter's rule set: 300 regexes plus 258k first and last names and a
  195k-word whitelist). Philter asks NLTK's perceptron tagger for parts of speech (its name lists only
  fire on proper nouns); that model is a separate NLTK download that an offline install lacks, so when it
  is missing a small stand-in tags capitalised words as proper nouns and numbers as numbers.
  In ``combined``, the words philter adds beyond our spans are kept when they are clinical text: inside a
  drug-and-dose phrase or section header, a clinical abbreviation or eponym, a short number or range, a
  lower-case common English word, or a common word capitalised only by starting a sentence (philter
  alone removes e.g. "DOE", "Kussmaul" and "Brief Hospital Course").

Dates can be shifted per patient instead of removed (``shift_dates=True`` with a ``patient_key``): every
full date of one patient moves by the same keyed offset (30 to 3,650 days back), so intervals survive;
dates without a year still become ``[DATE]``.

Record ids that must stay linkable (a patient's notes, an encounter) become keyed pseudonyms
(``Deidentifier.pseudonym``): HMAC-SHA256 under a secret key, so they cannot be reversed by hashing
every possible MRN. The key comes from the ``key`` argument or ``$MEDRAG_DEID_KEY``; else, while an encrypted
index is ingested (``with index_keyed(index_key):``), from that index's key (HKDF, so pseudonyms stay stable
across runs into that index); else a random key lives for the process only (pseudonyms and date offsets then
differ between runs).
"""
from __future__ import annotations

import calendar
import contextlib
import contextvars
import datetime as dt
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medrag.errors import MedRAGError

if TYPE_CHECKING:
    from medrag.stores.sealed import IndexKey

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "KEY_ENV", "DeidResult", "Deidentifier", "Span", "index_keyed"]

ENGINES = ("combined", "rules", "philter")
KEY_ENV = "MEDRAG_DEID_KEY"
#: the de-identification key derived from the encrypted index being ingested (``index_keyed``)
_INDEX_DEID_KEY: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("medrag_index_deid_key", default=None)


@contextlib.contextmanager
def index_keyed(index_key: IndexKey | None) -> Iterator[None]:
    """Within the block, a Deidentifier with neither a ``key`` argument nor ``$MEDRAG_DEID_KEY`` keys its
    pseudonyms and date shifts with a key derived (HKDF) from ``index_key``, an encrypted index's key: stable
    across runs into that index, unrelated to any other key. ``None`` changes nothing."""
    if index_key is None:
        yield
        return
    token = _INDEX_DEID_KEY.set(index_key.subkey("de-identification"))
    try:
        yield
    finally:
        _INDEX_DEID_KEY.reset(token)


#: tag kinds, in the order a tie between overlapping detections is settled
KINDS = ("SSN", "EMAIL", "URL", "IP", "PHONE", "FAX", "DATE", "AGE", "ZIP", "ADDRESS", "LOCATION", "ID", "NAME",
         "PHI")


@dataclass(frozen=True)
class Span:
    """One removed stretch of the input: character offsets and the kind of PHI."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class DeidResult:
    """A de-identified text, how many spans of each kind were replaced, and where (offsets in the input)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)
    spans: tuple[Span, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# -- the rules --------------------------------------------------------------------------------------------
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTHS["sept"] = 9
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
          r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_WEEKDAY = r"(?:(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?\.?,?\s+)"
_ORD = r"(?:st|nd|rd|th)?"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:1[89]\d\d|2[0-2]\d\d)"
_YY = r"(?:\d\d)"
_LETTER = r"[^\W\d_]"
_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
_CAP = rf"[{_UPPER}]"
#: one name word: O'Brien, D'Amato, McAllister, Jean-Luc, Okonkwo-Adeyemi, Fontaine-LeBlanc, Wiśniewski, Ní
_NAME_WORD = rf"{_CAP}(?:[’']{_CAP})?{_LETTER}*(?:[-’']{_LETTER}+)*"
_INITIAL = rf"{_CAP}\."
_NAME_SEQ = rf"(?:{_NAME_WORD}|{_INITIAL})(?:[ \t]+(?:{_NAME_WORD}|{_INITIAL}|\"[^\"\n]{{1,20}}\"|“[^”\n]{{1,20}}”)){{0,3}}"
_CAPS_WORD = rf"[{_UPPER}][{_UPPER}'’-]+"
_LAST_FIRST = rf"{_NAME_WORD},[ \t]*{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?"
_STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR"]
_STATE_NAMES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
                "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
                "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|"
                "New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|"
                "South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|"
                "Wisconsin|Wyoming|Puerto Rico")
#: state codes that are also credentials or common abbreviations: a city before them needs a ZIP after
_AMBIGUOUS_STATES = {"MD", "DO", "PA", "MS", "ME", "OR", "IN", "CO", "HI", "LA", "AL", "ID", "SC", "CT", "DE", "NE",
                     "OK", "MO", "VA"}
_CITY = rf"{_CAP}[a-zà-ÿ]+(?:[ -]{_CAP}[a-zà-ÿ]+){{0,2}}"
_STREET_TYPE = (r"(?:Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Lane|Ln|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Ter|"
                r"Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Plaza|Turnpike|Tpke|Trail|Path|Row|Hill|Cove)")
_UNIT = r"(?:,?[ \t]*(?:Apt|Apartment|Unit|Suite|Ste|Fl|Floor|Room|Rm|Bldg|#)\.?[ \t]*#?[ \t]*[A-Za-z0-9-]{1,6}\b)"
_FACILITY_END = (r"(?:Hospital|Medical Center|Health Center|Center|Centre|Clinic|Rehab(?:ilitation)?|Nursing Home|"
                 r"Nursing|Practice|Imaging|Radiology|Neurology|Cardiology|Associates|Health|Healthcare|Institute|"
                 r"Infirmary|Hospice|Manor|Pharmacy|Laboratory|Lab|General|Medical|House)")
_FACILITY = (rf"(?:(?:St\.|Saint|The)[ \t]+)?(?:{_CAP}[\w'’&.-]*[ \t]+(?:(?:of|for|and|&|the)[ \t]+)?){{1,4}}"
             rf"{_FACILITY_END}\b")

_DATE_PATTERNS = [
    rf"\b{_YEAR}-(?:0?[1-9]|1[0-2])-{_DAY}(?:[T ]\d\d:\d\d(?::\d\d)?)?\b",  # 2023-05-06, 2024-03-02T08:14:00
    rf"(?<![\d/.-]){_MON}/{_DAY}/(?:{_YEAR}|{_YY})(?![\d/])",  # 11/28/2022, 05/06/23
    rf"(?<![\d/.:-]){_DAY}-{_MON}-{_YEAR}(?![\d-])|(?<![\d/.:-]){_MON}-{_DAY}-(?:{_YEAR}|{_YY})(?![\d-])",
    rf"(?<![\d/.-]){_MON}/{_YEAR}(?![\d/])",  # 08/2022 (month and year)
    rf"\b{_WEEKDAY}?{_MONTH}\.?[ \t]+{_DAY}{_ORD}(?:,?[ \t]+{_YEAR})?\b",  # Oct 8th, March 3, 2024, Jan. 3, 2024
    rf"\b{_DAY}{_ORD}[ \t]+(?:of[ \t]+)?{_MONTH}\.?,?(?:[ \t]+{_YEAR})?\b",  # 14 March 2024, 3rd of May
    rf"\b{_MONTH}\.?,?[ \t]+{_YEAR}\b",  # Jan 2117
    rf"\b{_DAY}-(?:{_MONTH})-(?:{_YEAR}|{_YY})\b",  # 14-Mar-2024
]
_DATE = re.compile("|".join(f"(?:{p})" for p in _DATE_PATTERNS), re.IGNORECASE)
_MONTH_DAY = re.compile(rf"(?<![\d/.:,-])({_MON})/({_DAY})(?![\d/]|\s*(?:murmur|strength|SEM)|%)", re.IGNORECASE)
_DATE_CUE = re.compile(r"(?:\b(?:on|since|from|until|till|by|dated|of|scheduled|starting|through|thru|before|after|"
                       r"due|for|next|last|and|to|-)\s*)$", re.IGNORECASE)
#: what follows or precedes a fraction that is not a date: murmur grades, strength, "1/2 way", "2/3 of"
_FRACTION_AFTER = re.compile(r"[ \t]*(?:\w+[ \t]+)?(?:murmur|SEM|HSM|systolic|diastolic|holosystolic|strength|way|of|tabs?|"
                             r"tablets?|cups?|bilat|throughout|motor|grip|pulses?|reflex|UE|LE|\+)", re.IGNORECASE)
_FRACTION_BEFORE = re.compile(r"(?:strength|motor|power|murmur|grade|pulses|reflexes|DTRs|score|x)\W*$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[\*\*(.*?)\*\*\]", re.DOTALL)
_AGE = re.compile(
    r"\b(?:9\d|1[0-4]\d)(?=\s*(?:-\s*|\s)?(?:y/?o\b|yo\b|y\.o\.?|yrs?\b|years?\b|year-old|years-old|yr-old|"
    r"(?:yo)?[MF]\b|(?:year|yr)s?\s+old))"
    r"|(?<=\bage)(?:d|s)?\s*:?\s*(?:9\d|1[0-4]\d)\b"
    r"|(?<=\bAge)\s*:?\s*(?:9\d|1[0-4]\d)\b",
    re.IGNORECASE)
_AGE_CUE = re.compile(r"\b(?:year[- ]old|y/?o|y\.o\.|yo|aged?|years? of age)\b", re.IGNORECASE)
_BARE_90S = re.compile(r"(?<![\d.,/:-])(?:9\d|1[01]\d)(?![\d.,/:%-]|\s*(?:mg|mcg|g\b|kg|lb|bpm|mmHg|mL|cc|%|units?))")
_PHONE = re.compile(
    r"(?<![\w/.-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
    r"(?:\s*(?:ext\.?|x|extension)\s*\d{1,5}\b)?", re.IGNORECASE)
_PHONE_CUED = re.compile(r"\b(?:tel|phone|ph|cell|call|contact|reached at|number|pager|beeper|pgr|fax|home|work)"
                         r"\b[\s.:#]*(\d{3}[-.]\d{4}\b|\d{4,6}\b)", re.IGNORECASE)
_FAX_CUE = re.compile(r"\bfax\b[^\n\d]{0,12}$", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]"
                  r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|us|info|biz)(?:/[^\s<>\"')\]]*)?\b",
                  re.IGNORECASE)
_IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d|\.\d)")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])|\b(?:SSN|social security(?: number)?|SS#)\b[\s:#]*"
                  r"(\d{3}[ -]?\d{2}[ -]?\d{4})\b", re.IGNORECASE)
_ID_CUE = re.compile(
    r"\b(?:MRN|Med(?:ical)?[ \t]*Rec(?:ord)?s?(?:[ \t]*(?:No|Number|#))?|Unit[ \t]*No|Acct|Account(?:[ \t]*(?:Number|No))?|"
    r"Visit|Encounter|CSN|FIN|Member[ \t]*ID|Policy(?:[ \t]*Number)?|Medicare|Medicaid|MassHealth|Subscriber|Group|"
    r"Plan|Claim|NPI|DEA|UPIN|Licen[cs]e|Lic|Plate|VIN|Serial(?:[ \t]*(?:No|Number))?|Model|Lot|Transmitter[ \t]*ID|"
    r"Device[ \t]*ID|Accession|Specimen|Case|Certificate|Passport|ID|Identifier|Badge|Pager|Clip|Job)"
    r"\b\.?[ \t]*(?:(?:No|Number|#)\b\.?)?[ \t]*[:#]?[ \t]*((?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,}[A-Z0-9])\b",
    re.IGNORECASE)
_CODE = re.compile(r"(?<![\w.,/-])[A-Za-z0-9][A-Za-z0-9-]{3,}[A-Za-z0-9](?![\w/-]|[.,]\d)")
_LAB_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9()]*-\d{1,4}$")
_RANGE = re.compile(r"^\d{1,4}(?:-\d{1,4})+$")  # 500-125 mg, 49-51 mg, 30-35%
_CLINICAL_CODES = {"cha2ds2-vasc", "covid-19", "sars-cov-2", "hba1c", "a1c", "nt-probnp"}
_STREET = re.compile(rf"(?<![\w.-])\d{{1,6}}[A-Za-z]?[ \t]+(?:{_CAP}[\w'’.-]*[ \t]+){{1,4}}{_STREET_TYPE}\b\.?{_UNIT}?"
                     r"|\b(?i:P\.?O\.?|Post Office)[ \t]*(?i:Box)[ \t]*\d+\b")
_STATE_ALT = "|".join(_STATES)
_CITY_STATE_ZIP = re.compile(rf"\b({_CITY}),?[ \t]+(?:{_STATE_ALT}|{_STATE_NAMES})\.?,?[ \t]+(\d{{5}}(?:-\d{{4}})?)\b")
_CITY_STATE = re.compile(rf"\b({_CITY}),[ \t]*(?:({_STATE_ALT})|{_STATE_NAMES})\b(?![\w-])")
_ZIP_AFTER_STATE = re.compile(rf"\b(?:{_STATE_ALT}|{_STATE_NAMES})\.?,?[ \t]+(\d{{5}}(?:-\d{{4}})?)\b")
_PLACE_CUE = re.compile(
    rf"\b(?i:lives?|living|resides?|residing|moved|relocated|from|born|travel(?:l?ed|l?ing)?|flight|trip|visiting|"
    rf"returned|works?|working|employed)\b[^.\n]{{0,40}}?\b(?:in|to|from|at)[ \t]+((?:The[ \t]+)?{_CAP}[\w'’.-]*"
    rf"(?:[ \t]+(?:(?:at|of|the)[ \t]+)?{_CAP}[\w'’.-]*){{0,4}})")
_FACILITY_RE = re.compile(_FACILITY)
#: "the Medford lab", "the Framingham DTA office"
_LOCAL_PLACE = re.compile(rf"\bthe[ \t]+((?:{_CAP}[\w'’.-]*[ \t]+){{1,3}})(?:lab|laboratory|office|clinic|pharmacy|"
                          rf"hospital|campus|site|branch|ED|ER)\b")
_FACILITY_CAPS = re.compile(r"\b(?:[A-Z][A-Z'’.&-]+[ \t]+){1,4}(?:HOSPITAL|MEDICAL CENTER|CLINIC|HEALTH CENTER|"
                            r"CENTER|INFIRMARY)\b")
_TITLE = re.compile(rf"\b(?:Dr|Drs|Mr|Mrs|Ms|Mss|Miss|Mx|Prof|Sra|Sr|Sig|Mme|Mlle|Herr|Frau|Nurse|Rev|Fr|Sgt|Capt|"
                    rf"PA|NP|RN)\b\.?[ \t]+({_NAME_SEQ})")
_CREDENTIAL = re.compile(rf"({_NAME_SEQ})(?:,[ \t]*(?:PA|DO)|,?[ \t]+(?:M\.D\.|MD|D\.O\.|RN|NP|PA-C|RDCS|RDMS|RRT|LICSW|LCSW|MSW|"
                         rf"PhD|Ph\.D\.|FCCP|FACC|FACP|PharmD|DPM|CNM|CRNA|APRN|DNP|LPN|CNA|DDS|OD))\b")
_FIELD = re.compile(
    rf"(?:^|\n)[ \t]*(?:Name|Patient(?:[ \t]+Name)?|Pt|Re|RE|Attending|PCP|Referring(?:[ \t]+(?:physician|MD|provider))?|"
    rf"Dictated[ \t]+by|Signed(?:[ \t]+by)?|Electronically[ \t]+signed(?:[ \t]+by)?|Echocardiographer|Sonographer|"
    rf"Technologist|Interpreter|cc|CC|Emergency[ \t]+contact|Contact|HCP|Health[ \t]+care[ \t]+proxy|Provider|Surgeon|"
    rf"Resident|Fellow|Author|From|To|Attn|Guardian|Proxy|Next[ \t]+of[ \t]+kin|NOK)[ \t]*:[ \t]*"
    rf"(?:(?:Dr|Mr|Mrs|Ms|Miss)\.?[ \t]+)?({_LAST_FIRST}|{_NAME_SEQ}|{_CAPS_WORD}(?:[ \t]+{_CAPS_WORD}){{0,3}})")
_RELATION = re.compile(
    rf"\b(?i:wife|husband|spouse|partner|son|daughter|mother|father|mom|dad|brother|sister|niece|nephew|cousin|"
    rf"grand-?daughter|grand-?son|grand-?mother|grand-?father|granddaughter|grandson|aunt|uncle|friend|neighbou?r|"
    rf"guardian|caregiver|roommate|boyfriend|girlfriend|fianc[ée]e?|counselor|counsellor|case[ \t]+worker|"
    rf"case[ \t]+manager|social[ \t]+worker|interpreter|RN|nurse|the[ \t]+late|widow(?:er)?[ \t]+of|this[ \t]+is|"
    rf"prefers|goes[ \t]+by|aka|a\.k\.a\.|named|called)\b[,:]?[ \t]*[(\"“]?[ \t]*((?!(?:The|He|She|They|His|Her)\b)"
    rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,2}})")
_SIGN_OFF = re.compile(rf"\b(?:Thanks|Thank you|Sincerely|Regards|Best|Cheers|Dear|Hi|Hello)\b,?[ \t]*\n?[ \t]*"
                       rf"((?!(?:Dr|Mr|Mrs|Ms|Miss|Team|All|Doctor|Sir|Madam)\b){_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)")
_CLOSED_CLASS = {"the", "a", "an", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by", "from", "is", "was",
                 "he", "she", "they", "his", "her", "their", "it", "this", "that", "who", "which", "as", "but", "if",
                 "not", "no", "yes", "per", "pt", "patient", "please", "we", "you", "your", "our", "i", "my", "me",
                 "dr", "mr", "mrs", "ms", "miss", "team", "all", "md", "rn", "np", "pa", "do", "service", "unit",
                 "nurse", "name", "home", "hospital", "clinic", "center", "medical", "general", "family", "care",
                 "will", "may", "can", "has", "had", "have", "be", "are", "were", "been", "being", "so", "then",
                 "date", "discharge", "admission", "history", "present", "illness", "plan", "assessment", "daily",
                 "left", "right", "acute", "chronic", "primary", "secondary", "new", "old", "mother", "father",
                 "son", "daughter", "wife", "husband", "brother", "sister", "friend", "hcp", "cell", "pager",
                 "phone", "fax", "tel", "status", "code", "full", "sra", "sr", "sig", "mme", "mlle", "prof", "rev",
                 "herr", "frau", "mx", "drs"}
_HEADER_WORDS = {"Admission", "Discharge", "Date", "Birth", "Service", "Allergies", "Attending", "Chief", "Complaint",
                 "Major", "Surgical", "Invasive", "Procedure", "History", "Present", "Illness", "Past", "Medical",
                 "Social", "Family", "Physical", "Exam", "Pertinent", "Results", "Brief", "Hospital", "Course",
                 "Medications", "Disposition", "Diagnosis", "Condition", "Instructions", "Followup", "Facility",
                 "Assessment", "Plan", "Impression", "Findings", "Indication", "Technique", "Comparison",
                 "Examination", "Reason", "Final", "Report", "Addendum", "Completed", "Primary", "Secondary",
                 "Mental", "Level", "Consciousness", "Activity", "Review", "Systems", "Labs", "Imaging", "Name",
                 "Unit", "Sex", "Notification", "Conclusions", "Interpretation", "Status", "Test", "Height", "Weight"}
#: words philter removes as names that notes use as clinical abbreviations or vocabulary
_CLINICAL_WORDS = frozenset(["abd", "abg", "ace", "acs", "adl", "af", "afib", "aki", "ald", "alt", "ap", "ards", "arf", "as", "asa", "ast", "av", "bal", "bid", "bipap", "bm", "bmp", "bnp", "bp", "bph", "bpm", "bun", "ca", "cabg", "cad", "cbc", "ccu", "cdiff", "chf", "ci", "ckd", "cmp", "cmv", "copd", "cpap", "cr", "crt", "csf", "ct", "cta", "cv", "cva", "cvp", "cxr", "dbp", "dka", "dm", "dm1", "dm2", "dnr", "dni", "doe", "dvt", "ecg", "echo", "ed", "eeg", "ef", "egd", "ekg", "ems", "ent", "ercp", "esrd", "etoh", "fen", "ffp", "fs", "gcs", "gerd", "gi", "gtt", "gu", "hcp", "hct", "hd", "hdl", "heent", "hgb", "hiv", "hpi", "hr", "hs", "htn", "icd", "icu", "id", "ij", "inr", "iv", "ivc", "ivdu", "ivf", "jvd", "jvp", "kcl", "la", "lad", "lbbb", "lcx", "ld", "ldl", "le", "lft", "lima", "lle", "lll", "llq", "lmca", "lol", "los", "lp", "lr", "ls", "lue", "lul", "lv", "lvef", "lvh", "mae", "map", "mi", "mr", "mri", "ms", "nad", "nc", "ncat", "ng", "ngt", "nkda", "npo", "nsr", "nstemi", "nt", "nd", "ntg", "nv", "oa", "ob", "om", "or", "ot", "pa", "pacu", "pcp", "pcwp", "pda", "pe", "peg", "peep", "pna", "po", "pod", "ppi", "pr", "prbc", "prn", "pt", "ptt", "pvd", "qd", "qhs", "qid", "qod", "ra", "rbbb", "rca", "rhc", "rll", "rlq", "rml", "rr", "rrr", "rue", "rul", "ruq", "rv", "rvr", "sbp", "sc", "sbo", "sem", "sob", "ssi", "stemi", "svc", "svg", "svt", "tb", "tee", "tia", "tid", "tte", "tpn", "uo", "ua", "uop", "uri", "uti", "vap", "vats", "vs", "vt", "wbc", "wnl", "am", "pm", "bs", "cmh2o", "pod0", "pod1", "pod2", "pod3", "pod4", "pod5", "hd1", "hd2", "hd3", "xr", "ccb", "arb", "acei", "nsaid", "ssri", "snri", "ppi", "hfref", "hfpef", "nyha", "copd", "osa", "ild", "ipf", "uip", "pft", "dlco", "fvc", "fev1", "hrct", "moca", "fast", "tips", "lvp", "hcv", "hbv", "ote", "otp", "oud", "svr", "art", "cd4", "vl", "vna", "snf", "rehab", "sq", "uf", "dtap", "mma", "bg", "cgm", "ag", "bhb", "hfa", "mdi", "nsvt", "gdmt", "rtc", "fna", "tsh", "ti-rads", "mcg", "mg", "meq", "ml", "prn", "qhs", "po", "im", "sc", "inh", "neb", "x1", "x2", "x3", "x4", "x5", "x7", "fall", "addison", "alzheimer", "alzheimer's", "barrett", "barrett's", "bell", "bell's", "brudzinski", "chvostek", "crohn", "crohn's", "cushing", "cushing's", "doppler", "duke", "epley", "fleischner", "foley", "glasgow", "graves", "guillain-barre", "hashimoto", "hashimoto's", "hodgkin", "hodgkin's", "homans", "horner", "kernig", "kussmaul", "lachman", "mallampati", "mcburney", "murphy", "murphy's", "parkinson", "parkinson's", "raynaud", "raynaud's", "romberg", "sjogren", "swan-ganz", "tinel", "trendelenburg", "trousseau", "virchow", "wells", "wernicke", "wilson", "wilson's", "whipple", "child-pugh", "meld", "apgar", "braden", "morse", "bishop", "ranson", "glasgow-blatchford", "curb-65", "nihss"])
_DOSE = re.compile(r"\b([A-Za-z][A-Za-z-]+(?:[ \t/]+[A-Za-z][A-Za-z()-]+){0,4})[ \t]*[-:@]?[ \t]*\d+(?:[.,]\d+)?"
                   r"(?:[ \t]*-[ \t]*\d+(?:\.\d+)?)?[ \t]*(?:mg|mcg|micrograms?|g|grams?|kg|units?|u|mEq|mmol|mL|ml|L|%|"
                   r"puffs?|tabs?|tablets?|caps?|capsules?|drops?|sprays?|patch)\b"
                   r"(?:[ \t]+(?:x[ \t]?\d+|[A-Z0-9:/]{1,10}|[a-z0-9.:/-]{1,10})\b){0,3}", re.IGNORECASE)
_NUMERIC = re.compile(r"[\d\s./:-]+")


def _spans(pattern: re.Pattern[str], text: str, kind: str, group: int = 0) -> Iterator[Span]:
    for m in pattern.finditer(text):
        g = group if group and m.group(group) is not None else 0
        if m.start(g) < m.end(g):
            yield Span(m.start(g), m.end(g), kind)


def _placeholder_kind(content: str) -> str | None:
    """The kind of a MIMIC ``[**...**]`` placeholder; None for a bare year (kept: Safe Harbor allows years)."""
    c = content.strip().lower()
    if re.fullmatch(r"\d{4}", c):
        return None
    if re.fullmatch(r"\d{1,4}-\d{1,2}(-\d{1,4})?|\d{1,2}/\d{1,2}(/\d{2,4})?", c) or c.startswith(
            ("month", "day", "year", "date", "holiday", "january", "february", "march", "april", "may", "june", "july",
             "august", "september", "october", "november", "december")):
        return "DATE"
    if "age over 90" in c:
        return "AGE"
    if "telephone" in c or "fax" in c or "pager" in c:
        return "PHONE"
    if "e-mail" in c or "email" in c:
        return "EMAIL"
    if "url" in c:
        return "URL"
    if "social security" in c:
        return "SSN"
    if any(w in c for w in ("name", "doctor", "initial", "lastname", "firstname")) and "number" not in c:
        return "NAME"
    if any(w in c for w in ("street", "address", "apartment", "po box")):
        return "ADDRESS"
    if any(w in c for w in ("hospital", "location", "state", "country", "wardname", "university", "college",
                            "company", "county", "city")):
        return "LOCATION"
    return "ID"


def _is_id_code(token: str) -> bool:
    """A record, account, device or licence number by shape: 5+ digits, or a 5+ character code of letters and
    3+ digits (not a lab value like ``HCO3-27``, not a known clinical code)."""
    digits = sum(c.isdigit() for c in token)
    letters = sum(c.isalpha() for c in token)
    if token.lower() in _CLINICAL_CODES or _LAB_FORM.match(token) and digits < 5 or _RANGE.match(token):
        return False
    if letters == 0:
        return digits >= 5
    return digits >= 3 and len(token) >= 5 and sum(c.isupper() for c in token) >= 1


def rule_spans(text: str) -> list[Span]:
    """PHI spans found by our Safe Harbor rules (unmerged; names and places not yet propagated)."""
    out: list[Span] = []
    for m in _PLACEHOLDER.finditer(text):
        kind = _placeholder_kind(m.group(1))
        if kind:
            out.append(Span(m.start(), m.end(), kind))
    out += _spans(_SSN, text, "SSN", 1)
    out += _spans(_EMAIL, text, "EMAIL")
    out += _spans(_URL, text, "URL")
    out += _spans(_IP, text, "IP")
    for m in _PHONE.finditer(text):
        fax = _FAX_CUE.search(text, max(0, m.start() - 14), m.start())
        out.append(Span(m.start(), m.end(), "FAX" if fax else "PHONE"))
    for m in _PHONE_CUED.finditer(text):
        fax = m.group(0).lower().startswith("fax")
        out.append(Span(m.start(1), m.end(1), "FAX" if fax else "PHONE"))
    out += _spans(_DATE, text, "DATE")
    for m in _MONTH_DAY.finditer(text):
        month, day = int(m.group(1)), int(m.group(2))
        fraction = day <= 6 and month <= day and (  # 1/2, 2/6 murmur, 5/5 strength; but "Paracentesis 5/6"
            month == 1 or month == day == 5 or _FRACTION_AFTER.match(text, m.end())
            or _FRACTION_BEFORE.search(text, max(0, m.start() - 25), m.start()))
        if not fraction or _DATE_CUE.search(text, max(0, m.start() - 12), m.start()):
            out.append(Span(m.start(), m.end(), "DATE"))
    out += _spans(_AGE, text, "AGE")
    for m in _BARE_90S.finditer(text):  # "(94 by family's report)" near an age word
        window = text[max(0, m.start() - 60):m.end() + 60]
        if _AGE_CUE.search(window) and "\n" not in text[max(0, m.start() - 60):m.start()][-40:]:
            out.append(Span(m.start(), m.end(), "AGE"))
    out += _spans(_STREET, text, "ADDRESS")
    for m in _CITY_STATE_ZIP.finditer(text):
        out.append(Span(m.start(1), m.end(1), "LOCATION"))
        out.append(Span(m.start(2), m.end(2), "ZIP"))
    for m in _CITY_STATE.finditer(text):
        if m.group(2) not in _AMBIGUOUS_STATES and m.group(1).split()[0] not in _HEADER_WORDS:
            out.append(Span(m.start(1), m.end(1), "LOCATION"))
    out += _spans(_ZIP_AFTER_STATE, text, "ZIP", 1)
    out += [s for s in _spans(_FACILITY_RE, text, "LOCATION")  # not "Past Medical History", "Brief Hospital Course"
            if text[s.start:s.end].split()[0] not in _HEADER_WORDS]
    out += _spans(_FACILITY_CAPS, text, "LOCATION")
    for m in _LOCAL_PLACE.finditer(text):
        words = m.group(1).split()
        if words[0] not in _HEADER_WORDS:
            out.append(Span(m.start(1), m.start(1) + len(m.group(1).rstrip()), "LOCATION"))
    for m in _PLACE_CUE.finditer(text):
        place = m.group(1)
        if place.split()[0].lower() not in _CLOSED_CLASS or place.startswith("The "):
            out.append(Span(m.start(1), m.end(1), "LOCATION"))
    for m in _ID_CUE.finditer(text):
        out.append(Span(m.start(1), m.end(1), "ID"))
    for m in _CODE.finditer(text):
        if _is_id_code(m.group(0)):
            out.append(Span(m.start(), m.end(), "ID"))
    for pattern in (_TITLE, _CREDENTIAL, _FIELD, _RELATION, _SIGN_OFF):
        for m in pattern.finditer(text):
            start, end = m.start(1), m.end(1)
            cue = text[m.start():start].lower()
            if pattern is _RELATION and cue.startswith(("rn", "nurse")) and "," in cue:
                continue  # "Nurse Patrice, RN, Anticoagulation Service": a department, not a name
            lead, name = _trim_name(text[start:end])
            if name:
                out.append(Span(start + lead, start + lead + len(name), "NAME"))
    return out


def _trim_name(name: str) -> tuple[int, str]:
    """(offset, name) of a name match without leading titles and trailing header or closed-class words
    (``Kessler (Orthopaedics)`` stays ``Kessler``, ``Sra. Conceição Almeida`` becomes ``Conceição Almeida``)."""
    lead = 0
    while m := re.match(r"(?:Dr|Drs|Mr|Mrs|Ms|Miss|Mx|Prof|Sra|Sr|Sig|Mme|Mlle|Herr|Frau|Rev|Fr)\b\.?[ \t]+", name[lead:]):
        lead += m.end()
    name = name[lead:]
    words = name.split()
    if not all(w.isupper() for w in words):  # "Marchetti's TIPS clinic": a trailing abbreviation is no name
        while words and words[-1].isupper() and len(words[-1]) > 1:
            words.pop()
    while words and (words[-1].lower().strip(".,") in _CLOSED_CLASS or words[-1].strip(".,:") in _HEADER_WORDS):
        words.pop()
    if not words or words[0].lower().strip(".,") in _CLOSED_CLASS or words[0] in _HEADER_WORDS:
        return lead, ""
    last = name.find(words[-1], sum(len(w) for w in words[:-1]))
    return lead, name[:last + len(words[-1])]


def _propagate(text: str, spans: list[Span]) -> list[Span]:
    """Every other occurrence, in the same note, of a name word or place found once."""
    names: set[str] = set()
    places: set[str] = set()
    for s in spans:
        found = text[s.start:s.end]
        if s.kind == "NAME":
            for word in re.split(r"[\s,\"“”()]+", found):
                word = re.sub(r"['’]s$", "", word.strip(".'’"))
                if len(word) >= 3 and word.lower() not in _CLOSED_CLASS and word not in _HEADER_WORDS:
                    names.add(word)
                    names.update(p for p in re.split(r"-", word) if len(p) >= 4 and p.lower() not in _CLOSED_CLASS)
        elif s.kind == "LOCATION" and len(found) >= 4 and found.lower() not in _CLOSED_CLASS:
            places.add(found)
    out: list[Span] = []
    for words, kind in ((names, "NAME"), (places, "LOCATION")):
        if not words:
            continue
        pattern = re.compile(r"(?<![\w'’-])(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
                             + r")(?:['’]s)?(?![\w-])", re.IGNORECASE)
        for m in pattern.finditer(text):
            if m.group(0)[0].isupper():
                out.append(Span(m.start(), m.end(), kind))
    return out


# -- philter-lite -----------------------------------------------------------------------------------------
class _PosStandIn:
    """Part-of-speech tags for philter when NLTK's perceptron tagger (a separate download) is not installed:
    capitalised words that are not short all-caps abbreviations are proper nouns (NNP), numbers CD."""

    @staticmethod
    def pos_tag(tokens: list[str]) -> list[tuple[str, str]]:
        tags = []
        for t in tokens:
            if t.isspace():
                tags.append((t, "SP"))
            elif t.isdigit():
                tags.append((t, "CD"))
            elif t[:1].isupper() and t.lower() not in _CLOSED_CLASS and not (t.isupper() and len(t) <= 4):
                tags.append((t, "NNP"))
            else:
                tags.append((t, "NN"))
        return tags


def _nltk_tagger_installed() -> bool:
    try:
        import nltk

        nltk.data.find("taggers/averaged_perceptron_tagger_eng/")
        return True
    except (LookupError, ImportError):
        return False


@functools.lru_cache(maxsize=1)
def _philter() -> tuple[object, list[object]]:
    """philter-lite's detector and its shipped filter set (philter_delta), loaded once."""
    try:
        import philter_lite
        import philter_lite.philter as philter_module
    except ImportError as exc:
        raise MedRAGError("the philter de-identifier needs philter-lite: pip install 'medrag[notes]'") from exc
    from importlib.resources import as_file, files

    if not _nltk_tagger_installed():
        log.info("NLTK's perceptron tagger is not installed: philter gets part-of-speech tags from a stand-in")
        philter_module.nltk = _PosStandIn  # philter reads only nltk.pos_tag
    with as_file(files("philter_lite") / "configs" / "philter_delta.toml") as config:
        filters = philter_lite.load_filters(str(config))
    return philter_lite.detect_phi, filters


@functools.lru_cache(maxsize=1)
def _philter_common_words() -> frozenset[str]:
    """Philter's whitelist of common English words (195k)."""
    from philter_lite.filters import filter_db

    return frozenset(filter_db.set_db["nonames"])


def philter_spans(text: str) -> list[Span]:
    """PHI spans found by philter-lite (kinds: DATE where philter says so, else PHI)."""
    detect, filters = _philter()
    _include, exclude, tracker = detect(text, filters)
    dates = {(e.start, e.stop) for e in tracker.phi if e.phi_type == "DATE"}
    return [Span(start, stop, "DATE" if (start, stop) in dates else "PHI") for start, stop in exclude.filecoords()]


def _protected(text: str) -> list[tuple[int, int]]:
    """Stretches philter must not remove: drug-and-dose phrases, section headers, clinical abbreviations."""
    keep = [(m.start(1), m.end()) for m in _DOSE.finditer(text)]
    keep += [(m.start(), m.end()) for m in re.finditer(r"(?m)^[ \t]*[A-Z][A-Za-z /&-]{2,60}:", text)
             if all(w.strip(":") in _HEADER_WORDS or w.islower() or w in {"of", "and", "on", "or", "to"}
                    for w in m.group(0).split())]
    keep += [(m.start(), m.end()) for m in re.finditer(r"\b[A-Za-z][\w'’-]*\w", text)
             if m.group(0).lower() in _CLINICAL_WORDS]
    return keep


def _subtract(text: str, span: Span, covered: list[Span]) -> Iterator[Span]:
    """The stretches of ``span`` outside ``covered`` (sorted, disjoint), trimmed of spaces and punctuation."""
    pos = span.start
    for c in covered:
        if c.end <= pos or c.start >= span.end:
            continue
        if c.start > pos:
            yield from _trimmed(text, pos, c.start, span.kind)
        pos = max(pos, c.end)
    if pos < span.end:
        yield from _trimmed(text, pos, span.end, span.kind)


def _trimmed(text: str, start: int, end: int, kind: str) -> Iterator[Span]:
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    if start < end:
        yield Span(start, end, kind)


def _merge(text: str, spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans joined; the kind of the first in ``KINDS`` order wins."""
    rank = {k: i for i, k in enumerate(KINDS)}
    merged: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, s.end), min(last.kind, s.kind, key=rank.__getitem__))
        else:
            merged.append(s)
    return merged


def _parse_date(found: str) -> dt.date | None:
    """The calendar date a DATE span spells with its year; None when it has no year or does not parse."""
    s = found.strip("[]* ").strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?", s)
    if m:
        y, mo, d = map(int, m.groups())
    elif m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})", s):
        mo, d, y = map(int, m.groups())
        y = y + (2000 if y < 50 else 1900) if y < 100 else y
    elif m := re.fullmatch(rf"(?:{_WEEKDAY})?({_MONTH})\.?\s+(\d{{1,2}}){_ORD},?\s+(\d{{4}})", s, re.IGNORECASE):
        mo, d, y = _MONTHS[m.group(1).lower()[:3] if m.group(1).lower()[:4] != "sept" else "sept"], \
            int(m.group(2)), int(m.group(3))
    elif m := re.fullmatch(rf"(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTH})\.?,?\s+(\d{{4}})", s, re.IGNORECASE):
        d, mo, y = int(m.group(1)), _MONTHS[m.group(2).lower()[:3]], int(m.group(3))
    else:
        return None
    try:
        return dt.date(y, mo, d)
    except ValueError:
        return None


class Deidentifier:
    """Finds PHI in clinical text and replaces it with typed tags; see the module docstring.

    ``engine``: ``combined`` (default), ``rules`` or ``philter``. ``shift_dates``: move full dates by a
    keyed per-patient offset instead of tagging them. ``key``: the secret for pseudonyms and date offsets
    (default ``$MEDRAG_DEID_KEY``, else the encrypted index's being ingested, else random for this process).
    """

    def __init__(self, engine: str = "combined", *, shift_dates: bool = False, key: bytes | str | None = None) -> None:
        if engine not in ENGINES:
            raise MedRAGError(f"unknown de-identification engine {engine!r}; choose from {', '.join(ENGINES)}")
        self.engine = engine
        self.shift_dates = shift_dates
        key = key if key is not None else os.environ.get(KEY_ENV)
        self._given = (key.encode() if isinstance(key, str) else bytes(key)) if key else None
        self._random = secrets.token_bytes(32) if not key else b""
        self._warned = False
        if engine != "rules":
            _philter()  # fail early when philter-lite is missing

    @property
    def _key(self) -> bytes:
        """The key given (or ``$MEDRAG_DEID_KEY``), else the encrypted index's (``index_keyed``), else random."""
        if self._given is not None:
            return self._given
        derived = _INDEX_DEID_KEY.get()
        if derived is not None:
            return derived
        if not self._warned:
            self._warned = True
            log.info("no $%s: pseudonyms and date shifts use a random key that lasts for this process", KEY_ENV)
        return self._random

    def pseudonym(self, value: object, kind: str = "id") -> str:
        """A stable keyed pseudonym (16 hex digits) of a record id: same value and key, same pseudonym."""
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:16]

    def date_offset(self, patient_key: object) -> dt.timedelta:
        """The keyed shift of one patient's dates: 30 to 3,650 days into the past."""
        digest = hmac.new(self._key, f"date-shift\x00{patient_key}".encode(), hashlib.sha256).digest()
        return dt.timedelta(days=-(30 + int.from_bytes(digest[:4], "big") % 3621))

    def find(self, text: str) -> list[Span]:
        """The merged PHI spans of ``text``."""
        spans: list[Span] = []
        if self.engine in ("rules", "combined"):
            spans = rule_spans(text)
            spans += _propagate(text, spans)
        if self.engine == "philter":
            return _merge(text, philter_spans(text))
        ours = _merge(text, spans)
        if self.engine == "rules":
            return ours
        keep = _protected(text)
        extra = []
        for s in philter_spans(text):  # what philter adds beyond our spans, word by word, unless clinical text
            for piece in _subtract(text, s, ours):
                for m in re.finditer(r"\S+", text[piece.start:piece.end]):
                    word = Span(piece.start + m.start(), piece.start + m.end(), piece.kind)
                    if not self._clinical(text, word, keep):
                        extra.append(word)
        return _merge(text, ours + extra)

    @staticmethod
    def _clinical(text: str, span: Span, keep: list[tuple[int, int]]) -> bool:
        """A word philter flags that is clinical text, not PHI: inside a drug-and-dose phrase, header or clinical
        abbreviation; a short number or number range; a lowercase common English word; or a common word
        capitalised only because it starts a sentence or line ("Met w/ ...")."""
        if any(a <= span.start and span.end <= b for a, b in keep):
            return True
        word = text[span.start:span.end].strip(".,;:()[]'\"")
        if _NUMERIC.fullmatch(word) and (sum(c.isdigit() for c in word) < 5 or _RANGE.match(word)):
            return True
        parts = [p for p in re.split(r"[-/]", word) if p]
        if parts and all(p.lower() in _CLINICAL_WORDS for p in parts):
            return True
        common = _philter_common_words()
        if word.isalpha() and word.islower() and word in common:
            return True
        before = text[max(0, span.start - 40):span.start].rstrip(" \t")
        return word.isalpha() and (not before or before[-1] in ".!?:;\n(#-") and word.lower() in common

    def deidentify(self, text: str, patient_key: object | None = None) -> DeidResult:
        """``text`` with every PHI span replaced by ``[KIND]`` (or, for dates with ``shift_dates`` and a
        ``patient_key``, by the shifted date as YYYY-MM-DD)."""
        spans = self.find(text)
        offset = self.date_offset(patient_key) if self.shift_dates and patient_key is not None else None
        parts, pos, counts = [], 0, Counter()
        for s in spans:
            parts.append(text[pos:s.start])
            replacement = f"[{s.kind}]"
            if s.kind == "DATE" and offset is not None:
                day = _parse_date(text[s.start:s.end])
                if day is not None:
                    replacement = (day + offset).isoformat()
            parts.append(replacement)
            counts[s.kind] += 1
            pos = s.end
        parts.append(text[pos:])
        result = DeidResult("".join(parts), dict(counts), tuple(spans))
        log.debug("de-identified %d characters: %s", len(text), dict(counts))
        return result
