"""A citation points at the line where the question's words are said."""

from wwhd.knowledge.sparse import analyze_query
from wwhd.links import citation_timestamp as format_timestamp
from wwhd.links import deep_link
from wwhd.pipeline.nodes import best_moment


def payload(lines):
    text, marks = "", []
    for second, line in lines:
        marks.append([len(text) + (1 if text else 0), second])
        text = f"{text} {line}" if text else line
    return {
        "text": text,
        "marks": marks,
        "start_s": lines[0][0],
        "youtube_url": "https://youtu.be/abcDEF12345",
    }


def test_best_moment_is_the_matching_line_not_the_chunk_start():
    p = payload(
        [
            (600.0, "We talked about the weather and the drive over."),
            (630.0, "Then my uncle told a long story about fishing."),
            (725.0, "The copper kettle teaches patience, never rush the water."),
            (760.0, "After that we had lunch."),
        ]
    )
    moment = best_moment(p, analyze_query("why does the copper kettle teach patience"))
    assert moment == 725.0
    assert (
        deep_link({**p, "start_s": moment}) == "https://www.youtube.com/watch?v=abcDEF12345&t=725s"
    )
    assert format_timestamp(moment) == "00:12:05"


def test_best_moment_falls_back_to_the_chunk_start():
    p = payload([(5.0, "Alpha line here."), (9.0, "Beta line here.")])
    assert best_moment(p, analyze_query("quantum chromodynamics")) == 5.0
    assert best_moment({"text": "x", "marks": [], "start_s": 42.0}, analyze_query("x")) == 42.0
