"""sac-ivr: the phone IVR behind the fiber-optic customer-service number 3003-3336."""
