"""Question kinds: hand-written consumer phrasings (English and Chinese), MedQuAD titles, qtype labels."""
from __future__ import annotations

import pytest

from medrag.answering.kinds import (
    KINDS,
    LIST_KINDS,
    QTYPE_KIND,
    SHORT_KINDS,
    passage_kind,
    qtype_kind,
    question_kind,
)

#: consumer phrasings written for this test (not MedQuAD templates), with the kind each asks for
CONSUMER = [
    # treatment
    ("How is asthma treated?", "treatment"),
    ("what helps with a sore throat", "treatment"),
    ("What can I take for a migraine?", "treatment"),
    ("medicine for heartburn", "treatment"),
    ("How do I get rid of a yeast infection?", "treatment"),
    ("Is there a cure for psoriasis?", "treatment"),
    ("What is the treatment for strep throat?", "treatment"),
    ("what's the best way to treat a sprained ankle", "treatment"),
    ("Can I take ibuprofen for back pain?", "treatment"),
    ("What should I do about my son's eczema?", "treatment"),
    ("home remedies for a cough", "treatment"),
    ("How can I lower my blood pressure without pills?", "treatment"),
    ("Do I need surgery for a torn meniscus?", "treatment"),
    ("I was diagnosed with gout last month. What should I eat?", "treatment"),
    ("how to stop a nosebleed", "treatment"),
    ("Which antibiotics work for a UTI?", "treatment"),
    ("What is metformin used for?", "treatment"),
    # symptoms
    ("What are the signs of a stroke?", "symptoms"),
    ("Does high blood pressure cause symptoms?", "symptoms"),
    ("How do I know if I have the flu or just a cold?", "symptoms"),
    ("What does a panic attack feel like?", "symptoms"),
    ("early warning signs of diabetes in kids", "symptoms"),
    ("Is a stiff neck a symptom of meningitis?", "symptoms"),
    ("What does a shingles rash look like?", "symptoms"),
    ("how can you tell if a cut is infected", "symptoms"),
    # causes
    ("What causes kidney stones?", "causes"),
    ("Why do people get migraines?", "causes"),
    ("How do you get hepatitis C?", "causes"),
    ("How do kids catch pinworms?", "causes"),
    ("Is strep throat contagious?", "causes"),
    ("Can stress cause hair loss?", "causes"),
    ("why am I always tired", "causes"),
    ("What triggers an asthma attack?", "causes"),
    # prevention
    ("How to prevent the flu?", "prevention"),
    ("Can asthma attacks be prevented?", "prevention"),
    ("Is there a vaccine for Lyme disease?", "prevention"),
    ("how can I avoid getting food poisoning when traveling", "prevention"),
    ("What can I do to lower my risk of a heart attack?", "prevention"),
    ("How do I protect my kids from ticks?", "prevention"),
    # diagnosis
    ("How is celiac disease diagnosed?", "diagnosis"),
    ("What tests are used to check for thyroid problems?", "diagnosis"),
    ("Is there a blood test for ovarian cancer?", "diagnosis"),
    ("At what point should I get screened for colon cancer, and how?", "diagnosis"),
    ("How do doctors know if you have Alzheimer's?", "diagnosis"),
    ("What does a high PSA test result mean?", "diagnosis"),
    # outlook
    ("What is the life expectancy with COPD?", "outlook"),
    ("What health problems can obesity cause?", "outlook"),
    ("Can type 2 diabetes be cured?", "outlook"),
    ("Will my tinnitus go away on its own?", "outlook"),
    ("What are the complications of untreated sleep apnea?", "outlook"),
    ("What is the prognosis for pancreatic cancer?", "outlook"),
    ("How long does the stomach flu last?", "outlook"),
    ("Is melanoma curable if caught early?", "outlook"),
    ("what happens if high blood pressure is left untreated", "outlook"),
    ("Can you die from pneumonia?", "outlook"),
    # risk
    ("Who is at risk for osteoporosis?", "risk"),
    ("What are the risk factors for breast cancer?", "risk"),
    ("Am I at risk for glaucoma if my mother has it?", "risk"),
    ("Is celiac disease hereditary?", "risk"),
    ("Is autism genetic?", "risk"),
    ("Does smoking increase the risk of stroke?", "risk"),
    ("Does colon cancer run in families?", "risk"),
    # definition
    ("What is lupus?", "definition"),
    ("What does 'benign' mean?", "definition"),
    ("Define hypertension", "definition"),
    ("what's an aneurysm", "definition"),
    ("Can you tell me about fibromyalgia?", "definition"),
    ("what kind of disease is sarcoidosis", "definition"),
    # yes/no
    ("Is it safe to drink coffee while pregnant?", "yesno"),
    ("Should I go to work with a fever?", "yesno"),
    ("I got my flu shot yesterday. Is it OK to exercise today?", "yesno"),
    ("Hi doctor, is it normal to feel dizzy after standing up fast?", "yesno"),
    ("Does drinking water help kidney function?", "yesno"),
    ("Are eggs bad for cholesterol?", "yesno"),
    # other
    ("How common is psoriasis?", "other"),
    ("What are the side effects of lisinopril?", "other"),
    ("How much ibuprofen can I take in a day?", "other"),
    ("What kind of doctor treats gout?", "other"),
    ("Are there any clinical trials for ALS?", "other"),
    ("thanks", "other"),
    # a second batch, written later (the rules then grew to cover the ones they missed)
    ("best cream for athlete's foot", "treatment"),
    ("Which is better for arthritis pain, Tylenol or Advil?", "treatment"),
    ("Can you get chlamydia from a toilet seat?", "causes"),
    ("What exactly are triglycerides?", "definition"),
    ("What do you recommend for a stuffy nose?", "treatment"),
    ("my back is killing me what do i do", "treatment"),
    ("is physical therapy effective for sciatica", "treatment"),
    ("how to treat burns at home", "treatment"),
    ("what should I put on a bee sting", "treatment"),
    ("How do I tell if my child has an ear infection?", "symptoms"),
    ("What are the symptoms of low iron", "symptoms"),
    ("signs of dehydration in elderly", "symptoms"),
    ("What are the causes of hair loss in women?", "causes"),
    ("what makes your blood pressure go up", "causes"),
    ("why do I get leg cramps at night", "causes"),
    ("How did I get shingles?", "causes"),
    ("how do you stop the spread of norovirus", "prevention"),
    ("Is there anything I can do to prevent Alzheimer's?", "prevention"),
    ("when should my baby get the measles vaccine", "prevention"),
    ("what blood tests check for liver damage", "diagnosis"),
    ("how is lyme disease detected", "diagnosis"),
    ("What is the long term outlook for someone with MS?", "outlook"),
    ("Can a torn ACL heal without surgery?", "outlook"),
    ("how serious is a heart murmur", "outlook"),
    ("Is kidney failure permanent?", "outlook"),
    ("Are smokers at higher risk for COVID complications?", "risk"),
    ("Is breast cancer passed down from the father's side?", "risk"),
    ("what age do men get prostate cancer", "risk"),
    ("What is the thyroid gland?", "definition"),
    ("What's the meaning of HDL?", "definition"),
    ("Is walking good exercise for seniors?", "yesno"),
    ("Should I be worried about a mole that itches?", "yesno"),
    ("Will drinking cranberry juice help with UTI?", "treatment"),
    ("What's a normal heart rate?", "other"),
    ("How many people have diabetes in the US?", "other"),
]

