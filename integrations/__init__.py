"""Adapters to the outside world (store, ticketing, billing, e-mail, WhatsApp, speech), by operation name."""
