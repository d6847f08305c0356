-- +goose Up
CREATE TABLE appt_settings (
    org_id INTEGER PRIMARY KEY,
    alsace_moselle INTEGER NOT NULL DEFAULT 0,
    ants_hub_token_hash TEXT NOT NULL DEFAULT '',
    ants_api_url TEXT NOT NULL DEFAULT '',
    ants_api_token TEXT NOT NULL DEFAULT '',
    sms_url TEXT NOT NULL DEFAULT '',
    sms_token TEXT NOT NULL DEFAULT '',
    ants_down_until TIMESTAMP
);
CREATE TABLE appt_categories (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE appt_services (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    category_id INTEGER NOT NULL REFERENCES appt_categories (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    bring TEXT NOT NULL DEFAULT '',
    need TEXT NOT NULL DEFAULT '',
    ants_reason TEXT NOT NULL DEFAULT '',
    slots_per_unit INTEGER NOT NULL DEFAULT 1,
    max_units INTEGER NOT NULL DEFAULT 1,
    notice_hours INTEGER NOT NULL DEFAULT 2,
    window_days INTEGER NOT NULL DEFAULT 60,
    hold_minutes INTEGER NOT NULL DEFAULT 10,
    max_upcoming INTEGER NOT NULL DEFAULT 1,
    max_upcoming_category INTEGER NOT NULL DEFAULT 0,
    min_gap_days INTEGER NOT NULL DEFAULT 0,
    reminder_hours INTEGER NOT NULL DEFAULT 24,
    questions TEXT NOT NULL DEFAULT '[]',
    unit_id INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE appt_places (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    zip_code TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    latitude REAL NOT NULL DEFAULT 0,
    longitude REAL NOT NULL DEFAULT 0,
    access TEXT NOT NULL DEFAULT '',
    accessibility TEXT NOT NULL DEFAULT '',
    website TEXT NOT NULL DEFAULT '',
    logo TEXT NOT NULL DEFAULT '',
    unit_id INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE appt_offers (
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    place_id INTEGER NOT NULL REFERENCES appt_places (id),
    generated_until TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (service_id, place_id)
);
CREATE TABLE appt_templates (
    id INTEGER PRIMARY KEY,
    place_id INTEGER NOT NULL REFERENCES appt_places (id),
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    slot_minutes INTEGER NOT NULL,
    capacity INTEGER NOT NULL,
    week TEXT NOT NULL
);
CREATE INDEX appt_templates_offer ON appt_templates (place_id, service_id);
CREATE TABLE appt_days (
    id INTEGER PRIMARY KEY,
    place_id INTEGER NOT NULL REFERENCES appt_places (id),
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    day TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    ranges TEXT NOT NULL DEFAULT '',
    slot_minutes INTEGER NOT NULL DEFAULT 0,
    capacity INTEGER NOT NULL DEFAULT 0,
    UNIQUE (place_id, service_id, day)
);
CREATE TABLE appt_closings (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    place_id INTEGER NOT NULL DEFAULT 0,
    day TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX appt_closings_org ON appt_closings (org_id, day);
CREATE TABLE appt_slots (
    id INTEGER PRIMARY KEY,
    place_id INTEGER NOT NULL REFERENCES appt_places (id),
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    day TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    capacity INTEGER NOT NULL,
    booked INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0,
    CHECK (booked >= 0),
    UNIQUE (place_id, service_id, starts_at)
);
CREATE INDEX appt_slots_day ON appt_slots (place_id, day);
CREATE TABLE appt_appointments (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    place_id INTEGER NOT NULL REFERENCES appt_places (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    units INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'booked',
    hold_hash TEXT NOT NULL DEFAULT '',
    hold_expires_at TIMESTAMP,
    cancel_hash TEXT NOT NULL DEFAULT '',
    manage_hash TEXT NOT NULL DEFAULT '',
    citizen_id INTEGER NOT NULL DEFAULT 0,
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    answers TEXT NOT NULL DEFAULT '{}',
    ants_ids TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT 'fr',
    replaces_id INTEGER NOT NULL DEFAULT 0,
    overbooked INTEGER NOT NULL DEFAULT 0,
    booked_by INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    reminded_at TIMESTAMP,
    notified_at TIMESTAMP
);
CREATE INDEX appt_appointments_place ON appt_appointments (place_id, starts_at);
CREATE INDEX appt_appointments_held ON appt_appointments (status, hold_expires_at);
CREATE INDEX appt_appointments_citizen ON appt_appointments (email, status);
CREATE INDEX appt_appointments_cancel ON appt_appointments (cancel_hash);
CREATE INDEX appt_appointments_manage ON appt_appointments (manage_hash);
CREATE INDEX appt_appointments_hold ON appt_appointments (hold_hash);
CREATE TABLE appt_appointment_slots (
    appointment_id INTEGER NOT NULL REFERENCES appt_appointments (id),
    slot_id INTEGER NOT NULL REFERENCES appt_slots (id),
    PRIMARY KEY (appointment_id, slot_id)
);
CREATE INDEX appt_appointment_slots_slot ON appt_appointment_slots (slot_id);
-- One active appointment per person (email, phone, ANTS number) and need: the database
-- refuses the second one, whatever the concurrency.
CREATE TABLE appt_persons (
    appointment_id INTEGER NOT NULL REFERENCES appt_appointments (id),
    need TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX appt_persons_once ON appt_persons (need, kind, value) WHERE active = 1;
CREATE INDEX appt_persons_appt ON appt_persons (appointment_id);
CREATE TABLE appt_waits (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    service_id INTEGER NOT NULL REFERENCES appt_services (id),
    place_id INTEGER NOT NULL DEFAULT 0,
    email TEXT NOT NULL,
    from_day TEXT NOT NULL,
    to_day TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting',
    offered_slot INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    offered_at TIMESTAMP
);
CREATE INDEX appt_waits_service ON appt_waits (service_id, status, id);

-- +goose Down
DROP TABLE appt_waits;
DROP TABLE appt_persons;
DROP TABLE appt_appointment_slots;
DROP TABLE appt_appointments;
DROP TABLE appt_slots;
DROP TABLE appt_closings;
DROP TABLE appt_days;
DROP TABLE appt_templates;
DROP TABLE appt_offers;
DROP TABLE appt_places;
DROP TABLE appt_services;
DROP TABLE appt_categories;
DROP TABLE appt_settings;