#: Chinese consumer phrasings written for this test (Traditional ones too)
CHINESE = [
    ("高血压怎么治？", "treatment"),
    ("感冒了吃什么药好得快", "treatment"),
    ("糖尿病应该用药还是打胰岛素", "treatment"),
    ("孩子发烧了怎么办", "treatment"),
    ("甲状腺结节有什么症状？", "symptoms"),
    ("心梗发作前有哪些征兆", "symptoms"),
    ("怎么知道自己是不是得了抑郁症", "symptoms"),
    ("为什么会得痛风？", "causes"),
    ("口腔溃疡是什么原因引起的", "causes"),
    ("乙肝会传染吗", "causes"),
    ("我妈妈去年确诊了糖尿病。现在应该吃什么？", "treatment"),
    ("流感怎么预防", "prevention"),
    ("如何避免得骨质疏松", "prevention"),
    ("宫颈癌需要做哪些检查？", "diagnosis"),
    ("胃癌怎么诊断", "diagnosis"),
    ("肝癌晚期能活多久", "outlook"),
    ("白血病能治好吗", "outlook"),
    ("糖尿病有哪些并发症", "outlook"),
    ("哪些人容易得胆结石", "risk"),
    ("近视会遗传吗", "risk"),
    ("什么是幽门螺杆菌", "definition"),
    ("红斑狼疮是什么病", "definition"),
    ("孕妇可以喝咖啡吗", "yesno"),
    ("糖尿病人能吃西瓜吗？", "yesno"),
    ("氣喘要怎麼治療？", "treatment"),
    ("糖尿病有哪些症狀？", "symptoms"),
    ("如何預防中風？", "prevention"),
    ("這個病會遺傳嗎", "risk"),
    ("腰疼贴什么膏药", "treatment"),
    ("牙疼有什么办法缓解", "treatment"),
    ("新冠有哪些表现", "symptoms"),
    ("为啥老是头晕", "causes"),
    ("怎样防止近视加深", "prevention"),
    ("胃镜能查出什么", "diagnosis"),
    ("胰腺炎严重吗", "outlook"),
    ("哪些人不适合吃阿胶", "risk"),
    ("甲流是什么", "definition"),
    ("感冒可以洗澡吗", "yesno"),
]


