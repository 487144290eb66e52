"""``medrag.answering.focus``: a long consumer message's question and facts; short questions untouched.

The messages are written for these tests (none is copied from an evaluation set).
"""
from __future__ import annotations

import pytest

from medrag.answering.focus import MAX_WORDS, Focus, focus


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("question", [
    "What are the symptoms of high blood pressure?",
    "Can I take ibuprofen with metformin?",
    "how long does the flu last in children",
    "Is it safe to drink coffee while pregnant with gestational diabetes and taking insulin twice a day?",
])
def test_short_plain_question_is_unchanged(question: str) -> None:
    assert focus(question).text == question


def test_focus_is_a_small_immutable_record() -> None:
    f = focus("Hello doctor, my son is 4 and has asthma. Can he use a salbutamol inhaler every day? Thanks, Anna")
    assert isinstance(f, Focus) and isinstance(f.kept, tuple)
    with pytest.raises(AttributeError):
        f.text = "x"  # type: ignore[misc]


def test_gate_text_names_conditions_and_drugs_of_a_focused_message() -> None:
    f = focus("Hello doctor, my son is 4 and has asthma. He uses a salbutamol inhaler most days and we live near a "
              "busy road with a lot of traffic. Can he do sports at school? Thanks, Anna")
    assert "asthma" in f.terms and any("salbutamol" in t for t in f.terms)
    assert not any("4" in t for t in f.terms)  # ages are facts, not names to cover
    assert f.gate_text == " ".join(f.terms)
    plain = focus("What is asthma?")
    assert plain.terms == () and plain.gate_text == "What is asthma?"


def test_focus_of_a_focus_is_itself() -> None:
    message = ("Hi, my mother is 67 and was diagnosed with type 2 diabetes last spring. She takes metformin 500 mg "
               "twice a day. We moved to a new town in the summer. What is the best way to lower her blood sugar "
               "in the morning? Thanks, John")
    once = focus(message).text
    assert focus(once).text == once


def test_chinese_passes_through() -> None:
    text = "我母亲六十七岁，有糖尿病，正在吃二甲双胍。请问她可以吃布洛芬吗？谢谢"
    assert focus(text).text == text


def test_greeting_backstory_and_signature_dropped_age_and_drug_kept() -> None:
    message = ("Hi, my mother is 67 and was diagnosed with type 2 diabetes last spring. She takes metformin 500 mg "
               "twice a day. We moved to a new town in the summer and she likes to garden a lot. Her neighbours "
               "are very kind to her. What is the best way to lower her blood sugar in the morning? "
               "Thanks, John")
    f = focus(message)
    assert not f.text.lower().startswith("hi")
    assert "John" not in f.text and "Thanks" not in f.text
    assert "garden" not in f.text and "neighbours" not in f.text
    assert "What is the best way to lower her blood sugar in the morning?" in f.text
    assert "67" in f.text and "metformin" in f.text
    assert any("67" in k for k in f.kept) and any("metformin" in k for k in f.kept)
    assert any("diabetes" in k for k in f.kept)
    assert words(f.text) <= MAX_WORDS


def test_dear_doctor_and_regards_with_email_and_phone() -> None:
    message = ("Dear Doctor, I am writing because I am worried about my husband. He is 58 years old and has had "
               "a dry cough for three months. He smoked for twenty years but quit in 2010. We live near the coast "
               "and walk the dog every evening. Should he get a chest x-ray or a CT scan? "
               "Kind regards, Mary Jones, mary.jones@example.com, 555-123-4567")
    f = focus(message)
    assert "Dear" not in f.text and "regards" not in f.text.lower()
    assert "@" not in f.text and "555" not in f.text and "Mary" not in f.text
    assert "Should he get a chest x-ray or a CT scan?" in f.text
    assert "58 years old" in f.text
    assert "dog" not in f.text and "coast" not in f.text


