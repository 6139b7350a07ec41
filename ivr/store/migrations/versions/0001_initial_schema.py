"""Initial schema: accounts, billing, incidents, calls, node visits and sequences.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=12), nullable=False),
        sa.Column("caller_id", sa.String(length=20), nullable=True),
        sa.Column("dialled", sa.String(length=40), nullable=False),
        sa.Column("unique_id", sa.String(length=64), nullable=False),
        sa.Column("linked_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=120), nullable=False),
        sa.Column("flow", sa.String(length=80), nullable=False),
        sa.Column("flow_version", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=80), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("protocol", name=op.f("uq_calls_protocol")),
    )
    op.create_index("ix_calls_caller_id", "calls", ["caller_id"])
    op.create_index("ix_calls_linked_id", "calls", ["linked_id"])

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cnpj", sa.String(length=14), nullable=False),
        sa.Column("cnpj_root", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "suspended", "deactivated", name="accountstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("cnpj", name=op.f("uq_customers_cnpj")),
        sa.UniqueConstraint("code", name=op.f("uq_customers_code")),
    )
    op.create_index("ix_customers_cnpj_root", "customers", ["cnpj_root"])

    op.create_table(
        "fallback_protocols",
        sa.Column("protocol", sa.String(length=12), nullable=False),
        sa.Column("unit", sa.String(length=120), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unique_id", sa.String(length=64), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("protocol", name=op.f("pk_fallback_protocols")),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("call_protocol", sa.String(length=12), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    op.create_index("ix_leads_call_protocol", "leads", ["call_protocol"])

    op.create_table(
        "node_visits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("call_protocol", sa.String(length=12), nullable=False),
        sa.Column("flow", sa.String(length=80), nullable=False),
        sa.Column("flow_version", sa.String(length=40), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=False),
        sa.Column("verb", sa.String(length=40), nullable=False),
        sa.Column("input", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_visits")),
    )
    op.create_index("ix_node_visits_call_protocol", "node_visits", ["call_protocol"])
    op.create_index("ix_node_visits_started_at", "node_visits", ["started_at"])

    op.create_table(
        "sequences",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sequences")),
    )
    op.create_table(
        "circuits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("designation", sa.String(length=40), nullable=False),
        sa.Column("service", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=250), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "suspended", "deactivated", name="accountstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_circuits_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circuits")),
        sa.UniqueConstraint("designation", name=op.f("uq_circuits_designation")),
    )
    op.create_index("ix_circuits_customer_id", "circuits", ["customer_id"])

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("phone", "whatsapp", "email", name="contactkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_contacts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_customer_id", "contacts", ["customer_id"])
    op.create_index("ix_contacts_kind_value", "contacts", ["kind", "value"])

    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("reference_month", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("paid", "open", "overdue", name="invoicestatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    op.create_index("ix_invoices_customer_month", "invoices", ["customer_id", "reference_month"], unique=True)

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circuit_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["circuit_id"], ["circuits.id"], name=op.f("fk_incidents_circuit_id_circuits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_circuit_id", "incidents", ["circuit_id"])

    op.create_table(
        "invoice_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("boleto", "nota_fiscal", name="documentkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("digitable_line", sa.String(length=60), nullable=False),
        sa.Column("file_name", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=80), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_documents_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_documents")),
    )
    op.create_index("ix_invoice_documents_invoice_id", "invoice_documents", ["invoice_id"])

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "service",
                "partial",
                "discount",
                "credit",
                name="invoicelinekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    op.create_index("ix_invoice_lines_invoice_id", "invoice_lines", ["invoice_id"])

    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circuit_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["circuit_id"], ["circuits.id"], name=op.f("fk_maintenance_windows_circuit_id_circuits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index("ix_maintenance_windows_circuit_id", "maintenance_windows", ["circuit_id"])

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=9), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("circuit_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "technical_failure",
                "service_request",
                "billing_doubt",
                "billing_dispute",
                "boleto_copy",
                "nota_fiscal_copy",
                "complaint",
                "cancellation",
                "due_date_change",
                "maintenance_reschedule",
                "bgp_request",
                "callback_request",
                name="ticketkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "in_progress",
                "waiting_customer",
                "resolved",
                "closed",
                "cancelled",
                name="ticketstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("symptom", sa.String(length=80), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("call_protocol", sa.String(length=12), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["circuit_id"], ["circuits.id"], name=op.f("fk_tickets_circuit_id_circuits")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_tickets_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
    )
    op.create_index("ix_tickets_call_protocol", "tickets", ["call_protocol"])
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_customer_id", table_name="tickets")
    op.drop_index("ix_tickets_call_protocol", table_name="tickets")
    op.drop_table("tickets")
    op.drop_index("ix_maintenance_windows_circuit_id", table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_invoice_lines_invoice_id", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_index("ix_invoice_documents_invoice_id", table_name="invoice_documents")
    op.drop_table("invoice_documents")
    op.drop_index("ix_incidents_circuit_id", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_invoices_customer_month", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_contacts_kind_value", table_name="contacts")
    op.drop_index("ix_contacts_customer_id", table_name="contacts")
    op.drop_table("contacts")
    op.drop_index("ix_circuits_customer_id", table_name="circuits")
    op.drop_table("circuits")
    op.drop_table("sequences")
    op.drop_index("ix_node_visits_started_at", table_name="node_visits")
    op.drop_index("ix_node_visits_call_protocol", table_name="node_visits")
    op.drop_table("node_visits")
    op.drop_index("ix_leads_call_protocol", table_name="leads")
    op.drop_table("leads")
    op.drop_table("fallback_protocols")
    op.drop_index("ix_customers_cnpj_root", table_name="customers")
    op.drop_table("customers")
    op.drop_index("ix_calls_linked_id", table_name="calls")
    op.drop_index("ix_calls_caller_id", table_name="calls")
    op.drop_table("calls")
