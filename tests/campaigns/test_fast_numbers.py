"""The fast number reader gives the ordinary path's answer — reason, E.164 and time zones — always."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from campaigns.fast_numbers import read_number_fast
from campaigns.services.numbers import read_number

# Centers' default regions: North American (the national-format fast path), others, and unknown.
CENTER_REGIONS = ["US", "CA", "JM", "GB", "DE", "IT", "BR", "AU", "IN", "AR", "MX", "RU", "ZZ", "XX"]
FORMATS = [
    PhoneNumberFormat.E164,
    PhoneNumberFormat.INTERNATIONAL,
    PhoneNumberFormat.NATIONAL,
    PhoneNumberFormat.RFC3966,
]


def _examples() -> list[phonenumbers.PhoneNumber]:
    """An example number of every type of every region and non-geographic calling code."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(PhoneNumberType.UNKNOWN):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(example)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.append(example)
    return found


EXAMPLES = _examples()


def assert_same(text: str, region: str) -> None:
    assert read_number_fast(text, region=region) == read_number(text, region=region), (text, region)


@pytest.mark.parametrize("region", ["US", "GB", "IT"])
def test_every_example_number_in_every_format(region: str) -> None:
    assert len(EXAMPLES) > 1300
    for example in EXAMPLES:
        for fmt in FORMATS:
            assert_same(phonenumbers.format_number(example, fmt), region)


def test_shapes_at_the_edges() -> None:
    texts = [
        "", " ", "+", "+1", "+12", "+123", "+0123456789", "+1 212 555 0100", "+1-212-555-0100",
        "+1.212.555.0100", "+1  212 555 0100", "+1 -212", "+44 020 7946 0958", "+4402079460958",
        "+39 06 6988 1234", "+390669881234", "+39 0669881234", "+7 8 495 123 45 67", "+800 1234 5678",
        "+979 123456789", "+882 1234 5678", "+1 900 555 0199", "+1 800 555 0199", "+1 888 555 0100",
        "(212) 555-0100", "(212)555-0100", "212-555-0100", "212.555.0100", "2125550100",
        "12125550100", "1 212 555 0100", "011 44 20 7946 0958", "(800) 555-0100", "(900) 555-0199",
        "(011) 555-0100", "(212) 055-0100", "911", "112", "+1 911", "0044 20 7946 0958", "020 7946 0958",
        "+12125550100 ext. 12", "+12125550100#", "+1 212 555 0100 x 1", "tel:+1-212-555-0100",
        "+١٢١٢٥٥٥٠١٠٠", "+1 (212) 555-0100", "+" + "1" * 31, "+" + "9" * 40, "+99999999999999",
        "+1 2 1 2 5 5 5 0 1 0 0", "+1-", "+1.", "- 212 555 0100", "+44 7400 123456", "+61 4 1234 5678",
    ]  # fmt: skip
    for region in CENTER_REGIONS:
        for text in texts:
            assert_same(text, region)


slow = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@slow
@given(
    example=st.sampled_from(EXAMPLES),
    tail=st.text(alphabet="0123456789", min_size=1, max_size=6),
    cut=st.integers(min_value=0, max_value=6),
    fmt=st.sampled_from(FORMATS),
    region=st.sampled_from(CENTER_REGIONS),
)
def test_numbers_near_valid_ones(example, tail: str, cut: int, fmt: int, region: str) -> None:
    """A real region's number with its last digits changed: valid, invalid, too short or long."""
    national = phonenumbers.national_significant_number(example)
    changed = national[: max(1, len(national) - cut)] + tail
    text = f"+{example.country_code}{changed}"
    assert_same(text, region)
    try:
        parsed = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return
    assert_same(phonenumbers.format_number(parsed, fmt), region)


@slow
@given(
    code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    digits=st.text(alphabet="0123456789", min_size=0, max_size=16),
    separators=st.lists(st.sampled_from([" ", "-", ".", ""]), max_size=4),
    region=st.sampled_from(CENTER_REGIONS),
)
def test_random_international_numbers(code: int, digits: str, separators: list[str], region: str) -> None:
    text = f"+{code}"
    step = max(1, len(digits) // (len(separators) + 1))
    for n, separator in enumerate(separators):
        text += separator + digits[n * step : (n + 1) * step]
    text += digits[len(separators) * step :]
    assert_same(text, region)


@slow
@given(text=st.text(alphabet="0123456789+ ()-.x#*", max_size=24), region=st.sampled_from(CENTER_REGIONS))
def test_any_text_of_number_characters(text: str, region: str) -> None:
    assert_same(text, region)


@slow
@given(
    digits=st.text(alphabet="0123456789", min_size=10, max_size=10),
    shape=st.sampled_from(
        ["({a}) {e}-{l}", "({a}){e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "{a}{e}{l}", "{a} {e} {l}"]
    ),
    region=st.sampled_from(CENTER_REGIONS),
)
def test_north_american_national_formats(digits: str, shape: str, region: str) -> None:
    assert_same(shape.format(a=digits[:3], e=digits[3:6], l=digits[6:]), region)
