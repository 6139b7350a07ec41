"""What reaches the customer in writing: e-mail (SMTP) and WhatsApp (Cloud API) through the durable
outbox, the operations that send them and the written summary each call ends with."""
