package workorders

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Reason names the class of a failed work order. The completion's
// retryable flag follows from it; it is never guessed from error text.
type Reason string

// Failure reasons.
const (
	// ReasonInvalid: the YAML does not parse into Kubernetes objects, or a
	// build order names no Build. Not retryable.
	ReasonInvalid Reason = "InvalidWorkOrder"
	// ReasonUnknownType: a work_type the agent does not know. Not retryable.
	ReasonUnknownType Reason = "UnknownWorkType"
	// ReasonMissingKind: the cluster serves no resource for a kind (a CRD
	// is not installed). Not retryable.
	ReasonMissingKind Reason = "MissingKind"
	// ReasonShipwrightMissing: a build order on a cluster without the
	// Shipwright CRDs. Not retryable.
	ReasonShipwrightMissing Reason = "ShipwrightNotInstalled"
	// ReasonRejected: the Kubernetes API refused an object or a request for
	// good (400, 403, 404, 409, 422, …). Not retryable.
	ReasonRejected Reason = "Rejected"
	// ReasonJobFailed: a Job of a custom order reported Failed. Not retryable.
	ReasonJobFailed Reason = "JobFailed"
	// ReasonObjectFailed: kstatus reports an object of a custom order as
	// Failed, or the object disappeared while being waited for. Not retryable.
	ReasonObjectFailed Reason = "ObjectFailed"
	// ReasonBuildRunFailed: the BuildRun finished with Succeeded=False. Not
	// retryable.
	ReasonBuildRunFailed Reason = "BuildRunFailed"
	// ReasonConflict: the deterministic BuildRun name is taken by an object
	// that does not belong to this work order. Not retryable.
	ReasonConflict Reason = "Conflict"
	// ReasonTimeout: the per-order timeout passed. Retryable.
	ReasonTimeout Reason = "Timeout"
	// ReasonTransient: throttling, a 5xx, a timeout or a connection error
	// from the Kubernetes API. Retryable.
	ReasonTransient Reason = "Transient"
	// ReasonInternal: any other error. Not retryable, as in the original.
	ReasonInternal Reason = "Internal"
)

// Retryable reports whether a failure of this class may succeed on another
// attempt.
func (r Reason) Retryable() bool { return r == ReasonTimeout || r == ReasonTransient }

// Failure is a classified error of a work order.
type Failure struct {
	Reason  Reason
	Message string
	Err     error
}

func (f *Failure) Error() string {
	if f.Err != nil && f.Message == "" {
		return f.Err.Error()
	}
	return f.Message
}

func (f *Failure) Unwrap() error { return f.Err }

// Retryable is the completion's retryable flag.
func (f *Failure) Retryable() bool { return f.Reason.Retryable() }

func fail(r Reason, format string, args ...any) *Failure {
	return &Failure{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// wrap classifies err and prefixes its message with what was being done.
func wrap(err error, format string, args ...any) *Failure {
	f := Classify(err)
	return &Failure{Reason: f.Reason, Message: fmt.Sprintf(format, args...) + ": " + f.Message, Err: err}
}

// Classify turns an error into a Failure from its type: a *Failure keeps its
// reason; reconcile's invalid-YAML errors, unresolvable kinds, Kubernetes
// API statuses (through apierrors) and transport errors (through
// kube.IsRetryable) are mapped; a deadline is a timeout.
func Classify(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	var invalid *reconcile.InvalidError
	var unresolved *kube.UnresolvedKindError
	switch {
	case err == nil:
		return &Failure{Reason: ReasonInternal, Message: "unknown error"}
	case errors.As(err, &invalid):
		return &Failure{Reason: ReasonInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Failure{Reason: ReasonTimeout, Message: err.Error(), Err: err}
	case meta.IsNoMatchError(err):
		return &Failure{Reason: ReasonMissingKind, Message: err.Error(), Err: err}
	case errors.As(err, &unresolved):
		// Discovery itself failed (the mapper wraps every error).
		if kube.IsRetryable(unresolved.Err) {
			return &Failure{Reason: ReasonTransient, Message: err.Error() + ": " + unresolved.Err.Error(), Err: err}
		}
		return &Failure{Reason: ReasonMissingKind, Message: err.Error(), Err: err}
	case kube.IsRetryable(err):
		return &Failure{Reason: ReasonTransient, Message: err.Error(), Err: err}
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= http.StatusBadRequest {
		return &Failure{Reason: ReasonRejected, Message: apiMessage(err), Err: err}
	}
	return &Failure{Reason: ReasonInternal, Message: err.Error(), Err: err}
}

// apiMessage is the API status message without client-go's prefixes.
func apiMessage(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Message != "" {
		return st.Status().Message
	}
	return err.Error()
}
