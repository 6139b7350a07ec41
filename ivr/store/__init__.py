"""The store: SQLAlchemy models, sessions, Alembic migrations, seed data, and the engine's ports.

Wiring (ivr.app)::

    store = open_store()                                  # settings().database_url
    await upgrade(store)                                  # ivr.store.migrate
    events = StoreEventSink.from_settings(store); await events.start()
    services = Services(
        operations=build_registry(store),                 # integrations.builtin
        events=events,
        protocols=StoreProtocolAllocator.from_settings(store),
        calls=StoreCallRecorder(events),
        recognizer=...,
    )
    # on shutdown: await events.aclose(); await protocols.aclose(); await store.aclose()
"""
