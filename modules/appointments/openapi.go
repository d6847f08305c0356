package appointments

// openAPIDoc describes the JSON API (served at /api/appointments/openapi.json). The forms
// module had no shared OpenAPI mechanism yet when this was written: when one lands, this
// document is the part to contribute to it.
var openAPIDoc = []byte(`{
  "openapi": "3.1.0",
  "info": {"title": "Parvis appointments", "version": "1.0.0",
    "description": "Book town-hall appointments. Errors are {code, message}; code is slot_full (with nearest free slots), rule_refused, invalid_input, hold_expired, not_found, ants_unavailable. createAppointment needs an API token holding appointments.api; getAppointment, cancelAppointment and rescheduleAppointment take the appointment's capability token (cancel or manage token) as the bearer."},
  "paths": {
    "/api/appointments/services": {"get": {"operationId": "listAppointmentServices", "summary": "Services with their meeting points",
      "responses": {"200": {"description": "services", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}}}}}}}},
    "/api/appointments/slots": {"get": {"operationId": "listAvailableSlots", "summary": "Free slots of a service at a meeting point",
      "parameters": [
        {"name": "service_id", "in": "query", "required": true, "schema": {"type": "integer"}},
        {"name": "meeting_point_id", "in": "query", "required": true, "schema": {"type": "integer"}},
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "units", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
      "responses": {"200": {"description": "slots", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Slot"}}}}},
        "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/api/appointments": {"post": {"operationId": "createAppointment", "summary": "Hold and confirm a slot in one call",
      "security": [{"token": []}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewAppointment"}}}},
      "responses": {"201": {"description": "booked", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Appointment"}}}},
        "400": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/api/appointments/{ref}": {"get": {"operationId": "getAppointment", "security": [{"capability": []}],
      "parameters": [{"name": "ref", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "the appointment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Appointment"}}}}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/api/appointments/{ref}/cancel": {"post": {"operationId": "cancelAppointment", "security": [{"capability": []}],
      "parameters": [{"name": "ref", "in": "path", "required": true, "schema": {"type": "string"}}],
      "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"message": {"type": "string"}}}}}},
      "responses": {"200": {"description": "cancelled"}, "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}},
    "/api/appointments/{ref}/reschedule": {"post": {"operationId": "rescheduleAppointment", "security": [{"capability": []}],
      "parameters": [{"name": "ref", "in": "path", "required": true, "schema": {"type": "string"}}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["slot_id"], "properties": {"slot_id": {"type": "integer"}}}}}},
      "responses": {"200": {"description": "moved; the old appointment is cancelled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Appointment"}}}},
        "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}}
  },
  "components": {
    "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}, "capability": {"type": "http", "scheme": "bearer", "description": "the cancel or manage token of the appointment"}},
    "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    "schemas": {
      "Error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "enum": ["slot_full", "rule_refused", "invalid_input", "hold_expired", "not_found", "conflict", "ants_unavailable", "internal"]},
        "message": {"type": "string"}, "field": {"type": "string"}, "nearest": {"type": "array", "items": {"$ref": "#/components/schemas/Slot"}}}},
      "Slot": {"type": "object", "properties": {"id": {"type": "integer"}, "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"}, "free": {"type": "integer"}}},
      "Place": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "address": {"type": "string"}, "zip_code": {"type": "string"}, "city": {"type": "string"}, "latitude": {"type": "number"}, "longitude": {"type": "number"}, "access": {"type": "string"}, "accessibility": {"type": "string"}}},
      "Service": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "category": {"type": "string"}, "description": {"type": "string"}, "what_to_bring": {"type": "string"}, "max_units": {"type": "integer"}, "meeting_points": {"type": "array", "items": {"$ref": "#/components/schemas/Place"}}}},
      "NewAppointment": {"type": "object", "required": ["slot_id", "name", "email"], "properties": {"slot_id": {"type": "integer"}, "units": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string", "format": "email"}, "phone": {"type": "string"}, "answers": {"type": "object", "additionalProperties": {"type": "string"}}, "ants_application_ids": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9]{10}$"}}, "lang": {"type": "string"}, "overbook": {"type": "boolean"}}},
      "Appointment": {"type": "object", "properties": {"reference": {"type": "string"}, "service_id": {"type": "integer"}, "meeting_point_id": {"type": "integer"}, "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"}, "status": {"type": "string"}, "cancel_token": {"type": "string"}, "manage_token": {"type": "string"}, "cancel_url": {"type": "string"}, "manage_url": {"type": "string"}}}
    }
  }
}`)
