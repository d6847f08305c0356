-- +goose Up
-- slots_version changes whenever the set of an offer's slots changes (a slot generated,
-- deleted, or moved): the ANTS hub's answer keeps each offer's slots (their IDs and times,
-- which never change) in memory and reads from the database only which are free, after
-- checking this version (perf_hub.go). Triggers set it in the transaction that makes the
-- change, whichever node or code path makes it, to that transaction's ID: a value no other
-- transaction sets, written once per transaction and offer however many slots it
-- generates. A booking changes no version.
ALTER TABLE appt_offers ADD COLUMN slots_version BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION appt_slots_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT := txid_current();
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE appt_offers SET slots_version = v
            WHERE service_id = OLD.service_id AND place_id = OLD.place_id AND slots_version <> v;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE appt_offers SET slots_version = v
            WHERE service_id = NEW.service_id AND place_id = NEW.place_id AND slots_version <> v;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER appt_slots_version_ins_del AFTER INSERT OR DELETE ON appt_slots
    FOR EACH ROW EXECUTE FUNCTION appt_slots_version();
CREATE TRIGGER appt_slots_version_upd AFTER UPDATE OF place_id, service_id, start_s, end_s ON appt_slots
    FOR EACH ROW EXECUTE FUNCTION appt_slots_version();

-- appt_refuse_unless raises a booking's refusal (a per-citizen limit, a person already
-- booked): the one-round-trip booking sends its statements together, and an error is what
-- rolls them all back (perf_book.go).
-- +goose StatementBegin
CREATE FUNCTION appt_refuse_unless(ok BOOLEAN, reason TEXT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'appointments refused: ' || reason;
    END IF;
    RETURN TRUE;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION appt_refuse_unless(BOOLEAN, TEXT);
DROP TRIGGER appt_slots_version_upd ON appt_slots;
DROP TRIGGER appt_slots_version_ins_del ON appt_slots;
DROP FUNCTION appt_slots_version();
ALTER TABLE appt_offers DROP COLUMN slots_version;
