"""PII detection from column names and values: rules with validators, no model.

A column is personal data when its name says so (email, phone, full_name, birth_date,
iban, ...) or when most sampled values are: emails, phone numbers, IBANs (mod-97
check), payment card numbers (Luhn check and issuer prefix), IPv4/IPv6 addresses
(parsed), person names (capitalised words starting with a known given name) or birth
dates (dates 14 to 110 years ago spread over years). Validators keep random numbers and
codes from passing as cards or IBANs; a share threshold keeps one odd value from
flagging a column.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

import polars as pl

KINDS = ("email", "phone", "iban", "card", "ip", "name", "birth_date")
MIN_SHARE = 0.6  # of non-null sampled values that must match a kind
MIN_GIVEN_SHARE = 0.15  # of values of a name column that hold a known given name
SHARED_WORD_SHARE = 0.25  # of name-shaped values one word in which marks places or firms
SAMPLE = 500

NAME_RULES: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(^|_)e_?mail(_|$)|email_?address"),
    "phone": re.compile(r"(^|_)(phone|mobile|cell|telephone|tel|fax)(_|$)"),
    "iban": re.compile(r"(^|_)(iban|bank_?account)(_|$)"),
    "card": re.compile(r"(^|_)(card_?number|credit_?card|cc_?number|pan)(_|$)"),
    "ip": re.compile(r"(^|_)(ip|ipv4|ipv6|ip_?address|client_?ip)(_|$)"),
    "name": re.compile(
        r"(^|_)(full_?name|first_?name|last_?name|given_?name|family_?name|surname|"
        r"middle_?name|maiden_?name|person_?name|customer_?name|contact_?name)(_|$)"
    ),
    "birth_date": re.compile(r"(^|_)(birth|birthday|dob|date_?of_?birth|born)(_|$)"),
    "address": re.compile(r"(^|_)(address|street|zip|postcode|postal_?code)(_|$)"),
    "national_id": re.compile(r"(^|_)(ssn|passport|national_?id|tax_?id|nin)(_|$)"),
}

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]+((x|ext\.?)\s?\d{1,6})?$", re.IGNORECASE)
_DOTTED_QUAD = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD_CHARS = re.compile(r"^\d[\d -]{11,22}\d$")
_NAME_TOKEN = re.compile(r"^[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+(-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+)?$")
_TITLES = {
    *("mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "herr", "frau", "m", "mme"),
    *("mlle", "sr", "sra", "srta", "dott", "ing", "jr", "sr", "ii", "iii", "iv", "md"),
    *("phd", "dds", "dvm", "ma", "bsc", "msc", "mba", "von", "van", "de", "der", "den"),
    *("la", "le", "di", "da", "del", "dos", "das", "du", "y", "mag", "dipl", "univ"),
    *("die", "ten", "ter", "sig", "sig.ra", "dott.ssa", "dott", "ing.", "avv", "lic", "d"),
}
# Common given names across Europe and the Americas (lower case). Not exhaustive: a
# name column only needs most of its values to start with one.
_GIVEN_NAMES_TEXT = """
aaron abigail adam adrian agnes ahmed aidan aisha alan albert alberto alejandro alex
alexander alexandra alexis alfred alice alicia alison allison alvaro amanda amber amelia
amy ana andre andrea andreas andres andrew angel angela angelica angelina anita ann anna
anne annette annie anthony antoine antonio april arthur ashley audrey austin ava barbara
beatrice ben benjamin bernard beth bethany betty beverly bill billy blake bob bobby bonnie
brad bradley brandon brenda brett brian brittany bruce bruno bryan caitlin cameron camille
carl carla carlos carmen carol carole caroline carolyn carrie casey catherine cathy cecilia
charles charlie charlotte chelsea cheryl chloe chris christian christina christine
christopher cindy claire clara claude claudia clement colin connie connor courtney craig
crystal curtis cynthia daisy dale dan dana daniel daniela danielle danny david dawn dean
deborah debra denise dennis derek diana diane diego dolores dominic don donald donna doris
dorothy douglas dylan earl eddie edgar edith eduardo edward edwin eileen elaine eleanor
elena elias elijah elisa elisabeth elise eliza elizabeth ella ellen elsa emil emilia emily
emma enrique eric erica erik erika erin ernest esther ethan eugene eva evan evelyn fabian
felix fernando filip florence frances francesca francis francisco frank franz fred
frederick gabriel gabriela gabrielle gail gary gavin george georgia gerald gerard gina
giovanni giulia giuseppe gloria grace greg gregory guillaume gustavo hannah hans harold
harry hazel heather heidi helen helena henry herbert holly howard hugo ian irene iris isaac
isabel isabella isabelle ivan jack jackie jacob jacqueline jake james jamie jan jane janet
janice jared jasmine jason javier jean jeff jeffrey jennifer jenny jeremy jerome jerry
jesse jessica jesus jill jim jimmy joan joanna joanne joe joel johann johanna john johnny
jon jonathan jordan jorge jose joseph josephine joshua joy joyce juan judith judy julia
julian julie julien juliette justin karen karin karl kate katharina katherine kathleen
kathryn kathy katie kayla keith kelly ken kenneth kevin kim kimberly kirsten kristen kristin
krystal kurt kyle laura lauren laurent lawrence leah lee leo leon leonard leonie leslie
liam lily linda lindsay lindsey lisa logan lois lorenzo lori louis louise lucas lucia
lucy luis luisa luke lukas luna lydia lynn madison maja manuel marc marcel marco marcus
margaret margarita maria marian marie marilyn mario marion mark marta martha martin
martina mary mason matteo matthew matthias maureen max maximilian megan melanie melissa
mia michael michel michele michelle miguel mike mila mildred miranda mohammed molly monica
morgan nancy naomi natalie natasha nathan nicholas nicolas nicole nina noah noel nora norma
olga olivia oliver oscar pablo pamela paola pascal patricia patrick paul paula pauline
pedro peggy penelope peter philip philippe phillip pierre rachel rafael ralph ramon randy
raquel ray raymond rebecca regina renee rhonda ricardo richard rick rita robert roberta
roberto robin rodney roger ronald rosa rose ruby russell ruth ryan sabine sabrina sally
samantha samuel sandra sara sarah scott sean sebastian sergio shannon sharon shawn sheila
shirley simon simone sofia sophia sophie stacy stanley stefan stefanie stephanie stephen
steve steven susan suzanne sylvia tamara tammy tanya tara teresa terry theodore theresa
thomas tiffany timothy tina todd tom tommy tony tracy travis troy tyler ursula valentina
valerie vanessa vera veronica vicki victor victoria vincent virginia walter wanda wayne
wendy william willie wolfgang xavier yvonne zachary zoe
adele adolf agathe alain albrecht aldo alessandra alessandro alessia alfonso alina alois
amelie anabel andreu angelo annalisa annunziata antonella antonia ariane armin arnaud
astrid axel bart bas benedikt bernd bertrand birgit bjorn bram brigitte carina carlo
carolina cesar chantal christa christel christiane christoph cornelia corinne daan dagmar
damien denis detlef dieter dirk dominique edgardo elke elodie emanuele emilio emmanuel
enzo erich ernst esteban eugenia evi fabio fabrice federico felipe fenna finn florian
francine franco franziska frederic friedrich fritz gaston gemma georg gerhard gert
gianluca gianni gilbert gilles gisela gonzalo gregor guido gunter gunther hanna hannelore
heike heinrich heinz helga helmut henk herman hermann horst ignacio ilse ines ingeborg
inge ingrid irma isidro jaap jacques jannik jasper jens jeroen joachim jochen joep jolanda
jorg jorge josef josefa jurgen karin karsten katja kerstin klaus konrad kurt lars laurens
laurence leonardo liesbeth lina lisette lotte luc luca lucien ludwig luigi lutz maaike
maarten madeleine magdalena manfred manon manuela marcela marcelo margot marianne marina
mariano marius marjolein marlene martine matthieu maurice mauro melanie michiel milan
mirjam monika nadine nathalie nicola nicolo noemi norbert odette olaf otto pascale patrice
pia pieter pilar raffaele rainer ralf regine reinhard remco renate rene rik rob rocco
roland rolf romain rudolf ruud sabine sandrine sascha silke silvia silvio sjoerd stefano
susanne sven teun thierry thijs thorsten tim tobias tomas ulrich ulrike ute uwe valentin
veronique vincenzo volker werner wilhelm willem wim wouter yannick yves zdravko
"""
GIVEN_NAMES = frozenset(_GIVEN_NAMES_TEXT.split())


@dataclass(frozen=True)
class PiiFinding:
    """A column that holds personal data: its kind, how it was found and how sure."""

    column: str
    kind: str
    evidence: str  # "column name", "values" or "column name and values"
    share: float | None = None  # of sampled values that matched the kind

    def describe(self) -> str:
        share = f", {self.share:.0%} of values" if self.share is not None else ""
        return f"{self.column} ({self.kind}, by {self.evidence}{share})"


def kind_from_name(column: str) -> str | None:
    name = column.lower()
    return next((kind for kind, rule in NAME_RULES.items() if rule.search(name)), None)


# -- validators ------------------------------------------------------------------------
def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_issuer(digits: str) -> bool:
    """Issuer prefixes of the major networks (Visa, Mastercard, Amex, Discover, JCB,
    Diners, Maestro, UnionPay): a Luhn-valid number without one is not a card."""
    two, four = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in {34, 37, 36, 38, 39, 30, 35, 62, 50, 56, 57, 58, 63, 67}
        or digits.startswith(("6011", "65", "64"))
    )


def is_card(value: str) -> bool:
    if not _CARD_CHARS.match(value):
        return False
    digits = re.sub(r"[ -]", "", value)
    return 12 <= len(digits) <= 19 and _card_issuer(digits) and luhn_valid(digits)


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def is_ip(value: str) -> bool:
    if not (":" in value or value.count(".") == 3):
        return False
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def is_phone(value: str) -> bool:
    if not _PHONE_CHARS.match(value):
        return False
    main = re.split(r"(?i)x|ext", value)[0]
    digits = re.sub(r"\D", "", main)
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3:
        return False
    if _DOTTED_QUAD.match(main.strip()):
        return False  # an (invalid) IPv4 address, not a phone
    formatted = bool(re.search(r"[\s().\-/]", main.strip())) or main.startswith(("+", "0"))
    return formatted and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", main.strip())


# "City, Region" is a place, not "Last, First": regions a place name commonly ends with
# (US states and territories, Canadian provinces, countries; lower case).
REGIONS = frozenset(
    w.replace("_", " ")
    for w in """alabama alaska arizona arkansas california colorado connecticut delaware florida
    georgia hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland
    massachusetts michigan minnesota mississippi missouri montana nebraska nevada
    new_hampshire new_jersey new_mexico new_york north_carolina north_dakota ohio oklahoma
    oregon pennsylvania rhode_island south_carolina south_dakota tennessee texas utah
    vermont virginia washington west_virginia wisconsin wyoming district_of_columbia
    d.c. puerto_rico guam alberta british_columbia manitoba new_brunswick newfoundland
    nova_scotia ontario quebec saskatchewan usa us canada mexico brazil argentina chile
    colombia peru uk england scotland wales ireland france germany spain portugal italy
    netherlands belgium switzerland austria sweden norway denmark finland poland greece
    australia new_zealand japan china india philippines""".split()  # noqa: SIM905 (a word list reads better as text)
)


def is_place(value: str) -> bool:
    """'Minneapolis, Minnesota', 'Bayamón, Puerto Rico': a place ending in a known region."""
    head, comma, region = value.rpartition(",")
    return bool(comma and head.strip()) and region.strip().lower() in REGIONS


def _is_affix(token: str) -> bool:
    """Titles, degrees and particles: Dr., B.Sc., MBA, Dipl.-Ing., von, de."""
    bare = token.strip(".,")
    return not bare or bare.lower() in _TITLES or "." in bare or (bare.isupper() and len(bare) <= 4)


def _name_words(value: str) -> list[str]:
    return [t.strip(",") for t in value.split() if not _is_affix(t)]


def is_name(value: str) -> bool:
    """Shaped like a person's name: 2-5 capitalised words, titles and particles aside."""
    words = _name_words(value)
    return 2 <= len(words) <= 5 and all(_NAME_TOKEN.match(w) for w in words)


