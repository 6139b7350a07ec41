"""The supervisors' web console (`ivr web`): live state, calls, reports, flow releases and the draft's editor,
behind a login.

Server-rendered pages (Jinja2, ./templates) with two small scripts: the live page's server-sent events, the
editor's check as one types. It reads what the `ivr` commands read (the store, the flow library, the draft, a
running unit's live socket), runs the draft on what `ivr.cli` hands it from `ivr.app` (demo stores, the
impact), and is imported by nothing but `ivr.cli`.
"""
