package authn

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

type fakeIssuer struct {
	n   int
	err error
}

func (f *fakeIssuer) Issue(context.Context) (secret.String, string, error) {
	if f.err != nil {
		return "", "", f.err
	}
	f.n++
	return secret.String("pak-" + string(rune('0'+f.n))), "hash-" + string(rune('0'+f.n)), nil
}

type fakeInval struct{ got []string }

func (f *fakeInval) Invalidate(_ context.Context, hashes ...string) error {
	f.got = append(f.got, hashes...)
	return errors.New("publish failed") // never fails the request
}

func TestCredentialsRotate(t *testing.T) {
	ctx := context.Background()
	inval := &fakeInval{}
	c := Credentials{Issuer: &fakeIssuer{}, Inval: inval}

	var stored string
	pak, err := c.Rotate(ctx, func(_ context.Context, hash string) (string, error) { stored = hash; return "old-hash", nil })
	if err != nil || pak != "pak-1" || stored != "hash-1" || !slices.Equal(inval.got, []string{"old-hash"}) {
		t.Fatalf("rotate: pak %q err %v stored %q revoked %v", pak, err, stored, inval.got)
	}

	inval.got = nil
	if _, err := c.Rotate(ctx, func(context.Context, string) (string, error) { return "", nil }); err != nil || len(inval.got) != 0 {
		t.Fatalf("no old PAK: err %v, revoked %v; want nothing revoked", err, inval.got)
	}

	boom := errors.New("row gone")
	if _, err := c.Rotate(ctx, func(context.Context, string) (string, error) { return "old", boom }); !errors.Is(err, boom) || len(inval.got) != 0 {
		t.Fatalf("store fails: err %v, revoked %v; want the error and nothing revoked", err, inval.got)
	}

	down := Credentials{Issuer: &fakeIssuer{err: errors.New("auth down")}, Inval: inval}
	called := false
	_, err = down.Rotate(ctx, func(context.Context, string) (string, error) { called = true; return "", nil })
	if !errors.Is(err, domain.ErrUnavailable) || called {
		t.Fatalf("issuer down: err %v, store called %v; want 503 before storing", err, called)
	}
}
