"""Docker's variable substitution for one word."""

from __future__ import annotations

import pytest

from skiff.build import expand
from skiff.build.expand import ExpandError

ENV = {"A": "apple", "E": "", "P": "/usr/bin", "N1": "x"}


@pytest.mark.parametrize("word, out", [
    ("$A", "apple"),
    ("${A}", "apple"),
    ("${A}_pie", "apple_pie"),
    ("$A_pie", ""),  # the name is A_pie, which is unset
    ("$N1.x", "x.x"),
    ("$UNSET", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${E:-dflt}", "dflt"),
    ("${E-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${A:-dflt}", "apple"),
    ("${A:+alt}", "alt"),
    ("${E:+alt}", ""),
    ("${E+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("${UNSET:-$A/${P}}", "apple//usr/bin"),
    ("${UNSET:-${UNSET2:-deep}}", "deep"),
    ("${UNSET:-a b}", "a b"),
    ("${UNSET:-\"q}\"}", "q}"),
    ("\\$A", "$A"),
    ("\\${A}", "${A}"),
    ("'$A'", "$A"),
    ('"$A"', "apple"),
    ('"a \\"b\\" \\$A \\n"', 'a "b" $A \\n'),
    ("a\\ b", "a b"),
    ("trailing\\", "trailing"),
    ("$", "$"),
    ("a$", "a$"),
    ("$-x", "x"),  # $- is a special parameter, never set in a build
    ("$1", ""),
    ("${A}${A}", "appleapple"),
    ("p'q'\"r\"", "pqr"),
])
def test_expand(word, out):
    assert expand(word, ENV) == out


def test_backtick_escape():
    assert expand("`$A c:\\dir", ENV, escape="`") == "$A c:\\dir"
    assert expand('"`"x`""', ENV, escape="`") == '"x"'


@pytest.mark.parametrize("word, message", [
    ("${A", "missing '}'"),
    ("${A:-x", "missing '}'"),
    ("${}", "missing variable name"),
    ("${A%%x}", "unsupported modifier"),
    ("${A:=x}", "unsupported modifier ':='"),
    ("'open", "matching '"),
    ('"open', 'matching "'),
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${E:?}", "E: is not set"),
])
def test_expand_errors(word, message):
    with pytest.raises(ExpandError, match=message):
        expand(word, ENV)


def test_question_forms_pass_when_set():
    assert expand("${A:?x}", ENV) == "apple"
    assert expand("${E?x}", ENV) == ""
