"""The usage chart (issue 16, item 15): a round y-axis maximum, labels in HTML, a table view."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apikeys.charts import axis_maximum, usage_chart
from apikeys.models import ApiKeyDailyUsage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("peak", "maximum"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20),
                                               (40, 50), (99, 100), (101, 200), (250, 500), (1_000_001, 2_000_000)])
def test_the_axis_maximum_is_a_round_number_at_or_above_the_peak(peak, maximum):
    assert axis_maximum(peak) == maximum


def test_bars_scale_to_the_axis_maximum_not_to_the_peak():
    today = datetime.date(2026, 12, 2)
    chart = usage_chart([(today - datetime.timedelta(days=1), 0), (today, 40)])
    bar = chart.bars[-1]
    plot = chart.baseline - chart.top
    assert chart.axis_max == 50 and bar.height == pytest.approx(plot * 40 / 50, abs=0.01)
    assert chart.axis_middle == 25


def test_the_key_page_puts_labels_in_html_and_the_numbers_in_a_table(client, user, make_key):
    client.force_login(user)
    api_key, _ = make_key(user)
    today = timezone.now().astimezone(datetime.UTC).date()
    ApiKeyDailyUsage.objects.create(api_key=api_key, day=today, uses=7)
    body = client.get(reverse("apikeys:detail", args=[api_key.pk])).content.decode()
    svg = re.search(r"<svg viewBox=\"0 0 600 140\".*?</svg>", body, flags=re.S).group(0)
    assert "<text" not in svg  # the SVG stretches: no text inside it
    assert '<div class="usage-y-axis small muted" aria-hidden="true">\n      <span>10</span><span>5</span><span>0</span>' in body
    assert "The scale goes up to 10 requests a day." in body
    rows = re.findall(r"<tr><th scope=\"row\">([^<]+)</th><td class=\"num\" data-label=\"Requests\">(\d+)</td></tr>", body)
    assert len(rows) == 30 and rows[-1] == (f"{today:%a}, {today:%b} {today.day}", "7")
    assert sum(int(uses) for _, uses in rows) == 7


def test_the_middle_gridline_is_labelled_only_with_a_whole_number():
    today = datetime.date(2026, 12, 2)
    assert usage_chart([(today, 0)]).axis_middle is None  # axis 1: no "0.5 requests"
    assert usage_chart([(today, 3)]).axis_middle is None  # axis 5
    assert usage_chart([(today, 7)]).axis_middle == 5  # axis 10
