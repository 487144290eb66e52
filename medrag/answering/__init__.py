"""Answering: from a question to a cited answer (the room ``MedRAG.ask`` is the front door of).

Parts: ``kinds`` (what kind of question was asked), ``focus`` (a long consumer message's question),
the evidence and the sentence choice (see docs/answer.md).
"""
