"""Time expressions in questions: dates, ranges, calendar periods and anchors relative to
the latest day of data ("last week", "the last 7 days", "in March", "the most recent
day"; "yesterday" is the day before it). A small grammar over the text;
each match is removed so no word is left over."""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

from dagster_project.ask.lexicon import edit_distance, stem

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS |= {m[:3]: i for m, i in list(MONTHS.items())} | {"sept": 9}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_ISO = r"\d{4}-\d{2}-\d{2}"
_UNIT = r"(day|week|month|year|quarter)s?"
_NUM = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|thirty)"
_NUMS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_NUMS |= {"eight": 8, "nine": 9, "ten": 10, "twelve": 12, "thirty": 30}
_LEAD = r"(?:(?:over|in|for|during) )?(?:the )?"
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 4}
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_TO = r"\s*(?:-|–|to|and|until|till|through)\s*"
_YEAR = r"(?:,? (\d{4}))?"
# A day or a range of days in one month, the year said or not: "10 feb", "feb 10th, 2025",
# "10th of february", "between 10 and 16 feb", "march 3-9". Without a year, a placeholder
# leap year (every 29 feb exists) is replaced by the anchor's (or the year before it).
_YEARLESS = 2000
_DAY_PATTERNS = (
    (rf"\b{_DAY}{_TO}{_DAY} (?:of )?({_MONTH}){_YEAR}\b", (1, 2, 3, 4)),
    (rf"\b({_MONTH}) {_DAY}{_TO}{_DAY}{_YEAR}\b", (2, 3, 1, 4)),
    (rf"\b{_DAY} (?:of )?({_MONTH}){_YEAR}\b", (1, 1, 2, 3)),
    (rf"\b({_MONTH}) {_DAY}{_YEAR}\b(?!-)", (2, 2, 1, 3)),
)


@dataclass
class TimeSpec:
    """What the question says about time, resolved against an anchor day later."""

    kind: str = ""  # "", range, rolling, calendar, latest
    start: date | None = None
    end: date | None = None
    unit: str = ""  # rolling / calendar: day, week, month, quarter, year
    count: int = 1
    offset: int = 0  # calendar: 0 this, -1 last
    month: int | None = None  # a month name without a year
    compare: bool = False  # two periods compared: group by their grain
    grain: str | None = None
    yearless: bool = False  # days named without a year: the latest such days, by the anchor
    corrections: dict[str, str] = field(default_factory=dict)  # "febuary" → "february"

    def resolve(self, anchor: date) -> tuple[date | None, date | None]:
        if self.yearless:
            ref = self.start or self.end
            year = anchor.year if ref and _in_year(ref, anchor.year) <= anchor else anchor.year - 1
            start, end = (_in_year(d, year) if d else None for d in (self.start, self.end))
            return start, end
        if self.kind == "latest":
            return anchor, anchor
        if self.kind == "rolling":
            days = {"day": 1, "week": 7}.get(self.unit)
            if days:
                return anchor - timedelta(days=days * self.count - 1), anchor
            months = self.count * (
                3 if self.unit == "quarter" else 12 if self.unit == "year" else 1
            )
            return _add_months(anchor, -months) + timedelta(days=1), anchor
        if self.kind == "calendar":
            return _period(anchor, self.unit, self.offset)
        if self.month:
            year = anchor.year if self.month <= anchor.month else anchor.year - 1
            return date(year, self.month, 1), _month_end(year, self.month)
        return self.start, self.end

    @property
    def relative(self) -> bool:
        return (
            self.kind in {"latest", "rolling", "calendar"}
            or self.month is not None
            or self.yearless
        )


