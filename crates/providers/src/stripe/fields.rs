//! Which fields a Stripe object has, from the documented field lists at the pinned API version
//! (Stripe has no schema API), plus any `metadata.<key>`.

/// Top-level properties of a Stripe customer (`deleted` on deleted stubs).
const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "object",
    "address",
    "balance",
    "cash_balance",
    "created",
    "currency",
    "default_source",
    "deleted",
    "delinquent",
    "description",
    "discount",
    "email",
    "invoice_credit_balance",
    "invoice_prefix",
    "invoice_settings",
    "livemode",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "sources",
    "subscriptions",
    "tax",
    "tax_exempt",
    "tax_ids",
    "test_clock",
];

/// Top-level properties of a Stripe invoice at the pinned API version (since 2025-03-31.basil the
/// subscription and quote live in `parent`, payments in `payments`, taxes in `total_taxes`;
/// `deleted` on deleted drafts).
const INVOICE_FIELDS: &[&str] = &[
    "id",
    "object",
    "account_country",
    "account_name",
    "account_tax_ids",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "amount_shipping",
    "application",
    "application_fee_amount",
    "attempt_count",
    "attempted",
    "auto_advance",
    "automatic_tax",
    "billing_reason",
    "collection_method",
    "created",
    "currency",
    "custom_fields",
    "customer",
    "customer_address",
    "customer_email",
    "customer_name",
    "customer_phone",
    "customer_shipping",
    "customer_tax_exempt",
    "customer_tax_ids",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "deleted",
    "description",
    "discount",
    "discounts",
    "due_date",
    "effective_at",
    "ending_balance",
    "footer",
    "from_invoice",
    "hosted_invoice_url",
    "invoice_pdf",
    "issuer",
    "last_finalization_error",
    "latest_revision",
    "lines",
    "livemode",
    "metadata",
    "next_payment_attempt",
    "number",
    "on_behalf_of",
    "parent",
    "payments",
    "payment_settings",
    "period_end",
    "period_start",
    "post_payment_credit_notes_amount",
    "pre_payment_credit_notes_amount",
    "receipt_number",
    "rendering",
    "shipping_cost",
    "shipping_details",
    "starting_balance",
    "statement_descriptor",
    "status",
    "status_transitions",
    "subtotal",
    "subtotal_excluding_tax",
    "test_clock",
    "threshold_reason",
    "total",
    "total_discount_amounts",
    "total_excluding_tax",
    "total_taxes",
    "transfer_data",
    "webhooks_delivered_at",
];

/// Top-level properties of a Stripe charge (no `invoice` since 2025-03-31.basil).
const CHARGE_FIELDS: &[&str] = &[
    "id",
    "object",
    "amount",
    "amount_captured",
    "amount_refunded",
    "application",
    "application_fee",
    "application_fee_amount",
    "balance_transaction",
    "billing_details",
    "calculated_statement_descriptor",
    "captured",
    "created",
    "currency",
    "customer",
    "description",
    "disputed",
    "failure_balance_transaction",
    "failure_code",
    "failure_message",
    "fraud_details",
    "livemode",
    "metadata",
    "on_behalf_of",
    "outcome",
    "paid",
    "payment_intent",
    "payment_method",
    "payment_method_details",
    "radar_options",
    "receipt_email",
    "receipt_number",
    "receipt_url",
    "refunded",
    "refunds",
    "review",
    "shipping",
    "source",
    "source_transfer",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "status",
    "transfer",
    "transfer_data",
    "transfer_group",
];

/// The documented fields of a Stripe object type.
fn documented(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "customers" => CUSTOMER_FIELDS,
        "invoices" => INVOICE_FIELDS,
        _ => CHARGE_FIELDS,
    }
}

/// Whether a Stripe mapping names a known field or a metadata key.
fn has(object_type: &str, field: &str) -> bool {
    documented(object_type).contains(&field)
        || field
            .strip_prefix("metadata.")
            .is_some_and(|key| !key.is_empty())
}

/// The names in `wanted` that `object_type` lacks (no call is made).
pub(super) fn missing<'a>(object_type: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|field| !has(object_type, field))
        .collect()
}
