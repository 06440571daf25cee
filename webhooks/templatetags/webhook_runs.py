"""``{% webhook_runs flow %}``: the flow page's section of its latest webhook runs."""

from django import template

from webhooks.services import runs_of

register = template.Library()

SHOWN = 10


@register.inclusion_tag("webhooks/inc/run_list.html")
def webhook_runs(flow):
    runs = runs_of(flow)
    return {"flow": flow, "runs": list(runs[:SHOWN]), "total": runs.count(), "shown": SHOWN}
