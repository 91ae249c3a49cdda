"""PII detectors: validated, not pattern-shaped. Positives and hard negatives per entity."""

from __future__ import annotations

import pytest

from detectors import checks
from tests.test_detectors_support import detected, scanner  # noqa: F401

CASES = [
    # --- email
    ("write to grace.hopper@navy-archives.org today", "output", {"pii.email"}),
    ("someone@example.com is a documentation address", "output", set()),
    ("icon@2x.png and logo@3x.jpg are image names", "output", set()),
    ("user@localhost is not routable", "output", set()),
    ("contact: your.name@example.com", "output", set()),  # placeholder address
    # --- payment cards (Luhn + issuer)
    ("card 4556 7375 8689 9855 exp 09/27", "direct", {"pii.credit_card"}),
    ("card 4556-7375-8689-9855", "direct", {"pii.credit_card"}),
    ("amex 3712 987654 32100", "direct", {"pii.credit_card"}),
    ("amex test number 3714 496353 98431", "direct", set()),
    ("card 4556 7375 8689 9856 fails Luhn", "direct", set()),
    ("order 1234 5678 9012 3456 shipped", "direct", set()),  # fails Luhn
    ("test card 4242 4242 4242 4242", "direct", set()),  # published PSP test number
    ("tracking 9400 1000 0000 0000 0000 00", "direct", set()),
    ("4556 7375-8689 9855 mixed separators", "direct", set()),
    # --- IBAN (mod-97)
    ("IBAN DE89 3704 0044 0532 0130 00", "indirect", {"pii.iban"}),
    ("IBAN DE89370400440532013000", "indirect", {"pii.iban"}),
    ("IBAN DE89 3704 0044 0532 0130 01", "indirect", set()),  # checksum fails
    ("GB82WEST12345698765432", "indirect", {"pii.iban"}),
    ("XX82WEST12345698765432", "indirect", set()),  # no such country
    # --- US SSN (SSA rules)
    ("SSN: 536-22-1234", "indirect", {"pii.us_ssn"}),
    ("ssn 536221234", "indirect", {"pii.us_ssn"}),  # bare digits need the context word
    ("invoice 536221234", "indirect", set()),
    ("SSN 000-12-3456", "indirect", set()),
    ("SSN 666-12-3456", "indirect", set()),
    ("SSN 912-12-3456", "indirect", set()),
    ("SSN 536-00-1234", "indirect", set()),
    ("SSN 536-22-0000", "indirect", set()),
    ("SSN 123-45-6789", "indirect", set()),  # the canonical sample
    ("SSN 078-05-1120", "indirect", set()),  # the Woolworth wallet card
    # --- phone
    ("call me on +44 20 7946 0958", "direct", {"pii.phone"}),
    ("phone (415) 555-2671", "direct", {"pii.phone"}),
    ("office 415-555-2671", "direct", {"pii.phone"}),
    ("phone 4155552671", "direct", {"pii.phone"}),
    ("order 4155552671 shipped", "direct", set()),  # bare digits without context
    ("released 2024-01-15, build 20240115", "direct", set()),
    ("phone 111-111-1111", "direct", set()),
    ("NANP 415-155-2671 exchange starting with 1", "direct", set()),
    # international (+CC / 00CC, numbering plan of the country), NANP with extensions
    ("Büro: +49 30 901820", "direct", {"pii.phone"}),
    ("mon numéro est le +33 1 42 68 53 00", "direct", {"pii.phone"}),
    ("WhatsApp +91 98765 43210", "direct", {"pii.phone"}),
    ("bureau +44 (0)20 7946 0958 le matin", "direct", {"pii.phone"}),
    ("from abroad dial 0049 30 90182000", "direct", {"pii.phone"}),
    ("ring +1-212-555-0187 x204 after lunch", "direct", {"pii.phone"}),
    ("our hotline 1-800-555-0199 is free", "direct", {"pii.phone"}),
    ("US office 001-212-555-0187", "direct", {"pii.phone"}),
    ("Sydney office +61 2 9374 4000-Office", "indirect", {"pii.phone"}),  # a label after '-' ends the number
    ("Tokyo +81 3-3224-5000", "indirect", {"pii.phone"}),
    # national numbers with a trunk 0, grouped as the country writes them
    ("switchboard 020 7946 0958", "direct", {"pii.phone"}),
    ("Mobile: 06.12.34.56.78", "direct", {"pii.phone"}),
    ("Zentrale 030 12345678", "direct", {"pii.phone"}),
    ("call me on 0207 946 0958", "direct", {"pii.phone"}),  # unusual grouping: reported next to a context word
    ("Phone: 21 284 698 2548", "direct", {"pii.phone"}),  # any grouped 7-15 digits right after 'Phone:'
    # hard negatives: numbers that are not phone numbers
    ("+999 123456789 is no country code", "direct", set()),
    ("+44 12", "direct", set()),
    ("ref 0123 4567 89 in the ledger", "direct", set()),  # valid somewhere, but not grouped like a phone
    ("see 0207 946 0958", "direct", set()),  # same, and no context word
    ("account 0044 5566 7788 9900", "direct", set()),  # a run of digit groups, not +44
    ("IBAN DE89 3704 0044 0532 0130 01", "direct", set()),
    ("ISBN 978-3-16-148410-0", "direct", set()),
    ("on 2024-06-15 at 10:30 and 15.06.2024", "direct", set()),
    ("versions 4.12.1.03 and 10.20.30.40", "direct", set()),
    ("coordinates 48.8566 2.3522", "direct", set()),
    ("amount 1 234 567 890 EUR", "direct", set()),
    ("Mr Patel (DOB: 1995-04-07)", "direct", set()),  # 'tel' inside a name is no context word
    ("The Desk Lamp in order #W9300146", "indirect", set()),
    ('"Desk Lamp": "6817146515"', "indirect", set()),  # product ids in tool results
    ("SSN 078-05-1120", "indirect", set()),
    # --- IP addresses (public only)
    ("login from 81.2.69.142", "output", {"pii.ip_address"}),
    ("133.133.133.133:8080", "output", {"pii.ip_address"}),
    ("resolver 2001:4860:4860::8888", "output", {"pii.ip_address"}),
    ("gateway 192.168.0.1 and 10.0.0.1", "output", set()),
    ("metadata at 169.254.169.254", "output", set()),
    ("loopback 127.0.0.1 and ::1", "output", set()),
    ("256.256.256.256 is out of range", "output", set()),
    ("1.2.3.04 has a leading zero", "output", set()),
    ("OID 1.2.3.4.5.6 is not an address", "output", set()),
    ("version 4.2.1.7 released", "output", set()),
    ("at 12:30:45 the MAC aa:bb:cc:dd:ee:ff", "output", set()),
    ("docs range 203.0.113.45", "output", set()),
]


