"""The store: SQLAlchemy models, sessions, Alembic migrations, seed data, and the engine's ports over it
(`StoreEventSink`, `StoreProtocolAllocator`, `StoreCallRecorder`). `ivr.app.build_services` wires them,
with the operations and the one clock they all read, into the engine's `Services`.
"""
