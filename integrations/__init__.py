"""Adapters to the outside world, grouped by what they talk to: our store (`builtin`), the carrier's systems
(`carrier`), e-mail and WhatsApp (`messaging`), speech recognition (`speech`). `catalog` puts every operation
flows may call in one registry. See ARCHITECTURE.md."""