def has_given_name(value: str) -> bool:
    parts = [p.lower() for w in _name_words(value) for p in w.split("-")]
    return any(p in GIVEN_NAMES for p in parts)


def detect_value(value: str) -> str | None:
    """The PII kind of one value (text), or None. Birth dates are a column property."""
    value = value.strip()
    if not value:
        return None
    if "@" in value:
        return "email" if _EMAIL.match(value) else None
    if value[:2].isalpha() and iban_valid(value):
        return "iban"
    if is_card(value):
        return "card"
    if is_ip(value):
        return "ip"
    if is_phone(value):
        return "phone"
    if is_place(value):
        return None
    if is_name(value):
        return "name"
    return None


# -- columns ---------------------------------------------------------------------------
def _as_dates(series: pl.Series) -> pl.Series | None:
    if series.dtype == pl.Date:
        return series
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.date()
    if series.dtype == pl.String:
        parsed = series.str.to_date(strict=False)
        if parsed.null_count() <= series.null_count() + 0.1 * series.len():
            return parsed
    return None


EVENT_DATE = re.compile(
    r"(^|_)(opened|open|signup|signed|created|updated|order|snapshot|start|end|launch|"
    r"launched|joined|closed|shipped|delivery|effective|valid|expiry|expires|forecast|event)"
    r"(_|$)"
)


