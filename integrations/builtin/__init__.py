"""The operations answered from our own store (ivr.store): accounts, tickets, invoices, circuits, deadlines."""