def _in_year(day: date, year: int) -> date:
    """The same day in another year (29 feb becomes 28 feb where there is none)."""
    return date(year, day.month, min(day.day, calendar.monthrange(year, day.month)[1]))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _period(anchor: date, unit: str, offset: int) -> tuple[date, date]:
    if unit == "day":
        day = anchor + timedelta(days=offset)
        return day, day
    if unit == "week":
        start = anchor - timedelta(days=anchor.weekday()) + timedelta(weeks=offset)
        return start, start + timedelta(days=6)
    size = {"month": 1, "quarter": 3, "year": 12}[unit]
    first = date(anchor.year, (anchor.month - 1) // size * size + 1, 1)
    first = _add_months(first, size * offset)
    return first, _add_months(first, size) - timedelta(days=1)


def _n(text: str) -> int:
    return int(text) if text.isdigit() else _NUMS[text]


def _periods(text: str) -> tuple[str, list[tuple[date, date, str]]]:
    """Absolute periods named in the text (ISO days, month year, quarters, years)."""
    found: list[tuple[int, date, date, str]] = []

    def take(pattern: str, make) -> None:
        nonlocal text
        for m in re.finditer(pattern, text):
            start, end, grain = make(m)
            found.append((m.start(), start, end, grain))
        text = re.sub(pattern, " ", text)

    take(_ISO, lambda m: (date.fromisoformat(m[0]),) * 2 + ("day",))
    take(
        rf"\b(?:the )?(first|second|third|fourth|last) week (?:of |in )?({_MONTH}){_YEAR}\b", _week
    )
    for pattern, groups in _DAY_PATTERNS:
        for m in list(re.finditer(pattern, text)):
            days = _days(m, groups)
            if days:
                found.append((m.start(), *days))
                text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    take(
        r"\b(?:the )?(first|second|third|fourth|last) quarter (?:of )?(\d{4})\b",
        lambda m: _quarter(int(m[2]), _ORDINAL[m[1]]),
    )
    take(r"\bq([1-4]) (\d{4})\b", lambda m: _quarter(int(m[2]), int(m[1])))
    take(
        rf"\b({_MONTH}) (\d{{4}})\b",
        lambda m: (
            date(int(m[2]), MONTHS[m[1]], 1),
            _month_end(int(m[2]), MONTHS[m[1]]),
            "month",
        ),
    )
    take(
        r"\b(?:in|of|during|for|year) (20\d{2}|19\d{2})\b",
        lambda m: (date(int(m[1]), 1, 1), date(int(m[1]), 12, 31), "year"),
    )
    return text, [f[1:] for f in sorted(found)]


def _days(m: re.Match, groups: tuple[int, int, int, int]) -> tuple[date, date, str] | None:
    """The first and last day a day-pattern match names, or None if not a real date."""
    first, last, month, year = (m[g] for g in groups)
    try:
        start = date(int(year or _YEARLESS), MONTHS[month], int(first))
        end = date(int(year or _YEARLESS), MONTHS[month], int(last))
    except ValueError:  # "feb 30", "31 to 40 march"
        return None
    if end < start:
        return None
    return start, end, "day" if year else "yearless-day"


def _week(m: re.Match) -> tuple[date, date, str]:
    """ "the first week of March 2025": days 1-7 (second 8-14, ...; the last: its last 7)."""
    year, month = int(m[3] or _YEARLESS), MONTHS[m[2]]
    if m[1] == "last":
        end = _month_end(year, month)
        start = end - timedelta(days=6)
    else:
        start = date(year, month, 7 * _ORDINAL[m[1]] - 6)
        end = start + timedelta(days=6)
    return start, end, "day" if m[3] else "yearless-day"


def _quarter(year: int, q: int) -> tuple[date, date, str]:
    return date(year, 3 * q - 2, 1), _month_end(year, 3 * q), "quarter"


_FULL_MONTHS = [m for m in MONTHS if len(m) > 4]


def _month_typos(text: str, known: Collection[str], corrected: dict[str, str]) -> str:
    """A month's name misspelt by one letter ("febuary", "januray") as the month: a typo
    of exactly one month, same first letter, at least 5 letters, and not a word the
    layer or the data knows ("Augusta", a city, stays). Each one read is put in
    `corrected`, for the interpretation to say."""

    def fixed(match: re.Match) -> str:
        word = match[0]
        if word in MONTHS or word in known or stem(word) in known:
            return word
        close = [m for m in _FULL_MONTHS if m[0] == word[0] and edit_distance(word, m, 1) <= 1]
        if len(close) != 1:
            return word
        corrected[word] = close[0]
        return close[0]

    return re.sub(r"\b[a-z]{5,}\b", fixed, text)


def extract(text: str, known: Collection[str] = ()) -> tuple[str, TimeSpec]:
    """The text without its time expressions, and what they say; `known`: the words of
    the layer and its values, never taken for a misspelt month."""
    spec = TimeSpec()
    text = " " + _month_typos(text.lower(), known, spec.corrections) + " "
    relative = [
        (r"\b(?:the )?(?:most recent|latest|last) (day|date)\b", "latest"),
        (
            rf"\b{_LEAD}(?:last|past|previous) {_NUM} {_UNIT}\b",
            "rolling",
        ),
        (  # not "the last week of march": that week is a month's (see _week)
            rf"\b(?:the )?(last|previous|this|current) (day|week|month|quarter|year)\b"
            rf"(?! (?:of|in) (?:{_MONTH})\b)",
            "calendar",
        ),
        (r"\b(?:for |on )?(yesterday)\b", "calendar"),
    ]
    for pattern, kind in relative:
        m = re.search(pattern, text)
        if not m:
            continue
        spec.kind = kind
        if kind == "rolling":
            spec.count, spec.unit = _n(m[1]), m[2]
        elif kind == "calendar" and m[1] == "yesterday":  # "today" is the state: no range
            spec.unit, spec.offset = "day", -1
        elif kind == "calendar":
            spec.unit, spec.offset = m[2], 0 if m[1] in {"this", "current"} else -1
        text = text[: m.start()] + " " + text[m.end() :]
        break
    text, periods = _periods(text)
    words = re.search(r"\b(between|from|since|after|before|until|till|through)\b", text)
    month = re.search(rf"\b(?:in|during|for|of)? ?({_MONTH})\b(?! \d)", text)
    if month and not periods and not spec.kind and month[1] not in {"may", "mar"}:
        spec.month = MONTHS[month[1]]
        text = text[: month.start()] + " " + text[month.end() :]
    if periods:
        spec.kind = "range"
        spec.yearless = all(p[2] == "yearless-day" for p in periods)
        if not spec.yearless and any(p[2] == "yearless-day" for p in periods):
            year = next(p[0].year for p in periods if p[2] != "yearless-day")
            periods = [
                (_in_year(a, year), _in_year(b, year), "day") if g == "yearless-day" else (a, b, g)
                for a, b, g in periods
            ]
        spec.start = min(p[0] for p in periods)
        spec.end = max(p[1] for p in periods)
        word = words[1] if words else ""
        if word in {"since", "after"} and len(periods) == 1:
            spec.end = None
            if word == "after":
                spec.start = periods[0][1] + timedelta(days=1)
        if word == "before" and len(periods) == 1:
            spec.start, spec.end = None, periods[0][0] - timedelta(days=1)
        if word in {"until", "till"} and len(periods) == 1:
            spec.start = None
        spec.compare = len(periods) > 1 and not words
        if spec.compare and periods[0][2] not in {"day", "yearless-day"}:
            spec.grain = periods[0][2]
        if words:
            text = text[: words.start()] + " " + text[words.end() :]
    return text, spec
