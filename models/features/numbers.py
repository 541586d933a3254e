"""Phone number ranges, defined once: which callers count as international or virtual-operator numbers."""

from __future__ import annotations

HOME_COUNTRY = "+86"
# Mobile virtual network operators' ranges in China (170/171 and 162/165/167): cheap, loosely verified SIMs
# that fraud call centres favour. Ordinary people have them too, so they are a signal, not a verdict.
VIRTUAL_OPERATOR_PREFIXES = ("+86170", "+86171", "+86162", "+86165", "+86167")


def is_international(number: str) -> bool:
    return not number.startswith(HOME_COUNTRY)


def is_virtual_operator(number: str) -> bool:
    return number.startswith(VIRTUAL_OPERATOR_PREFIXES)


def is_fixed_line(number: str) -> bool:
    """A domestic number that is not a mobile's (1 and 3-9, then nine digits): a landline (a hospital's, an
    office's) or a service number (a bank's 955xx, a government hotline's 123xx). Callers that offices and
    businesses use; fraud calls can spoof one, so a signal, not a verdict."""
    if is_international(number):
        return False
    national = number[len(HOME_COUNTRY) :]
    return not (len(national) == 11 and national[0] == "1" and national[1] in "3456789")