def looks_like_birth_dates(series: pl.Series, today: date | None = None) -> float:
    """Share of dates that could be birthdays (in the last 120 years, none in the
    future); 0 unless the middle 80% spread over 20 years or more (event dates
    cluster within years, a population's birthdays spread over generations)."""
    dates = _as_dates(series)
    if dates is None:
        return 0.0
    dates = dates.drop_nulls()
    if dates.is_empty():
        return 0.0
    today = today or date.today()
    oldest = today.replace(year=today.year - 120)
    spread = (dates.quantile(0.9, "nearest") - dates.quantile(0.1, "nearest")).days
    if spread < 20 * 365 or dates.max() > today:
        return 0.0
    return float(dates.is_between(oldest, today).mean())


def value_kind_shares(series: pl.Series, sample: int = SAMPLE) -> dict[str, float]:
    """Share of sampled non-null values of each PII kind."""
    values = series.drop_nulls()
    if values.is_empty():
        return {}
    if values.len() > sample:
        values = values.sample(sample, seed=0)
    counts: dict[str, int] = {}
    names = []
    if values.dtype == pl.String or values.dtype.is_integer():
        for value in values.cast(pl.String).to_list():
            kind = detect_value(value)
            if kind:
                counts[kind] = counts.get(kind, 0) + 1
            if kind == "name":
                names.append(value)
    # Name-shaped values (store names, brands) are names only if many hold a given name,
    # and not when one word recurs through them as places' and firms' names do.
    given = sum(map(has_given_name, names))
    if counts.get("name") and (given < MIN_GIVEN_SHARE * values.len() or _shared_word(names)):
        del counts["name"]
    shares = {k: n / values.len() for k, n in counts.items()}
    if values.dtype in (pl.Date, pl.String) or isinstance(values.dtype, pl.Datetime):
        birth = looks_like_birth_dates(values)
        if birth:
            shares["birth_date"] = birth
    return shares


