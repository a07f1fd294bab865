package etcdv2

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// etcd v2's error codes (etcd/server/etcdserver/api/v2error).
const (
	EcodeKeyNotFound    = 100
	EcodeTestFailed     = 101
	EcodeNotFile        = 102
	EcodeNotDir         = 104
	EcodeNodeExist      = 105
	EcodeRootROnly      = 107
	EcodeDirNotEmpty    = 108
	EcodeUnauthorized   = 110
	EcodePrevValueReq   = 201
	EcodeTTLNaN         = 202
	EcodeIndexNaN       = 203
	EcodeInvalidField   = 209
	EcodeInvalidForm    = 210
	EcodeRefreshValue   = 211
	EcodeRefreshTTLReq  = 212
	EcodeRaftInternal   = 300
	EcodeEventIndexGone = 401
)

var errorMessages = map[int]string{
	EcodeKeyNotFound:    "Key not found",
	EcodeTestFailed:     "Compare failed",
	EcodeNotFile:        "Not a file",
	EcodeNotDir:         "Not a directory",
	EcodeNodeExist:      "Key already exists",
	EcodeRootROnly:      "Root is read only",
	EcodeDirNotEmpty:    "Directory not empty",
	EcodeUnauthorized:   "The request requires user authentication",
	EcodePrevValueReq:   "PrevValue is Required in POST form",
	EcodeTTLNaN:         "The given TTL in POST form is not a number",
	EcodeIndexNaN:       "The given index in POST form is not a number",
	EcodeInvalidField:   "Invalid field",
	EcodeInvalidForm:    "Invalid POST form",
	EcodeRefreshValue:   "Value provided on refresh",
	EcodeRefreshTTLReq:  "A TTL must be provided on refresh",
	EcodeRaftInternal:   "Raft Internal Error",
	EcodeEventIndexGone: "The event in requested index is outdated and cleared",
}

// errorStatus is etcd's HTTP status of an error code; 400 otherwise.
var errorStatus = map[int]int{
	EcodeKeyNotFound:  http.StatusNotFound,
	EcodeNotFile:      http.StatusForbidden,
	EcodeDirNotEmpty:  http.StatusForbidden,
	EcodeUnauthorized: http.StatusUnauthorized,
	EcodeTestFailed:   http.StatusPreconditionFailed,
	EcodeNodeExist:    http.StatusPreconditionFailed,
	EcodeRaftInternal: http.StatusInternalServerError,
}

// Error is etcd v2's error body.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
	status    int    // overrides the code's status when set
}

func (e *Error) Error() string {
	return strconv.Itoa(e.ErrorCode) + ": " + e.Message + " (" + e.Cause + ") [" + strconv.FormatUint(e.Index, 10) + "]"
}

func newError(code int, cause string, index int64) *Error {
	if index < 0 {
		index = 0
	}
	return &Error{ErrorCode: code, Message: errorMessages[code], Cause: cause, Index: uint64(index)}
}

// StatusCode is the HTTP status etcd answers the error with.
func (e *Error) StatusCode() int {
	if e.status != 0 {
		return e.status
	}
	if s, ok := errorStatus[e.ErrorCode]; ok {
		return s
	}
	return http.StatusBadRequest
}

func (e *Error) writeTo(w http.ResponseWriter) {
	b, _ := json.Marshal(e)
	w.Header().Add("X-Etcd-Index", strconv.FormatUint(e.Index, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.StatusCode())
	_, _ = w.Write(append(b, '\n'))
}
