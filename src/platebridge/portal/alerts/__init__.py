"""Alerts (issue 14): incidents from what the heartbeats report, delivered by webhook and e-mail.

``models`` the tables, ``rules`` a company's conditions, ``evaluate`` the pure state machine,
``observe`` what the database says now, ``runner`` the periodic pass; delivery lives in
``delivery`` (webhook, e-mail, the lease-based worker). docs/alerts.md has the whole design.
"""