def test_subject_line_that_the_message_repeats_is_dropped() -> None:
    message = ("Shingles vaccine. Hello, I would like to know whether the shingles vaccine is safe for someone "
               "who already had shingles two years ago. I am 71 and otherwise healthy. Thank you very much!")
    f = focus(message)
    assert not f.text.startswith("Shingles vaccine.")
    assert "I would like to know whether the shingles vaccine is safe" in f.text
    assert "71" in f.text


def test_subject_line_with_the_topic_is_kept_when_the_question_does_not_name_it() -> None:
    message = ("Lisinopril and a dry cough. I started this pill three weeks ago after my last checkup at the "
               "clinic downtown, and my wife says I keep her awake at night. My brother-in-law had the same "
               "thing once. Is it normal and will it go away on its own?")
    f = focus(message)
    assert "Lisinopril" in f.text
    assert "Is it normal and will it go away on its own?" in f.text
    assert "brother-in-law" not in f.text


def test_question_without_question_mark_by_its_cue() -> None:
    message = ("Good morning. My daughter is 16 and she has had heavy periods with cramps since she was 13. "
               "She is on the school swim team and trains four days a week and her coach is very strict. "
               "Please tell me if iron tablets could help with her tiredness. Best wishes, Karen")
    f = focus(message)
    assert "Please tell me if iron tablets could help with her tiredness." in f.text
    assert "16" in f.text
    assert "coach" not in f.text and "Karen" not in f.text and "Good morning" not in f.text


def test_pregnancy_is_kept() -> None:
    message = ("Hello sir. I am 24 weeks pregnant with my second baby and my feet and ankles swell a lot by the "
               "evening. My first pregnancy was in another country and the doctors there were very busy. "
               "My mother-in-law says to drink less water. Can you help me understand when swelling is dangerous?")
    f = focus(message)
    assert "24 weeks pregnant" in f.text
    assert "when swelling is dangerous" in f.text
    assert any("pregnant" in k for k in f.kept)
    assert "mother-in-law" not in f.text


def test_placeholders_and_self_introduction_removed() -> None:
    message = ("Hi, my name is [NAME] from [LOCATION]. I have had psoriasis on my elbows since I was a teenager "
               "and the creams from my pharmacy stopped working last winter. My cousin mentioned them at a family "
               "dinner while we were talking about work. Are biologics like adalimumab safe for long-term use? "
               "[CONTACT]")
    f = focus(message)
    assert "[" not in f.text and "NAME" not in f.text and "my name is" not in f.text.lower()
    assert "Are biologics like adalimumab safe for long-term use?" in f.text
    assert "psoriasis" in f.text
    assert "cousin" not in f.text and "dinner" not in f.text
    assert any("adalimumab" in k for k in f.kept)


def test_long_rambling_message_is_capped() -> None:
    message = " ".join(["My father is 80 and has Parkinson disease and takes levodopa three times a day."]
                       + ["We visited my aunt last week and the weather was lovely and the food was good."] * 6
                       + ["What can we do about his shaking hands and his trouble sleeping at night, and is there "
                          "any exercise that helps people with Parkinson keep their balance and avoid falls?"])
    f = focus(message)
    assert words(f.text) <= MAX_WORDS
    assert "aunt" not in f.text and "weather" not in f.text
    assert "shaking hands" in f.text
    assert any("80" in k for k in f.kept) and any("levodopa" in k for k in f.kept)


def test_all_caps_message() -> None:
    message = ("HELLO. MY SON IS 7 YEARS OLD AND HAS A RASH ON HIS ARMS AFTER CAMP. WE WENT TO THE LAKE AND "
               "HAD A PICNIC WITH OUR FRIENDS AND THEIR DOGS. WHAT CAN I PUT ON IT? THANK YOU")
    f = focus(message)
    assert "WHAT CAN I PUT ON IT?" in f.text
    assert "7 YEARS OLD" in f.text and "RASH" in f.text
    assert "PICNIC" not in f.text and "THANK" not in f.text


def test_message_without_any_recognised_part_falls_back_to_its_words() -> None:
    message = "Hello! Hello! " + " ".join(["blah"] * 60)
    f = focus(message)
    assert f.text and words(f.text) <= MAX_WORDS
