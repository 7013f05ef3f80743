"""The grounding check: what an answer may state, from a table of sentences."""

from __future__ import annotations

import pytest

from bridge.conversation.grounding import GroundedAnswer, Grounding

KNOWLEDGE = (
    "You are Alex, the receptionist of Northwind Fibre.\n"
    "Opening hours: Monday to Friday 8 am to 8 pm, Saturday 9 am to 5 pm, closed on Sunday.\n"
    "Fibre 1000 plan: 70 dollars a month.\n"
    "Dana Whitfield is the customer care manager."
)
FALLBACK = "I don't have that information here."


@pytest.mark.parametrize(
    ("sentence", "caller", "problems"),
    [
        ("We are open 9 am to 5 pm on Saturday.", "hours on saturday?", []),
        ("We are closed on Sundays.", "are you open sundays", []),
        ("Dana Whitfield is our customer care manager.", "who is Dana?", []),
        ("The fibre plan costs 10 dollars a month.", "how much is fibre", ["number 10"]),
        ("It costs ten dollars.", "how much", ["number 10"]),
        ("You can call 911 for help.", "my line is dead", ["number 911"]),
        ("We open on Wednesday at 8 am.", "when do you open", []),  # inside "Monday to Friday"
        ("We open on Sunday at 9 am.", "when do you open", []),  # named (as closed): polarity is the model's
        ("Tolo is open on Saturday.", "Tolo", ["name Tolo"]),  # a misheard word repeated as a name
        ("Kevin Tran works in sales.", "does Kevin Tran work there", ["name Kevin", "name Tran"]),
        ("The Fibre 2000 plan is 70 dollars a month.", "how much is the Fibre 2000 plan", ["70 about 2000"]),
        ("Sorry, I can take a message for you.", "", []),
        ("We are open in December.", "", ["day december"]),
    ],
)
def test_what_an_answer_may_state(sentence: str, caller: str, problems: list[str]) -> None:
    assert Grounding(KNOWLEDGE).unsupported(sentence, caller) == problems


def test_a_day_the_facts_never_name_is_an_invention() -> None:
    assert Grounding("Open Monday and Friday.").unsupported("We open on Tuesday.", "when") == ["day tuesday"]


def test_the_callers_own_name_may_be_used() -> None:
    assert Grounding(KNOWLEDGE).unsupported("Thanks, Maria, we open at 8 am.", "", caller_name="Maria") == []


def test_an_ungrounded_clause_is_replaced_and_ends_the_answer() -> None:
    answer = GroundedAnswer(Grounding(KNOWLEDGE), FALLBACK, "how much is fibre")
    spoken = answer.feed("Sure, our plans are great. The basic plan costs 10 dollars a month. ")
    spoken += answer.feed("And much more.") + ([] if answer.done else answer.flush())
    assert spoken == ["Sure, our plans are great.", FALLBACK]
    assert answer.fell_back and answer.rejected == ["number 10"] and answer.text == "Sure, our plans are great."


def test_an_empty_answer_is_the_fallback() -> None:
    answer = GroundedAnswer(Grounding(KNOWLEDGE), FALLBACK, "hello")
    assert answer.flush() == [FALLBACK] and answer.fell_back


def test_a_price_pinned_on_a_callers_plan_across_clause_pieces_is_caught() -> None:
    """The splitter cuts the first piece after three words ("The Fibre 2000"): the check sees the
    sentence so far, so the price in the next piece is still caught as pinned on the caller's plan."""
    answer = GroundedAnswer(Grounding(KNOWLEDGE), FALLBACK, "How much is the Fibre 2000 plan?")
    spoken: list[str] = []
    for word in ["The", "Fibre", "2000", "plan", "costs", "70", "dollars", "a", "month."]:
        spoken += answer.feed(f" {word}")
    spoken += [] if answer.done else answer.flush()
    assert spoken[-1] == FALLBACK and answer.rejected == ["70 about 2000"]


PRICES = (
    "You are Alex, the receptionist of Northwind Fibre.\n"
    "Fibre 300 plan: 45 dollars a month.\n"
    "Fibre 1000 plan: 70 dollars a month.\n"
    "Flu shot: 30 dollars.\n"
    "Opening hours: Monday to Friday 8 am to 8 pm, closed on Sunday."
)


@pytest.mark.parametrize(
    ("sentence", "caller", "problems"),
    [
        # A misheard plan name: the price of a plan nobody asked about.
        ("The fibre to balance plan is 45 dollars.", "how much is the fibre to balance", ["45 without its subject"]),
        ("It is 45 dollars a month.", "how much is the Fibre 300 plan", []),  # the subject is in the question
        ("The Fibre 300 plan is 45 dollars a month.", "how much are your plans", []),  # or in the answer
        ("It's 30 dollars.", "how much do you charge for a flu shot", []),
        ("We close at 8 pm.", "what time do you close on fridays", []),
        ("We're open from 8 am.", "when do you open", []),  # "open" is the hours fact's "opening"
        ("That's 30 dollars.", "how much is an oil change", ["30 without its subject"]),
    ],
)  # fmt: skip
def test_a_facts_number_needs_that_facts_subject(sentence: str, caller: str, problems: list[str]) -> None:
    assert Grounding(PRICES).unsupported(sentence, caller) == problems
