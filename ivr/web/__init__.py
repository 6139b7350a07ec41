"""The supervisors' web console (`ivr web`): live state, calls, reports, flow releases, behind a login.

Server-rendered pages (Jinja2, ./templates) with one small script for the live page's server-sent events.
It reads what the `ivr` commands read (the store, the flow library, a running unit's live socket) and is
imported by nothing but `ivr.cli`.
"""
