package forms

import (
	"net/http"
	"sort"

	"parvis.org/parvis/kernel/web"
)

// The OpenAPI 3.1 document served at /api/openapi.json: every module's PointOpenAPI
// contribution merged (forms contributes its own like any other module).

func (m *Module) apiDocument(w http.ResponseWriter, r *http.Request) {
	paths, schemas := map[string]any{}, map[string]any{}
	for _, c := range m.openapi {
		copyMap(paths, c.Paths)
		copyMap(schemas, c.Schemas)
	}
	server := "/"
	if m.cfg != nil && m.cfg.BaseURL != "" {
		server = m.cfg.BaseURL
	}
	schemas["Error"] = obj(map[string]any{"code": str_(), "message": str_(), "field": str_()}, "code", "message")
	schemas["Problem"] = obj(map[string]any{"path": str_(), "code": str_(), "message": str_()}, "path", "code", "message")
	schemas["ValidationErrors"] = obj(map[string]any{"code": str_(), "errors": map[string]any{"type": "array", "items": ref("Problem")}}, "code", "errors")
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "Parvis API", "version": "1.0.0", "license": map[string]any{"name": "EUPL-1.2", "identifier": "EUPL-1.2"}},
		"servers": []any{map[string]any{"url": server}},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"token": map[string]any{"type": "http", "scheme": "bearer", "description": "A personal API token of an agent, limited to permissions."}},
		},
	})
}

func str_() map[string]any { return map[string]any{"type": "string"} }
func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}
func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func jsonBody(schema any) map[string]any {
	return map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func answer(desc string, schema any) map[string]any {
	a := map[string]any{"description": desc}
	if schema != nil {
		a["content"] = map[string]any{"application/json": map[string]any{"schema": schema}}
	}
	return a
}

func param(name, in, desc string) map[string]any {
	return map[string]any{"name": name, "in": in, "required": in == "path", "description": desc, "schema": str_()}
}

// formsOpenAPI is the forms module's share of the document, with stable operationIds.
func formsOpenAPI() OpenAPI {
	errs := func(codes ...string) map[string]any {
		out := map[string]any{}
		for _, c := range codes {
			out[c] = answer("error", ref("Error"))
		}
		return out
	}
	with := func(base map[string]any, more map[string]any) map[string]any {
		copyMap(base, more)
		return base
	}
	secured := []any{map[string]any{"token": []any{}}}
	return OpenAPI{
		Paths: map[string]any{
			"/api/forms": map[string]any{"get": map[string]any{
				"operationId": "listForms", "summary": "List the published forms", "tags": []any{"forms"},
				"responses": map[string]any{"200": answer("the forms", obj(map[string]any{"forms": map[string]any{"type": "array", "items": ref("FormSummary")}}, "forms"))},
			}},
			"/api/forms/{key}": map[string]any{"get": map[string]any{
				"operationId": "getForm", "summary": "Get a published form's definition", "tags": []any{"forms"},
				"parameters": []any{param("key", "path", "the form's key")},
				"responses":  with(map[string]any{"200": answer("the form and its definition", ref("Form"))}, errs("404")),
			}},
			"/api/forms/{key}/responses": map[string]any{
				"post": map[string]any{
					"operationId": "submitResponse", "summary": "Submit a response (a token holding forms.submit)", "tags": []any{"responses"}, "security": secured,
					"parameters":  []any{param("key", "path", "the form's key"), param("Idempotency-Key", "header", "the same key returns the first response instead of a new one")},
					"requestBody": jsonBody(ref("SubmitRequest")),
					"responses": with(map[string]any{"201": answer("stored", ref("Response")), "200": answer("already stored with this Idempotency-Key", ref("Response")),
						"422": answer("answers refused: one problem per path", ref("ValidationErrors"))}, errs("400", "401", "403", "404", "409", "413")),
				},
				"get": map[string]any{
					"operationId": "listResponses", "summary": "List a form's responses in the token's scope", "tags": []any{"responses"}, "security": secured,
					"parameters": []any{param("key", "path", "the form's key"), param("state", "query", "workflow state"), param("q", "query", "full-text search"),
						param("from", "query", "created on or after (YYYY-MM-DD)"), param("to", "query", "created on or before (YYYY-MM-DD)"),
						param("unit", "query", "unit id"), param("field", "query", "question key to filter on"), param("value", "query", "its answer"),
						param("sort", "query", "new (default) or old"), param("after", "query", "the next cursor of the previous page")},
					"responses": with(map[string]any{"200": answer("one page", obj(map[string]any{"responses": map[string]any{"type": "array", "items": ref("Response")}, "next": str_()}, "responses"))}, errs("400", "401", "403", "404")),
				},
			},
			"/api/responses/{ref}": map[string]any{"get": map[string]any{
				"operationId": "getResponse", "summary": "Get a response with its answers", "tags": []any{"responses"}, "security": secured,
				"parameters": []any{param("ref", "path", "the response's reference")},
				"responses":  with(map[string]any{"200": answer("the response", ref("Response"))}, errs("401", "403", "404")),
			}},
			"/api/responses/{ref}/actions/{action}": map[string]any{"post": map[string]any{
				"operationId": "runResponseAction", "summary": "Run a workflow action on a response", "tags": []any{"responses"}, "security": secured,
				"parameters":  []any{param("ref", "path", "the response's reference"), param("action", "path", "the action's key")},
				"requestBody": map[string]any{"required": false, "content": map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{"comment": str_(), "values": map[string]any{"type": "object", "additionalProperties": str_()}})}}},
				"responses":   with(map[string]any{"200": answer("the new state", ref("Response"))}, errs("400", "401", "403", "404", "409")),
			}},
		},
		Schemas: map[string]any{
			"FormSummary": obj(map[string]any{"key": str_(), "title": str_(), "version": map[string]any{"type": "integer"}, "open": map[string]any{"type": "boolean"}, "url": str_()}, "key", "title", "version", "open"),
			"Form": obj(map[string]any{"key": str_(), "title": str_(), "version": map[string]any{"type": "integer"}, "open": map[string]any{"type": "boolean"}, "url": str_(),
				"definition": map[string]any{"type": "object", "description": "the form's definition document (steps, sections, questions, conditions)"}}, "key", "title", "definition"),
			"SubmitRequest": obj(map[string]any{"answers": map[string]any{"type": "object", "description": "answers by question key; repeatable sections by section key, as a list of objects"},
				"email": str_(), "lang": map[string]any{"type": "string", "enum": []any{"fr", "en"}}}, "answers"),
			"Response": obj(map[string]any{"reference": str_(), "form_id": map[string]any{"type": "integer"}, "version": map[string]any{"type": "integer"},
				"state": str_(), "public_label": str_(), "unit_id": map[string]any{"type": "integer"}, "created_at": map[string]any{"type": "string", "format": "date-time"},
				"answers": map[string]any{"type": "object"}}, "reference", "state", "created_at"),
		},
	}
}

func copyMap(dst, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}