@pytest.mark.parametrize(("text", "placement", "expected"), CASES, ids=[f"p{i}" for i in range(len(CASES))])
def test_pii_table(scanner, text: str, placement: str, expected: set[str]) -> None:  # noqa: F811
    got = {d for d in detected(scanner, text, placement) if d.startswith("pii.")}
    assert got == expected


@pytest.mark.parametrize(("number", "after_word", "factor"), [
    ("+44 20 7946 0958", False, 1.0),  # valid in the UK plan
    ("+1 555 201 3456", False, 0.85),  # right length for NANP, 555 is not an assigned area code
    ("+999 123456789", False, None),  # no such country code
    ("0044 20 7946 0958", False, 1.0),
    ("+1-800-555-0199 x123", False, 1.0),  # extension stripped
    ("020 7946 0958", False, 1.0),
    ("0207 946 0958", False, 0.85),  # valid, unusual grouping
    ("0000 000 000", False, None),
    ("415-555-2671", False, 1.0),
    ("415-155-2671", False, None),  # NANP exchange cannot start with 1
    ("555 2671", False, 1.0),  # short local number in groups
    ("5552671", False, None),
    ("21 284 698 2548", False, None),
    ("21 284 698 2548", True, 1.0),
    ("212845502548", True, None),  # not grouped
])
def test_phone_factor(number: str, after_word: bool, factor: float | None) -> None:
    assert checks.phone_factor(number, after_context_word=after_word) == factor


@pytest.mark.parametrize(("number", "ok"), [
    ("4556737586899855", True), ("4556737586899856", False), ("79927398713", True), ("0", True), ("", False), ("12a4", False),
])
def test_luhn(number: str, ok: bool) -> None:
    assert checks.luhn_ok(number) is ok


@pytest.mark.parametrize(("iban", "ok"), [
    ("GB82 WEST 1234 5698 7654 32", True), ("DE89370400440532013000", True), ("FR1420041010050500013M02606", True),
    ("GB82 WEST 1234 5698 7654 33", False), ("DE8937040044053201300", False), ("ZZ82WEST12345698765432", False),
])
def test_iban(iban: str, ok: bool) -> None:
    assert checks.iban_ok(iban) is ok


def test_pii_evidence_is_masked(scanner) -> None:  # noqa: F811
    from tests.test_detectors_support import event

    findings = scanner.scan(event("prompt", role="user", text="card 4556 7375 8689 9855, mail grace.hopper@navy-archives.org"))
    by_det = {f.detector: f for f in findings}
    assert by_det["pii.credit_card"].evidence[1]["masked"] == "**** **** **** 9855"
    assert by_det["pii.email"].evidence[1]["masked"] == "g***********@navy-archives.org"
    assert "would have redacted it from the prompt" in by_det["pii.credit_card"].rationale
    assert "placement:direct" in by_det["pii.credit_card"].tags
