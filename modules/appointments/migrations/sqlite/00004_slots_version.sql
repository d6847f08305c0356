-- +goose Up
-- slots_version changes whenever the set of an offer's slots changes (a slot generated,
-- deleted, or moved): the ANTS hub's answer keeps each offer's slots (their IDs and times,
-- which never change) in memory and reads from the database only which are free, after
-- checking this version (perf_hub.go). Triggers raise it in the transaction that makes
-- the change, whichever node or code path makes it. A booking changes no version.
ALTER TABLE appt_offers ADD COLUMN slots_version INTEGER NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER appt_slots_version_ins AFTER INSERT ON appt_slots BEGIN
    UPDATE appt_offers SET slots_version = slots_version + 1 WHERE service_id = NEW.service_id AND place_id = NEW.place_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER appt_slots_version_del AFTER DELETE ON appt_slots BEGIN
    UPDATE appt_offers SET slots_version = slots_version + 1 WHERE service_id = OLD.service_id AND place_id = OLD.place_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER appt_slots_version_upd AFTER UPDATE OF place_id, service_id, start_s, end_s ON appt_slots BEGIN
    UPDATE appt_offers SET slots_version = slots_version + 1
        WHERE (service_id = OLD.service_id AND place_id = OLD.place_id) OR (service_id = NEW.service_id AND place_id = NEW.place_id);
END;
-- +goose StatementEnd

-- The slots that are not free (full or blocked), which the hub's answer reads, as IDs, when
-- they are the fewer (perf_hub.go): the index holds only them, so the query reads no
-- table row. A booking adds to it only the booking that fills a slot.
CREATE INDEX appt_slots_not_free ON appt_slots (place_id, service_id, start_s) WHERE booked >= capacity OR blocked <> 0;

-- +goose Down
DROP INDEX appt_slots_not_free;
DROP TRIGGER appt_slots_version_upd;
DROP TRIGGER appt_slots_version_del;
DROP TRIGGER appt_slots_version_ins;
ALTER TABLE appt_offers DROP COLUMN slots_version;
