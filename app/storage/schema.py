"""Tables: current resources, their version history, and one index table per search type.

Searches never look inside the JSON: every searchable value is extracted on write into the
`search_*` tables below, which carry the B-tree indexes the search SQL relies on.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
PrimaryKeyInt = BigInteger().with_variant(Integer(), "sqlite")

resources = Table(
    "resources",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime, nullable=False),  # UTC, naive
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),  # compact JSON of the current version
    UniqueConstraint("res_type", "res_id", name="uq_resources_type_id"),
    Index("ix_resources_type_updated", "res_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("res_pk", PrimaryKeyInt, ForeignKey("resources.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("last_updated", DateTime, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=False),
    Column("content", Text, nullable=True),
    Column("author", String(512), nullable=True),  # who made this version
    Index("ix_resource_versions_type_updated", "res_type", "last_updated"),
)


def _index_columns() -> list[Column]:
    return [
        Column("res_pk", PrimaryKeyInt, ForeignKey("resources.pk", ondelete="CASCADE"),
               nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
    ]


search_token = Table(
    "search_token",
    metadata,
    *_index_columns(),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("text", String(255), nullable=True),  # normalised display/text, for :text
    Index("ix_search_token_code", "res_type", "param", "code", "system"),
    Index("ix_search_token_res", "res_pk"),
)

search_string = Table(
    "search_string",
    metadata,
    *_index_columns(),
    Column("value", String(512), nullable=False),  # normalised: lower case, no accents
    Column("exact", String(512), nullable=False),
    Index("ix_search_string_value", "res_type", "param", "value"),
    Index("ix_search_string_res", "res_pk"),
)

search_date = Table(
    "search_date",
    metadata,
    *_index_columns(),
    Column("low", DateTime, nullable=False),  # UTC, inclusive
    Column("high", DateTime, nullable=False),  # UTC, inclusive
    Index("ix_search_date_low", "res_type", "param", "low"),
    Index("ix_search_date_high", "res_type", "param", "high"),
    Index("ix_search_date_res", "res_pk", "param"),
)

search_reference = Table(
    "search_reference",
    metadata,
    *_index_columns(),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", String(1024), nullable=True),  # references outside this server
    Index("ix_search_reference_target", "res_type", "param", "target_id", "target_type"),
    Index("ix_search_reference_res", "res_pk", "param"),
    Index("ix_search_reference_inbound", "target_type", "target_id"),
)

INDEX_TABLES = {
    "token": search_token,
    "string": search_string,
    "date": search_date,
    "reference": search_reference,
}

# -- projections ---------------------------------------------------------------------------
# Read models kept in step with the resources by interceptors, for hot read paths.

# The free slots SAS may see, already shaped as FrSlotAgregateur JSON (without `comment`,
# which depends on configuration): the SAS search reads them with one index range scan.
sas_slot = Table(
    "sas_slot",
    metadata,
    Column("slot_pk", PrimaryKeyInt, ForeignKey("resources.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("slot_id", String(64), nullable=False),
    Column("schedule_id", String(64), nullable=False),
    Column("start", DateTime, nullable=False),  # UTC, naive
    Column("fragment", Text, nullable=False),
    # JSON array of the HealthcareServices (CPTS offers) the slot is shared with, when it
    # carries the CPTS label (app/sas/cpts.py); the CPTS answer publishes them.
    Column("cpts", Text, nullable=True),
    # The slot shaped for the SOS Médecins offer (sas-sos-slot-aggregator JSON, without
    # `comment`), when its Schedule is an SOS place (`sas_sos_place`) and SOS may see it.
    Column("sos", Text, nullable=True),
    Index("ix_sas_slot_schedule_start", "schedule_id", "start"),
)

# Schedules whose rule-derived slots (app/gap) are to be brought in line by the worker: when
# their availability rules change (now) and as the rolling horizon moves on (daily).
gap_derivation = Table(
    "gap_derivation",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("due_at", DateTime, nullable=False),  # UTC, naive
    Index("ix_gap_derivation_due", "due_at"),
)

# -- user accounts ---------------------------------------------------------------------------
# People who log in to our web pages. Regulator accounts follow their FHIR Practitioner
# (INT_R02, see app/accounts/service.py). Only hashes of secrets are stored.

user_accounts = Table(
    "user_accounts",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    # FHIR id of the Practitioner behind the account (regulators, practitioners).
    Column("practitioner_id", String(64), nullable=True),
    # Lower-cased. Not unique: a deactivated account may keep the address a new one reuses;
    # uniqueness among active regulators is checked on the FHIR side.
    Column("email", String(320), nullable=True),
    Column("family", String(255), nullable=True),
    Column("given", String(255), nullable=True),
    Column("role", String(32), nullable=False),  # regulator | staff | practitioner | administrator
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("terms_accepted_at", DateTime, nullable=True),  # UTC, naive
    # The version of the terms of use accepted then: a new version asks again.
    Column("terms_version", String(32), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deactivated_at", DateTime, nullable=True),
    UniqueConstraint("practitioner_id", name="uq_user_accounts_practitioner_id"),
    Index("ix_user_accounts_email", "email"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False),  # sha256 hex
    Column("account_pk", PrimaryKeyInt, ForeignKey("user_accounts.pk", ondelete="CASCADE"),
           nullable=False),
    # Arrived from SAS (SSO with origin=sas): the only sessions with regulator rights.
    Column("from_sas", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    # The SSO provider's ID token of a single sign-on session: the `id_token_hint` of the
    # logout at the provider (kept here, not in the size-limited cookie).
    Column("id_token", Text, nullable=True),
    UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
    Index("ix_user_sessions_account", "account_pk"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False),  # sha256 hex
    Column("account_pk", PrimaryKeyInt, ForeignKey("user_accounts.pk", ondelete="CASCADE"),
           nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),  # also set when revoked unused
    UniqueConstraint("token_hash", name="uq_password_resets_token_hash"),
    Index("ix_password_resets_account", "account_pk"),
)

# Appointments booked on our pages, and by whom: a regulator's list of the appointments he
# booked (the Appointment itself may later be changed by anyone through the FHIR API).
web_bookings = Table(
    "web_bookings",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("account_pk", PrimaryKeyInt, ForeignKey("user_accounts.pk", ondelete="CASCADE"),
           nullable=False),
    Column("appointment_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC, naive
    UniqueConstraint("appointment_id", name="uq_web_bookings_appointment"),
    Index("ix_web_bookings_account", "account_pk", "created_at"),
)

# -- notifications ---------------------------------------------------------------------------
# Transactional outbox: a change and the HTTP requests that announce it commit together; the
# delivery worker sends them afterwards, in order per `ordering_key`.
OUTBOX_CLAIMABLE = "status IN ('pending', 'delivering')"
OUTBOX_OPEN = "status IN ('pending', 'delivering', 'parked')"

outbox = Table(
    "outbox",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("subscriber", String(128), nullable=False),  # "sas" or "Subscription/<id>"
    Column("ordering_key", String(256), nullable=False),  # messages of one key go in order
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("headers", Text, nullable=False),  # JSON object
    Column("body", Text, nullable=True),
    # Sent instead of method/url when retrying, so that a retry cannot create twice.
    Column("retry_method", String(8), nullable=True),
    Column("retry_url", String(2048), nullable=True),
    Column("status", String(16), nullable=False),  # pending|delivering|delivered|parked|superseded
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("lease_until", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_key", "ordering_key", "pk"),
    # Delivered rows pile up (they are the announcement history of each key): the claim
    # and its per-key order check look only at the few open ones.
    Index("ix_outbox_claimable", "pk", postgresql_where=text(OUTBOX_CLAIMABLE),
          sqlite_where=text(OUTBOX_CLAIMABLE)),
    Index("ix_outbox_open_key", "ordering_key", "pk", postgresql_where=text(OUTBOX_OPEN),
          sqlite_where=text(OUTBOX_OPEN)),
)

# The published SAS practice places (one row per Schedule and prefixed national id of its
# practitioner), with the Practitioner, PractitionerRole (Location contained) and Schedule
# already shaped for the aggregator profiles: the SAS search reads them by national id.
sas_place = Table(
    "sas_place",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("idnps", String(64), primary_key=True),  # prefixed (8… RPPS, 0… ADELI)
    Column("practitioner_id", String(64), nullable=False),
    Column("role_id", String(64), nullable=False),
    Column("practitioner", Text, nullable=False),  # JSON, FrPractitionerAgregateur
    Column("role", Text, nullable=False),  # JSON, FrPractitionerRoleExerciceAgregateur
    Column("schedule", Text, nullable=False),  # JSON, FrScheduleAgregateur
    # The stored Organization the structure id was read from, if any (it may be named by a
    # Location contained in the role or the Schedule, which the search index does not see).
    Column("organization_id", String(64), nullable=True),
    Index("ix_sas_place_idnps", "idnps"),
    Index("ix_sas_place_practitioner", "practitioner_id"),
    Index("ix_sas_place_role", "role_id"),
    Index("ix_sas_place_organization", "organization_id"),
)

# The CPTS offers slots may be shared with: one row per publishable HealthcareService (its
# Organization a CPTS with a FINESS), both shaped for the CPTS aggregator profiles.
sas_cpts = Table(
    "sas_cpts",
    metadata,
    Column("healthcareservice_id", String(64), primary_key=True),
    Column("organization_id", String(64), nullable=False),
    Column("healthcareservice", Text, nullable=False),  # JSON, sas-cpts-healthcareservice-…
    Column("organization", Text, nullable=False),  # JSON, sas-cpts-organization-aggregator
    Index("ix_sas_cpts_organization", "organization_id"),
)

# The fixed consultation places of SOS Médecins associations: one row per Schedule and
# prefixed SIRET of the association (a Location of the Schedule, managed by it), with the
# Schedule, Location and Organization shaped for the SOS aggregator profiles.
sas_sos_place = Table(
    "sas_sos_place",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("siret", String(64), primary_key=True),  # prefixed: 3 + 14 digits
    Column("location_id", String(64), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("schedule", Text, nullable=False),  # JSON, sas-sos-schedule-aggregator
    Column("location", Text, nullable=False),  # JSON, sas-sos-location-aggregator
    Column("organization", Text, nullable=False),  # JSON, sas-sos-organization-aggregator
    Index("ix_sas_sos_place_siret", "siret"),
    Index("ix_sas_sos_place_location", "location_id"),
    Index("ix_sas_sos_place_organization", "organization_id"),
)

# -- OAuth 2 clients -------------------------------------------------------------------------
# Third-party agendas of the built-in client-credentials endpoint, and the agendas a client
# (of that endpoint or of an external authorisation server) is restricted to.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False),  # sha256 hex; the secret is never kept
    Column("name", String(255), nullable=False),
    Column("scope", Text, nullable=False),  # allowed SMART scopes, space-separated
    # Logical ids, space-separated; both empty = not restricted.
    Column("practitioners", Text, nullable=False, default=""),
    Column("organizations", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),  # UTC, naive
    Column("disabled_at", DateTime, nullable=True),
)

# -- operations (app/ops) ---------------------------------------------------------------------
# One row per delivery worker process, refreshed every few seconds: /readyz reads the newest.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker", String(160), primary_key=True),  # host:pid
    Column("started_at", DateTime, nullable=False),  # UTC, naive
    Column("beat_at", DateTime, nullable=False),
    Index("ix_worker_heartbeats_beat", "beat_at"),
)

# History of the SLA page: once a minute, per host, a snapshot of the cumulative Prometheus
# values it plots (JSON); rows older than 24 h are deleted as new ones come (a ring).
metric_samples = Table(
    "metric_samples",
    metadata,
    Column("host", String(160), primary_key=True),
    Column("taken_at", DateTime, primary_key=True),  # UTC, naive, on the minute
    Column("sample", Text, nullable=False),
    Index("ix_metric_samples_taken", "taken_at"),
)

# Asynchronous bulk loads (app/fhir/bulk_jobs.py): an NDJSON body received whole, in parts,
# then loaded by the worker; the answer is kept for the client that sent it to fetch.
bulk_jobs = Table(
    "bulk_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),  # queued, running, done, cancelled
    Column("owner", String(512), nullable=False),  # the sender, as recorded on versions
    Column("principal", Text),  # its rights (JSON), re-applied by the worker
    Column("address", String(64)),
    Column("size", BigInteger, nullable=False),  # bytes received
    Column("lines_read", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime, nullable=False),  # UTC, naive
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("claimed_by", String(160)),  # the worker loading it (host:pid)
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("answer_status", Integer),
    Column("answer", Text),  # the load's OperationOutcome (JSON)
    Index("ix_bulk_jobs_status", "status", "created_at"),
)

bulk_job_parts = Table(
    "bulk_job_parts",
    metadata,
    Column("job_id", String(36), ForeignKey("bulk_jobs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
