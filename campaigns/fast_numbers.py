"""Reading a lead's number fast: the same answer as `campaigns.services.numbers.read_number`, cheaper.

What was measured (bench/lead_import.py, phonenumbers 9.0.43, one core of the 2-core bench machine):
the ordinary path — `phonenumbers.parse`, `is_valid_number`, `number_type`, `region_code_for_number`,
`shortnumberinfo.is_emergency_number`, `format_number` and `timezone.time_zones_for_number`, each
as the library offers it — cost about 230 µs per number and was half of an import's time. Most of
it is the library working out the same things several times over: `is_valid_number`,
`number_type` and `time_zones_for_number` each find the number's region again (for +1, by testing
the number against the United States' patterns and then each NANP country's), and each runs the
type patterns again. Here each is worked out once, with the library's own functions and data:

- a number written in E.164 (`+` and digits, maybe grouped by spaces, dots or hyphens), or a
  North American one written nationally for a North American center ("(415) 555-0123"), skips
  `parse`'s general path (looking for an extension, a phone-context, an international dialling
  prefix, letters…) and goes straight to what `parse` does for such a number: the country code,
  the national prefix stripped when the rest is still a possible length, the leading zeros kept;
  anything else goes through `parse`;
- the region and the type come from one pass over the calling code's regions (the type found for
  the region that matches is the number's type), validity from that type;
- the emergency check is left out: `is_emergency_number` answers False for any text starting with
  `+`, and the ordinary path passes it the E.164 form, so it never rejects a number;
- time zones: one longest-prefix lookup, its filtered and sorted list remembered per result.

About 30 µs per number against 120-200 µs on that busy machine. tests/campaigns/test_fast_numbers.py
checks that the answers are the ordinary path's on every region's example numbers in four formats,
on numbers near them and on random text.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType, re_util
from phonenumbers import phonenumberutil as pnu
from phonenumbers import timezone as phone_timezones

from campaigns.windows import KNOWN_ZONES

# The library's own switch for applications reading numbers of many regions: keep every pattern it
# compiles, rather than rely on `re`'s bounded cache (which a file of many countries overflows).
re_util.enable_pattern_cache()

Reading = tuple[str | None, str, list[str]]
INVALID: Reading = ("invalid_number", "", [])

# ASCII digits only (`\d` would take other scripts' digits, which parse normalises its own way);
# a separator, if any, between two digits (a pattern that cannot backtrack far).
_INTERNATIONAL = re.compile(r"\+[1-9][0-9]*(?:[ .-][0-9]+)*")
# A North American number written nationally: (415) 555-0123, 415-555-0123, 415.555.0123.
_NANP_NATIONAL = re.compile(r"(?:\(([2-9][0-9]{2})\) ?|([2-9][0-9]{2})[ .-]?)([0-9]{3})[ .-]?([0-9]{4})")
_SEPARATORS = str.maketrans("", "", " .-")
_zones: dict[tuple[str, ...], list[str]] = {}


def read_number_fast(text: str, *, region: str) -> Reading:
    """(reason, E.164, time zones) — reason None for a dialable number; as `read_number`."""
    text = (text or "").strip()
    if not text or len(text) > 32:
        return INVALID
    if _INTERNATIONAL.fullmatch(text):
        numobj = _parse_e164(text[1:].translate(_SEPARATORS))
    elif (national := _NANP_NATIONAL.fullmatch(text)) and _calling_code(region) == 1:
        area, bracketed, exchange, line = national.groups()
        numobj = _parse_e164(f"1{area or bracketed}{exchange}{line}")
    else:
        numobj = _parse(text, region)
    if numobj is None:
        return INVALID
    country_code = numobj.country_code
    national = pnu.national_significant_number(numobj)
    number_type = _valid_type(country_code, national)
    if number_type == PhoneNumberType.UNKNOWN:
        return INVALID
    e164 = f"+{country_code}{national}"
    if number_type == PhoneNumberType.PREMIUM_RATE:
        return "not_dialable", e164, _zones_for(e164, country_code, number_type)
    return None, e164, _zones_for(e164, country_code, number_type)


def _calling_code(region: str) -> int | None:
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    return None if metadata is None else metadata.country_code


def _parse(text: str, region: str) -> PhoneNumber | None:
    try:
        numobj = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return None if numobj.extension else numobj


def _parse_e164(digits: str) -> PhoneNumber | None:
    """What `phonenumbers.parse` makes of "+" followed by these ASCII digits (None: it refuses them)."""
    if len(digits) <= pnu._MIN_LENGTH_FOR_NSN:
        return None
    country_code, national = pnu._extract_country_code(digits)
    if country_code == 0 or len(national) < pnu._MIN_LENGTH_FOR_NSN:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, pnu.region_code_for_country_code(country_code)
    )
    if metadata is not None:
        _, stripped, _ = pnu._maybe_strip_national_prefix_carrier_code(national, metadata)
        if pnu._test_number_length(stripped, metadata) not in (
            pnu.ValidationResult.TOO_SHORT,
            pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
            pnu.ValidationResult.INVALID_LENGTH,
        ):
            national = stripped
    if not pnu._MIN_LENGTH_FOR_NSN <= len(national) <= pnu._MAX_LENGTH_FOR_NSN:
        return None
    numobj = PhoneNumber(country_code=country_code)
    pnu._set_italian_leading_zeros_for_phone_number(national, numobj)
    numobj.national_number = int(national)
    return numobj


def _valid_type(country_code: int, national: str) -> int:
    """`number_type` of a number `is_valid_number` accepts, else UNKNOWN: the region found once.

    As `region_code_for_number` does: a calling code's only region, or the first of its regions
    whose leading digits match or whose patterns give the number a type (then that is its type).
    """
    regions = pnu.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return PhoneNumberType.UNKNOWN
    if len(regions) == 1:
        region_code = regions[0]
        number_type = None
    else:
        for region_code in regions:
            metadata = PhoneMetadata.metadata_for_region(region_code.upper(), None)
            if metadata is None:
                continue
            if metadata.leading_digits is not None:
                if re.match(metadata.leading_digits, national):
                    number_type = None
                    break
            else:
                number_type = _type_in(metadata, national)
                if number_type != PhoneNumberType.UNKNOWN:
                    break
        else:
            return PhoneNumberType.UNKNOWN
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region_code)
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    # is_valid_number_for_region: a region of another calling code is no match.
    if region_code != pnu.REGION_CODE_FOR_NON_GEO_ENTITY and metadata.country_code != country_code:
        return PhoneNumberType.UNKNOWN
    return _type_in(metadata, national) if number_type is None else number_type


# A pattern of the metadata: its possible lengths (None: any) and its compiled regex (None: none).
_Desc = tuple[frozenset[int] | None, re.Pattern[str] | None] | None
# The kinds `_number_type_helper` tries after the general description, in its order.
_KINDS = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
# By the metadata's id: the library keeps each region's metadata object for the process's life.
_compiled: dict[int, tuple[_Desc, list[tuple[_Desc, int]], _Desc, _Desc, bool]] = {}


def _desc(desc: Any) -> _Desc:
    if desc is None:
        return None
    pattern = desc.national_number_pattern
    return (frozenset(desc.possible_length) or None, re.compile(pattern) if pattern else None)


def _matches(desc: _Desc, national: str) -> bool:
    """`_is_number_matching_desc`: the length among the possible ones, then the whole pattern."""
    if desc is None:
        return False
    lengths, pattern = desc
    if lengths is not None and len(national) not in lengths:
        return False
    return pattern is not None and pattern.fullmatch(national) is not None


def _type_in(metadata: Any, national: str) -> int:
    """`_number_type_helper(national, metadata)` with the metadata's patterns compiled once.

    The library compiles (or looks up) each pattern on every call, and matches it twice (at the
    start, then whole): a third of its time went there.
    """
    compiled = _compiled.get(id(metadata))
    if compiled is None:
        compiled = _compiled[id(metadata)] = (
            _desc(metadata.general_desc),
            [(_desc(getattr(metadata, name)), kind) for name, kind in _KINDS],
            _desc(metadata.fixed_line),
            _desc(metadata.mobile),
            bool(metadata.same_mobile_and_fixed_line_pattern),
        )
    general, kinds, fixed_line, mobile, same_mobile_and_fixed = compiled
    if not _matches(general, national):
        return PhoneNumberType.UNKNOWN
    for desc, kind in kinds:
        if _matches(desc, national):
            return kind
    if _matches(fixed_line, national):
        if same_mobile_and_fixed or _matches(mobile, national):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not same_mobile_and_fixed and _matches(mobile, national):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _zones_for(e164: str, country_code: int, number_type: int) -> list[str]:
    """`windows.zones_for_number` for a valid number of this type."""
    if pnu.is_number_type_geographical(number_type, country_code):
        data = phone_timezones.TIMEZONE_DATA
        zones = phone_timezones._UNKNOWN_TIME_ZONE_LIST
        for length in range(phone_timezones.TIMEZONE_LONGEST_PREFIX, 0, -1):
            if (found := data.get(e164[1 : 1 + length])) is not None:
                zones = found
                break
    else:
        zones = phone_timezones._country_level_time_zones_for_number(PhoneNumber(country_code=country_code))
    known = _zones.get(zones)
    if known is None:
        known = _zones[zones] = sorted(zone for zone in zones if zone in KNOWN_ZONES)
    return list(known)
