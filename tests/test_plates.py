"""Plate formats, normalisation and look-alike fixing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.plates import (ALNUM, DEFAULT_FORMATS, FORMATS, TO_DIGIT, TO_LETTER, PlateFormat,
                         coerce, get_formats, match_format, normalise)


def test_normalise_upper_cases_and_keeps_only_a_z_0_9():
    assert normalise(" 1ab-23 45 ") == "1AB2345"
    assert normalise("BA·123·CD\n") == "BA123CD"
    assert normalise("MÜ-É 1") == "M1"


@given(st.text())
def test_normalise_is_idempotent_and_alnum_only(text):
    once = normalise(text)
    assert normalise(once) == once
    assert set(once) <= set(ALNUM)


def test_pattern_spaces_are_layout_only():
    assert FORMATS["CZ"].pattern == "DLADDDD"
    assert FORMATS["CZ"].templates == ("DLADDDD",)


@pytest.mark.parametrize("name, good, bad", [
    ("CZ", ["1AB2345", "7A01234", "2B34567"], ["AB12345", "1AB234"]),
    ("SK", ["BA123CD"], ["BA12CDE"]),
    ("UK", ["AB12CDE"], ["AB123DE"]),
    ("ES", ["1234BCD"], ["123BCDE"]),
    ("BR", ["ABC1234"], ["ABC1D23"]),
    ("BR_MERCOSUR", ["ABC1D23"], ["ABC1234"]),
    ("DE", ["BA1", "MAB1234", "KA1", "HHAB123"], ["B1", "MABC12345", "1AB", "AB12C"]),
    ("US", ["ABC12", "6A5730A"], ["ABCD", "ABCD1234"]),
])
def test_formats_accept_their_plates_only(name, good, bad):
    fmt = FORMATS[name]
    assert all(fmt.matches(t) for t in good)
    assert not any(fmt.matches(t) for t in bad)


def test_variable_length_format_respects_max_len():
    assert max(FORMATS["DE"].lengths) == 8
    assert min(FORMATS["DE"].lengths) == 3


def test_bad_pattern_is_refused_naming_the_format():
    with pytest.raises(ValueError, match="'XX'"):
        PlateFormat("XX", "XX", "LL-DD")


def test_formats_are_looked_up_by_name_and_all_means_defaults():
    assert get_formats(["cz", " SK "]) == (FORMATS["CZ"], FORMATS["SK"])
    assert get_formats(["all"]) == DEFAULT_FORMATS
    with pytest.raises(ValueError, match="unknown plate format 'XX'"):
        get_formats(["XX"])


def test_the_first_fitting_format_is_reported():
    assert match_format("ABC1234", DEFAULT_FORMATS).name == "BR"  # also fits DE and US
    assert match_format("ABC1234", (FORMATS["DE"],)).name == "DE"
    assert match_format("1A", DEFAULT_FORMATS) is None
    assert match_format("ABC1234", (FORMATS["US"], FORMATS["BR"])).name == "BR"  # generic last


def test_look_alike_maps_go_both_ways():
    for digit, letter in TO_LETTER.items():
        assert TO_DIGIT[letter] == digit


def test_coerce_swaps_look_alikes_to_fit_a_format():
    cz, sk = FORMATS["CZ"], FORMATS["SK"]
    assert coerce("1AB2O45", [cz]) == ("1AB2045", cz)
    assert coerce("B4123CD", [sk]) == ("BA123CD", sk)
    assert coerce("8A123BC", [cz, sk]) == ("BA123BC", sk)


def test_coerce_tries_specific_formats_before_accepting_a_generic_one():
    us, cz = FORMATS["US"], FORMATS["CZ"]
    assert coerce("1AB2O45", [us, cz]) == ("1AB2045", cz)
    assert coerce("1ABX345", [us, cz]) == ("1ABX345", us)
    assert us.generic and not cz.generic


def test_coerce_leaves_fitting_text_alone_and_gives_up_on_the_rest():
    cz = FORMATS["CZ"]
    assert coerce("1AB2345", [cz]) == ("1AB2345", cz)
    assert coerce("1ABX345", [cz]) is None   # X has no digit look-alike
    assert coerce("1AB23456", [cz]) is None  # wrong length


@given(st.text(alphabet=ALNUM, min_size=3, max_size=8))
def test_coerced_text_fits_the_format_it_names(text):
    result = coerce(text, DEFAULT_FORMATS)
    if result is not None:
        fixed, fmt = result
        assert fmt.matches(fixed) and len(fixed) == len(text)


def test_us_plates_store_the_shared_o_zero_glyph_as_zero():
    fitted = coerce("CHICAGO", [FORMATS["US"]])
    assert fitted is not None and fitted[0] == "CHICAG0"
    assert FORMATS["SK"].canonical("RK340AO") == "RK340AO"  # SK issues the letter O
