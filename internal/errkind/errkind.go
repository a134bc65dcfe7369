// Package errkind marks errors with a kind (a sentinel error) that
// errors.Is finds, without changing their message: the packages that
// decode hostile input say what exactly is wrong in the message and what
// sort of wrong it is in the kind, which a server maps to a status.
package errkind

import "errors"

type kindError struct {
	kind, err error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// With marks err as of kind; nil stays nil.
func With(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind, err}
}

// Has reports whether err is of one of the kinds.
func Has(err error, kinds ...error) bool {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