@pytest.mark.parametrize(("question", "kind"), CONSUMER)
def test_consumer_english(question: str, kind: str) -> None:
    assert question_kind(question) == kind


@pytest.mark.parametrize(("question", "kind"), CHINESE)
def test_consumer_chinese(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_enough_hand_written_phrasings() -> None:
    assert len(CONSUMER) >= 40
    assert {k for _, k in CONSUMER} == set(KINDS)


def test_chinese_falls_back_to_the_translation() -> None:
    # no Chinese rule says what this asks; its translation does
    assert question_kind("扁桃体发炎要挂几天水", "How many days of IV treatment does tonsillitis need?") == "treatment"
    assert question_kind("扁桃体发炎要挂几天水") == "other"
    # a Chinese content rule wins over the translation
    assert question_kind("高血压有什么症状", "How is high blood pressure treated?") == "symptoms"
    # "吗" alone is weaker than the translation's kind, but stands when the translation has none
    assert question_kind("二甲双胍可以长期吃吗", "Can metformin be taken long-term for diabetes?") == "treatment"
    assert question_kind("孕妇可以喝咖啡吗", "Can pregnant women drink coffee?") == "yesno"
    # English words inside a Chinese question count
    assert question_kind("HPV vaccine 有用吗") == "prevention"


def test_precedence() -> None:
    assert question_kind("Can asthma be prevented?") == "prevention"
    assert question_kind("Is there a cure for hepatitis B?") == "treatment"
    assert question_kind("Can hepatitis B be cured?") == "outlook"
    assert question_kind("What is the treatment for scabies?") == "treatment"
    assert question_kind("What is scabies and how is it treated?") == "treatment"
    assert question_kind("What tests are needed before treatment for hepatitis C?") == "diagnosis"
    assert question_kind("What is the treatment if my strep test is positive?") == "treatment"
    assert question_kind("How can I lower my risk of skin cancer?") == "prevention"
    assert question_kind("What increases the risk of skin cancer?") == "risk"
    assert question_kind("Is hereditary angioedema fatal?") == "outlook"
    assert question_kind("Is familial hypercholesterolemia inherited?") == "risk"
    assert question_kind("What are the genetic changes related to cystic fibrosis?") == "causes"


def test_narrative_is_not_the_question() -> None:
    assert question_kind("My dad was diagnosed with COPD in May. How long can he live with it?") == "outlook"
    assert question_kind("I have had a rash for two weeks. What could be causing it?") == "causes"


@pytest.mark.parametrize(("title", "kind"), [
    ("What are the symptoms of Pneumonia ?", "symptoms"),
    ("What is (are) Leber hereditary optic neuropathy ?", "definition"),
    ("What causes Gout ?", "causes"),
    ("Who is at risk for Alpha-1 Antitrypsin Deficiency? ?", "risk"),
    ("How to diagnose Acromegaly ?", "diagnosis"),
    ("What are the treatments for Absence of the Septum Pellucidum ?", "treatment"),
    ("What is the outlook for Aicardi Syndrome ?", "outlook"),
    ("Is Fatal familial insomnia inherited ?", "risk"),
    ("How many people are affected by Aarskog-Scott syndrome ?", "other"),
    ("What research (or clinical trials) is being done for Batten Disease ?", "other"),
    ("Pneumonia: What are the symptoms of Pneumonia?", "symptoms"),
    ("Do you have information about A1C", "definition"),
    ("高血压有什么症状？", "symptoms"),
])
def test_passage_kind_of_question_titles(title: str, kind: str) -> None:
    assert passage_kind(title) == kind


@pytest.mark.parametrize("title", ["Treatment", "Asthma", "Management of type 2 diabetes in adults", "", "   "])
def test_passage_kind_none_for_other_titles(title: str) -> None:
    assert passage_kind(title) is None


def test_qtype_map() -> None:
    assert QTYPE_KIND["information"] == "definition"
    assert qtype_kind("Exams and Tests") == "diagnosis"
    assert qtype_kind("susceptibility") == qtype_kind("inheritance") == "risk"
    assert qtype_kind("complications") == "outlook"
    assert qtype_kind("support groups") == qtype_kind("no such qtype") == qtype_kind(None) == "other"
    assert set(QTYPE_KIND.values()) <= set(KINDS)


def test_kind_groups() -> None:
    assert LIST_KINDS == {"treatment", "symptoms", "causes", "prevention", "diagnosis", "risk"}
    assert SHORT_KINDS == {"definition", "yesno"}
    assert not LIST_KINDS & SHORT_KINDS


def test_empty_and_odd_input() -> None:
    assert question_kind("") == "other"
    assert question_kind("   ?? ") == "other"
    assert question_kind("WHAT ARE THE SYMPTOMS OF MEASLES") == "symptoms"
    assert question_kind("How’s Lyme disease treated?") == "treatment"
