"""Questions flows ask of the apps built on them, as signals: flows import none of those apps.

``deletion_notes`` is sent before a flow's deletion is confirmed; each receiver returns words the
confirmation should show ("" for nothing), e.g. apikeys names the keys the deletion would leave
reaching no flow.
"""

from django.dispatch import Signal

deletion_notes = Signal()


def notes_on_deleting(flow) -> str:
    """What the receivers of ``deletion_notes`` want said before ``flow`` is deleted, as one text."""
    return " ".join(note for _receiver, note in deletion_notes.send(sender=type(flow), flow=flow) if note)