def _shared_word(names: list[str]) -> bool:
    """'Newark Liberty Intl', 'Randall Airport', 'Jefferson County Airport': one word
    other than a given name in a quarter of the values is a kind of place or firm; the
    commonest surname is in a few percent of people's names."""
    distinct = set(names)  # a name repeated over rows is one name
    counts = Counter(w.lower() for name in distinct for w in set(_name_words(name)))
    common = (n for word, n in counts.most_common() if word not in GIVEN_NAMES)
    return next(common, 0) >= max(3, SHARED_WORD_SHARE * len(distinct))


def _numbered(series: pl.Series, share: float = 0.95) -> bool:
    """Identifiers numbered under one prefix (`2015-000123`, `INV-2024-00017`): nearly all
    values share everything before a zero-padded counter of fixed width. A subscriber
    number after an area code does not start with 0, so phones sharing one are not this."""
    values = series.drop_nulls().cast(pl.String)
    parts = values.str.extract_groups(r"^(.*\D)(\d{4,})$").struct.unnest().drop_nulls()
    if parts.height < share * max(values.len(), 1) or parts.is_empty():
        return False
    prefix, counter = parts.columns
    same_prefix = parts[prefix].value_counts(sort=True)["count"][0] >= share * parts.height
    width = parts[counter].str.len_chars()
    padded = (parts[counter].str.starts_with("0")).mean() >= share
    return same_prefix and width.n_unique() == 1 and padded


def classify_column(
    column: str, series: pl.Series | None = None, min_share: float = MIN_SHARE
) -> PiiFinding | None:
    """Whether a column holds personal data, by its name and (given) its values."""
    by_name = kind_from_name(column)
    shares = value_kind_shares(series) if series is not None else {}
    kind, share = max(shares.items(), key=lambda kv: kv[1], default=(None, 0.0))
    # Birth dates need the name too unless nearly every value qualifies, and a name that
    # says the column dates an event (opened_date, signup_date) rules them out.
    if kind == "birth_date" and EVENT_DATE.search(column):
        kind, share = None, 0.0
    threshold = 0.95 if kind == "birth_date" else min_share
    by_values = kind if share >= threshold else None
    if by_values == "phone" and _numbered(series):
        by_values = None
    if by_name and by_values:
        return PiiFinding(column, by_name, "column name and values", share)
    if by_name:
        return PiiFinding(column, by_name, "column name")
    if by_values:
        return PiiFinding(column, by_values, "values", share)
    return None
