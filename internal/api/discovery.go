package api

import "net/http"

// discoveryDoc is a minimal Google API discovery document of /fleet/v1
// (fleet served schema/v1.json; rootUrl is fleet's literal "$ENDPOINT/").
const discoveryDoc = `{
  "kind": "discovery#restDescription",
  "discoveryVersion": "v1",
  "id": "fleet:v1",
  "name": "fleet",
  "version": "v1",
  "title": "fleet API",
  "description": "fleetd: a cluster-wide init system built on etcd",
  "protocol": "rest",
  "rootUrl": "$ENDPOINT/",
  "servicePath": "fleet/v1/",
  "parameters": {
    "alt": {"type": "string", "description": "Data format for the response.", "default": "json", "enum": ["json"], "location": "query"}
  },
  "schemas": {
    "Machine": {"id": "Machine", "type": "object", "properties": {
      "id": {"type": "string"},
      "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
      "primaryIP": {"type": "string"}}},
    "MachinePage": {"id": "MachinePage", "type": "object", "properties": {
      "machines": {"type": "array", "items": {"$ref": "Machine"}},
      "nextPageToken": {"type": "string"}}},
    "UnitOption": {"id": "UnitOption", "type": "object", "properties": {
      "section": {"type": "string"}, "name": {"type": "string"}, "value": {"type": "string"}}},
    "Unit": {"id": "Unit", "type": "object", "properties": {
      "name": {"type": "string"},
      "options": {"type": "array", "items": {"$ref": "UnitOption"}},
      "desiredState": {"type": "string", "enum": ["inactive", "loaded", "launched"]},
      "currentState": {"type": "string", "enum": ["inactive", "loaded", "launched"], "readOnly": true},
      "machineID": {"type": "string", "required": true}}},
    "UnitPage": {"id": "UnitPage", "type": "object", "properties": {
      "units": {"type": "array", "items": {"$ref": "Unit"}},
      "nextPageToken": {"type": "string"}}},
    "UnitState": {"id": "UnitState", "type": "object", "properties": {
      "name": {"type": "string"}, "hash": {"type": "string"}, "machineID": {"type": "string"},
      "systemdLoadState": {"type": "string"}, "systemdActiveState": {"type": "string"}, "systemdSubState": {"type": "string"}}},
    "UnitStatePage": {"id": "UnitStatePage", "type": "object", "properties": {
      "states": {"type": "array", "items": {"$ref": "UnitState"}},
      "nextPageToken": {"type": "string"}}},
    "MachinePatchOp": {"id": "MachinePatchOp", "type": "object", "properties": {
      "op": {"type": "string", "enum": ["add", "remove", "replace"]},
      "path": {"type": "string"},
      "value": {"type": "object", "properties": {"value": {"type": "string"}}}}}
  },
  "resources": {
    "Machines": {"methods": {
      "List": {"id": "fleet.Machine.List", "httpMethod": "GET", "path": "machines",
        "parameters": {"nextPageToken": {"type": "string", "location": "query"}}, "response": {"$ref": "MachinePage"}},
      "Patch": {"id": "fleet.Machine.Patch", "httpMethod": "PATCH", "path": "machines",
        "request": {"type": "array", "items": {"$ref": "MachinePatchOp"}}}}},
    "Units": {"methods": {
      "List": {"id": "fleet.Unit.List", "httpMethod": "GET", "path": "units",
        "parameters": {"nextPageToken": {"type": "string", "location": "query"}}, "response": {"$ref": "UnitPage"}},
      "Get": {"id": "fleet.Unit.Get", "httpMethod": "GET", "path": "units/{unitName}",
        "parameters": {"unitName": {"type": "string", "required": true, "location": "path"}},
        "parameterOrder": ["unitName"], "response": {"$ref": "Unit"}},
      "Set": {"id": "fleet.Unit.Set", "httpMethod": "PUT", "path": "units/{unitName}",
        "parameters": {"unitName": {"type": "string", "required": true, "location": "path"}},
        "parameterOrder": ["unitName"], "request": {"$ref": "Unit"}},
      "Delete": {"id": "fleet.Unit.Delete", "httpMethod": "DELETE", "path": "units/{unitName}",
        "parameters": {"unitName": {"type": "string", "required": true, "location": "path"}},
        "parameterOrder": ["unitName"]}}},
    "UnitState": {"methods": {
      "List": {"id": "fleet.UnitState.List", "httpMethod": "GET", "path": "state",
        "parameters": {
          "nextPageToken": {"type": "string", "location": "query"},
          "machineID": {"type": "string", "location": "query"},
          "unitName": {"type": "string", "location": "query"}},
        "response": {"$ref": "UnitStatePage"}}}}
  }
}
`

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(discoveryDoc))
}
