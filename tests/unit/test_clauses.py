"""Streamed LLM text cut into speakable pieces."""

from __future__ import annotations

from bridge.conversation.clauses import ClauseSplitter, clean_for_speech


def split(text: str, splitter: ClauseSplitter | None = None) -> list[str]:
    splitter = splitter or ClauseSplitter()
    pieces = []
    for token in text.replace(" ", " |").split("|"):
        pieces += splitter.feed(token)
    return pieces + splitter.flush()


def test_first_piece_is_short_then_whole_sentences() -> None:
    pieces = split("The opening hours on Saturday are 9 am to 1 pm. We are closed on Sunday. Call us!")
    assert pieces == ["The opening hours", "on Saturday are 9 am to 1 pm.", "We are closed on Sunday.", "Call us!"]


def test_a_short_first_sentence_is_its_own_piece() -> None:
    assert split("Sure thing. Our address is 12 Harbour Street.") == [
        "Sure thing.",
        "Our address is 12 Harbour Street.",
    ]


def test_a_lone_interjection_waits_for_more_words() -> None:
    splitter = ClauseSplitter(first_piece_max_words=0)
    assert split("Yes, we are open on Monday.", splitter) == ["Yes, we are open on Monday."]
    splitter = ClauseSplitter(first_piece_max_words=0)
    assert split("Of course we can, just call us.", splitter) == ["Of course we can,", "just call us."]


def test_numbers_with_points_do_not_end_a_sentence() -> None:
    pieces = split("It costs 89.50 dollars today. Thanks.", ClauseSplitter(first_piece_max_words=0))
    assert pieces == ["It costs 89.50 dollars today.", "Thanks."]


def test_runaway_text_is_cut_at_a_word_boundary() -> None:
    pieces = split("word " * 50, ClauseSplitter(first_piece_max_words=0, max_words=20))
    assert [len(piece.split()) for piece in pieces] == [20, 20, 10]


def test_markdown_is_not_read_out() -> None:
    assert clean_for_speech("**Hours**: see [our site](http://x) `now`") == "Hours: see our site now"
