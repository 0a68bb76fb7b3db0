from datetime import date

import pytest

from dagster_project.ask.dates import extract

ANCHOR = date(2025, 3, 1)  # the latest day of data


def window(question: str, anchor: date = ANCHOR):
    rest, spec = extract(question)
    return rest.split(), spec.resolve(anchor) if spec.kind else (None, None)


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("turnover between 10 and 16 feb", date(2025, 2, 10), date(2025, 2, 16)),
        ("revenue from 3 to 9 january", date(2025, 1, 3), date(2025, 1, 9)),
        ("units sold march 3-9, 2024", date(2024, 3, 3), date(2024, 3, 9)),
        ("orders on 14 feb", date(2025, 2, 14), date(2025, 2, 14)),
        ("orders on feb 14th", date(2025, 2, 14), date(2025, 2, 14)),
        ("orders on the 2nd of january 2024", date(2024, 1, 2), date(2024, 1, 2)),
        ("revenue on december 24", date(2024, 12, 24), date(2024, 12, 24)),  # before anchor
        ("revenue on 29 feb 2024", date(2024, 2, 29), date(2024, 2, 29)),
    ],
)
def test_days_and_ranges_of_days_in_a_month(question, start, end):
    rest, (first, last) = window(question)
    assert (first, last) == (start, end)
    assert not any(w.isdigit() for w in rest), rest  # nothing of the date is left over


def test_since_a_day_without_a_year_and_what_is_not_a_date():
    assert window("revenue since 10 feb")[1] == (date(2025, 2, 10), None)
    # Not a day: a number beside a month that cannot be a day keeps its words.
    rest, _ = extract("top 40 march stores")
    assert "40" in rest.split()
    _, (first, last) = window("revenue in feb 2025")  # a month with its year stays a month
    assert (first, last) == (date(2025, 2, 1), date(2025, 2, 28))


def test_a_week_of_a_month_is_its_days():
    assert window("flights per day in the first week of January 2013")[1] == (
        date(2013, 1, 1),
        date(2013, 1, 7),
    )
    assert window("revenue in the third week of march 2025")[1] == (
        date(2025, 3, 15),
        date(2025, 3, 21),
    )
    assert window("revenue in the last week of february 2024")[1] == (
        date(2024, 2, 23),
        date(2024, 2, 29),
    )
    rest, _ = extract("units in the second week of june")  # no year: the latest June's
    assert "week" not in rest and "june" not in rest


@pytest.mark.parametrize(
    ("question", "month"),
    [("units sold in febuary", 2), ("revenue in januray", 1), ("orders in setpember", 9)],
)
def test_a_month_misspelt_by_one_letter_is_that_month(question, month):
    rest, spec = extract(question)
    assert spec.month == month
    assert list(spec.corrections) == [question.split()[-1]]  # for the interpretation to say
    assert rest.split() == question.split()[:-2]  # "in <month>" is the time, taken out


def test_a_word_the_layer_or_data_knows_is_never_taken_for_a_misspelt_month():
    _, spec = extract("revenue in augusta", known={"augusta"})  # a city: one letter from august
    assert spec.month is None
    _, spec = extract("revenue in augusta")
    assert spec.month == 8  # without that knowledge it would be the month
